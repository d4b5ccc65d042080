"""A supervisor's hands on assignments: hand an open offer or a staged peer's call to a
named peer (who must pass matching's own tests), see who could take it, and call a peer off
with a reason; every refusal a precise problem that changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select

from corespond.app import create_app
from corespond.assignments.models import LIVE_STATUSES, Assignment, AssignmentChange
from corespond.audit.models import AuditEntry
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.roster.models import Peer
from tests import program
from tests.conftest import Source, make_key, make_source
from tests.program import CABELL, HUNTINGTON, ST_ALBANS
from tests.test_assignments import Program, auth, outbox_types, peer_status, request
from tests.test_ingest_api import assert_problem

REASON = "Ana's car broke down on I-64; Ben is ten minutes out"


async def _messages(db: Database, call_id: uuid.UUID) -> list[OutboxMessage]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.call_id == call_id)
            .order_by(OutboxMessage.seq)
        )
        return list(rows)


async def test_a_supervisor_hands_an_open_offer_to_a_named_peer(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    assert offer["peer"]["display_name"] == "Ana"

    who = await client.get(f"/v1/assignments/{offer['id']}/candidates", headers=auth(p.supervisor))
    assert who.status_code == 200, who.text
    assert [c["display_name"] for c in who.json()["candidates"]] == ["Ben"]
    assert who.json()["candidates"][0]["reasons"]
    assert {"display_name": "Ana", "why": "holds this assignment"}.items() <= next(
        x for x in who.json()["left_out"] if x["display_name"] == "Ana"
    ).items()

    moved = await client.post(
        f"/v1/assignments/{offer['id']}/reassign",
        headers=auth(p.supervisor),
        json={"peer_id": str(p.ben.id), "reason": REASON},
    )
    assert moved.status_code == 201, moved.text
    new = moved.json()
    assert new["id"] != offer["id"]
    assert new["request_id"] == offer["request_id"]
    assert (new["status"], new["peer"]["display_name"]) == ("offered", "Ben")
    assert new["expires_at"] is not None
    assert new["ranking"]["reassigned"] == {
        "from_assignment_id": offer["id"],
        "from_peer": "Ana",
        "by": "supervisor key (supervisor)",
        "reason": REASON,
    }

    old = (await client.get(f"/v1/assignments/{offer['id']}", headers=auth(p.supervisor))).json()
    assert (old["status"], old["cancel_reason"]) == ("cancelled", "reassigned")
    assert old["history"][-1]["reason"] == f"reassigned to Ben: {REASON}"
    assert old["history"][-1]["actor"] == "supervisor key (supervisor)"
    detail = (await client.get(f"/v1/assignments/{new['id']}", headers=auth(p.supervisor))).json()
    assert detail["history"][0]["reason"] == f"reassigned from Ana: {REASON}"

    # Dispatch hears it like any other change, in order: Ana's offer withdrawn, Ben offered.
    messages = await _messages(db, p.call.id)
    assert [m.event_type for m in messages] == [
        "assignment.offered",
        "assignment.cancelled",
        "assignment.offered",
    ]
    withdrawn, offered = messages[1].payload["data"], messages[2].payload["data"]
    assert withdrawn["assignment"]["cancel_reason"] == "reassigned"
    assert withdrawn["peer"]["display_name"] == "Ana"
    assert offered["peer"]["display_name"] == "Ben"
    assert REASON not in str(messages[1].payload)  # the supervisor's words stay here

    async with db.sessionmaker() as session:
        [entry] = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "assignment.reassigned")
            )
        ).all()
    assert entry.record_id == offer["id"]
    assert entry.role == "supervisor"
    assert entry.detail["reason"] == REASON
    assert entry.detail["to_peer_id"] == str(p.ben.id)
    assert entry.detail["new_assignment_id"] == new["id"]

    # Ben answers the new offer as any other.
    accepted = await client.post(f"/v1/assignments/{new['id']}/accept", headers=auth(p.ben_key))
    assert accepted.status_code == 200, accepted.text
    stale = await client.post(f"/v1/assignments/{offer['id']}/accept", headers=auth(p.ana_key))
    assert_problem(stale, 409, "assignment-conflict")


async def test_a_staged_peer_is_replaced_and_freed(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    url = f"/v1/assignments/{offer['id']}"
    assert (await client.post(f"{url}/accept", headers=auth(p.ana_key))).status_code == 200
    secured = await client.post(f"{url}/scene-secure", headers=auth(p.dispatcher))
    assert secured.status_code == 200
    assert await peer_status(db, p.ana.id) == "busy"

    moved = await client.post(
        f"{url}/reassign",
        headers=auth(p.supervisor),
        json={"peer_id": str(p.ben.id), "reason": "x"},
    )
    assert moved.status_code == 201, moved.text
    new = moved.json()
    assert await peer_status(db, p.ana.id) == "available"  # freed at once
    # Police secured the scene already: the new peer need not wait for it again.
    assert new["scene_secured_at"] is not None
    assert await outbox_types(db, p.call.id) == [
        "assignment.offered",
        "assignment.accepted",
        "assignment.scene_secure",
        "assignment.cancelled",
        "assignment.offered",
    ]
    # Moving on: a peer already en route is not reassigned.
    new_url = f"/v1/assignments/{new['id']}"
    assert (await client.post(f"{new_url}/accept", headers=auth(p.ben_key))).status_code == 200
    assert (await client.post(f"{new_url}/en-route", headers=auth(p.ben_key))).status_code == 200
    problem = assert_problem(
        await client.post(
            f"{new_url}/reassign",
            headers=auth(p.supervisor),
            json={"peer_id": str(p.ana.id), "reason": "x"},
        ),
        409,
        "assignment-conflict",
    )
    assert problem["assignment_status"] == "en_route"


async def test_the_new_peer_must_pass_matchings_tests(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, "rp", {CABELL: "primary"})
        off = await program.peer(session, "Cal", status="off_duty", home=ST_ALBANS)
        lapsed = await program.peer(
            session,
            "Dee",
            home=ST_ALBANS,
            credentials={
                "prss_certification": None,
                "cjis_background": None,
                "nda": now - timedelta(days=2),
            },
        )
        booked = await program.peer(session, "Eve", home=ST_ALBANS)
        later = await program.peer(session, "Fay", home=ST_ALBANS, shift_hours=(5, 12))
        far = await program.peer(
            session, "Gus", provider_id="rp", counties=(CABELL,), home=HUNTINGTON
        )
        other_call = await program.call(session, source.id, incident_number="26-other")
    offer = (await request(client, p)).json()  # Ana, the nearest
    url = f"/v1/assignments/{offer['id']}/reassign"
    # Eve takes the other call (Ben, nearer, is briefly off duty for it).
    async with db.sessionmaker() as session, session.begin():
        ben = await session.get(Peer, p.ben.id)
        assert ben is not None
        ben.status = "off_duty"
    other = await client.post(
        f"/v1/calls/{other_call.id}/peer-requests", headers=auth(p.dispatcher)
    )
    assert other.json()["peer"]["display_name"] == "Eve"
    async with db.sessionmaker() as session, session.begin():
        ben = await session.get(Peer, p.ben.id)
        assert ben is not None
        ben.status = "available"

    before = await outbox_types(db, p.call.id)
    for peer, why in (
        (off, "status off_duty"),
        (lapsed, "credentials: nda expired"),
        (booked, "on another assignment"),
        (later, "not on shift in Kanawha County or a neighbouring county within 60 km"),
        (far, "not on shift in Kanawha County or a neighbouring county within 60 km"),
        (p.ana, "already this peer's"),
    ):
        answer = await client.post(
            url, headers=auth(p.supervisor), json={"peer_id": str(peer.id), "reason": "try"}
        )
        problem = assert_problem(answer, 409, "peer-not-eligible", why)
        assert problem["peer_id"] == str(peer.id)

    for body, field in (
        ({"peer_id": str(p.ben.id)}, "reason"),
        ({"peer_id": str(p.ben.id), "reason": "  "}, "reason"),
        ({"peer_id": str(p.ben.id), "reason": "x" * 301}, "reason"),
        ({"peer_id": "ben", "reason": "x"}, "peer_id"),
        ({"reason": "x"}, "peer_id"),
        ({"peer_id": str(p.ben.id), "reason": "x", "force": True}, "force"),
    ):
        problem = assert_problem(await client.post(url, headers=auth(p.supervisor), json=body), 422)
        assert field in str(problem["invalid-params"])
    assert_problem(
        await client.post(
            url, headers=auth(p.supervisor), json={"peer_id": str(uuid.uuid4()), "reason": "x"}
        ),
        404,
    )
    assert_problem(
        await client.post(
            f"/v1/assignments/{uuid.uuid4()}/reassign",
            headers=auth(p.supervisor),
            json={"peer_id": str(p.ben.id), "reason": "x"},
        ),
        404,
    )
    # Scope: another county's supervisor does not see the assignment; others may not act.
    cabell = await make_key(db, "supervisor", f"county:{CABELL}")
    body = {"peer_id": str(p.ben.id), "reason": "x"}
    assert_problem(await client.post(url, headers=auth(cabell), json=body), 404)
    assert_problem(await client.post(url, headers=auth(p.dispatcher), json=body), 403)
    assert_problem(await client.post(url, headers=auth(p.ana_key), json=body), 403)
    assert_problem(
        await client.get(f"/v1/assignments/{offer['id']}/candidates", headers=auth(cabell)), 404
    )

    # Nothing changed: Ana still holds the offer, dispatch heard nothing new.
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, uuid.UUID(offer["id"]))
        assert stored is not None
        assert stored.status == "offered"
        assert stored.peer_id == p.ana.id
    assert await outbox_types(db, p.call.id) == before

    # The candidates list says the same, peer by peer.
    listed = (
        await client.get(f"/v1/assignments/{offer['id']}/candidates", headers=auth(p.supervisor))
    ).json()
    assert [c["display_name"] for c in listed["candidates"]] == ["Ben"]
    why = {x["display_name"]: x["why"] for x in listed["left_out"]}
    assert why["Cal"] == "status off_duty"
    assert why["Dee"].startswith("credentials: nda expired")
    assert why["Eve"] == "on another assignment"
    assert why["Ana"] == "holds this assignment"
    assert "Fay" not in why  # not on shift: not listed at all

    # An ended assignment is not reassigned.
    declined = await client.post(f"/v1/assignments/{offer['id']}/decline", headers=auth(p.ana_key))
    assert declined.status_code == 200
    problem = assert_problem(
        await client.post(url, headers=auth(p.supervisor), json=body), 409, "assignment-conflict"
    )
    assert problem["assignment_status"] == "declined"


async def test_a_supervisor_calls_a_peer_off_with_a_reason(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    url = f"/v1/assignments/{offer['id']}/cancel"
    problem = assert_problem(await client.post(url, headers=auth(p.supervisor)), 422, "reason")
    assert problem["invalid-params"][0]["name"] == "reason"
    assert_problem(await client.post(url, headers=auth(p.supervisor), json={"reason": " "}), 422)
    cancelled = await client.post(
        url, headers=auth(p.supervisor), json={"reason": "family took him to detox themselves"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "supervisor",
    )
    async with db.sessionmaker() as session:
        said = await session.scalar(
            select(AssignmentChange.reason)
            .where(AssignmentChange.assignment_id == uuid.UUID(offer["id"]))
            .order_by(AssignmentChange.id.desc())
            .limit(1)
        )
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "assignment.called_off")
        )
    assert said == "family took him to detox themselves"
    assert entry is not None
    assert entry.detail == {"reason": "family took him to detox themselves", "was": "offered"}
    assert (await outbox_types(db, p.call.id))[-1] == "assignment.cancelled"
    again = await client.post(url, headers=auth(p.supervisor), json={"reason": "again"})
    assert_problem(again, 409, "assignment-conflict")


@pytest.fixture
async def live_client(
    settings: Settings, committed_db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings, database=committed_db)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_the_database_keeps_one_peer_on_one_call_when_reassignments_race(
    live_client: httpx.AsyncClient, committed_db: Database, box: SecretBox
) -> None:
    """Four supervisors hand four calls to the same free peer at once: one gets her, the
    others are refused and their calls keep the peers they had."""
    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        holders = [await program.peer(session, f"Peer {i}") for i in range(4)]
        calls = [await program.call(session, source.id) for _ in range(4)]
    supervisor = await make_key(committed_db, "supervisor")
    offers = []
    for call in calls:
        asked = await live_client.post(
            f"/v1/calls/{call.id}/peer-requests", headers=auth(supervisor)
        )
        assert asked.status_code == 201, asked.text
        offers.append(asked.json())
    async with committed_db.sessionmaker() as session, session.begin():
        wanted = await program.peer(session, "Wanda")

    answers = await asyncio.gather(
        *(
            live_client.post(
                f"/v1/assignments/{offer['id']}/reassign",
                headers=auth(supervisor),
                json={"peer_id": str(wanted.id), "reason": "the one who speaks Spanish"},
            )
            for offer in offers
        )
    )
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 1, 409: 3}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["type"].endswith("/peer-not-eligible")
    async with committed_db.sessionmaker() as session:
        live = (
            await session.scalars(select(Assignment).where(Assignment.status.in_(LIVE_STATUSES)))
        ).all()
    assert sum(a.peer_id == wanted.id for a in live) == 1
    assert len(live) == 4  # every call still has one peer
    kept = {a.peer_id for a in live} - {wanted.id}
    assert len(kept) == 3
    assert kept <= {h.id for h in holders}


async def test_the_access_table_knows_the_new_endpoints(app: FastAPI) -> None:
    from corespond.auth.policy import POLICY

    assert POLICY["POST /v1/assignments/{assignment_id}/reassign"].roles == ("supervisor",)
    assert POLICY["GET /v1/assignments/{assignment_id}/candidates"].roles == ("supervisor",)


async def test_no_reassignment_onto_a_call_triage_no_longer_lets_a_peer_go_to(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    """CAD's update made the call ineligible without danger (a diabetic low, not drugs):
    a supervisor cannot hand it to another peer."""
    from corespond.calls.models import Call

    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    async with db.sessionmaker() as session, session.begin():
        call = await session.get(Call, p.call.id)
        assert call is not None
        call.decision = "ineligible"
    moved = await client.post(
        f"/v1/assignments/{offer['id']}/reassign",
        headers=auth(p.supervisor),
        json={"peer_id": str(p.ben.id), "reason": REASON},
    )
    assert_problem(moved, 409, "ineligible")
    async with db.sessionmaker() as session:
        offers = (await session.scalars(select(Assignment))).all()
    assert [a.peer_id for a in offers] == [p.ana.id]
