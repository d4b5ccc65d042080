"""After the call, the holes a review found closed: a replaced consent never comes back,
revocation covers the person across duplicates and merges, a share stays with the
organization the consent named, expiry stops sharing at once, and every read of a person
is on the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from corespond.audit.models import AuditEntry
from corespond.db import Database
from tests.aftercall import DETOX_ORG, auth, consent, met, record_person
from tests.conftest import Source, make_key


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
