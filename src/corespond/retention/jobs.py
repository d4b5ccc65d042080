"""The daily retention pass (APScheduler)."""

from __future__ import annotations

from datetime import timedelta

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from corespond.clock import Clock, system_clock
from corespond.db import Database
from corespond.retention.service import purge

log = structlog.get_logger(__name__)


class RetentionJob:
    def __init__(
        self,
        database: Database,
        days: float,
        clock: Clock = system_clock,
        *,
        person_days: float | None = None,
    ) -> None:
        self._database = database
        self._retention = timedelta(days=days)
        self._person_retention = timedelta(days=person_days) if person_days else None
        self._clock = clock

    async def run(self) -> None:
        try:
            async with self._database.sessionmaker() as session, session.begin():
                report = await purge(
                    session,
                    self._clock(),
                    self._retention,
                    person_retention=self._person_retention,
                )
        except Exception as exc:  # a scheduler job must not die
            log.error("retention_failed", error_type=type(exc).__name__)
            return
        log.info(
            "retention_purged",
            calls=report.calls,
            delivery_bodies=report.delivery_bodies,
            cutoff=report.cutoff.isoformat(),
            people_deidentified=report.people,
        )


def schedule_retention(scheduler: AsyncIOScheduler, job: RetentionJob) -> None:
    """Daily, first a minute after start (a restart does not skip a day)."""
    scheduler.add_job(
        job.run,
        "interval",
        hours=24,
        id="retention",
        max_instances=1,
        coalesce=True,
        # The scheduler runs on the system's time, whatever clock the job reads.
        next_run_time=system_clock() + timedelta(minutes=1),
    )
