"""A supervisor overrides a call that turned dangerous after police reported it unfounded:
explicit, with a reason, audited, never automatic; the call goes back to review and stays
at most review, and danger in any later update makes it ineligible again."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from corespond.assignments.models import Assignment
from corespond.audit.models import AuditEntry
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.helpers import cad_event
from tests.test_assignments import auth, outbox_types
from tests.test_assignments_cad import send, setup, stamp, worker
from tests.test_ingest_api import assert_problem


async def _turned_dangerous(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> tuple[uuid.UUID, Assignment]:
    """An eligible call of an opted-in agency, offered to Ana, then a knife is reported."""
    await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(4)))
    await worker(app, db).drain()
    await send(
        client,
        source,
        cad_event("e2", "call.updated", stamp(3), narrative="SUBJ NOW HOLDING A KNIFE"),
    )
    await worker(app, db).drain()
    async with db.sessionmaker() as session:
        [cancelled] = (await session.scalars(select(Assignment))).all()
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "danger")
    return cancelled.call_id, cancelled


async def test_an_override_puts_the_call_back_to_review_with_who_and_why(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    call_id, cancelled = await _turned_dangerous(client, app, db, source)
    supervisor = await make_key(db, "supervisor")
    before = await outbox_types(db, call_id)

    answer = await client.post(
        f"/v1/calls/{call_id}/danger-override",
        headers=auth(supervisor),
        json={"reason": "Sgt. Lowe on scene: it was a butter knife on the table, no threat"},
    )
    assert answer.status_code == 200, answer.text
    call = answer.json()
    assert call["decision"] == "review"
    assert call["turned_dangerous_at"] is None
    assert call["decision_summary"] == (
        "review: danger reported unfounded by police (supervisor override)"
    )
    override = call["triage"][-1]
    assert override["override_by"] == "supervisor key (supervisor)"
    assert override["decision"] == "review"
    policy = override["reasons"][0]
    assert policy["rule"] == "policy.danger_overridden"
    assert policy["detail"] == (
        "by supervisor key (supervisor): Sgt. Lowe on scene: it was a butter knife on the "
        "table, no threat"
    )
    knife = next(r for r in override["reasons"] if r["rule"] == "danger.weapon")
    assert (knife["kind"], knife["detail"]) == ("resolved", "KNIFE in narrative")
    assert call["triage"][-2]["turned_dangerous"] is True  # the history keeps the turn

    # Never automatic: no peer is sent by the override; the cancelled offer stays cancelled.
    async with db.sessionmaker() as session:
        assert len((await session.scalars(select(Assignment))).all()) == 1
        assert (await session.get(Assignment, cancelled.id)).status == "cancelled"  # type: ignore[union-attr]
        [entry] = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "call.danger_overridden")
            )
        ).all()
    assert entry.record_id == str(call_id)
    assert entry.actor == "supervisor key"
    assert entry.detail["reason"].startswith("Sgt. Lowe on scene")
    assert entry.detail["now"] == "review"
    assert await outbox_types(db, call_id) == before
    # The sweep does not request a peer for it either (review waits for a person).
    assert await app.state.call_follow_up.sweep() == 0

    # A calm update without danger: still at most review (a person decides).
    await send(
        client,
        source,
        cad_event("e3", "call.updated", stamp(2), narrative="SUBJ CALM, SITTING WITH EMS"),
    )
    await worker(app, db).drain()
    again = (await client.get(f"/v1/calls/{call_id}", headers=auth(supervisor))).json()
    assert again["decision"] == "review"
    assert len(again["triage"]) == len(call["triage"]) + 1  # decided anew from the new text
    assert again["triage"][-1]["override_by"] is None
    assert again["triage"][-1]["reasons"][0]["rule"] == "policy.danger_overridden"
    assert again["triage"][-1]["turned_dangerous"] is False
    assert again["turned_dangerous_at"] is None

    # A person decides: a peer may be requested again.
    dispatcher = await make_key(db, "dispatcher")
    asked = await client.post(f"/v1/calls/{call_id}/peer-requests", headers=auth(dispatcher))
    assert asked.status_code == 201, asked.text
    assert asked.json()["status"] == "offered"

    # A danger signal the override did not cover turns it dangerous again, and the peer
    # is called off as before.
    await send(
        client,
        source,
        cad_event("e4", "call.updated", stamp(1), narrative="CALLER NOW SAYS SUBJ HAS A GUN"),
    )
    await worker(app, db).drain()
    turned = (await client.get(f"/v1/calls/{call_id}", headers=auth(supervisor))).json()
    assert turned["decision"] == "ineligible"
    assert turned["turned_dangerous_at"] is not None
    async with db.sessionmaker() as session:
        live = await session.get(Assignment, uuid.UUID(asked.json()["id"]))
        assert live is not None
        assert (live.status, live.cancel_reason) == ("cancelled", "danger")


async def test_after_an_override_the_call_is_at_most_review(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    """CAD drops the knife from the narrative: the text alone would be eligible, but an
    overridden call waits for a person (and an opted-in agency's call is not matched)."""
    call_id, _ = await _turned_dangerous(client, app, db, source)
    supervisor = await make_key(db, "supervisor")
    overridden = await client.post(
        f"/v1/calls/{call_id}/danger-override",
        headers=auth(supervisor),
        json={"reason": "unfounded per Charleston PD"},
    )
    assert overridden.status_code == 200, overridden.text
    await send(
        client,
        source,
        cad_event(
            "e3",
            "call.updated",
            stamp(1),
            narrative="SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
        ),
    )
    await worker(app, db).drain()
    call = (await client.get(f"/v1/calls/{call_id}", headers=auth(supervisor))).json()
    assert call["decision"] == "review"
    assert call["triage"][-1]["reasons"][0]["rule"] == "policy.danger_overridden"
    await app.state.call_follow_up.sweep()
    async with db.sessionmaker() as session:
        assert len((await session.scalars(select(Assignment))).all()) == 1  # no new offer


async def test_an_override_is_refused_precisely(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    call_id, _ = await _turned_dangerous(client, app, db, source)
    supervisor = await make_key(db, "supervisor")
    url = f"/v1/calls/{call_id}/danger-override"
    for body, field in (
        ({}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * 301}, "reason"),
        ({"reason": "ok", "decision": "eligible"}, "decision"),
        ({"reason": "a\x00b"}, "reason"),
    ):
        problem = assert_problem(await client.post(url, headers=auth(supervisor), json=body), 422)
        assert field in str(problem["invalid-params"])
    broken = {**auth(supervisor), "content-type": "application/json"}
    assert_problem(await client.post(url, headers=broken, content=b"{"), 422)
    assert_problem(
        await client.post(
            f"/v1/calls/{uuid.uuid4()}/danger-override",
            headers=auth(supervisor),
            json={"reason": "x"},
        ),
        404,
    )
    assert_problem(
        await client.post(
            "/v1/calls/not-a-uuid/danger-override", headers=auth(supervisor), json={"reason": "x"}
        ),
        422,
    )
    # Scope: another county's supervisor does not see the call; a dispatcher may not.
    cabell = await make_key(db, "supervisor", f"county:{program.CABELL}")
    assert_problem(await client.post(url, headers=auth(cabell), json={"reason": "x"}), 404)
    dispatcher = await make_key(db, "dispatcher")
    assert_problem(await client.post(url, headers=auth(dispatcher), json={"reason": "x"}), 403)
    # A call that never turned dangerous (eligible, or ineligible from the start).
    async with db.sessionmaker() as session, session.begin():
        calm = await program.call(session, source.id, incident_number="26-calm")
        armed = await program.call(
            session, source.id, incident_number="26-armed", decision="ineligible"
        )
    for other, now in ((calm.id, "eligible"), (armed.id, "ineligible")):
        problem = assert_problem(
            await client.post(
                f"/v1/calls/{other}/danger-override",
                headers=auth(supervisor),
                json={"reason": "x"},
            ),
            409,
            "not-turned-dangerous",
        )
        assert problem["decision"] == now
    # Once overridden, a second override is refused (nothing left to override).
    done = await client.post(url, headers=auth(supervisor), json={"reason": "unfounded"})
    assert done.status_code == 200
    assert_problem(await client.post(url, headers=auth(supervisor), json={"reason": "x"}), 409)
    async with db.sessionmaker() as session:
        entries = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "call.danger_overridden")
            )
        ).all()
    assert len(entries) == 1  # refusals change nothing


async def test_an_override_without_a_recorded_history_is_still_an_answer(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    """A call marked dangerous with no triage history behind it (stored before triage kept
    one, say) is overridden all the same, never a 500."""
    from datetime import UTC, datetime

    async with db.sessionmaker() as session, session.begin():
        call = await program.call(
            session, source.id, decision="ineligible", turned_dangerous_at=datetime.now(UTC)
        )
    supervisor = await make_key(db, "supervisor")
    answer = await client.post(
        f"/v1/calls/{call.id}/danger-override",
        headers=auth(supervisor),
        json={"reason": "unfounded"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"] == "review"
    [record] = answer.json()["triage"]
    assert record["override_by"] == "supervisor key (supervisor)"


async def test_the_same_danger_reported_again_after_an_override_counts(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    """The override holds for the inputs it was made on: a new update naming the same
    weapon again ("NOW WAVING KNIFE AT MEDICS") is a new report, and the call turns again."""
    call_id, _ = await _turned_dangerous(client, app, db, source)
    supervisor = await make_key(db, "supervisor")
    overridden = await client.post(
        f"/v1/calls/{call_id}/danger-override",
        headers=auth(supervisor),
        json={"reason": "butter knife per police"},
    )
    assert overridden.status_code == 200, overridden.text
    await send(
        client,
        source,
        cad_event("e3", "call.updated", stamp(1), narrative="SUBJ NOW WAVING KNIFE AT MEDICS"),
    )
    await worker(app, db).drain()
    call = (await client.get(f"/v1/calls/{call_id}", headers=auth(supervisor))).json()
    assert call["decision"] == "ineligible"
    assert call["turned_dangerous_at"] is not None


async def test_no_override_while_a_peer_is_still_on_the_call(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    """Danger found, but the call-off has not run yet: the override waits for it, so it can
    never leave a peer on a call that reported danger."""
    from corespond.calls.models import Call

    await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(4)))
    await worker(app, db).drain()
    async with db.sessionmaker() as session, session.begin():
        [offer] = (await session.scalars(select(Assignment))).all()
        call = await session.get(Call, offer.call_id)
        assert call is not None
        # As triage leaves it before the follow-up cancels the offer.
        call.decision = "ineligible"
        call.turned_dangerous_at = call.decided_at
    supervisor = await make_key(db, "supervisor")
    refused = await client.post(
        f"/v1/calls/{offer.call_id}/danger-override",
        headers=auth(supervisor),
        json={"reason": "unfounded"},
    )
    assert_problem(refused, 409, "peer-still-assigned", "call them off first")
