"""Matching and the assignment lifecycle through the API, on a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from corespond.assignments.models import Assignment, AssignmentChange, PeerRequest
from corespond.calls.models import Call
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.roster.models import Peer
from tests import program
from tests.conftest import Source, make_key
from tests.program import CHARLESTON, KANAWHA, PUTNAM, SOUTH_CHARLESTON, ST_ALBANS, WINFIELD


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def outbox_types(db: Database, call_id: uuid.UUID) -> list[str]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.call_id == call_id)
            .order_by(OutboxMessage.seq)
        )
        return [m.event_type for m in rows]


async def peer_status(db: Database, peer_id: uuid.UUID) -> str:
    async with db.sessionmaker() as session:
        peer = await session.get(Peer, peer_id)
        assert peer is not None
        return peer.status


class Program:
    """Two Kanawha peers (nearer: Ana, farther: Ben), a call in Charleston, keys."""

    def __init__(self, db: Database, source: Source) -> None:
        self.db = db
        self.source = source

    async def build(self, **call_fields: Any) -> Program:
        async with self.db.sessionmaker() as session, session.begin():
            await program.provider(session)
            await program.agency(session)
            self.ana = await program.peer(session, "Ana", home=SOUTH_CHARLESTON)
            self.ben = await program.peer(session, "Ben", home=ST_ALBANS)
            self.call = await program.call(session, self.source.id, **call_fields)
        self.dispatcher = await make_key(self.db, "dispatcher")
        self.supervisor = await make_key(self.db, "supervisor")
        self.ana_key = await make_key(self.db, "peer", f"peer:{self.ana.id}")
        self.ben_key = await make_key(self.db, "peer", f"peer:{self.ben.id}")
        return self


async def request(client: httpx.AsyncClient, p: Program) -> httpx.Response:
    return await client.post(f"/v1/calls/{p.call.id}/peer-requests", headers=auth(p.dispatcher))


async def test_full_lifecycle(client: httpx.AsyncClient, db: Database, source: Source) -> None:
    p = await Program(db, source).build()

    first = await request(client, p)
    assert first.status_code == 201, first.text
    assert first.json()["ranking"] is None  # who else and why is for supervisors
    offer = (
        await client.get(f"/v1/assignments/{first.json()['id']}", headers=auth(p.supervisor))
    ).json()
    assert offer["status"] == "offered"
    assert offer["peer"]["display_name"] == "Ana"  # nearest
    assert offer["place"] == 1
    assert offer["fallback"] is False
    assert offer["county"] == {"fips": KANAWHA, "name": "Kanawha"}
    ranking = offer["ranking"]
    assert [c["display_name"] for c in ranking["candidates"]] == ["Ana", "Ben"]
    assert any("km from the call" in r for r in ranking["candidates"][0]["reasons"])
    assert offer["call"]["narrative"]  # the requester (a supervisor) reads it whole
    assert offer["call"]["for_peer"]["note"] is None

    # Asking again returns the live assignment.
    again = await request(client, p)
    assert again.status_code == 200
    assert again.json()["id"] == offer["id"]

    url = f"/v1/assignments/{offer['id']}"
    accepted = await client.post(f"{url}/accept", headers=auth(p.ana_key))
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert await peer_status(db, p.ana.id) == "busy"

    # Staged until police report the scene secure.
    staged = await client.post(f"{url}/en-route", headers=auth(p.ana_key))
    assert staged.status_code == 409
    assert staged.json()["type"].endswith("/scene-not-secure")
    assert staged.headers["content-type"] == "application/problem+json"

    secured = await client.post(f"{url}/scene-secure", headers=auth(p.dispatcher))
    assert secured.status_code == 200
    assert secured.json()["scene_secured_at"] is not None
    twice = await client.post(f"{url}/scene-secure", headers=auth(p.dispatcher))
    assert twice.status_code == 200

    moving = await client.post(
        f"{url}/en-route", headers=auth(p.ana_key), json={"position": {"lat": 38.36, "lon": -81.7}}
    )
    assert moving.status_code == 200
    assert moving.json()["status"] == "en_route"
    arrived = await client.post(f"{url}/on-scene", headers=auth(p.ana_key))
    assert arrived.status_code == 200
    assert arrived.json()["status"] == "on_scene"
    cleared = await client.post(
        f"{url}/clear",
        headers=auth(p.ana_key),
        json={"outcome": "referred", "referrals": ["detox", "mat"]},
    )
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert body["status"] == "cleared"
    assert body["referrals"] == ["detox", "mat"]
    assert await peer_status(db, p.ana.id) == "available"

    # Dispatch hears each change in order, and never the outcome.
    assert await outbox_types(db, p.call.id) == [
        "assignment.offered",
        "assignment.accepted",
        "assignment.scene_secure",
        "assignment.en_route",
        "assignment.on_scene",
        "assignment.cleared",
    ]
    async with db.sessionmaker() as session:
        messages = (await session.scalars(select(OutboxMessage))).all()
        assert [m.seq for m in messages] == list(range(1, 7))
        for message in messages:
            text = str(message.payload)
            assert "referred" not in text
            assert "detox" not in text
            assert "outcome" not in text
            assert message.payload["data"]["call"]["incident_number"] == p.call.incident_number
            assert message.payload["data"]["peer"]["display_name"] == "Ana"

    # The history and the dispatcher's view.
    detail = await client.get(url, headers=auth(p.supervisor))
    history = [(h["from_status"], h["to_status"]) for h in detail.json()["history"]]
    assert history[0] == (None, "offered")
    assert history[-1] == ("on_scene", "cleared")
    seen_by_dispatch = (await client.get(url, headers=auth(p.dispatcher))).json()
    assert seen_by_dispatch["outcome"] is None
    assert seen_by_dispatch["referrals"] is None
    assert seen_by_dispatch["ranking"] is None
    seen_by_peer = (await client.get(url, headers=auth(p.ana_key))).json()
    assert seen_by_peer["ranking"] is None
    assert seen_by_peer["outcome"] == "referred"

    # The call shows its assignment.
    shown = (await client.get(f"/v1/calls/{p.call.id}", headers=auth(p.dispatcher))).json()
    assert shown["assignment"]["id"] == offer["id"]
    assert shown["assignment"]["status"] == "cleared"
    listed = (await client.get("/v1/calls", headers=auth(p.dispatcher))).json()
    assert listed["items"][0]["assignment"]["peer_display_name"] == "Ana"


async def test_decline_moves_to_the_next_then_unfilled(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    declined = await client.post(f"/v1/assignments/{offer['id']}/decline", headers=auth(p.ana_key))
    assert declined.status_code == 200
    assert declined.json()["status"] == "declined"

    ben_offers = await client.get("/v1/assignments?status=offered", headers=auth(p.ben_key))
    [second] = ben_offers.json()["items"]
    assert second["peer"]["display_name"] == "Ben"
    assert second["request_id"] == offer["request_id"]
    left = {
        x["display_name"]: x["why"]
        for x in (
            await client.get(f"/v1/assignments/{second['id']}", headers=auth(p.supervisor))
        ).json()["ranking"]["left_out"]
    }
    assert left["Ana"] == "already offered this request (declined)"

    declined = await client.post(f"/v1/assignments/{second['id']}/decline", headers=auth(p.ben_key))
    assert declined.status_code == 200
    unfilled = await client.get(
        f"/v1/assignments?status=unfilled&call={p.call.id}", headers=auth(p.supervisor)
    )
    [last] = unfilled.json()["items"]
    assert last["peer"] is None
    assert last["ranking"]["summary"].startswith("no peer free")
    assert await outbox_types(db, p.call.id) == [
        "assignment.offered",
        "assignment.declined",
        "assignment.offered",
        "assignment.declined",
        "assignment.unfilled",
    ]


async def test_no_coverage_is_recorded_with_the_next_shift(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        tomorrow = await program.peer(session, "Cy", shift_hours=(20, 28))
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/no-coverage")
    assert datetime.fromisoformat(problem["next_available_at"]) > now + timedelta(hours=19)
    # The refusal is itself recorded, and dispatch told.
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, uuid.UUID(problem["assignment_id"]))
        assert stored is not None
        assert stored.status == "unfilled"
    assert await outbox_types(db, call.id) == ["assignment.unfilled"]
    assert tomorrow.status == "available"


async def test_who_is_left_out_and_why(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "other", {PUTNAM: "primary"})
        await program.peer(session, "Off", status="off_duty")
        await program.peer(
            session,
            "Lapsed",
            credentials={"prss_certification": now - timedelta(days=1), "nda": None},
        )
        await program.peer(session, "Stranger", provider_id="other")
        await program.peer(session, "Ok", home=CHARLESTON)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "supervisor")  # sees the ranking
    offer = (
        await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    ).json()
    assert offer["peer"]["display_name"] == "Ok"
    why = {x["display_name"]: x["why"] for x in offer["ranking"]["left_out"]}
    assert why["Off"] == "status off_duty"
    assert "prss_certification expired" in why["Lapsed"]
    assert "cjis_background missing" in why["Lapsed"]
    assert why["Stranger"] == "provider other does not serve the call's county"


async def test_neighbouring_county_within_the_travel_limit(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", PUTNAM: "primary"})
        await program.peer(session, "Putnam Pat", counties=(PUTNAM,), home=WINFIELD)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    offer = (
        await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    ).json()
    assert offer["status"] == "offered"
    assert offer["fallback"] is True
    assert offer["county"]["name"] == "Putnam"
    assert 25 < offer["distance_km"] < 40


async def test_neighbouring_county_beyond_the_limit_is_unfilled(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"fallback_max_km": 20})
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", PUTNAM: "primary"})
        await program.peer(session, "Putnam Pat", counties=(PUTNAM,), home=WINFIELD)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert response.status_code == 409
    async with db.sessionmaker() as session:
        unfilled = await session.get(Assignment, uuid.UUID(response.json()["assignment_id"]))
        assert unfilled is not None
        [left] = unfilled.ranking["left_out"]
        assert "beyond the 20 km travel limit" in left["why"]


async def test_a_neighbouring_provider_that_does_not_serve_the_call_county_is_not_asked(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {PUTNAM: "primary"})
        await program.peer(session, "Rp Peer", provider_id="rp", counties=(PUTNAM,), home=WINFIELD)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert response.status_code == 409


async def test_requests_refused_for_calls_that_cannot_have_a_peer(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Ana")
        ineligible = await program.call(session, source.id, decision="ineligible")
        untriaged = await program.call(session, source.id, decision=None)
        closed = await program.call(session, source.id, status="closed")
        review = await program.call(session, source.id, decision="review")
    dispatcher = await make_key(db, "dispatcher")
    for call in (ineligible, untriaged, closed):
        response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("/call-not-requestable")
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(PeerRequest))).all() == []
    ok = await client.post(f"/v1/calls/{review.id}/peer-requests", headers=auth(dispatcher))
    assert ok.status_code == 201


async def test_peers_act_only_on_their_own(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    url = f"/v1/assignments/{offer['id']}"
    assert (await client.post(f"{url}/accept", headers=auth(p.ben_key))).status_code == 404
    assert (await client.get(url, headers=auth(p.ben_key))).status_code == 404
    assert (await client.post(f"{url}/cancel", headers=auth(p.ana_key))).status_code == 403
    assert (await client.post(f"{url}/scene-secure", headers=auth(p.ana_key))).status_code == 403
    assert (await client.post(f"{url}/accept", headers=auth(p.dispatcher))).status_code == 403
    ben_list = await client.get("/v1/assignments", headers=auth(p.ben_key))
    assert ben_list.json()["items"] == []
    # A supervisor may answer for a peer (a phone call to the coordinator).
    accepted = await client.post(f"{url}/accept", headers=auth(p.supervisor))
    assert accepted.status_code == 200
    async with db.sessionmaker() as session:
        changes = (await session.scalars(select(AssignmentChange))).all()
        assert changes[-1].actor.endswith("(supervisor)")


async def test_transitions_out_of_order_are_conflicts(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    url = f"/v1/assignments/{offer['id']}"
    for action in ("on-scene", "en-route"):
        response = await client.post(f"{url}/{action}", headers=auth(p.ana_key))
        assert response.status_code == 409
        assert response.json()["assignment_status"] == "offered"
    cleared = await client.post(
        f"{url}/clear", headers=auth(p.ana_key), json={"outcome": "no_contact"}
    )
    assert cleared.status_code == 409
    cancelled = await client.post(f"{url}/cancel", headers=auth(p.dispatcher))
    assert cancelled.status_code == 200
    assert cancelled.json()["cancel_reason"] == "dispatcher"
    late = await client.post(f"{url}/accept", headers=auth(p.ana_key))
    assert late.status_code == 409
    assert late.json()["type"].endswith("/assignment-conflict")
    assert "cancelled" in late.json()["detail"]


async def test_offer_expires_and_moves_on_with_the_clock(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    start = datetime.now(UTC)
    app.state.clock = lambda: start
    offer = (await request(client, p)).json()
    assert datetime.fromisoformat(offer["expires_at"]) == start + timedelta(seconds=120)

    # Before the deadline the sweep leaves it alone.
    jobs = app.state.call_follow_up
    jobs._clock = lambda: start + timedelta(seconds=119)
    assert await jobs.sweep() == 0
    # After it, the offer expires and the next candidate is asked.
    jobs._clock = lambda: start + timedelta(seconds=121)
    assert await jobs.sweep() == 1
    async with db.sessionmaker() as session:
        first = await session.get(Assignment, uuid.UUID(offer["id"]))
        assert first is not None
        assert first.status == "expired"
        live = await session.scalar(select(Assignment).where(Assignment.status == "offered"))
        assert live is not None
        assert live.peer_id == p.ben.id
    assert await outbox_types(db, p.call.id) == [
        "assignment.offered",
        "assignment.expired",
        "assignment.offered",
    ]


async def test_accept_after_the_deadline_loses_to_the_timer(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    start = datetime.now(UTC)
    app.state.clock = lambda: start
    offer = (await request(client, p)).json()
    app.state.clock = lambda: start + timedelta(seconds=120)  # the deadline is exclusive
    late = await client.post(f"/v1/assignments/{offer['id']}/accept", headers=auth(p.ana_key))
    assert late.status_code == 409
    assert late.json()["type"].endswith("/offer-expired")
    # The expiry was kept and the next peer asked, although the answer was a refusal.
    ben = await client.get("/v1/assignments?status=offered", headers=auth(p.ben_key))
    assert len(ben.json()["items"]) == 1
    assert await peer_status(db, p.ana.id) == "available"


async def test_scene_gate_off_for_embedded_agencies(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session, "RIDEALONG PD", scene_gate=False)
        peer = await program.peer(session, "Ana")
        call = await program.call(session, source.id, agency_name="RIDEALONG PD")
    dispatcher = await make_key(db, "dispatcher")
    key = await make_key(db, "peer", f"peer:{peer.id}")
    offer = (
        await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    ).json()
    assert offer["scene_secure_required"] is False
    url = f"/v1/assignments/{offer['id']}"
    assert (await client.post(f"{url}/accept", headers=auth(key))).status_code == 200
    assert (await client.post(f"{url}/en-route", headers=auth(key))).status_code == 200


async def test_embedded_peer_is_preferred(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Near", home=CHARLESTON)
        await program.peer(session, "Embedded", home=ST_ALBANS, embedded="Charleston PD")
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "supervisor")  # sees the ranking
    offer = (
        await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    ).json()
    assert offer["peer"]["display_name"] == "Embedded"
    assert "embedded with CHARLESTON PD" in offer["ranking"]["candidates"][0]["reasons"]


async def test_a_peer_on_one_call_is_not_offered_another(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Only")
        first = await program.call(session, source.id)
        second = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    one = await client.post(f"/v1/calls/{first.id}/peer-requests", headers=auth(dispatcher))
    two = await client.post(f"/v1/calls/{second.id}/peer-requests", headers=auth(dispatcher))
    assert one.status_code == 201
    assert two.status_code == 409
    async with db.sessionmaker() as session:
        unfilled = await session.get(Assignment, uuid.UUID(two.json()["assignment_id"]))
        assert unfilled is not None
        assert unfilled.ranking["left_out"][0]["why"] == "on another assignment"


async def test_next_available_skips_shifts_of_peers_who_could_not_be_offered(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "other", {PUTNAM: "primary"})
        # Starts soonest, but the NDA will have expired by then.
        await program.peer(
            session,
            "Lapsing",
            shift_hours=(2, 10),
            credentials={
                "prss_certification": None,
                "cjis_background": None,
                "nda": now + timedelta(hours=1),
            },
        )
        # Next, but of a provider that does not serve Kanawha.
        await program.peer(session, "Other", provider_id="other", shift_hours=(3, 11))
        await program.peer(session, "Later", shift_hours=(5, 13))
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    problem = response.json()
    assert response.status_code == 409
    next_at = datetime.fromisoformat(problem["next_available_at"])
    assert timedelta(hours=4.9) < next_at - now < timedelta(hours=5.1)


async def test_unfilled_says_who_was_on_and_why_not(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Off", status="off_duty")
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    problem = response.json()
    assert "1 on shift, none free (status off_duty)" in problem["detail"]
    assert "Off" not in problem["detail"]  # names and reasons are for supervisors
    supervisor = await make_key(db, "supervisor")
    unfilled = await client.get(
        f"/v1/assignments/{problem['assignment_id']}", headers=auth(supervisor)
    )
    assert unfilled.json()["ranking"]["left_out"][0]["why"] == "status off_duty"


async def test_decline_on_a_call_that_ended_does_not_offer_it_again(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    async with db.sessionmaker() as session, session.begin():
        call = await session.get(Call, p.call.id)
        assert call is not None
        call.status = "cancelled"  # CAD cancelled it; the follow-up has not run yet
    declined = await client.post(f"/v1/assignments/{offer['id']}/decline", headers=auth(p.ana_key))
    assert declined.status_code == 200
    assert await outbox_types(db, p.call.id) == ["assignment.offered", "assignment.declined"]


async def test_scene_secured_during_one_offer_holds_for_the_next(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    url = f"/v1/assignments/{offer['id']}"
    assert (await client.post(f"{url}/scene-secure", headers=auth(p.dispatcher))).status_code == 200
    await client.post(f"{url}/decline", headers=auth(p.ana_key))
    [second] = (await client.get("/v1/assignments?status=offered", headers=auth(p.ben_key))).json()[
        "items"
    ]
    assert second["scene_secured_at"] is not None
    url = f"/v1/assignments/{second['id']}"
    assert (await client.post(f"{url}/accept", headers=auth(p.ben_key))).status_code == 200
    assert (await client.post(f"{url}/en-route", headers=auth(p.ben_key))).status_code == 200


async def test_an_old_assignment_id_points_to_the_live_one(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    await client.post(f"/v1/assignments/{offer['id']}/decline", headers=auth(p.ana_key))
    stale = await client.post(f"/v1/assignments/{offer['id']}/cancel", headers=auth(p.dispatcher))
    problem = stale.json()
    assert stale.status_code == 409
    assert problem["status"] == 409
    assert problem["assignment_status"] == "declined"
    live = await client.get(f"/v1/calls/{p.call.id}", headers=auth(p.dispatcher))
    assert problem["live_assignment_id"] == live.json()["assignment"]["id"]


async def test_asking_again_right_after_no_coverage_gives_the_same_answer(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    first = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    again = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert first.status_code == again.status_code == 409
    assert first.json()["assignment_id"] == again.json()["assignment_id"]
    assert await outbox_types(db, call.id) == ["assignment.unfilled"]


async def test_a_position_sent_with_any_answer_is_kept(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    accepted = await client.post(
        f"/v1/assignments/{offer['id']}/accept",
        headers=auth(p.ana_key),
        json={"position": {"lat": 38.35, "lon": -81.63}},
    )
    assert accepted.status_code == 200
    async with db.sessionmaker() as session:
        peer = await session.get(Peer, p.ana.id)
        assert peer is not None
        assert (peer.last_lat, peer.last_lon) == (38.35, -81.63)
        assert peer.last_located_at is not None
