"""Alerts a supervisor lists and acknowledges: an unfilled request, a CAD source whose
messages die, a credential running out. Each is told to the supervisors in scope, again
every so often until one acknowledges it; an acknowledged alert is never sent again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from corespond.alerts.models import Alert
from corespond.assignments.models import Assignment
from corespond.audit.models import AuditEntry
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.notify.models import Notification
from corespond.notify.relay import Notifier, SmsProvider
from corespond.notify.service import Vapid
from corespond.roster.models import Credential
from tests import program
from tests.conftest import Source, make_key
from tests.program import CABELL, KANAWHA
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem
from tests.test_sms import _sms_settings, fake_sms


async def _notices(db: Database, alert_id: str) -> list[Notification]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(Notification)
            .where(Notification.alert_id == uuid.UUID(alert_id))
            .order_by(Notification.created_at)
        )
        return list(rows)


async def _sms_contact(client: httpx.AsyncClient, key: str, phone: str) -> None:
    saved = await client.put(
        "/v1/notify/me", headers=auth(key), json={"channels": ["sms"], "phone": phone}
    )
    assert saved.status_code == 200, saved.text


async def _unfilled(client: httpx.AsyncClient, db: Database, source: Source) -> tuple[str, str]:
    """A Kanawha call no one can take: (call id, the dispatcher's key)."""
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        call = await program.call(session, source.id, incident_number="26-77")
    dispatcher = await make_key(db, "dispatcher")
    asked = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert_problem(asked, 409, "no-coverage")
    return str(call.id), dispatcher


async def test_an_unfilled_request_is_an_alert_that_repeats_until_acknowledged(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    supervisor = await make_key(db, "supervisor")
    await _sms_contact(client, supervisor, "+1 304 555 0177")
    call_id, dispatcher = await _unfilled(client, db, source)

    listed = await client.get("/v1/alerts", headers=auth(supervisor))
    assert listed.status_code == 200, listed.text
    [alert] = listed.json()["items"]
    assert alert["kind"] == "unfilled"
    assert alert["state"] == "open"
    assert alert["title"] == "No peer for kanawha-911/26-77 in Kanawha County"
    assert alert["detail"].startswith("no peer free in Kanawha County")
    assert alert["counties"] == [KANAWHA]
    assert alert["call_id"] == call_id
    assert alert["notices"] == 1
    assert alert["told"] == ["SMS pending"]
    [first] = await _notices(db, alert["id"])
    assert first.payload["title"] == "Request unfilled"
    assert first.payload["body"] == "No peer could be offered a call in Kanawha County"

    # Asking again (the dispatcher presses retry) is no new alert.
    await client.post(f"/v1/calls/{call_id}/peer-requests", headers=auth(dispatcher))
    assert len((await client.get("/v1/alerts", headers=auth(supervisor))).json()["items"]) == 1

    # Not acknowledged: told again once the reminder is due, not before.
    now = datetime.now(UTC)
    jobs = app.state.alert_jobs
    await jobs.sweep(now + timedelta(minutes=5))
    assert len(await _notices(db, alert["id"])) == 1
    await jobs.sweep(now + timedelta(minutes=11))
    reminders = await _notices(db, alert["id"])
    assert len(reminders) == 2
    assert reminders[1].payload["title"] == "Request unfilled (reminder)"
    await jobs.sweep(now + timedelta(minutes=12))  # a second sweep does not double it
    assert len(await _notices(db, alert["id"])) == 2

    acknowledged = await client.post(
        f"/v1/alerts/{alert['id']}/acknowledge",
        headers=auth(supervisor),
        json={"note": "called Recovery Point: someone on at 14:00"},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    seen = acknowledged.json()
    assert seen["state"] == "acknowledged"
    assert seen["acknowledged_by"] == "supervisor key (supervisor)"
    assert seen["acknowledged_at"] is not None
    assert seen["acknowledged_note"] == "called Recovery Point: someone on at 14:00"
    assert seen["next_notice_at"] is None
    # What was still queued is withdrawn, and nothing more is ever queued.
    assert {n.state for n in await _notices(db, alert["id"])} == {"skipped"}
    for later in (timedelta(minutes=25), timedelta(hours=2), timedelta(hours=11)):
        await jobs.sweep(now + later)
    assert len(await _notices(db, alert["id"])) == 2
    assert (await client.get(f"/v1/alerts/{alert['id']}", headers=auth(supervisor))).json()[
        "notices"
    ] == 2

    async with db.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "alert.acknowledged")
        )
    assert entry is not None
    assert entry.record_id == alert["id"]
    assert entry.detail["note"] == "called Recovery Point: someone on at 14:00"
    assert entry.detail["notices_withdrawn"] == 2  # the first and the reminder, unsent

    twice = await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=auth(supervisor))
    problem = assert_problem(twice, 409, "alert-acknowledged", "supervisor key (supervisor)")
    assert datetime.fromisoformat(problem["acknowledged_at"]) == datetime.fromisoformat(
        seen["acknowledged_at"]
    )

    # A peer comes on (a minute later): the call is offered, and the alert is resolved.
    async with db.sessionmaker() as session, session.begin():
        await program.peer(session, "Ana")
        await session.execute(
            update(Assignment).values(created_at=Assignment.created_at - timedelta(minutes=1))
        )
    offered = await client.post(f"/v1/calls/{call_id}/peer-requests", headers=auth(dispatcher))
    assert offered.status_code == 201, offered.text
    resolved = (await client.get(f"/v1/alerts/{alert['id']}", headers=auth(supervisor))).json()
    assert resolved["state"] == "resolved"
    assert resolved["resolved_reason"] == "a peer was offered the call"
    assert resolved["acknowledged_by"] == "supervisor key (supervisor)"  # history kept


async def test_the_notifier_never_sends_a_notice_of_an_acknowledged_alert(
    settings: Settings, db: Database, source: Source, box: SecretBox, client: httpx.AsyncClient
) -> None:
    """Even one queued a moment before the acknowledgement (the sweep's reminder racing
    the supervisor's click) is skipped when its turn comes, and the provider hears nothing."""
    supervisor = await make_key(db, "supervisor")
    await _sms_contact(client, supervisor, "+1 304 555 0177")
    await _unfilled(client, db, source)
    [alert] = (await client.get("/v1/alerts", headers=auth(supervisor))).json()["items"]
    acked = await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=auth(supervisor))
    assert acked.status_code == 200
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Notification)
            .where(Notification.alert_id == uuid.UUID(alert["id"]))
            .values(state="pending", last_error=None)
        )
    async with fake_sms() as sms:
        configured = _sms_settings(settings, sms.url)
        async with httpx.AsyncClient() as http:
            notifier = Notifier(
                db,
                http,
                Vapid.of(box, "mailto:o@example.org"),
                environment="test",
                sms=SmsProvider.of(configured),
            )
            assert await notifier.drain() == 1
        assert sms.sent == []
    [notice] = await _notices(db, alert["id"])
    assert notice.state == "skipped"
    assert notice.last_error == "the alert was acknowledged or resolved before this was sent"


async def test_alerts_are_seen_and_acknowledged_within_scope(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    await _unfilled(client, db, source)
    everyone = await make_key(db, "supervisor")
    kanawha = await make_key(db, "supervisor", f"county:{KANAWHA}")
    cabell = await make_key(db, "supervisor", f"county:{CABELL}")
    [alert] = (await client.get("/v1/alerts", headers=auth(everyone))).json()["items"]
    assert [
        a["id"] for a in (await client.get("/v1/alerts", headers=auth(kanawha))).json()["items"]
    ] == [alert["id"]]
    assert (await client.get("/v1/alerts", headers=auth(cabell))).json()["items"] == []
    assert_problem(await client.get(f"/v1/alerts/{alert['id']}", headers=auth(cabell)), 404)
    assert_problem(
        await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=auth(cabell)), 404
    )
    agency = await make_key(db, "supervisor", "agency:CHARLESTON PD")
    assert_problem(await client.get("/v1/alerts", headers=auth(agency)), 403, "by county")
    for role in ("dispatcher", "auditor", "provider_admin"):
        other = await make_key(db, role, "provider:wvsl" if role == "provider_admin" else None)
        assert_problem(await client.get("/v1/alerts", headers=auth(other)), 403)
        assert_problem(
            await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=auth(other)), 403
        )
    assert_problem(await client.get("/v1/alerts"), 401)

    # Bad input: precise, and nothing changes.
    url = f"/v1/alerts/{alert['id']}/acknowledge"
    for body, field in (
        ({"note": "x" * 301}, "note"),
        ({"note": ""}, "note"),
        ({"seen": True}, "seen"),
    ):
        problem = assert_problem(await client.post(url, headers=auth(kanawha), json=body), 422)
        assert field in str(problem["invalid-params"])
    assert_problem(await client.post("/v1/alerts/nope/acknowledge", headers=auth(kanawha)), 422)
    assert_problem(
        await client.post(f"/v1/alerts/{uuid.uuid4()}/acknowledge", headers=auth(kanawha)), 404
    )
    for query, status in (
        ("state=ignored", 422),
        ("kind=weather", 422),
        ("county=Atlantis", 422),
        ("limit=0", 422),
        ("call=12", 422),
        ("cursor=not-ours", 400),
    ):
        assert_problem(await client.get(f"/v1/alerts?{query}", headers=auth(kanawha)), status)
    assert (await client.get(f"/v1/alerts/{alert['id']}", headers=auth(kanawha))).json()[
        "state"
    ] == "open"
    ok = await client.post(url, headers=auth(kanawha))  # no body: no note
    assert ok.status_code == 200, ok.text
    assert ok.json()["acknowledged_note"] is None
    filtered = await client.get(
        "/v1/alerts?state=acknowledged&kind=unfilled&county=Kanawha", headers=auth(everyone)
    )
    assert [a["id"] for a in filtered.json()["items"]] == [alert["id"]]
    assert (await client.get("/v1/alerts?state=open", headers=auth(everyone))).json()["items"] == []


async def _dead_message(db: Database, source: Source, call_id: uuid.UUID, seq: int) -> None:
    async with db.sessionmaker() as session, session.begin():
        session.add(
            OutboxMessage(
                source_id=source.id,
                call_id=call_id,
                seq=seq,
                event_type="assignment.offered",
                payload={},
                state="dead",
                attempts=1,
                dead_at=datetime.now(UTC),
                last_status_code=410,
            )
        )


async def test_dead_letters_raise_a_statewide_alert_and_new_ones_after_it_was_seen_raise_another(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
    supervisor = await make_key(db, "supervisor")
    kanawha = await make_key(db, "supervisor", f"county:{KANAWHA}")
    jobs = app.state.alert_jobs
    await jobs.sweep()
    assert (await client.get("/v1/alerts", headers=auth(supervisor))).json()["items"] == []

    await _dead_message(db, source, call.id, 1)
    await jobs.sweep()
    [alert] = (await client.get("/v1/alerts", headers=auth(supervisor))).json()["items"]
    assert alert["kind"] == "deliveries_failing"
    assert alert["counties"] is None  # statewide
    assert alert["source_id"] == source.id
    assert "1 message(s) dead" in alert["detail"]
    assert (await client.get("/v1/alerts", headers=auth(kanawha))).json()["items"] == []
    await jobs.sweep()  # still dead: the same alert, not another
    assert len((await client.get("/v1/alerts", headers=auth(supervisor))).json()["items"]) == 1

    acked = await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=auth(supervisor))
    assert acked.status_code == 200
    await jobs.sweep(datetime.now(UTC) + timedelta(hours=1))
    assert (await client.get(f"/v1/alerts/{alert['id']}", headers=auth(supervisor))).json()[
        "notices"
    ] == 1

    # Another message dies after it was acknowledged: that is news.
    await _dead_message(db, source, call.id, 2)
    await jobs.sweep()
    newest, older = (await client.get("/v1/alerts", headers=auth(supervisor))).json()["items"]
    assert older["id"] == alert["id"]
    assert older["state"] == "resolved"
    assert older["resolved_reason"] == "more messages died after it was acknowledged"
    assert newest["state"] == "open"
    assert "2 message(s) dead" in newest["detail"]

    # Redelivered and delivered: resolved.
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.call_id == call.id)
            .values(state="delivered", delivered_at=datetime.now(UTC), dead_at=None)
        )
    await jobs.sweep()
    latest = (await client.get(f"/v1/alerts/{newest['id']}", headers=auth(supervisor))).json()
    assert latest["state"] == "resolved"
    assert latest["resolved_reason"] == "deliveries recovered, nothing dead"


async def test_a_credential_running_out_is_an_alert_until_renewed(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        peer = await program.peer(
            session,
            "Casey",
            credentials={
                "prss_certification": None,
                "cjis_background": now + timedelta(days=300),
                "nda": now + timedelta(days=10),
            },
        )
    kanawha = await make_key(db, "supervisor", f"county:{KANAWHA}")
    cabell = await make_key(db, "supervisor", f"county:{CABELL}")
    jobs = app.state.alert_jobs
    await jobs.sweep(now)
    [alert] = (await client.get("/v1/alerts", headers=auth(kanawha))).json()["items"]
    assert alert["kind"] == "credential_expiring"
    assert alert["title"].startswith("Casey: NDA expires ")
    assert alert["peer_id"] == str(peer.id)
    assert alert["counties"] == [KANAWHA]
    assert (await client.get("/v1/alerts", headers=auth(cabell))).json()["items"] == []
    # Daily reminders, not every ten minutes.
    await jobs.sweep(now + timedelta(hours=1))
    async with db.sessionmaker() as session:
        stored = await session.get(Alert, uuid.UUID(alert["id"]))
        assert stored is not None
        assert stored.notices == 1
        assert stored.next_notice_at == stored.raised_at + timedelta(days=1)

    # The day it lapses is news again.
    await jobs.sweep(now + timedelta(days=11))
    items = (await client.get("/v1/alerts", headers=auth(kanawha))).json()["items"]
    lapsed = next(a for a in items if a["state"] == "open")
    assert lapsed["title"].startswith("Casey: NDA expired ")
    assert next(a for a in items if a["id"] == alert["id"])["resolved_reason"] == (
        "it has now expired"
    )

    # Renewed: resolved.
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Credential)
            .where(Credential.peer_id == peer.id, Credential.kind == "nda")
            .values(expires_at=now + timedelta(days=365))
        )
    await jobs.sweep(now + timedelta(days=11))
    renewed = (await client.get(f"/v1/alerts/{lapsed['id']}", headers=auth(kanawha))).json()
    assert (renewed["state"], renewed["resolved_reason"]) == ("resolved", "renewed")
    async with db.sessionmaker() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None))
            )
            == 0
        )
