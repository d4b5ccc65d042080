"""Races, on a database with real commits: many calls for few peers, answers racing each
other and the timer, two instances sweeping the same timers."""

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
from sqlalchemy import func, select

from corespond.app import create_app
from corespond.assignments.models import Assignment
from corespond.assignments.policy import MatchPolicy
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.pipeline.jobs import CallFollowUp
from corespond.roster.models import Peer
from tests import program
from tests.conftest import make_key, make_source
from tests.test_assignments import auth


@pytest.fixture
async def live_app(settings: Settings, committed_db: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=committed_db)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def live_client(live_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_hundred_calls_five_peers(
    live_client: httpx.AsyncClient, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        peers = [await program.peer(session, f"Peer {i}") for i in range(5)]
        calls = [await program.call(session, source.id) for _ in range(100)]
    dispatcher = await make_key(committed_db, "dispatcher")

    responses = await asyncio.gather(
        *(
            live_client.post(f"/v1/calls/{c.id}/peer-requests", headers=auth(dispatcher))
            for c in calls
        )
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 5, 409: 95}, codes
    assert all(r.json()["type"].endswith("/no-coverage") for r in responses if r.status_code == 409)
    offered = [r.json()["peer"]["id"] for r in responses if r.status_code == 201]
    assert sorted(offered) == sorted(str(p.id) for p in peers)  # each peer exactly once

    async with committed_db.sessionmaker() as session:
        by_status = dict(
            (
                await session.execute(
                    select(Assignment.status, func.count()).group_by(Assignment.status)
                )
            ).all()
        )
        assert by_status == {"offered": 5, "unfilled": 95}
        messages = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert messages == 100


async def test_same_call_requested_twice_at_once(
    live_client: httpx.AsyncClient, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        for i in range(3):
            await program.peer(session, f"Peer {i}")
        call = await program.call(session, source.id)
    dispatcher = await make_key(committed_db, "dispatcher")
    responses = await asyncio.gather(
        *(
            live_client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
            for _ in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1


async def _offer(client: httpx.AsyncClient, db: Database, box: SecretBox) -> tuple[str, str, str]:
    source = await make_source(db, box)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        peer = await program.peer(session, "Ana", home=program.CHARLESTON)
        await program.peer(session, "Ben", home=program.ST_ALBANS)
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    key = await make_key(db, "peer", f"peer:{peer.id}")
    offer = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert offer.json()["peer"]["id"] == str(peer.id)
    return offer.json()["id"], key, dispatcher


async def test_accept_racing_decline_one_wins(
    live_client: httpx.AsyncClient, committed_db: Database, box: SecretBox
) -> None:
    assignment_id, key, _ = await _offer(live_client, committed_db, box)
    url = f"/v1/assignments/{assignment_id}"
    accept, decline = await asyncio.gather(
        live_client.post(f"{url}/accept", headers=auth(key)),
        live_client.post(f"{url}/decline", headers=auth(key)),
    )
    assert sorted([accept.status_code, decline.status_code]) == [200, 409]
    loser = accept if accept.status_code == 409 else decline
    assert loser.json()["type"].endswith("/assignment-conflict")


async def test_accept_racing_the_timer(
    live_app: FastAPI,
    live_client: httpx.AsyncClient,
    committed_db: Database,
    box: SecretBox,
) -> None:
    assignment_id, key, _ = await _offer(live_client, committed_db, box)
    jobs = CallFollowUp(
        committed_db,
        MatchPolicy.of(live_app.state.settings),
        live_app.state.geography,
        clock=lambda: datetime.now(UTC) + timedelta(minutes=5),
    )
    accept, expired = await asyncio.gather(
        live_client.post(f"/v1/assignments/{assignment_id}/accept", headers=auth(key)),
        jobs.sweep(),
    )
    async with committed_db.sessionmaker() as session:
        stored = await session.get(Assignment, uuid.UUID(assignment_id))
        assert stored is not None
        if accept.status_code == 200:
            assert stored.status == "accepted"
            assert expired == 0
        else:
            assert accept.status_code == 409
            assert stored.status == "expired"
        kinds = Counter((await session.scalars(select(OutboxMessage.event_type))).all())
        # Never both: an accepted offer is not also expired.
        assert not (kinds["assignment.accepted"] and kinds["assignment.expired"])


async def test_two_instances_expire_each_offer_once(
    live_app: FastAPI,
    live_client: httpx.AsyncClient,
    committed_db: Database,
    box: SecretBox,
) -> None:
    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        for i in range(8):
            await program.peer(session, f"Peer {i}")
        calls = [await program.call(session, source.id) for _ in range(4)]
    dispatcher = await make_key(committed_db, "dispatcher")
    for call in calls:
        response = await live_client.post(
            f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher)
        )
        assert response.status_code == 201

    # A restart loses no timer: new instances read the deadlines from the database.
    later = datetime.now(UTC) + timedelta(minutes=3)
    instances = [
        CallFollowUp(
            Database.connect(str(committed_db.engine.url.render_as_string(hide_password=False))),
            MatchPolicy.of(live_app.state.settings),
            live_app.state.geography,
            clock=lambda: later,
        )
        for _ in range(2)
    ]
    try:
        done = await asyncio.gather(*(jobs.sweep() for jobs in instances))
    finally:
        for jobs in instances:
            await jobs._database.dispose()
    async with committed_db.sessionmaker() as session:
        kinds = Counter((await session.scalars(select(OutboxMessage.event_type))).all())
        statuses = Counter((await session.scalars(select(Assignment.status))).all())
    assert kinds["assignment.expired"] == 4  # each offer expired once, by one instance
    assert statuses["expired"] == 4
    assert statuses["offered"] == 4
    assert sum(done) == 4
    async with committed_db.sessionmaker() as session:
        peers = Counter(
            (
                await session.scalars(
                    select(Assignment.peer_id).where(Assignment.status == "offered")
                )
            ).all()
        )
        assert all(n == 1 for n in peers.values())
        assert all(p.status == "available" for p in (await session.scalars(select(Peer))).all())


async def test_a_lock_taken_after_a_read_sees_the_row_as_it_is_now(
    committed_db: Database, box: SecretBox
) -> None:
    """A call read, then changed by another transaction, then locked: the holder of the
    lock decides on the new row (a weapon reported meanwhile), not the copy it read."""
    from corespond.calls import service as calls
    from corespond.calls.models import Call

    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
    async with committed_db.sessionmaker() as reader:
        assert (await reader.get(Call, call.id)).decision == "eligible"  # type: ignore[union-attr]
        async with committed_db.sessionmaker() as writer, writer.begin():
            stored = await writer.get(Call, call.id)
            assert stored is not None
            stored.decision = "ineligible"
            stored.turned_dangerous_at = datetime.now(UTC)
        locked = await calls.lock(reader, call.id)
        assert locked.decision == "ineligible"
        assert locked.turned_dangerous_at is not None
        await reader.rollback()
