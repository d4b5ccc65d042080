"""Redaction for peers, by the declared rules: each case and what must never survive."""

from __future__ import annotations

import httpx
import pytest

from corespond.confidentiality.redaction import redact
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.test_assignments import auth

R = "[removed: law-enforcement only]"

CASES = [
    (
        "nothing to remove",
        "SUBJ REVIVED WITH NARCAN, CONSCIOUS",
        "SUBJ REVIVED WITH NARCAN, CONSCIOUS",
        (),
    ),
    (
        "an NCIC return with a warrant",
        "SUBJ REVIVED. NCIC RETURN SHOWS ACTIVE WARRANT. ASKING FOR DETOX",
        f"SUBJ REVIVED. {R}. ASKING FOR DETOX",
        ("warrants",),
    ),
    (
        "criminal history",
        "ETOH MALE; PRIORS FOR DUI; CALM",
        f"ETOH MALE; {R}; CALM",
        ("criminal_history",),
    ),
    ("a VCIN hit", "VCIN HIT FOR FTA / SUBJ CALM", f"{R} / SUBJ CALM", ("warrants",)),
    ("parole", "SUBJ ON PAROLE. WANTS HELP", f"{R}. WANTS HELP", ("supervision",)),
    (
        "an internal officer note to the end of its line",
        "BROTHER USING AGAIN\nINTERNAL: SUBJ IS A CI FOR NARCOTICS\nSISTER ON SCENE",
        f"BROTHER USING AGAIN\n{R}\nSISTER ON SCENE",
        ("internal_note",),
    ),
    (
        "an officer note after text on the same line",
        "SUBJ CALM OFFICER NOTES: KNOWN TO UNIT 4",
        f"SUBJ CALM {R}",
        ("internal_note",),
    ),
    ("lower case too", "cch shows priors. calm", f"{R}. calm", ("criminal_history",)),
    ("an empty narrative", "", "", ()),
]


@pytest.mark.parametrize(("what", "text", "expected", "rules"), CASES, ids=[c[0] for c in CASES])
def test_redaction(what: str, text: str, expected: str, rules: tuple[str, ...]) -> None:
    result = redact(text)
    assert result.text == expected
    assert result.removed == rules


@pytest.mark.parametrize(
    "secret",
    ["NCIC", "VCIN", "WARRANT", "PRIORS", "PAROLE", "CRIMINAL HISTORY", "CI FOR", "KNOWN TO UNIT"],
)
def test_nothing_law_enforcement_only_survives(secret: str) -> None:
    narrative = (
        "OD, REVIVED. NCIC CLEAR? NO, VCIN SHOWS WARRANT. PRIORS X3; CRIMINAL HISTORY ATTACHED / "
        "ON PAROLE\nINTERNAL: CI FOR DRUG UNIT\nOFFICER NOTE: KNOWN TO UNIT 4"
    )
    text = redact(narrative).text or ""
    assert secret not in text.upper()
    assert "OD, REVIVED." in text


async def test_the_peer_view_carries_the_redacted_narrative(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        peer = await program.peer(session, "Ana")
        call = await program.call(
            session, source.id, narrative="SUBJ REVIVED, NO WEAPONS. NCIC SHOWS WARRANT FOR FTA"
        )
    dispatcher = await make_key(db, "dispatcher")
    key = await make_key(db, "peer", f"peer:{peer.id}")
    offer = (
        await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    ).json()
    seen = (await client.get(f"/v1/assignments/{offer['id']}", headers=auth(key))).json()
    assert seen["call"]["narrative"] == f"SUBJ REVIVED, NO WEAPONS. {R}"
    assert seen["call"]["narrative_removed"] == ["warrants"]


@pytest.mark.parametrize(
    "variant",
    [
        "CRIM HX",
        "CRIMINAL-HISTORY",
        "ACTIVE WRNT",
        "WARR",
        "CAPIAS",
        "10-29F",
        "N.C.I.C.",
        "ON FELONY PROBATION",
        "PAROLEE",
        "SEX OFFENDER",
        "INTERNAL NOTE: KNOWN",
        "OFC NOTES - KNOWN",
        "LE-ONLY: KNOWN",
        "ran subj, hit for fta",
    ],
)
def test_spelling_variants_are_removed(variant: str) -> None:
    # Last on its line: an internal-note marker removes everything after it.
    result = redact(f"OD, CONSCIOUS, WANTS DETOX; {variant}")
    assert result.removed, variant
    assert "OD" in (result.text or "")
    assert "WANTS DETOX" in (result.text or "")
    kept = (result.text or "").replace(R, "")
    for word in ("HX", "WRNT", "WARR", "CAPIAS", "NCIC", "N.C.I.C", "PAROLE", "OFFENDER", "KNOWN"):
        assert word not in kept.upper(), (variant, result.text)


def test_a_comma_keeps_the_rest_of_a_line_without_stops() -> None:
    assert redact("SUBJ 10-29 CLEAR, OD, CONSCIOUS").text == f"{R}, OD, CONSCIOUS"
