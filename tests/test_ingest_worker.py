"""The hand-off from ingest to the worker, with real commits: races, restarts, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from corespond.app import create_app
from corespond.calls.models import Call
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.ingest.jobs import EventWorker
from corespond.ingest.models import CadEvent
from tests.conftest import Source, make_source
from tests.helpers import cad_event, encode, signed_headers

URL = "/v1/cad/kanawha-911/events"


@asynccontextmanager
async def running(
    settings: Settings, database: Database, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides), database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def post(client: httpx.AsyncClient, source: Source, document: object) -> httpx.Response:
    body = encode(document)
    return await client.post(URL, content=body, headers=signed_headers(source.secret, body))


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def folded_calls(database: Database) -> list[Call]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(select(Call).where(Call.folded_at.is_not(None)))
        return list(rows)


async def count_events(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CadEvent)) or 0)


async def test_twenty_concurrent_repeats_are_stored_and_processed_once(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    body = encode(cad_event())
    async with running(settings, committed_db) as client:
        responses = await asyncio.gather(
            *(
                client.post(URL, content=body, headers=signed_headers(source.secret, body))
                for _ in range(20)
            )
        )
    statuses = sorted(r.json()["status"] for r in responses)
    assert [r.status_code for r in responses] == [202] * 20
    assert statuses == ["accepted"] + ["duplicate"] * 19
    assert len({r.json()["call_id"] for r in responses}) == 1
    assert await count_events(committed_db) == 1

    worker = EventWorker(committed_db)
    assert await worker.drain() == 1
    assert await worker.drain() == 0


async def test_events_stored_before_a_restart_are_processed_after_it(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    async with running(settings, committed_db, worker_enabled=False) as client:
        assert (await post(client, source, cad_event())).status_code == 202
    assert await folded_calls(committed_db) == []  # "crashed" before processing

    async with running(settings, committed_db, worker_enabled=True, worker_sweep_seconds=60):
        await until(lambda: _has_folded(committed_db))
    [call] = await folded_calls(committed_db)
    assert call.agency == "CHARLESTON PD"


async def _has_folded(database: Database) -> bool:
    return bool(await folded_calls(database))


async def test_notify_wakes_the_worker_without_waiting_for_the_sweep(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    async with running(
        settings, committed_db, worker_enabled=True, worker_sweep_seconds=3600
    ) as client:
        await asyncio.sleep(0.2)  # let the start-up sweep pass
        assert (await post(client, source, cad_event())).status_code == 202
        await until(lambda: _has_folded(committed_db), within=3)


async def test_concurrent_workers_fold_out_of_order_events_to_the_in_order_state(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    documents = [
        cad_event(
            f"e{i}", "call.updated", f"2026-11-23T04:{10 + i:02d}:00-05:00", narrative=f"N{i}"
        )
        for i in range(1, 30)
    ]
    documents.insert(7, cad_event("e0", occurred_at="2026-11-23T04:00:00-05:00"))
    async with running(settings, committed_db, worker_enabled=False) as client:
        for document in reversed(documents):
            assert (await post(client, source, document)).status_code == 202
    workers = [EventWorker(committed_db, batch_size=3) for _ in range(4)]
    await asyncio.gather(*(w.drain() for w in workers))
    [call] = await folded_calls(committed_db)
    assert call.narrative == "N29"
    assert call.agency == "CHARLESTON PD"
    assert call.event_count == 30
    async with committed_db.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count()).select_from(CadEvent).where(CadEvent.processed_at.is_(None))
        )
    assert pending == 0
