"""The hand-off from ingest to the worker, with real commits: races, restarts, LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from corespond.app import create_app
from corespond.calls.models import Call
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.ingest.models import CadEvent
from corespond.pipeline.jobs import EventWorker
from corespond.triage.ruleset import load_rules
from tests.conftest import PgServer, Source, make_source
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


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
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
        await until(lambda: _has_folded(committed_db), within=15)


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


async def test_ingest_is_not_blocked_by_a_worker_holding_the_call_lock(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    from corespond.calls import service as calls
    from corespond.pipeline import flow

    source = await make_source(committed_db, box)
    async with running(settings, committed_db) as client:
        call_id = (await post(client, source, cad_event("e1"))).json()["call_id"]
        async with committed_db.sessionmaker() as worker_session, worker_session.begin():
            await calls.lock(worker_session, uuid.UUID(call_id))  # a worker mid-fold
            update = cad_event("e2", "call.updated", "2026-11-23T05:00:00-05:00", narrative="N2")
            response = await asyncio.wait_for(post(client, source, update), timeout=3)
            assert response.status_code == 202
            # The fold under this lock reads history after locking, so it sees e2 too.
            await flow.process_pending(worker_session, 100, load_rules(), now=datetime.now(UTC))
    [call] = await folded_calls(committed_db)
    assert call.narrative == "N2"
    assert call.event_count == 2


async def test_an_event_that_cannot_be_folded_backs_off_and_is_reported_dead(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    from sqlalchemy import update

    from corespond.ingest import service
    from corespond.ingest.repository import MAX_ATTEMPTS
    from corespond.metrics import EVENTS_UNPROCESSED

    source = await make_source(committed_db, box)
    async with running(settings, committed_db) as client:
        await post(client, source, cad_event("good", incident_number="A-1"))
        await post(client, source, cad_event("bad", incident_number="B-1"))
    async with committed_db.sessionmaker() as session, session.begin():
        # A payload this version cannot read (say, written by a future release).
        await session.execute(
            update(CadEvent).where(CadEvent.event_id == "bad").values(payload={"v": 99})
        )

    worker = EventWorker(committed_db)
    assert await worker.drain() == 2
    async with committed_db.sessionmaker() as session:
        bad = await session.scalar(select(CadEvent).where(CadEvent.event_id == "bad"))
        assert bad is not None
        assert (bad.attempts, bad.processed_at) == (1, None)
        assert bad.next_attempt_at is not None
        assert bad.last_error == "KeyError"
    assert await worker.drain() == 0  # backing off, not hot-looping
    assert len(await folded_calls(committed_db)) == 1  # the good call was not held back

    async with committed_db.sessionmaker() as session, session.begin():
        await session.execute(
            update(CadEvent).where(CadEvent.event_id == "bad").values(attempts=MAX_ATTEMPTS)
        )
    await worker.sweep()
    assert EVENTS_UNPROCESSED.labels("dead")._value.get() == 1
    async with committed_db.sessionmaker() as session:
        assert await service.unprocessed_counts(session) == (0, 1)


async def test_standalone_worker_process_folds_events_and_stops_on_sigterm(
    settings: Settings, committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    import os
    import signal
    import sys

    from tests.conftest import TEST_KEY

    source = await make_source(committed_db, box)
    async with running(settings, committed_db, worker_enabled=False) as client:
        assert (await post(client, source, cad_event())).status_code == 202
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.engine.url.render_as_string(hide_password=False),
        "CORESPOND_SECRET_KEY": TEST_KEY.decode(),
        "CORESPOND_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "corespond", "worker",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(lambda: _has_folded(committed_db), within=90)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert b"worker_stopped" in stderr


async def test_sweep_triages_calls_that_have_no_decision(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    from sqlalchemy import update

    source = await make_source(committed_db, box)
    async with running(settings, committed_db, worker_enabled=False) as client:
        await post(client, source, cad_event())
    worker = EventWorker(committed_db)
    await worker.drain()
    async with committed_db.sessionmaker() as session, session.begin():
        await session.execute(update(Call).values(decision=None))  # as before triage existed
    await worker.sweep()
    [call] = await folded_calls(committed_db)
    assert call.decision == "eligible"


async def test_open_calls_are_retriaged_when_the_rules_change(
    settings: Settings, committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    from corespond.triage.service import RuleBook

    source = await make_source(committed_db, box)
    async with running(settings, committed_db, worker_enabled=False) as client:
        event = cad_event(
            call_type="103D",
            call_type_description="CHECK SUBJECT",
            narrative="RP ADV W/M 50S DRUNK ON PORCH OF THE LIBRARY, SLURRING, NO WPNS SEEN",
        )
        await post(client, source, event)
    override = tmp_path / "local.yaml"
    override.write_text('version: "l1"\n')
    book = RuleBook(override)
    worker = EventWorker(committed_db, rulebook=book)
    await worker.drain()
    [call] = await folded_calls(committed_db)
    assert call.decision == "review"  # 103D is no kind of call these rules know yet

    override.write_text('version: "l2"\ncodes:\n  default:\n    "103D": [kind.intoxication]\n')
    os.utime(override, (5, 5))
    await worker.sweep()
    [call] = await folded_calls(committed_db)
    assert call.decision == "eligible"
    assert call.decision_rules_version is not None
    assert "+l2#" in call.decision_rules_version


async def test_an_event_of_an_agency_the_source_does_not_serve_is_refused(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    """A source files calls only for its own registered agencies: another agency's event is
    refused (403), and nothing of it is stored or folded."""
    source = await make_source(committed_db, box)
    event = cad_event(agency="WAYNE COUNTY SHERIFF", location={"address": "RT 52 MM 4"})
    async with running(settings, committed_db, worker_enabled=False) as client:
        response = await post(client, source, event)
    assert response.status_code == 403
    assert "WAYNE COUNTY SHERIFF" in response.json()["detail"]
    async with committed_db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CadEvent)) == 0
        assert await session.scalar(select(func.count()).select_from(Call)) == 0


async def test_first_events_of_one_new_call_racing_each_other_share_one_call(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    """Twenty different first events of one new incident at once: one call, every event
    attached to it (the one statement that stores an event makes the call; whoever loses
    that race attaches its event right after)."""
    source = await make_source(committed_db, box)
    bodies = [encode(cad_event(event_id=f"race-{n}", incident_number="26-777")) for n in range(20)]
    async with running(settings, committed_db) as client:
        responses = await asyncio.gather(
            *(client.post(URL, content=b, headers=signed_headers(source.secret, b)) for b in bodies)
        )
    assert [r.json()["status"] for r in responses] == ["accepted"] * 20
    assert len({r.json()["call_id"] for r in responses}) == 1
    async with committed_db.sessionmaker() as session:
        calls = (await session.scalars(select(Call))).all()
        attached = await session.scalar(
            select(func.count()).select_from(CadEvent).where(CadEvent.call_id == calls[0].id)
        )
    assert len(calls) == 1
    assert attached == 20


async def test_a_batch_of_updates_writes_each_call_once_and_reads_no_history(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    from sqlalchemy import event

    source = await make_source(committed_db, box)
    incidents = [f"26-{n:03d}" for n in range(20)]
    async with running(settings, committed_db) as client:
        for incident in incidents:
            await post(client, source, cad_event(f"c-{incident}", incident_number=incident))
        worker = EventWorker(committed_db)
        assert await worker.drain() == 20
        for incident in incidents:
            update = cad_event(
                f"u-{incident}",
                "call.updated",
                "2026-11-23T04:20:00-05:00",
                incident_number=incident,
                narrative=f"SUBJ TALKING WITH EMS {incident}",
            )
            await post(client, source, update)

    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(committed_db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await worker.drain() == 20
    finally:
        event.remove(committed_db.engine.sync_engine, "before_cursor_execute", seen)
    updates = [s for s in statements if s.startswith("UPDATE call ")]
    # One UPDATE statement for the 20 calls (sent as one batch), none of their events read
    # back: each update came after everything folded into its call.
    assert len(updates) == 1, updates
    refolds = [s for s in statements if "processed_at IS NOT NULL OR" in s]
    assert not refolds
    calls = await folded_calls(committed_db)
    assert {c.narrative for c in calls} == {f"SUBJ TALKING WITH EMS {i}" for i in incidents}
    assert {c.event_count for c in calls} == {2}


async def test_ingest_carries_on_when_its_connections_are_cut(
    settings: Settings, committed_db: Database, box: SecretBox, test_server: PgServer
) -> None:
    from sqlalchemy import text

    source = await make_source(committed_db, box)
    async with running(settings, committed_db) as client:
        first = await post(client, source, cad_event("one", incident_number="C-1"))
        assert first.status_code == 202
        # As a database restart does: every connection of the service's role is cut.
        async with test_server.owner_of(committed_db) as owner, owner.engine.begin() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        response = await post(client, source, cad_event("two", incident_number="C-1"))
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "accepted"
    assert await count_events(committed_db) == 2


async def test_ingest_answers_503_at_once_when_the_database_cannot_be_reached(
    settings: Settings,
) -> None:
    unreachable = Database.connect("postgresql+asyncpg://nobody@/nowhere?host=/nonexistent")
    app = create_app(settings, database=unreachable)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                source = Source("kanawha-911", "whsec_" + "A" * 44)
                response = await post(client, source, cad_event())
    finally:
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert "send it again" in response.json()["detail"]
