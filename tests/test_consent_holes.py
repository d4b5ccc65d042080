"""After the call, the holes a review found closed: a replaced consent never comes back,
revocation covers the person across duplicates and merges, a share stays with the
organization the consent named, expiry stops sharing at once, and every read of a person
is on the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

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
