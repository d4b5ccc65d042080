"""The event worker: folds stored CAD events into calls, outside the request path.

It wakes on ``LISTEN corespond_cad_event`` (NOTIFY is sent in the ingest transaction) and is
also swept periodically by the scheduler, so an event whose notification was missed (worker
down, connection lost, crash after commit) is still processed. Several workers in several
processes are safe: events are claimed with ``FOR UPDATE SKIP LOCKED`` and each call is
refolded under its row lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import corespond.models  # noqa: F401 - every table, so foreign keys resolve in any process
from corespond.db import Database
from corespond.geo.service import Geography, geography_for
from corespond.ingest import service
from corespond.ingest.repository import NOTIFY_CHANNEL
from corespond.listen import WokenLoop
from corespond.metrics import EVENTS_PROCESSED, EVENTS_UNPROCESSED
from corespond.triage.service import RuleBook

log = structlog.get_logger(__name__)


class EventWorker:
    """Drains pending CAD events; ``drain`` is safe to call from several tasks at once."""

    def __init__(
        self,
        database: Database,
        batch_size: int = 100,
        rulebook: RuleBook | None = None,
        geography: Geography | None = None,
        after_fold: Callable[[Sequence[uuid.UUID]], Awaitable[Any]] | None = None,
    ) -> None:
        self._database = database
        self._after_fold = after_fold
        self._rulebook = rulebook or RuleBook()
        self._geography = geography or geography_for()
        self._batch_size = batch_size
        self._lock = asyncio.Lock()
        self._loop = WokenLoop(database, NOTIFY_CHANNEL, "cad-event-worker")

    async def drain(self) -> int:
        """Process pending events until none are left; returns how many were handled."""
        total = 0
        async with self._lock:
            while True:
                rules = self._rulebook.rules
                folded: list[uuid.UUID] = []
                async with self._database.sessionmaker() as session, session.begin():
                    handled = await service.process_pending(
                        session, self._batch_size, rules, self._geography, folded
                    )
                total += handled
                if folded and self._after_fold is not None:
                    await self._after_fold(folded)
                if handled < self._batch_size:
                    break
        if total:
            EVENTS_PROCESSED.inc(total)
        return total

    async def sweep(self) -> None:
        """The scheduler's periodic pass; also re-establishes a lost LISTEN connection."""
        await self._loop.relisten()
        try:
            self._rulebook.reload_if_changed()
            await self.drain()
            async with self._database.sessionmaker() as session, session.begin():
                await service.retriage(session, self._rulebook.rules, self._geography)
            async with self._database.sessionmaker() as session:
                pending, dead = await service.unprocessed_counts(session)
            EVENTS_UNPROCESSED.labels("pending").set(pending)
            EVENTS_UNPROCESSED.labels("dead").set(dead)
            if dead:
                log.warning("cad_events_dead", count=dead, hint="see cad_event.last_error")
        except Exception as exc:  # a sweep must never kill the scheduler job
            log.error("cad_event_sweep_failed", error_type=type(exc).__name__)

    async def start(self) -> None:
        """Listen for notifications and drain whenever one arrives."""
        await self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        while True:
            await self._loop.wake.wait()
            self._loop.wake.clear()
            try:
                await self.drain()
            except Exception as exc:
                log.error("cad_event_drain_failed", error_type=type(exc).__name__)
                await asyncio.sleep(1)


def schedule_sweep(scheduler: AsyncIOScheduler, worker: EventWorker, seconds: float) -> None:
    """Sweep for unprocessed events every ``seconds`` (and once right away)."""
    scheduler.add_job(
        worker.sweep,
        "interval",
        seconds=seconds,
        id="cad-event-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
