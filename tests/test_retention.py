"""Retention on a controllable clock: what is purged, what stays, the dry run."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select, update

from corespond.app import create_app
from corespond.assignments.models import Assignment, PeerRequest
from corespond.audit.models import AuditEntry
from corespond.background import Background
from corespond.calls.models import Call
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.geo.service import geography_for
from corespond.ingest.models import CadEvent
from corespond.people.models import Consent, Person, Referral
from corespond.pipeline.flow import process_pending
from corespond.retention.jobs import RetentionJob
from corespond.retention.service import purge
from corespond.triage.models import TriageDecisionRecord
from corespond.triage.ruleset import load_rules
from corespond.triage.service import RuleBook
from tests import program
from tests.aftercall import auth, consent, met, met_on_a_call
from tests.conftest import Source, make_key, make_source
from tests.helpers import cad_event, encode, signed_headers
from tests.test_calls_api import bearer


async def test_narratives_are_purged_after_retention_and_outcomes_kept(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    body = encode(cad_event("r1", narrative="SUBJ SAYS HE USED FENTANYL, REVIVED, NO WEAPONS"))
    posted = await client.post(
        f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
    )
    assert posted.status_code == 202
    closed = encode(cad_event("r2", "call.closed", "2026-11-23T05:00:00-05:00"))
    await client.post(
        f"/v1/cad/{source.id}/events", content=closed, headers=signed_headers(source.secret, closed)
    )
    async with db.sessionmaker() as session, session.begin():
        await process_pending(session, 100, load_rules(), now=datetime.now(UTC))
    ended = datetime(2026, 11, 23, 10, tzinfo=UTC)

    async with db.sessionmaker() as session, session.begin():
        early = await purge(session, ended + timedelta(days=29), timedelta(days=30))
        assert early.calls == 0
        dry = await purge(session, ended + timedelta(days=31), timedelta(days=30), dry_run=True)
        assert dry.calls == 1
        call = await session.scalar(select(Call))
        assert call is not None
        assert "FENTANYL" in (call.narrative or "")
        assert call.located_lat is not None

    async with db.sessionmaker() as session, session.begin():
        done = await purge(session, ended + timedelta(days=31), timedelta(days=30))
        assert done.calls == 1
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call))
        assert call is not None
        assert call.purged_at is not None
        assert "FENTANYL" not in (call.narrative or "")
        assert call.narrative
        assert call.narrative.startswith("[purged")
        assert call.decision_summary
        assert call.decision_summary in call.narrative
        assert (call.address, call.lat, call.lon) == (None, None, None)
        assert (call.located_lat, call.located_lon) == (None, None)  # where it was placed
        assert call.county_fips == "54039"  # the county stays
        assert call.county_detail is None  # which quoted the coordinates
        for event in await session.scalars(select(CadEvent)):
            assert "narrative" not in event.payload["call"]
            assert "location" not in event.payload["call"]
        for record in await session.scalars(select(TriageDecisionRecord)):
            assert all("detail" not in r for r in record.reasons)
            assert "FENTANYL" not in record.summary
    async with db.sessionmaker() as session, session.begin():
        again = await purge(session, ended + timedelta(days=40), timedelta(days=30))
        assert again.calls == 0  # once

    # A late event brings text back: the call is purged again (and may be re-triaged).
    # (The purge above ran on a clock 31 days ahead; put it back in real time first.)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Call).values(purged_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    late = encode(
        cad_event("r3", "call.updated", "2026-11-23T05:30:00-05:00", narrative="SUBJ ON FENTANYL")
    )
    await client.post(
        f"/v1/cad/{source.id}/events", content=late, headers=signed_headers(source.secret, late)
    )
    async with db.sessionmaker() as session, session.begin():
        await process_pending(session, 100, load_rules(), now=datetime.now(UTC))
    async with db.sessionmaker() as session, session.begin():
        refilled = await purge(session, datetime.now(UTC) + timedelta(days=400), timedelta(days=30))
        assert refilled.calls == 1
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call))
        assert call is not None
        assert "FENTANYL" not in (call.narrative or "")


async def test_the_worker_alone_purges_when_the_api_runs_without_one(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    """The scale-out: `serve` with CORESPOND_WORKER_ENABLED=false and a separate `corespond
    worker`. The API process runs no job but the rule reload; the worker runs every job,
    retention included, and a narrative past the retention period is purged by it."""
    source = await make_source(committed_db, box)
    api = create_app(settings.model_copy(update={"worker_enabled": False}), database=committed_db)
    async with LifespanManager(api):
        assert [job.id for job in api.state.scheduler.get_jobs()] == ["triage-rules-reload"]
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for document in (
                cad_event("r1", narrative="SUBJ SAYS HE USED FENTANYL, REVIVED, NO WEAPONS"),
                cad_event("r2", "call.closed", "2026-11-23T05:00:00-05:00"),
            ):
                body = encode(document)
                url = f"/v1/cad/{source.id}/events"
                headers = signed_headers(source.secret, body)
                assert (await client.post(url, content=body, headers=headers)).status_code == 202

    http = httpx.AsyncClient()
    worker = Background.build(
        settings,
        committed_db,
        http,
        box,
        RuleBook(),
        geography_for(),
        lambda: datetime(2027, 1, 1, tzinfo=UTC),  # long past the 30 days
    )
    await worker.start(jobs=True)
    try:
        assert {job.id for job in worker.scheduler.get_jobs()} >= {
            "cad-event-sweep",
            "assignment-timers",
            "dispatch-relay",
            "retention",
            "triage-rules-reload",
        }
        worker.scheduler.modify_job("retention", next_run_time=datetime.now(UTC))
        for _ in range(100):
            async with committed_db.sessionmaker() as session:
                call = await session.scalar(select(Call))
            if call is not None and call.purged_at is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
        await http.aclose()
    assert call is not None
    assert call.purged_at is not None
    assert "FENTANYL" not in (call.narrative or "")


async def test_a_purged_call_reads_as_purged_with_its_outcome(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    for document in (
        cad_event("p1", narrative="SUBJ SAYS HE USED FENTANYL, REVIVED, NO WEAPONS"),
        cad_event("p2", "call.closed", "2026-11-23T05:00:00-05:00"),
    ):
        body = encode(document)
        posted = await client.post(
            f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
        )
        assert posted.status_code == 202
    async with db.sessionmaker() as session, session.begin():
        await process_pending(session, 100, load_rules(), now=datetime.now(UTC))
        call = await session.scalar(select(Call))
        assert call is not None
        await program.provider(session)
        peer = await program.peer(session, "Jordan Miller")
        request = PeerRequest(call_id=call.id, trigger="dispatcher", requested_by="test")
        session.add(request)
        await session.flush()
        session.add(
            Assignment(
                request_id=request.id,
                call_id=call.id,
                peer_id=peer.id,
                provider_id="wvsl",
                status="cleared",
                accepted_at=datetime(2026, 11, 23, 9, 20, tzinfo=UTC),
                ended_at=datetime(2026, 11, 23, 10, tzinfo=UTC),
                outcome="referred",
                referrals=["mat"],
            )
        )
    async with db.sessionmaker() as session, session.begin():
        done = await purge(session, datetime(2027, 1, 1, tzinfo=UTC), timedelta(days=30))
        assert done.calls == 1

    supervisor = await make_key(db, "supervisor")
    response = await client.get(f"/v1/calls/{call.id}", headers=bearer(supervisor))
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["purged_at"] == "2027-01-01T00:00:00Z"
    assert shown["narrative"] is None
    assert shown["location"] == {"address": None, "city": None, "lat": None, "lon": None}
    assert (shown["county"]["fips"], shown["county"]["detail"]) == ("54039", None)
    assert (shown["decision"], shown["status"]) == ("eligible", "closed")
    assert "FENTANYL" not in response.text
    assert shown["triage"]
    assert all(reason["detail"] is None for t in shown["triage"] for reason in t["reasons"])
    assert (shown["assignment"]["outcome"], shown["assignment"]["referrals"]) == (
        "referred",
        ["mat"],
    )
    listed = (await client.get("/v1/calls", headers=bearer(supervisor))).json()["items"]
    assert [(c["narrative"], c["purged_at"]) for c in listed] == [(None, shown["purged_at"])]

    dispatcher = await make_key(db, "dispatcher")
    seen = (await client.get(f"/v1/calls/{call.id}", headers=bearer(dispatcher))).json()
    assert seen["narrative"] is None
    assert seen["assignment"]["outcome"] is None  # outcomes are never for dispatch


async def test_people_without_a_live_consent_inactive_past_retention_are_deidentified(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    """Al: consent run out, nothing done for over a year after it: de-identified. Bea:
    consent run out, but a follow-up done since: kept. Cy: signed again, live: kept. The
    program's figures do not change; the audit log names ids, not names."""
    m = await met(client, db, source)
    real = app.state.clock

    async def person_on_a_new_call(name: str, phone: str, **consent_fields: Any) -> str:
        assignment = await met_on_a_call(
            client, db, source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
        )
        body = {
            "person": {"name": name, "contact": phone},
            "consent": consent(signed_name=name, **consent_fields),
        }
        recorded = await client.post(
            f"/v1/assignments/{assignment}/contact", json=body, headers=auth(m.ana)
        )
        assert recorded.status_code == 201, recorded.text
        return str(recorded.json()["person"]["id"])

    al = await person_on_a_new_call(
        "Al Ames", "304-555-0101", purposes=["treatment_referral", "follow_up"]
    )
    bea = await person_on_a_new_call("Bea Boone", "304-555-0102")
    cy = await person_on_a_new_call("Cy Cole", "304-555-0103")
    al_contact = (await client.get(f"/v1/people/{al}", headers=auth(m.ana))).json()["contacts"][0]
    shared = await client.post(
        f"/v1/contacts/{al_contact['id']}/referrals",
        json={"service_id": m.services["svc-detox"], "kind": "detox"},
        headers=auth(m.ana),
    )
    assert shared.json()["shared_with_organization"] is True

    # 500 days on, Bea's peer reaches her; at 700, Cy signs again (live another year).
    app.state.clock = lambda: real() + timedelta(days=500)
    bea_tasks = (await client.get(f"/v1/people/{bea}", headers=auth(m.ana))).json()["follow_ups"]
    reached = await client.post(
        f"/v1/followups/{bea_tasks[0]['id']}/outcome",
        json={"outcome": "reached"},
        headers=auth(m.ana),
    )
    assert reached.status_code == 200, reached.text
    app.state.clock = lambda: real() + timedelta(days=700)
    again = await client.post(
        f"/v1/people/{cy}/consents", json=consent(signed_name="Cy Cole"), headers=auth(m.ana)
    )
    assert again.status_code == 201, again.text
    app.state.clock = real

    supervisor = await make_key(db, "supervisor")
    year = f"/v1/reports/program?year={datetime.now(UTC).year}"
    before = (await client.get(year, headers=bearer(supervisor))).json()["after"]

    later = datetime.now(UTC) + timedelta(days=366 + 365 + 5)
    keep = timedelta(days=30)
    async with db.sessionmaker() as session, session.begin():
        dry = await purge(session, later, keep, person_retention=timedelta(days=365), dry_run=True)
        assert dry.people == 1
    async with db.sessionmaker() as session:
        untouched = await session.get(Person, uuid.UUID(al))
        assert untouched is not None
        assert (untouched.name, untouched.deidentified_at) == ("Al Ames", None)
    # The daily job, as the worker runs it.
    await RetentionJob(db, 30, lambda: later, person_days=365).run()

    async with db.sessionmaker() as session:
        rows = {
            str(p.id): p
            for p in (await session.scalars(select(Person))).all()
            if str(p.id) in (al, bea, cy)
        }
        gone = rows[al]
        assert gone.deidentified_at == later
        assert (gone.name, gone.contact) == ("(de-identified)", None)
        assert (gone.match_phone, gone.match_name, gone.match_initial_last) == (None,) * 3
        assert gone.county_fips == "54039"  # the county stays, for the counts
        signatures = (
            await session.scalars(select(Consent.signed_name).where(Consent.person_id == gone.id))
        ).all()
        assert set(signatures) == {"(de-identified)"}
        assert (rows[bea].name, rows[bea].deidentified_at) == ("Bea Boone", None)
        assert (rows[cy].name, rows[cy].deidentified_at) == ("Cy Cole", None)
        referral = await session.get(Referral, uuid.UUID(shared.json()["id"]))
        assert referral is not None
        assert referral.share_ended_at is not None  # the consent ran out: sharing stopped
        entries = (
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action.in_(["person.deidentify", "referral.share_ended"])
                )
            )
        ).all()
    deidentified = next(e for e in entries if e.action == "person.deidentify")
    assert deidentified.detail["ids"] == [al]
    assert deidentified.actor == "corespond retention"
    ended = next(e for e in entries if e.action == "referral.share_ended")
    assert ended.detail["why"] == "consent expired"
    assert not any("Al Ames" in str(e.detail) for e in entries)

    # Nobody to find any more: not listed, not a possible match; the record reads as such.
    listed = await client.get("/v1/people?q=ames", headers=auth(m.ana))
    assert listed.json()["items"] == []
    record = (await client.get(f"/v1/people/{al}", headers=auth(m.ana))).json()
    assert record["name"] == "(de-identified)"
    assert record["deidentified_at"] is not None
    queue = await client.get(f"/v1/followups?person={al}", headers=auth(m.ana))
    assert queue.json()["items"] == []
    # The year's figures are what they were.
    after = (await client.get(year, headers=bearer(supervisor))).json()["after"]
    assert after == before
    # Once.
    async with db.sessionmaker() as session, session.begin():
        again_report = await purge(session, later, keep, person_retention=timedelta(days=365))
        assert again_report.people == 0
