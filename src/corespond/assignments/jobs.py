"""Timed assignment work: offer deadlines, and keeping assignments in step with calls.

Timers are rows, not memory: an offer's deadline is its ``expires_at``, and the sweep reads
the offers past it. So a restart loses no timer (the sweep runs once at startup), and two
instances never both act on one: each expiry is a compare-and-set under the call's lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from corespond.assignments import service
from corespond.assignments.service import Context, MatchPolicy
from corespond.clock import Clock, system_clock
from corespond.db import Database
from corespond.errors import Problem
from corespond.geo.service import Geography

log = structlog.get_logger(__name__)


class AssignmentJobs:
    """Expires unanswered offers (re-offering the call) and follows up folded calls."""

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
        """One pass: expire every due offer, then follow up every call out of step.
        Returns how many things were done. Never raises (it is a scheduler job)."""
        done = 0
        try:
            # Follow-ups first: a call that turned dangerous or ended is settled before any
            # of its offers expires and would be offered to the next peer.
            async with self._database.sessionmaker() as session:
                calls = await service.calls_to_follow_up(session, self.context())
            done += await self.follow_up(calls)
            async with self._database.sessionmaker() as session:
                due = await service.due_offers(session, self.context())
            for assignment_id in due:
                done += await self._expire(assignment_id)
        except Exception as exc:
            log.error("assignment_sweep_failed", error_type=type(exc).__name__)
        return done

    async def follow_up(self, call_ids: Sequence[uuid.UUID]) -> int:
        """Follow up calls (just folded, or found by the sweep), each in its own
        transaction, so one call's trouble holds back no other."""
        if not call_ids:
            return 0
        try:
            async with self._database.sessionmaker() as session:
                due = await service.calls_to_follow_up(session, self.context(), call_ids)
        except Exception as exc:  # the sweep will find them again
            log.error("assignment_follow_up_failed", error_type=type(exc).__name__)
            return 0
        done = 0
        for call_id in due:
            try:
                async with self._database.sessionmaker() as session, session.begin():
                    what = await service.follow_up(session, call_id, self.context())
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

    async def _expire(self, assignment_id: uuid.UUID) -> int:
        try:
            async with self._database.sessionmaker() as session, session.begin():
                expired = await service.expire_offer(session, assignment_id, self.context())
        except Exception as exc:
            log.error(
                "offer_expiry_failed",
                assignment_id=str(assignment_id),
                error_type=type(exc).__name__,
            )
            return 0
        if expired:
            log.info("offer_expired", assignment_id=str(assignment_id))
        return int(expired)


def schedule_timers(scheduler: AsyncIOScheduler, jobs: AssignmentJobs, seconds: float) -> None:
    """Check deadlines every ``seconds``, and once right away (a restart loses no timer)."""
    scheduler.add_job(
        jobs.sweep,
        "interval",
        seconds=seconds,
        id="assignment-timers",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
