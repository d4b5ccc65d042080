"""The overdue sweep: open follow-ups past their overdue time are escalated to the provider's
admin (each once; claims with ``FOR UPDATE SKIP LOCKED``, so two workers never double one)."""

from __future__ import annotations

from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from corespond.clock import Clock, system_clock
from corespond.db import Database
from corespond.followups import service

log = structlog.get_logger(__name__)


class FollowUpJobs:
    def __init__(self, database: Database, clock: Clock = system_clock) -> None:
        self._database = database
        self._clock = clock

    async def sweep(self, now: datetime | None = None) -> int:
        """Escalate what is overdue (at ``now``, default the clock's); how many. Never
        raises (it is a scheduler job)."""
        try:
            async with self._database.sessionmaker() as session, session.begin():
                return len(await service.escalate_overdue(session, now or self._clock()))
        except Exception as exc:
            log.error("follow_up_sweep_failed", error_type=type(exc).__name__)
            return 0


def schedule_follow_ups(scheduler: AsyncIOScheduler, jobs: FollowUpJobs, seconds: float) -> None:
    """Every ``seconds``, and once right away."""
    scheduler.add_job(
        jobs.sweep,
        "interval",
        seconds=seconds,
        id="follow-ups-overdue",
        max_instances=1,
        coalesce=True,
        next_run_time=system_clock(),  # the scheduler's time is the system's
    )
