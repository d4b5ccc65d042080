"""People and consent: who may read what under which consent (a table, before and after
revocation and expiry), contacts without consent, deconfliction that never merges by
itself, and every read on the audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import event, func, select

from corespond import aftercall
from corespond.app import create_app
from corespond.audit.models import AuditEntry
from corespond.auth.service import authenticate
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.people import access
from corespond.people import service as people_service
from corespond.people.access import Access, ConsentTerms, Reader, Share
from corespond.people.matching import Identity, MatchKeys, keys_of, match_reasons
from corespond.people.models import Consent, Contact, Person
from tests import program
from tests.aftercall import (
    DETOX_ORG,
    QRT_ORG,
    Met,
    auth,
    consent,
    met,
    met_on_a_call,
    record_person,
)
from tests.conftest import PgServer, Source, make_key, make_source

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
POLICE = Share("police", "CHARLESTON PD")
DETOX = Share("treatment", DETOX_ORG[0])


def terms(
    *shares: Share,
    revoked: bool = False,
    days: float = 30,
    signed_days_ago: float = 10,
    purposes: tuple[str, ...] = ("care_coordination", "deconfliction"),
) -> ConsentTerms:
    return ConsentTerms(
        id=uuid.uuid4(),
        shares=shares,
        fields=("name", "contact", "county"),
        purposes=purposes,
        expires_at=NOW + timedelta(days=days),
        revoked_at=NOW - timedelta(hours=1) if revoked else None,
        signed_at=NOW - timedelta(days=signed_days_ago),
    )


DECONFLICT = "deconfliction"
REFERRAL = "treatment_referral"
POLICE_READER = Reader("partner", agency="CHARLESTON PD")
DETOX_READER = Reader("partner", organization=DETOX_ORG[0])

# (reader, consents, purpose, expected): the rule as a table. "provider": the whole record;
# "partner": what the consent shares; otherwise why nothing is read (the audit log's reason).
TABLE = [
    (Reader("peer", provider="wvsl"), [], None, "provider"),
    (Reader("provider_admin", provider="wvsl"), [], None, "provider"),
    (Reader("peer", provider="rp"), [terms(POLICE, DETOX)], DECONFLICT, "not_a_reader"),
    (Reader("provider_admin", provider="rp"), [terms(POLICE, DETOX)], None, "not_a_reader"),
    (Reader("dispatcher"), [terms(POLICE, DETOX)], DECONFLICT, "not_a_reader"),
    (Reader("supervisor"), [terms(POLICE, DETOX)], None, "not_a_reader"),
    (Reader("auditor"), [terms(POLICE, DETOX)], None, "not_a_reader"),
    (Reader("admin"), [terms(POLICE, DETOX)], DECONFLICT, "not_a_reader"),
    (Reader("partner", agency="Charleston P.D."), [terms(POLICE)], DECONFLICT, "partner"),
    (POLICE_READER, [terms(DETOX)], DECONFLICT, "not_named"),
    (Reader("partner", agency="BLUEFIELD PD"), [terms(POLICE, DETOX)], DECONFLICT, "not_named"),
    (DETOX_READER, [terms(POLICE, DETOX)], "care_coordination", "partner"),
    (Reader("partner", organization=QRT_ORG[0]), [terms(POLICE, DETOX)], None, "no_purpose"),
    (
        Reader("partner", organization=QRT_ORG[0]),
        [terms(POLICE, DETOX)],
        "care_coordination",
        "not_named",
    ),
    # Named, but not for what it reads for: police reading to deconflict under a consent
    # for care coordination only; a treatment provider taking a referral the consent does
    # not allow; and one it does.
    (
        POLICE_READER,
        [terms(POLICE, purposes=("care_coordination",))],
        DECONFLICT,
        "purpose_not_consented",
    ),
    (DETOX_READER, [terms(POLICE, DETOX)], REFERRAL, "purpose_not_consented"),
    (DETOX_READER, [terms(POLICE, DETOX, purposes=(REFERRAL,))], REFERRAL, "partner"),
    (
        POLICE_READER,
        [terms(POLICE, DETOX, purposes=(REFERRAL,))],
        DECONFLICT,
        "purpose_not_consented",
    ),
    # A partner that says no purpose reads nothing, whatever the consent (fail closed).
    (POLICE_READER, [terms(POLICE)], None, "no_purpose"),
    (POLICE_READER, [terms(POLICE, revoked=True)], DECONFLICT, "no_live_consent"),
    (POLICE_READER, [terms(POLICE, days=-1)], DECONFLICT, "no_live_consent"),
    (DETOX_READER, [terms(DETOX, days=-1)], "care_coordination", "no_live_consent"),
    (POLICE_READER, [], DECONFLICT, "no_live_consent"),
    # An older consent revoked, a newer one live: the live one counts.
    (
        POLICE_READER,
        [terms(POLICE, revoked=True, signed_days_ago=20), terms(POLICE, days=90)],
        DECONFLICT,
        "partner",
    ),
    # The newest signed consent expired or revoked: an older, broader one the person
    # replaced does not come back into force.
    (
        POLICE_READER,
        [terms(POLICE, DETOX, days=300, signed_days_ago=20), terms(DETOX, days=-1)],
        DECONFLICT,
        "no_live_consent",
    ),
    (
        POLICE_READER,
        [terms(POLICE, days=300, signed_days_ago=20), terms(DETOX, revoked=True)],
        DECONFLICT,
        "no_live_consent",
    ),
    # Signed again naming only the detox: the police named before see nothing any more (the
    # newest live consent is the one in force), and the detox sees it.
    (
        POLICE_READER,
        [terms(POLICE, DETOX, days=300, signed_days_ago=20), terms(DETOX, signed_days_ago=1)],
        DECONFLICT,
        "not_named",
    ),
    (
        DETOX_READER,
        [terms(POLICE, days=300, signed_days_ago=20), terms(DETOX, signed_days_ago=1)],
        "care_coordination",
        "partner",
    ),
    # Signed again without a purpose: the older consent's purpose is gone too.
    (
        POLICE_READER,
        [
            terms(POLICE, days=300, signed_days_ago=20, purposes=(DECONFLICT,)),
            terms(POLICE, signed_days_ago=1, purposes=("follow_up",)),
        ],
        DECONFLICT,
        "purpose_not_consented",
    ),
    # Revoked or expired, the provider keeps its own record.
    (Reader("peer", provider="wvsl"), [terms(POLICE, revoked=True)], None, "provider"),
]


@pytest.mark.parametrize(("reader", "consents", "purpose", "expected"), TABLE)
def test_who_may_read_a_person_for_what(
    reader: Reader, consents: list[ConsentTerms], purpose: str | None, expected: str
) -> None:
    decided = access.decide(reader, "wvsl", consents, NOW, purpose)
    assert (decided.as_ if isinstance(decided, Access) else decided.reason) == expected
    granted = access.access(reader, "wvsl", consents, NOW, purpose)
    assert (granted is not None) == (expected in ("provider", "partner"))
    if isinstance(decided, Access) and decided.as_ == "partner":
        assert decided.purpose == purpose


# --- the same rule through the API, with real keys, before and after revocation and expiry ---


async def _keys(client: httpx.AsyncClient, m: Met) -> dict[str, str]:
    async with m.db.sessionmaker() as session, session.begin():
        ben = await program.peer(session, "Ben", home=program.ST_ALBANS)
        cleo = await program.peer(session, "Cleo", provider_id="rp", counties=(program.CABELL,))
    db = m.db
    return {
        "the peer who met them": m.ana,
        "another peer of the provider": await make_key(db, "peer", f"peer:{ben.id}"),
        "the provider's admin": await make_key(db, "provider_admin", "provider:wvsl"),
        "a peer of another provider": await make_key(db, "peer", f"peer:{cleo.id}"),
        "another provider's admin": await make_key(db, "provider_admin", "provider:rp"),
        "a dispatcher": m.dispatcher,
        "a dispatcher of the police named": await make_key(
            db, "dispatcher", "agency:CHARLESTON PD"
        ),
        "a supervisor": m.supervisor,
        "an auditor": await make_key(db, "auditor"),
        "an admin": m.admin,
        "the police named": await make_key(db, "partner", "agency:CHARLESTON PD"),
        "police not named": await make_key(db, "partner", "agency:BLUEFIELD PD"),
        "the treatment provider named": await make_key(
            db, "partner", f"organization:{DETOX_ORG[0]}"
        ),
        "a QRT not named": await make_key(db, "partner", f"organization:{QRT_ORG[0]}"),
    }


PROVIDER = {"the peer who met them", "another peer of the provider", "the provider's admin"}
PARTNERS = {"the police named", "the treatment provider named"}


async def _reads(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    person: str,
    purpose: str = "care_coordination",
) -> dict[str, str]:
    """What each reader gets, reading for ``purpose``: provider / partner (the view), or
    refused."""
    seen = {}
    for who, key in keys.items():
        one = await client.get(f"/v1/people/{person}?purpose={purpose}", headers=auth(key))
        listed = await client.get(f"/v1/people?purpose={purpose}", headers=auth(key))
        in_list = listed.status_code == 200 and person in [p["id"] for p in listed.json()["items"]]
        if one.status_code == 200:
            assert in_list, who
            seen[who] = one.json()["view"]
        else:
            assert not in_list, who
            assert one.status_code in (403, 404), (who, one.status_code)
            assert one.headers["content-type"] == "application/problem+json"
            assert "Jo" not in one.text
            seen[who] = "refused"
    return seen


async def test_consent_decides_who_reads_a_person_before_and_after_revocation_and_expiry(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    recorded = await record_person(client, m.assignment, m.ana)
    assert recorded.status_code == 201, recorded.text
    person = recorded.json()["person"]["id"]
    keys = await _keys(client, m)

    live = await _reads(client, keys, person)
    assert live == {
        who: "provider" if who in PROVIDER else "partner" if who in PARTNERS else "refused"
        for who in keys
    }
    police = (
        await client.get(
            f"/v1/people/{person}?purpose=deconfliction", headers=auth(keys["the police named"])
        )
    ).json()
    assert police["name"] == "Jo Doe"
    assert police["contacts"] is None
    assert police["follow_ups"] is None
    assert [s["kind"] for s in police["consent"]["shares"]] == ["police"]  # not the others
    assert police["consent"]["signed_name"] is None

    # Expiry: the day after the consent's last day, partners read nothing more.
    real_clock = app.state.clock
    app.state.clock = lambda: real_clock() + timedelta(days=367)
    expired = await _reads(client, keys, person)
    assert expired == {who: "provider" if who in PROVIDER else "refused" for who in keys}
    app.state.clock = real_clock

    # Revocation: at once, for everyone it named; the provider keeps its record.
    revoked = await client.post(
        f"/v1/people/{person}/consent/revoke",
        headers=auth(m.ana),
        json={"reason": "asked on the follow-up call"},
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["consent"] is None
    assert revoked.json()["consents"][0]["state"] == "revoked"
    after = await _reads(client, keys, person)
    assert after == {who: "provider" if who in PROVIDER else "refused" for who in keys}
    again = await client.post(f"/v1/people/{person}/consent/revoke", headers=auth(m.ana))
    assert again.status_code == 409
    assert again.json()["type"].endswith("/consent-not-live")


async def test_a_partner_sees_only_the_fields_shared_and_finds_people_by_them(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    body = {
        "person": {"name": "Sam Roe", "contact": "304-555-1212"},
        "consent": consent(signed_name="Sam Roe", fields=["name", "county"]),
    }
    recorded = await client.post(
        f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana)
    )
    assert recorded.status_code == 201, recorded.text
    police = await make_key(m.db, "partner", "agency:CHARLESTON PD")
    found = await client.get("/v1/people?q=sam&purpose=deconfliction", headers=auth(police))
    assert [p["name"] for p in found.json()["items"]] == ["Sam Roe"]
    assert found.json()["items"][0]["contact"] is None
    assert found.json()["items"][0]["county"] == "Kanawha"
    # The phone is not shared: it is not searchable either.
    by_phone = await client.get("/v1/people?q=555-1212&purpose=deconfliction", headers=auth(police))
    assert by_phone.json()["items"] == []
    here = await client.get("/v1/people?county=Kanawha&purpose=deconfliction", headers=auth(police))
    assert [p["name"] for p in here.json()["items"]] == ["Sam Roe"]
    elsewhere = await client.get(
        "/v1/people?county=Cabell&purpose=deconfliction", headers=auth(police)
    )
    assert elsewhere.json()["items"] == []
    provider = await client.get("/v1/people?q=555-1212", headers=auth(m.ana))
    assert [p["name"] for p in provider.json()["items"]] == ["Sam Roe"]


async def test_without_consent_a_contact_keeps_nothing_that_identifies_anyone(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    refused = await client.post(
        f"/v1/assignments/{m.assignment}/contact",
        json={"person": {"name": "Jo Doe"}},
        headers=auth(m.ana),
    )
    assert refused.status_code == 422
    assert refused.json()["invalid-params"][0]["name"] == "consent"
    not_agreed = await record_person(client, m.assignment, m.ana)
    assert not_agreed.status_code == 201  # (the helper's consent is agreed)
    second = await met_on_a_call(
        client, m.db, m.source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    box_unchecked = await client.post(
        f"/v1/assignments/{second}/contact",
        json={"person": {"name": "Kim"}, "consent": consent(agreed=False)},
        headers=auth(m.ana),
    )
    assert box_unchecked.status_code == 422
    assert box_unchecked.json()["invalid-params"][0]["name"] == "consent.agreed"
    anonymous = await client.post(f"/v1/assignments/{second}/contact", json={}, headers=auth(m.ana))
    assert anonymous.status_code == 201, anonymous.text
    assert anonymous.json()["person"] is None
    assert anonymous.json()["contact"]["identified"] is False
    assert anonymous.json()["follow_ups"] == []
    async with m.db.sessionmaker() as session:
        contact = await session.get(Contact, uuid.UUID(anonymous.json()["contact"]["id"]))
        assert contact is not None
        assert contact.person_id is None
        assert await session.scalar(select(func.count()).select_from(Person)) == 1
    twice = await client.post(f"/v1/assignments/{second}/contact", json={}, headers=auth(m.ana))
    assert twice.status_code == 409
    assert twice.json()["type"].endswith("/contact-recorded")


async def test_only_the_peer_who_met_them_records_a_contact_once_met_on_a_call(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    for key in (m.supervisor, m.admin, m.dispatcher):
        refused = await client.post(
            f"/v1/assignments/{m.assignment}/contact", json={}, headers=auth(key)
        )
        assert refused.status_code in (403, 404), refused.text
    async with m.db.sessionmaker() as session, session.begin():
        call = await program.call(session, m.source.id)
    offer = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(m.dispatcher))
    early = await client.post(
        f"/v1/assignments/{offer.json()['id']}/contact", json={}, headers=auth(m.ana)
    )
    assert early.status_code == 409
    assert early.json()["type"].endswith("/not-met-yet")
    bad = await client.post(
        f"/v1/assignments/{m.assignment}/contact",
        json={"person": {"name": "x" * 101}, "consent": consent()},
        headers=auth(m.ana),
    )
    assert bad.status_code == 422
    assert bad.json()["invalid-params"][0]["name"] == "person.name"
    unknown = await client.post(
        f"/v1/assignments/{m.assignment}/contact",
        json={
            "person": {"name": "Al"},
            "consent": consent(shares=[{"to": "police", "agency": "NOWHERE PD"}]),
        },
        headers=auth(m.ana),
    )
    assert unknown.status_code == 422
    assert unknown.json()["invalid-params"][0]["name"] == "consent.shares.0.agency"
    too_long = await client.post(
        f"/v1/assignments/{m.assignment}/contact",
        json={"person": {"name": "Al"}, "consent": consent(expires_on="2099-01-01")},
        headers=auth(m.ana),
    )
    assert too_long.status_code == 422
    assert too_long.json()["invalid-params"][0]["name"] == "consent.expires_on"


async def test_the_same_person_met_again_is_never_merged_without_a_person_saying_so(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    first = await record_person(client, m.assignment, m.ana, name="Jo Doe")
    jo = first.json()["person"]["id"]

    again = await met_on_a_call(
        client, m.db, m.source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    # The same phone, the name spelled otherwise: the peer is asked, nothing is stored.
    asked = await record_person(client, again, m.ana, name="DOE, JO")
    assert asked.status_code == 409, asked.text
    assert asked.json()["type"].endswith("/possible-match")
    (candidate,) = asked.json()["candidates"]
    assert candidate["id"] == jo
    assert set(candidate["reasons"]) == {"same phone", "same name"}
    async with m.db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 1
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        # Showing the candidate is a read of them: it stays on the audit log.
        shown = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "person.match_shown")
        )
        assert shown == 1

    # "A different person": a record of their own, which may be merged later, by hand.
    other = await record_person(client, again, m.ana, name="DOE, JO", new_person=True)
    assert other.status_code == 201, other.text
    twin = other.json()["person"]["id"]
    assert twin != jo
    found = await client.get(f"/v1/people/{jo}/duplicates", headers=auth(m.ana))
    assert [d["id"] for d in found.json()["items"]] == [twin]
    unconfirmed = await client.post(
        f"/v1/people/{jo}/merge", json={"duplicate_id": twin, "confirm": False}, headers=auth(m.ana)
    )
    assert unconfirmed.status_code == 422
    merged = await client.post(
        f"/v1/people/{jo}/merge", json={"duplicate_id": twin, "confirm": True}, headers=auth(m.ana)
    )
    assert merged.status_code == 200, merged.text
    assert len(merged.json()["contacts"]) == 2
    assert len(merged.json()["consents"]) == 2
    # The duplicate now reads as the person kept.
    redirected = await client.get(f"/v1/people/{twin}", headers=auth(m.ana))
    assert redirected.json()["id"] == jo

    # "The same person": the next contact is theirs, with no new record.
    third = await met_on_a_call(
        client, m.db, m.source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    same = await client.post(
        f"/v1/assignments/{third}/contact", json={"same_as": jo}, headers=auth(m.ana)
    )
    assert same.status_code == 201, same.text
    assert same.json()["person"]["id"] == jo
    async with m.db.sessionmaker() as session:
        people = await session.scalar(
            select(func.count()).select_from(Person).where(Person.merged_into_id.is_(None))
        )
        assert people == 1


async def test_every_read_of_a_person_is_on_the_audit_log(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    person = (await record_person(client, m.assignment, m.ana)).json()["person"]["id"]
    police = await make_key(m.db, "partner", "agency:CHARLESTON PD")
    async with m.db.sessionmaker() as session:
        before = await session.scalar(select(func.count()).select_from(AuditEntry))
    await client.get(f"/v1/people/{person}?purpose=deconfliction", headers=auth(police))
    await client.get("/v1/people", headers=auth(m.ana))
    await client.get(f"/v1/people/{person}", headers=auth(m.dispatcher))  # refused
    async with m.db.sessionmaker() as session:
        entries = (
            await session.scalars(select(AuditEntry).order_by(AuditEntry.id).offset(before or 0))
        ).all()
    actions = [(e.action, e.record_id, e.role) for e in entries]
    assert ("person.read", person, "partner") in actions
    listed = next(e for e in entries if e.action == "person.list")
    assert person in listed.detail["ids"]
    assert ("read.refused", person, "dispatcher") in actions
    # The log names records, never what is in them.
    assert not any("Jo Doe" in str(e.detail) for e in entries)


async def test_referrals_point_at_the_directory_and_record_arrival(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    contact = (await record_person(client, m.assignment, m.ana)).json()["contact"]["id"]
    detox = m.services["svc-detox"]
    wrong_kind = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": detox, "kind": "mat"},
        headers=auth(m.ana),
    )
    assert wrong_kind.status_code == 422
    made = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": detox, "kind": "detox"},
        headers=auth(m.ana),
    )
    assert made.status_code == 201, made.text
    referral = made.json()
    assert referral["arrival"] == "pending"
    assert referral["organization"] == DETOX_ORG[1]
    arrived = await client.post(
        f"/v1/referrals/{referral['id']}/arrival", json={"arrived": True}, headers=auth(m.ana)
    )
    assert arrived.json()["arrival"] == "arrived"
    assert arrived.json()["arrival_by"].startswith("peer key")
    other = await client.post(
        f"/v1/referrals/{referral['id']}/arrival", json={"arrived": False}, headers=auth(m.ana)
    )
    assert other.status_code == 409
    strangers = await make_key(m.db, "provider_admin", "provider:rp")
    hidden = await client.get(f"/v1/contacts/{contact}", headers=auth(strangers))
    assert hidden.status_code == 404
    mine = await client.get(f"/v1/contacts/{contact}", headers=auth(m.ana))
    assert [r["arrival"] for r in mine.json()["referrals"]] == ["arrived"]


async def test_a_consent_runs_to_the_end_of_its_last_day_on_the_programs_clock(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    day = (datetime.now(UTC) + timedelta(days=10)).date()
    recorded = await client.post(
        f"/v1/assignments/{m.assignment}/contact",
        json={"person": {"name": "Lee"}, "consent": consent(expires_on=day.isoformat())},
        headers=auth(m.ana),
    )
    assert recorded.status_code == 201, recorded.text
    async with m.db.sessionmaker() as session:
        row = await session.scalar(select(Consent))
        assert row is not None
    from zoneinfo import ZoneInfo

    local = row.expires_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.date(), local.hour, local.minute) == (day + timedelta(days=1), 0, 0)


async def test_revocation_in_the_peer_app_stops_sharing_in_the_api_and_the_exports(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    recorded = await record_person(client, m.assignment, m.ana)
    person = recorded.json()["person"]["id"]
    police = await make_key(db, "partner", "agency:CHARLESTON PD")
    read = f"/v1/people/{person}?purpose=deconfliction"
    assert (await client.get(read, headers=auth(police))).status_code == 200

    # The peer's phone: the person's consent, and a button to take it back.
    link = await client.post(f"/v1/peers/{m.ana_id}/sign-in-links", headers=auth(m.admin))
    token = link.json()["url"].split("token=")[1]
    signed = await client.post("/peer/sign-in", data={"token": token})
    cookies = {"cookie": f"corespond_peer={signed.cookies['corespond_peer']}"}
    client.cookies.clear()
    data = (await client.get("/peer/data", headers=cookies)).json()
    (after,) = data["after"]
    assert after["contact"]["person"]["name"] == "Jo Doe"
    assert after["contact"]["person"]["consent"]["state"] == "live"
    assert [t["person_name"] for t in data["followups"]][:1] == ["Jo Doe"]
    revoked = await client.post(
        f"/peer/people/{person}/consent/revoke", headers=cookies, json={"reason": "asked"}
    )
    assert revoked.status_code == 200, revoked.text
    (after,) = revoked.json()["after"]
    assert after["contact"]["person"]["consent"] is None
    assert after["contact"]["person"]["revoked"] is True

    # The API: the police read nothing more (refused, and the refusal on the audit log),
    # list nothing, find nothing.
    refused = await client.get(read, headers=auth(police))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/consent-refused")
    assert "Jo" not in refused.text
    listed = await client.get("/v1/people?q=jo&purpose=deconfliction", headers=auth(police))
    assert listed.json()["items"] == []
    # Exports: the report counts the consent as revoked, and names nobody.
    supervisor_csv = await client.get(
        "/v1/reports/program", headers={**auth(m.supervisor), "accept": "text/csv"}
    )
    rows = list(csv.DictReader(io.StringIO(supervisor_csv.text)))
    assert (rows[0]["consents"], rows[0]["consents_revoked"]) == ("1", "1")
    assert "Jo Doe" not in supervisor_csv.text
    assert "304-555-7788" not in supervisor_csv.text


async def test_a_consent_must_say_what_may_be_shared(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    """No list of fields is not "everything": the consent is refused, nothing is stored."""
    m = await met(client, db, source)
    body = {"person": {"name": "Sam Roe"}, "consent": consent(signed_name="Sam Roe")}
    del body["consent"]["fields"]
    refused = await client.post(
        f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana)
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "consent.fields" in refused.text
    people = await client.get("/v1/people", headers=auth(m.ana))
    assert people.json()["items"] == []


# --- purposes: a partner reads for a purpose the consent names, or nothing -----------------


async def _audit(db: Database, action: str) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
                )
            ).all()
        )


async def test_a_partner_reads_a_person_only_for_a_purpose_their_consent_names(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    # Shared with Charleston PD and the detox for care coordination, follow-up and
    # deconfliction; not for treatment referral.
    person = (await record_person(client, m.assignment, m.ana)).json()["person"]["id"]
    police = await make_key(db, "partner", "agency:CHARLESTON PD")
    detox = await make_key(db, "partner", f"organization:{DETOX_ORG[0]}")
    bluefield = await make_key(db, "partner", "agency:BLUEFIELD PD")

    ok = await client.get(f"/v1/people/{person}?purpose=deconfliction", headers=auth(police))
    assert ok.status_code == 200, ok.text
    assert ok.json()["view"] == "partner"
    read = (await _audit(db, "person.read"))[-1]
    assert (read.role, read.detail["purpose"]) == ("partner", "deconfliction")

    # No purpose: nothing read, and the field named (before anything is looked up).
    for url in (f"/v1/people/{person}", "/v1/people", f"/v1/people/{uuid.uuid4()}"):
        unsaid = await client.get(url, headers=auth(police))
        assert unsaid.status_code == 422, (url, unsaid.text)
        assert unsaid.headers["content-type"] == "application/problem+json"
        assert unsaid.json()["invalid-params"][0]["name"] == "query.purpose"

    # A purpose the consent does not name, and a partner it does not name: 403, the same
    # words for both, nothing of the person; the reason only on the audit log.
    for key, purpose, reason in (
        (detox, "treatment_referral", "purpose_not_consented"),
        (police, "treatment_referral", "purpose_not_consented"),
        (bluefield, "deconfliction", "not_named"),
    ):
        refused = await client.get(f"/v1/people/{person}?purpose={purpose}", headers=auth(key))
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/consent-refused")
        assert "Jo" not in refused.text
        assert "304" not in refused.text
        entry = (await _audit(db, "person.read_refused"))[-1]
        assert (entry.record_id, entry.role) == (person, "partner")
        assert entry.detail["purpose"] == purpose
        assert entry.detail["reason"] == reason
        listed = await client.get(f"/v1/people?purpose={purpose}", headers=auth(key))
        assert listed.status_code == 200
        assert listed.json()["items"] == []
    # A person who does not exist is not found, as ever.
    missing = await client.get(
        f"/v1/people/{uuid.uuid4()}?purpose=deconfliction", headers=auth(police)
    )
    assert missing.status_code == 404
    # The provider reads its own record without saying why (it is the program's record).
    assert (await client.get(f"/v1/people/{person}", headers=auth(m.ana))).status_code == 200

    # Signed again, for treatment referral only: the detox reads for it, the police no
    # longer read to deconflict.
    again = await client.post(
        f"/v1/people/{person}/consents",
        json=consent(purposes=["treatment_referral"]),
        headers=auth(m.ana),
    )
    assert again.status_code == 201, again.text
    taken = await client.get(f"/v1/people/{person}?purpose=treatment_referral", headers=auth(detox))
    assert taken.status_code == 200, taken.text
    assert taken.json()["consent"]["purposes"] == ["treatment_referral"]
    gone = await client.get(f"/v1/people/{person}?purpose=deconfliction", headers=auth(police))
    assert gone.status_code == 403


async def test_a_referral_carries_the_person_only_where_the_consent_allows_and_revocation_ends_it(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    body = {
        "person": {"name": "Jo Doe", "contact": "304-555-7788"},
        "consent": consent(purposes=["treatment_referral", "follow_up"]),
    }
    recorded = await client.post(
        f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana)
    )
    assert recorded.status_code == 201, recorded.text
    person = recorded.json()["person"]["id"]
    contact = recorded.json()["contact"]["id"]

    # The detox is named for treatment referral: the referral carries who is coming.
    detox = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": m.services["svc-detox"], "kind": "detox"},
        headers=auth(m.ana),
    )
    assert detox.status_code == 201, detox.text
    assert detox.json()["shared_with_organization"] is True
    # The recovery residence is not named: the referral is made, naming nobody to it.
    housing = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": m.services["svc-rp-housing"], "kind": "recovery_housing"},
        headers=auth(m.ana),
    )
    assert housing.status_code == 201, housing.text
    assert housing.json()["shared_with_organization"] is False
    made = {e.record_id: e.detail for e in await _audit(db, "referral.create")}
    assert made[detox.json()["id"]]["shared"] is True
    assert made[housing.json()["id"]]["shared"] is False

    revoked = await client.post(f"/v1/people/{person}/consent/revoke", headers=auth(m.ana))
    assert revoked.status_code == 200, revoked.text
    (contact_out,) = revoked.json()["contacts"]
    by_id = {r["id"]: r for r in contact_out["referrals"]}
    ended = by_id[detox.json()["id"]]
    assert ended["shared_with_organization"] is False
    assert ended["share_ended_at"] is not None
    assert ended["arrival"] == "pending"  # the referral stands, naming nobody to them
    assert by_id[housing.json()["id"]]["share_ended_at"] is None  # it never shared
    (entry,) = await _audit(db, "referral.share_ended")
    assert entry.record_id == detox.json()["id"]
    assert entry.detail["organization"] == DETOX_ORG[0]
    assert entry.detail["why"] == "consent revoked"
    # The detox's key reads nothing more, for any purpose.
    key = await make_key(db, "partner", f"organization:{DETOX_ORG[0]}")
    after = await client.get(f"/v1/people/{person}?purpose=treatment_referral", headers=auth(key))
    assert after.status_code == 403


# --- deconfliction in the database: indexed keys, bounded, the same rule ------------------

NAMES = [
    "Jo Doe", "DOE, JO", "Joanna Doe", "J. Doe", "Jo  Doé", "John Doe", "Mary O'Brien",
    "O\u2019Brien, Mary", "M OBrien", "Sam Roe", "Sam", "Roe Sam", "Ann Lee", "A Lee",
]  # fmt: skip
PHONES = [None, "304-555-7788", "(304) 555 7788", "+1 304 555 7788", "555-0001", "12", "n/a"]
COUNTIES = ["54039", "54011"]


async def _people(db: Database, rows: list[tuple[str, str | None, str, str]]) -> list[Person]:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {program.CABELL: "primary"})
        made = []
        for i, (name, contact, county, provider) in enumerate(rows):
            person = Person(
                provider_id=provider,
                name=name,
                contact=contact,
                county_fips=county,
                created_at=NOW - timedelta(minutes=i),
            )
            session.add(person)
            made.append(person)
    return made


async def test_possible_matches_are_found_by_the_database_as_the_rule_says(db: Database) -> None:
    """Every name, phone and county against every other: what the indexed query finds is
    what comparing each pair by the rule finds (newest first, at most ten)."""
    rows = [
        (name, PHONES[i % len(PHONES)], COUNTIES[i % 2], "wvsl" if i % 5 else "rp")
        for i, name in enumerate(NAMES * 2)
    ]
    made = await _people(db, rows)
    merged = made[1]
    async with db.sessionmaker() as session, session.begin():
        row = await session.get(Person, merged.id)
        assert row is not None
        row.merged_into_id = made[0].id  # merged away: never a candidate again
    for name in NAMES:
        for phone in PHONES:
            for county in COUNTIES:
                identity = Identity(name, phone, county)
                expected = [
                    p
                    for p in made
                    if p.provider_id == "wvsl"
                    and p is not merged
                    and match_reasons(identity, Identity(p.name, p.contact, p.county_fips))
                ][:10]
                async with db.sessionmaker() as session:
                    found = await people_service.possible_matches(session, "wvsl", identity)
                assert [f["id"] for f in found] == [str(p.id) for p in expected], identity
                for f, p in zip(found, expected, strict=True):
                    assert f["reasons"] == match_reasons(
                        identity, Identity(p.name, p.contact, p.county_fips)
                    )


async def test_possible_matches_are_bounded_and_read_through_the_indexes(
    committed_db: Database, test_server: PgServer
) -> None:
    # Many of the provider's people, most of them nobody like Jo; thirty with Jo's phone.
    db = committed_db
    rows = [(f"Person {i:04d}", f"304-555-{i:04d}", "54039", "wvsl") for i in range(1, 2000)]
    rows += [("Jo Doe", "304-555-7788", "54039", "wvsl")] * 30
    await _people(db, rows)
    async with test_server.owner_of(db) as owner, owner.engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE person")
        await connection.commit()
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "match_phone" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sync_engine = db.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        async with db.sessionmaker() as session:
            found = await people_service.possible_matches(
                session, "wvsl", Identity("DOE, JO", "+1 (304) 555-7788", "54039")
            )
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    assert len(found) == 10
    assert all(f["name"] == "Jo Doe" for f in found)
    (statement, parameters) = statements[-1]
    assert "LIMIT" in statement.upper()
    # The planner answers it from the match indexes, not by reading the provider's people.
    async with db.sessionmaker() as session:
        connection = await session.connection()
        plan = "\n".join(
            row[0]
            for row in (await connection.exec_driver_sql("EXPLAIN " + statement, parameters)).all()
        )
    assert "ix_person_match_phone" in plan, plan
    assert "ix_person_match_name" in plan, plan
    assert "ix_person_match_initial_last" in plan, plan
    assert "Seq Scan on person" not in plan, plan


def test_a_phone_a_name_or_an_initial_and_last_name_is_what_a_match_rests_on() -> None:
    jo = Identity("Jo Doe", "304-555-7788", "54039")
    assert match_reasons(jo, Identity("DOE, JO", None, "54011")) == ["same name"]
    assert match_reasons(jo, Identity("Jody Smith", "+1 304.555.7788", None)) == ["same phone"]
    assert match_reasons(jo, Identity("J. Doe", None, "54039")) == [
        "same initial and last name, same county"
    ]
    assert match_reasons(jo, Identity("J. Doe", None, "54011")) == []
    assert match_reasons(jo, Identity("Jo", "555-0001", "54039")) == []
    keys = keys_of(Identity("  O\u2019Brien, Mary ", "(304) 555 7788", None))
    assert keys == MatchKeys(phone="3045557788", name="mary obrien", initial_last="m obrien")


async def test_a_referral_made_while_the_consent_is_revoked_is_never_left_shared(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    """Revocation and a referral at the same moment, on real commits: the referral waits
    for the revocation (or the revocation for it, and ends its sharing); either way nothing
    is left shared with an organization the person no longer consents to."""
    db = committed_db
    source = await make_source(db, box)
    app = create_app(settings, database=db)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            m = await met(client, db, source)
            body = {
                "person": {"name": "Jo Doe"},
                "consent": consent(purposes=["treatment_referral"]),
            }
            recorded = await client.post(
                f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana)
            )
            assert recorded.status_code == 201, recorded.text
            person = uuid.UUID(recorded.json()["person"]["id"])
            contact = recorded.json()["contact"]["id"]
            async with db.sessionmaker() as session:
                principal = await authenticate(session, m.ana, datetime.now(UTC))

            # The revocation holds its locks, not committed yet.
            revoking = db.sessionmaker()
            async with revoking.begin():
                await aftercall.revoke_consent(
                    revoking, principal, person, datetime.now(UTC), "asked"
                )
                referral = asyncio.create_task(
                    client.post(
                        f"/v1/contacts/{contact}/referrals",
                        json={"service_id": m.services["svc-detox"], "kind": "detox"},
                        headers=auth(m.ana),
                    )
                )
                await asyncio.sleep(0.5)
                assert not referral.done()  # it waits for the revocation
            await revoking.close()
            made = await referral
            assert made.status_code == 201, made.text
            assert made.json()["shared_with_organization"] is False
