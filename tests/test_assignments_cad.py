"""Assignments driven by CAD: automatic requests, scene secured by CAD, a weapon reported
after the fact, a call cancelled; all through the ingest API and the worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from corespond.assignments.models import Assignment
from corespond.db import Database
from corespond.pipeline.jobs import EventWorker
from corespond.roster.models import Peer
from corespond.sources.models import CadSource
from tests import program
from tests.conftest import Source, make_key, serve_agency
from tests.helpers import cad_event, encode, signed_headers
from tests.program import SOUTH_CHARLESTON
from tests.test_assignments import auth, outbox_types


async def send(client: httpx.AsyncClient, source: Source, event: dict[str, object]) -> None:
    body = encode(event)
    response = await client.post(
        f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
    )
    assert response.status_code == 202, response.text


def stamp(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


async def live(db: Database) -> Assignment | None:
    async with db.sessionmaker() as session:
        return await session.scalar(
            select(Assignment).order_by(Assignment.created_at.desc()).limit(1)
        )


async def setup(db: Database, *, auto: bool = True) -> tuple[Peer, str]:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session, auto_request=auto)
        peer = await program.peer(session, "Ana", home=SOUTH_CHARLESTON)
    return peer, await make_key(db, "peer", f"peer:{peer.id}")


def worker(app: FastAPI, db: Database) -> EventWorker:
    return EventWorker(
        db,
        rulebook=app.state.rulebook,
        geography=app.state.geography,
        follow_up=app.state.call_follow_up,
    )


async def test_eligible_call_of_an_opted_in_agency_is_offered_at_once(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    peer, _ = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(2)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    assert offer.status == "offered"
    assert offer.peer_id == peer.id
    assert await outbox_types(db, offer.call_id) == ["assignment.offered"]
    # A further update does not request again.
    await send(client, source, cad_event("e2", "call.updated", stamp(1), priority=1))
    await worker(app, db).drain()
    async with db.sessionmaker() as session:
        assert len((await session.scalars(select(Assignment))).all()) == 1


async def test_agency_not_opted_in_waits_for_a_dispatcher(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    await setup(db, auto=False)
    await send(client, source, cad_event("e1", occurred_at=stamp(2)))
    await worker(app, db).drain()
    assert await live(db) is None
    assert await app.state.call_follow_up.sweep() == 0
    assert await live(db) is None


async def test_a_weapon_reported_later_cancels_the_assignment(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    peer, key = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(3)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    accepted = await client.post(f"/v1/assignments/{offer.id}/accept", headers=auth(key))
    assert accepted.status_code == 200
    async with db.sessionmaker() as session:
        assert (await session.get(Peer, peer.id)).status == "busy"  # type: ignore[union-attr]

    await send(
        client,
        source,
        cad_event("e2", "call.updated", stamp(1), narrative="CALLER NOW SAYS SUBJ HAS A GUN"),
    )
    await worker(app, db).drain()
    async with db.sessionmaker() as session:
        cancelled = await session.get(Assignment, offer.id)
        assert cancelled is not None
        assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "danger")
        assert (await session.get(Peer, peer.id)).status == "available"  # type: ignore[union-attr]
    assert (await outbox_types(db, offer.call_id))[-1] == "assignment.cancelled"
    # The peer cannot carry on, and no one can ask again for this call.
    moving = await client.post(f"/v1/assignments/{offer.id}/en-route", headers=auth(key))
    assert moving.status_code == 409
    dispatcher = await make_key(db, "dispatcher")
    again = await client.post(f"/v1/calls/{offer.call_id}/peer-requests", headers=auth(dispatcher))
    assert again.status_code == 409
    assert again.json()["type"].endswith("/call-not-requestable")


async def test_danger_found_by_a_peer_action_before_the_follow_up(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    """Between the fold that finds danger and its follow-up, a peer's action is refused and
    the assignment cancelled on the spot."""
    _, key = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(3)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    async with db.sessionmaker() as session, session.begin():
        from corespond.calls.models import Call

        await session.execute(
            update(Call)
            .where(Call.id == offer.call_id)
            .values(decision="ineligible", turned_dangerous_at=datetime.now(UTC))
        )
    response = await client.post(f"/v1/assignments/{offer.id}/accept", headers=auth(key))
    assert response.status_code == 409
    assert response.json()["type"].endswith("/cancelled-danger")
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, offer.id)
        assert stored is not None
        assert stored.cancel_reason == "danger"


async def test_cad_reports_the_scene_secure(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(CadSource)
            .where(CadSource.id == source.id)
            .values(scene_secure_statuses=["SECURE"], scene_secure_flags=["Scene Secured"])
        )
    _, key = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(3)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    url = f"/v1/assignments/{offer.id}"
    await client.post(f"{url}/accept", headers=auth(key))
    assert (await client.post(f"{url}/en-route", headers=auth(key))).status_code == 409

    await send(client, source, cad_event("e2", "call.updated", stamp(1), status="secure"))
    await worker(app, db).drain()
    moving = await client.post(f"{url}/en-route", headers=auth(key))
    assert moving.status_code == 200, moving.text
    assert moving.json()["scene_secured_by"] == "CAD"
    assert "assignment.scene_secure" in await outbox_types(db, offer.call_id)


async def test_scene_secure_flag_before_the_offer_counts(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(CadSource)
            .where(CadSource.id == source.id)
            .values(scene_secure_flags=["SCENE SECURED"])
        )
    _, _key = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(3), hazards=["scene secured"]))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    assert offer.scene_secured_at is not None


async def test_cad_cancelling_the_call_cancels_the_assignment(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    peer, key = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(3)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    await client.post(f"/v1/assignments/{offer.id}/accept", headers=auth(key))
    await send(client, source, cad_event("e2", "call.cancelled", stamp(1)))
    await worker(app, db).drain()
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, offer.id)
        assert stored is not None
        assert (stored.status, stored.cancel_reason) == ("cancelled", "call_cancelled")
        assert (await session.get(Peer, peer.id)).status == "available"  # type: ignore[union-attr]


async def test_closing_the_call_leaves_a_peer_on_scene_to_clear(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    _, key = await setup(db)
    await send(client, source, cad_event("e1", occurred_at=stamp(3)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    dispatcher = await make_key(db, "dispatcher")
    url = f"/v1/assignments/{offer.id}"
    await client.post(f"{url}/accept", headers=auth(key))
    await client.post(f"{url}/scene-secure", headers=auth(dispatcher))
    await client.post(f"{url}/en-route", headers=auth(key))
    await client.post(f"{url}/on-scene", headers=auth(key))
    await send(client, source, cad_event("e2", "call.closed", stamp(1)))
    await worker(app, db).drain()
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, offer.id)
        assert stored is not None
        assert stored.status == "on_scene"
    cleared = await client.post(f"{url}/clear", headers=auth(key), json={"outcome": "contact_made"})
    assert cleared.status_code == 200


async def test_unknown_county_goes_unfilled_not_lost(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    await setup(db)
    # An agency whose home county is not on this deployment's map.
    await serve_agency(db, source.id, "NOWHERE PD", "99999")
    event = cad_event("e1", occurred_at=stamp(2), agency="NOWHERE PD")
    event["call"]["location"] = {"address": "somewhere"}  # type: ignore[index]
    await send(client, source, event)
    await worker(app, db).drain()
    dispatcher = await make_key(db, "dispatcher")
    async with db.sessionmaker() as session:
        from corespond.calls.models import Call

        call = await session.scalar(select(Call))
        assert call is not None
        assert call.county_fips is None
    response = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert response.status_code == 409
    assert "county is unknown" in response.json()["detail"]
    assert uuid.UUID(response.json()["assignment_id"])


async def test_a_sweep_cancels_for_danger_before_any_offer_expires(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    await setup(db)
    async with db.sessionmaker() as session, session.begin():
        await program.peer(session, "Ben", home=program.ST_ALBANS)
    await send(client, source, cad_event("e1", occurred_at=stamp(3)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    await send(
        client, source, cad_event("e2", "call.updated", stamp(1), narrative="SUBJ HAS A KNIFE")
    )
    # Folded by a worker that does not follow up (a crash right after the fold, say) …
    await EventWorker(db, rulebook=app.state.rulebook, geography=app.state.geography).drain()
    # … and the next sweep runs after the offer's deadline has passed.
    jobs = app.state.call_follow_up
    jobs._clock = lambda: datetime.now(UTC) + timedelta(minutes=5)
    await jobs.sweep()
    assert await outbox_types(db, offer.call_id) == ["assignment.offered", "assignment.cancelled"]


async def test_an_old_event_is_triaged_but_sends_no_peer_by_itself(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    """An agency that opted in gets automatic requests only for calls whose latest event is
    younger than auto_request_max_age_seconds (5 minutes): an event replayed six days later
    is folded and triaged, and waits for a dispatcher; so does one dated an hour ahead."""
    await setup(db)
    await send(client, source, cad_event("old", occurred_at=stamp(6 * 24 * 60)))
    await send(client, source, cad_event("stale", incident_number="26-2", occurred_at=stamp(6)))
    await send(client, source, cad_event("ahead", incident_number="26-4", occurred_at=stamp(-60)))
    await worker(app, db).drain()
    await app.state.call_follow_up.sweep()
    assert await live(db) is None
    async with db.sessionmaker() as session:
        from corespond.calls.models import Call

        decisions = set((await session.scalars(select(Call.decision))).all())
    assert decisions == {"eligible"}

    await send(client, source, cad_event("fresh", incident_number="26-3", occurred_at=stamp(1)))
    await worker(app, db).drain()
    offer = await live(db)
    assert offer is not None
    assert offer.status == "offered"


async def test_matching_measures_from_the_point_the_call_was_located_at(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source
) -> None:
    """A call is located once, when it is folded: the point it is placed at (here its
    town's: CAD sent an address without coordinates) is stored with it, and matching
    measures from that point instead of geocoding the call again."""
    from corespond.calls.models import Call
    from corespond.geo.atlas import haversine_km

    peer, _ = await setup(db, auto=False)
    place = {"address": "1 Capitol St", "city": "Charleston"}
    await send(client, source, cad_event("e1", occurred_at=stamp(2), location=place))
    await worker(app, db).drain()
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call))
        assert call is not None
        assert (call.county_fips, call.county_method) == (program.KANAWHA, "place")
        assert call.located_lat is not None
        assert call.located_lon is not None
    # Whatever the stored point says is where matching measures from.
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Call).values(located_lat=program.ST_ALBANS[0], located_lon=program.ST_ALBANS[1])
        )
    dispatcher = await make_key(db, "dispatcher")
    asked = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert asked.status_code == 201, asked.text
    offer = await live(db)
    assert offer is not None
    assert offer.peer_id == peer.id
    assert offer.ranking["call_position"] == f"the call's {call.county_detail}"
    expected = haversine_km(*SOUTH_CHARLESTON, *program.ST_ALBANS)
    assert offer.distance_km is not None
    assert abs(offer.distance_km - expected) < 0.01
