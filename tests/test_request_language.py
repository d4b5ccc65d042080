"""A dispatcher's request may name the person's language, and, where the program allows it,
be asked again of neighbouring counties' providers."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from corespond.assignments.models import Assignment
from corespond.assignments.ranking import CallSite, Candidate, rank
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.program import CHARLESTON, KANAWHA, PUTNAM, ST_ALBANS, WINFIELD


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def reasons_of(db: Database, assignment_id: str) -> list[str]:
    """Why the offered peer was chosen (the ranking kept for supervisors)."""
    async with db.sessionmaker() as session:
        row = await session.get(Assignment, uuid.UUID(assignment_id))
    assert row is not None
    chosen = next(c for c in row.ranking["candidates"] if c["place"] == row.place)
    return list(chosen["reasons"])


async def test_a_peer_who_speaks_the_language_is_offered_first(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Near Nell", home=CHARLESTON)
        await program.peer(session, "Far Fer", home=ST_ALBANS, languages=("en", "es-MX"))
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    offer = await client.post(
        f"/v1/calls/{call.id}/peer-requests", json={"language": "es"}, headers=auth(dispatcher)
    )
    assert offer.status_code == 201, offer.text
    assert offer.json()["peer"]["display_name"] == "Far Fer"
    assert "speaks es" in (await reasons_of(db, offer.json()["id"]))


async def test_without_a_speaker_the_request_is_still_filled(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Near Nell", home=CHARLESTON)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    offer = await client.post(
        f"/v1/calls/{call.id}/peer-requests", json={"language": "vi"}, headers=auth(dispatcher)
    )
    assert offer.status_code == 201, offer.text
    assert "does not speak vi" in (await reasons_of(db, offer.json()["id"]))


async def test_a_language_that_is_not_a_tag_is_refused(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    response = await client.post(
        f"/v1/calls/{call.id}/peer-requests",
        json={"language": "Spanish please"},
        headers=auth(dispatcher),
    )
    assert response.status_code == 422
    assert "language" in response.text


def test_ranking_puts_speakers_first_within_the_call_county_only() -> None:
    def candidate(name: str, in_county: bool, languages: tuple[str, ...]) -> Candidate:
        return Candidate(
            peer_id=uuid.uuid4(),
            display_name=name,
            provider_id="wvsl",
            county_fips=KANAWHA,
            county_name="Kanawha",
            in_call_county=in_county,
            embedded_agency=None,
            point=None,
            last_assigned_at=None,
            languages=languages,
        )

    site = CallSite(agency=None, point=None, language="es")
    ranked = rank(
        [
            candidate("neighbour speaker", False, ("es",)),
            candidate("county speaker", True, ("ES",)),
            candidate("county other", True, ("en",)),
        ],
        site,
    )
    assert [r.candidate.display_name for r in ranked] == [
        "county speaker",
        "county other",
        "neighbour speaker",
    ]


async def test_neighbouring_providers_only_where_the_program_allows_it(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {PUTNAM: "primary"})
        await program.peer(session, "Rp Peer", provider_id="rp", counties=(PUTNAM,), home=WINFIELD)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    url = f"/v1/calls/{call.id}/peer-requests"
    first = await client.post(url, headers=auth(dispatcher))
    assert first.status_code == 409  # rp does not serve Kanawha
    assert "its providers' peers" in first.json()["detail"]
    refused = await client.post(
        url, json={"neighbouring_providers": True}, headers=auth(dispatcher)
    )
    assert refused.status_code == 403
    assert "CORESPOND_NEIGHBOUR_PROVIDERS" in refused.json()["detail"]

    app.state.settings = app.state.settings.model_copy(update={"neighbour_providers": True})
    wider = await client.post(url, json={"neighbouring_providers": True}, headers=auth(dispatcher))
    assert wider.status_code == 201, wider.text
    assert wider.json()["peer"]["display_name"] == "Rp Peer"
    assert wider.json()["fallback"] is True
