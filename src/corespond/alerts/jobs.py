"""The alert sweep: what the supervisors must hear about, checked every so often.

Each pass, each step in its own transaction (one step's trouble holds back no other):
resolve unfilled alerts of calls that ended; raise or resolve each CAD source's alert
(dead letters, failing deliveries); raise or resolve expiring credentials' alerts; then
tell again the supervisors of every alert neither acknowledged nor resolved whose reminder
is due. Reminders are claimed with ``FOR UPDATE SKIP LOCKED`` and raising is an insert the
database refuses twice, so two workers never double a notice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts import service
from corespond.alerts.service import AlertPolicy
from corespond.clock import Clock, system_clock
from corespond.db import Database

log = structlog.get_logger(__name__)

Step = Callable[[AsyncSession, AlertPolicy, datetime], Awaitable[int]]
STEPS: tuple[tuple[str, Step], ...] = (
    ("unfilled", service.check_unfilled),
    ("deliveries", service.check_deliveries),
    ("credentials", service.check_credentials),
    ("reminders", service.repeat_due),
)


class AlertJobs:
    def __init__(self, database: Database, policy: AlertPolicy, clock: Clock = system_clock):
        self._database = database
        self._policy = policy
        self._clock = clock

    async def sweep(self, now: datetime | None = None) -> int:
        """One pass (at ``now``, default the clock's); how many alerts were raised,
        resolved or told again. Never raises (it is a scheduler job)."""
        done = 0
        for name, step in STEPS:
            try:
                async with self._database.sessionmaker() as session, session.begin():
                    done += await step(session, self._policy, now or self._clock())
            except Exception as exc:
                log.error("alert_sweep_failed", step=name, error_type=type(exc).__name__)
        return done


def schedule_alerts(scheduler: AsyncIOScheduler, jobs: AlertJobs, seconds: float) -> None:
    """Check every ``seconds``, and once right away."""
    scheduler.add_job(
        jobs.sweep,
        "interval",
        seconds=seconds,
        id="supervisor-alerts",
        max_instances=1,
        coalesce=True,
        next_run_time=system_clock(),  # the scheduler's time is the system's
    )
