"""After the call, the holes a review found closed: a replaced consent never comes back,
revocation covers the person across duplicates and merges, a share stays with the
organization the consent named, expiry stops sharing at once, and every read of a person
is on the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from corespond import aftercall
from corespond.audit.models import AuditEntry
from corespond.db import Database
from tests.aftercall import (
    DETOX_ORG,
    DIRECTORY,
    QRT_ORG,
    auth,
    consent,
    hsds_service,
    met,
    met_on_a_call,
    record_person,
)
from tests.conftest import Source, make_key

OTHER_ORG = ("org-someone-else", "An organization the person never named")


async def test_a_replaced_consent_does_not_come_back_when_its_replacement_expires(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    recorded = await record_person(client, m.assignment, m.ana)
    assert recorded.status_code == 201, recorded.text
    person = recorded.json()["person"]["id"]
    police = await make_key(db, "partner", "agency:CHARLESTON PD")
    read = f"/v1/people/{person}?purpose=deconfliction"
    assert (await client.get(read, headers=auth(police))).status_code == 200

    # Signed again: only the detox, for a week. The police are no longer named.
    week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    narrower = consent(shares=[{"to": "treatment", "organization": DETOX_ORG[0]}], expires_on=week)
    signed = await client.post(f"/v1/people/{person}/consents", json=narrower, headers=auth(m.ana))
    assert signed.status_code == 201, signed.text
    assert (await client.get(read, headers=auth(police))).status_code == 403

    # Ten days later the narrower consent has run out: nothing is shared with anyone, and
    # the older, broader consent the person replaced stays replaced.
    real = app.state.clock
    app.state.clock = lambda: real() + timedelta(days=10)
    try:
        again = await client.get(read, headers=auth(police))
        listed = await client.get("/v1/people?purpose=deconfliction", headers=auth(police))
        record = (await client.get(f"/v1/people/{person}", headers=auth(m.ana))).json()
    finally:
        app.state.clock = real
    assert again.status_code == 403, again.text
    assert "Jo Doe" not in again.text
    assert person not in [p["id"] for p in listed.json()["items"]]
    assert record["consent"] is None  # the provider is shown no consent in force


async def _last_entry(db: Database) -> int:
    async with db.sessionmaker() as session:
        found = await session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))
        return int(found or 0)


async def _entries_after(db: Database, last: int) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(AuditEntry).where(AuditEntry.id > last))).all())


async def test_every_answer_that_shows_a_person_is_on_the_audit_log(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    recorded = await record_person(client, m.assignment, m.ana)
    person = recorded.json()["person"]["id"]
    contact = recorded.json()["contact"]["id"]
    refer = {"service_id": m.services["svc-detox"], "kind": "detox"}
    referral = await client.post(
        f"/v1/contacts/{contact}/referrals", json=refer, headers=auth(m.ana)
    )
    assert referral.status_code == 201, referral.text
    admin = await make_key(db, "provider_admin", "provider:wvsl")

    # The contact: whom it met, the referrals made for them.
    last = await _last_entry(db)
    read = await client.get(f"/v1/contacts/{contact}", headers=auth(admin))
    assert read.status_code == 200
    assert read.json()["person_id"] == person
    entries = await _entries_after(db, last)
    assert ("person.read", person) in [(e.action, e.record_id) for e in entries]
    assert ("contact.read", contact) in [(e.action, e.record_id) for e in entries]

    # A follow-up answered with the person's name, assigned and its outcome recorded.
    tasks = (await client.get(f"/v1/people/{person}", headers=auth(m.ana))).json()["follow_ups"]
    for path, body in (
        ("assign", {"peer_id": None}),
        ("outcome", {"outcome": "reached"}),
    ):
        last = await _last_entry(db)
        answer = await client.post(
            f"/v1/followups/{tasks[0]['id']}/{path}", json=body, headers=auth(admin)
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["person_name"] == "Jo Doe"
        entries = await _entries_after(db, last)
        assert ("person.read", person) in [(e.action, e.record_id) for e in entries], path

    # The same referral again: answered with the first, and the read is on the log.
    last = await _last_entry(db)
    again = await client.post(f"/v1/contacts/{contact}/referrals", json=refer, headers=auth(m.ana))
    assert again.json()["id"] == referral.json()["id"]
    entries = await _entries_after(db, last)
    assert ("referral.read", referral.json()["id"]) in [(e.action, e.record_id) for e in entries]


async def test_a_revocation_covers_the_records_that_may_be_the_same_person(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    jo = (await record_person(client, m.assignment, m.ana, name="Jo Doe")).json()["person"]["id"]
    again = await met_on_a_call(
        client, m.db, m.source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    twin = await record_person(client, again, m.ana, name="DOE, JO", new_person=True)
    assert twin.status_code == 201, twin.text
    twin_id = twin.json()["person"]["id"]
    shown = await client.get(f"/v1/people/{jo}/duplicates", headers=auth(m.ana))
    assert [d["id"] for d in shown.json()["items"]] == [twin_id]

    police = await make_key(db, "partner", "agency:CHARLESTON PD")
    revoked = await client.post(
        f"/v1/people/{jo}/consent/revoke", headers=auth(m.ana), json={"reason": "asked"}
    )
    assert revoked.status_code == 200, revoked.text
    # Nothing more is shared through either record of the person.
    for person in (jo, twin_id):
        read = await client.get(f"/v1/people/{person}?purpose=deconfliction", headers=auth(police))
        assert read.status_code == 403, (person, read.text)
        assert "304-555-7788" not in read.text
    twin_record = (await client.get(f"/v1/people/{twin_id}", headers=auth(m.ana))).json()
    assert twin_record["consent"] is None
    assert twin_record["consents"][0]["state"] == "revoked"
    async with db.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "consent.revoke")
        )
    assert entry is not None
    assert entry.detail["duplicates"] == [twin_id]


async def test_a_merge_does_not_bring_back_sharing_a_revocation_stopped(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    jo = (await record_person(client, m.assignment, m.ana, name="Jo Doe")).json()["person"]["id"]
    # A record of the same person nothing links to the first (another name, another phone):
    # the revocation cannot know it.
    again = await met_on_a_call(
        client, m.db, m.source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    other = await record_person(
        client, again, m.ana, name="Johnny Dee", contact="304-555-0001", new_person=True
    )
    assert other.status_code == 201, other.text
    other_id = other.json()["person"]["id"]

    police = await make_key(db, "partner", "agency:CHARLESTON PD")
    read = f"/v1/people/{jo}?purpose=deconfliction"
    revoked = await client.post(
        f"/v1/people/{jo}/consent/revoke", headers=auth(m.ana), json={"reason": "asked"}
    )
    assert revoked.status_code == 200, revoked.text
    assert (await client.get(read, headers=auth(police))).status_code == 403

    # The person confirms both records are them: merged, the other record's consent,
    # signed before the revocation, is revoked with it.
    merged = await client.post(
        f"/v1/people/{jo}/merge",
        json={"duplicate_id": other_id, "confirm": True},
        headers=auth(m.ana),
    )
    assert merged.status_code == 200, merged.text
    back = await client.get(read, headers=auth(police))
    assert back.status_code == 403, back.text
    assert "Johnny" not in back.text
    assert "304-555" not in back.text
    record = (await client.get(f"/v1/people/{jo}", headers=auth(m.ana))).json()
    assert record["consent"] is None
    assert {c["state"] for c in record["consents"]} == {"revoked"}

    # A consent the person signs after that is theirs to give: it stands.
    signed = await client.post(f"/v1/people/{jo}/consents", json=consent(), headers=auth(m.ana))
    assert signed.status_code == 201, signed.text
    assert (await client.get(read, headers=auth(police))).status_code == 200


async def test_a_share_stays_with_the_organization_the_consent_named(
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
    contact = recorded.json()["contact"]["id"]
    detox = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": m.services["svc-detox"], "kind": "detox"},
        headers=auth(m.ana),
    )
    assert detox.json()["shared_with_organization"] is True

    # The directory is imported again: the detox service belongs to another organization.
    moved = [
        hsds_service("svc-detox", "Medically managed withdrawal", OTHER_ORG, ["detoxification"]),
        *DIRECTORY[1:],
    ]
    imported = await client.post(
        "/v1/directory/import",
        content=json.dumps(moved),
        headers={**auth(m.supervisor), "content-type": "application/json"},
    )
    assert imported.status_code == 200, imported.text

    shown = (await client.get(f"/v1/contacts/{contact}", headers=auth(m.ana))).json()
    (referral,) = shown["referrals"]
    assert referral["organization"] == OTHER_ORG[1]
    assert referral["shared_with_organization"] is False  # never with one it did not name
    assert referral["share_ended_at"] is not None
    async with db.sessionmaker() as session:
        ended = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "referral.share_ended",
                AuditEntry.record_id == referral["id"],
            )
        )
    assert ended is not None
    assert ended.detail["organization"] == DETOX_ORG[0]
    assert OTHER_ORG[0] in ended.detail["why"]


async def test_expiry_stops_a_team_visit_and_a_referral_share_at_once(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    body = {
        "person": {"name": "Jo Doe", "contact": "304-555-7788"},
        "consent": consent(
            shares=[
                {"to": "qrt", "organization": QRT_ORG[0]},
                {"to": "treatment", "organization": DETOX_ORG[0]},
            ],
            purposes=["follow_up", "treatment_referral"],
            expires_on=tomorrow,
        ),
    }
    recorded = await client.post(
        f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana)
    )
    assert recorded.status_code == 201, recorded.text
    person = recorded.json()["person"]["id"]
    contact = recorded.json()["contact"]["id"]
    due = (datetime.now(UTC) + timedelta(days=4)).isoformat()
    visit = await client.post(
        f"/v1/people/{person}/followups",
        json={"kind": "qrt_visit", "due_at": due, "organization_id": QRT_ORG[0]},
        headers=auth(m.ana),
    )
    assert visit.status_code == 201, visit.text
    detox = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": m.services["svc-detox"], "kind": "detox"},
        headers=auth(m.ana),
    )
    assert detox.json()["shared_with_organization"] is True

    real = app.state.clock
    app.state.clock = lambda: real() + timedelta(days=3)  # the consent ran out a day ago
    try:
        queue = await client.get(f"/v1/followups?person={person}", headers=auth(m.ana))
        record = (await client.get(f"/v1/people/{person}", headers=auth(m.ana))).json()
        shown = (await client.get(f"/v1/contacts/{contact}", headers=auth(m.ana))).json()
    finally:
        app.state.clock = real
    # No daily pass has run: the reads decide on their own.
    assert record["consent"] is None
    assert visit.json()["id"] not in [t["id"] for t in queue.json()["items"]]
    assert visit.json()["id"] not in [t["id"] for t in record["follow_ups"]]
    assert [r["shared_with_organization"] for r in shown["referrals"]] == [False]


async def test_the_daily_pass_ends_only_what_expired_and_pages_through_all_of_it(
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
    person = recorded.json()["person"]["id"]
    contact = recorded.json()["contact"]["id"]
    detox = await client.post(
        f"/v1/contacts/{contact}/referrals",
        json={"service_id": m.services["svc-detox"], "kind": "detox"},
        headers=auth(m.ana),
    )
    assert detox.json()["shared_with_organization"] is True
    # Still valid: the pass leaves it; a page of one person still reaches the end.
    async with db.sessionmaker() as session, session.begin():
        assert await aftercall.stop_expired_sharing(session, datetime.now(UTC), page=1) == 0
    # A year and a day later it has run out: the pass ends it, paging one person at a time.
    later = datetime.now(UTC) + timedelta(days=400)
    async with db.sessionmaker() as session, session.begin():
        assert await aftercall.stop_expired_sharing(session, later, page=1) == 1
    async with db.sessionmaker() as session:
        ended = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "referral.share_ended")
            )
        ).all()
    assert [e.detail["person_id"] for e in ended] == [person]
