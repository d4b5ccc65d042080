"""The call's workflow as background work (see ``flow`` for the stations).

* ``EventWorker`` folds, locates and triages the calls of stored CAD events (steps 1 to 3,
  one transaction per batch), then follows each of them up (step 4). It wakes on
  ``LISTEN corespond_cad_event`` (NOTIFY is sent after ingest commits) and is also swept
  periodically, so an event whose notification was missed (worker down, connection lost,
  crash after commit) is still processed; the sweep also locates and triages again the calls
  that need it. Several workers in several processes are safe: events are claimed with
  ``FOR UPDATE SKIP LOCKED`` and each call is refolded under its row lock.
* ``CallFollowUp`` is step 4: for the calls a worker just advanced, and on a timer for every
  call out of step (a fold whose follow-up was lost, say), then the offers past their
  deadline, in that order: a call that turned dangerous or ended is settled before any of
  its offers expires and would be offered to the next peer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

import corespond.models  # noqa: F401 - every table, so foreign keys resolve in any process
from corespond.assignments.jobs import expire_due_offers
from corespond.assignments.policy import Context, MatchPolicy
from corespond.clock import Clock, system_clock
from corespond.db import Database
from corespond.errors import Problem
from corespond.geo.service import Geography, geography_for
from corespond.ingest import service as ingest
from corespond.listen import WokenLoop
from corespond.metrics import EVENTS_PROCESSED, EVENTS_UNPROCESSED
from corespond.pipeline import flow
from corespond.triage.service import RuleBook

log = structlog.get_logger(__name__)


class CallFollowUp:
    """Brings calls' assignments in step (step 4), each call in its own transaction, and
    moves unanswered offers on."""

    def __init__(
        self,
        database: Database,
        policy: MatchPolicy,
        geography: Geography,
        clock: Clock = system_clock,
    ) -> None:
        self._database = database
        self._policy = policy
        self._geography = geography
        self._clock = clock

    def context(self) -> Context:
        return Context(self._policy, self._geography, self._clock())

    async def sweep(self) -> int:
        """One pass: follow up every call out of step, then expire every due offer.
        Returns how many things were done. Never raises (it is a scheduler job)."""
        done = 0
        try:
            async with self._database.sessionmaker() as session:
                calls = await flow.calls_to_follow_up(session, self.context())
            done += await self.follow_up(calls)
            done += await expire_due_offers(self._database, self.context)
        except Exception as exc:
            log.error("assignment_sweep_failed", error_type=type(exc).__name__)
        return done

    async def follow_up(self, call_ids: Sequence[uuid.UUID]) -> int:
        """Follow up calls (just advanced, or found by the sweep), each in its own
        transaction, so one call's trouble holds back no other."""
        if not call_ids:
            return 0
        try:
            async with self._database.sessionmaker() as session:
                due = await flow.calls_to_follow_up(session, self.context(), call_ids)
        except Exception as exc:  # the sweep will find them again
            log.error("assignment_follow_up_failed", error_type=type(exc).__name__)
            return 0
        done = 0
        for call_id in due:
            try:
                async with self._database.sessionmaker() as session, session.begin():
                    what = await flow.follow_up(session, call_id, self.context())
            except Problem as problem:
                log.info("assignment_follow_up_refused", call_id=str(call_id), why=problem.detail)
                continue
            except Exception as exc:
                log.error(
                    "assignment_follow_up_failed",
                    call_id=str(call_id),
                    error_type=type(exc).__name__,
                )
                continue
            if what is not None:
                log.info("assignment_follow_up", call_id=str(call_id), done=what)
                done += 1
        return done


class EventWorker:
    """Drains pending CAD events through steps 1 to 3, then hands the calls to
    ``follow_up`` (none: the calls wait for the follow-up sweep). ``drain`` is safe to call
    from several tasks at once."""

    def __init__(
        self,
        database: Database,
        batch_size: int = 100,
        rulebook: RuleBook | None = None,
        geography: Geography | None = None,
        follow_up: CallFollowUp | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._database = database
        self._clock = clock
        self._follow_up = follow_up
        self._rulebook = rulebook or RuleBook()
        self._geography = geography or geography_for()
        self._batch_size = batch_size
        self._lock = asyncio.Lock()
        self._loop = WokenLoop(database, ingest.EVENTS_CHANNEL, "cad-event-worker")

    async def drain(self) -> int:
        """Process pending events until none are left; returns how many were handled."""
        total = 0
        async with self._lock:
            while True:
                rules = self._rulebook.rules
                advanced: list[uuid.UUID] = []
                async with self._database.sessionmaker() as session, session.begin():
                    handled = await flow.process_pending(
                        session,
                        self._batch_size,
                        rules,
                        self._geography,
                        advanced,
                        now=self._clock(),
                    )
                total += handled
                if advanced and self._follow_up is not None:
                    await self._follow_up.follow_up(advanced)
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
                await flow.retriage(
                    session, self._rulebook.rules, self._geography, now=self._clock()
                )
            async with self._database.sessionmaker() as session:
                pending, dead = await ingest.unprocessed_counts(session)
            EVENTS_UNPROCESSED.labels("pending").set(pending)
            EVENTS_UNPROCESSED.labels("dead").set(dead)
            if dead:
                log.warning("cad_events_dead", count=dead, hint="see cad_event.last_error")
        except Exception as exc:  # a sweep must never kill the scheduler job
            log.error("cad_event_sweep_failed", error_type=type(exc).__name__)

    def wake(self) -> None:
        """Drain now (events were stored by this process), as a notification would."""
        self._loop.wake.set()

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


def schedule_pipeline(
    scheduler: AsyncIOScheduler,
    worker: EventWorker,
    follow_up: CallFollowUp,
    *,
    events_every: float,
    follow_ups_every: float,
) -> None:
    """Sweep for unprocessed events and for calls out of step on their intervals, and once
    each right away (a restart loses no event and no timer)."""
    # The scheduler runs on the system's time, whatever clock the jobs read.
    scheduler.add_job(
        worker.sweep,
        "interval",
        seconds=events_every,
        id="cad-event-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=system_clock(),
    )
    scheduler.add_job(
        follow_up.sweep,
        "interval",
        seconds=follow_ups_every,
        id="assignment-timers",
        max_instances=1,
        coalesce=True,
        next_run_time=system_clock(),
    )
