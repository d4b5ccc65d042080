"""Every background job, assembled in one place.

The API process (``corespond serve``, unless ``CORESPOND_WORKER_ENABLED=false``) and the
worker on its own (``corespond worker``) run the same set, built here, so that a job added
for one cannot be missing from the other:

* the call pipeline (``corespond.pipeline``): the CAD event worker (LISTEN wake-up, and a
  sweep every ``worker_sweep_seconds``) folds, locates and triages, then follows up the
  call's assignment; every ``timer_sweep_seconds``, calls out of step are followed up and
  offers past their deadline move on;
* the relay of the outbox to CAD callbacks (LISTEN wake-up, sweep every
  ``relay_sweep_seconds``);
* the notifier: Web Push and SMS to peers' phones (woken by the offer's NOTIFY, and a pass
  every half second);
* the supervisors' alerts (unfilled requests, failing CAD deliveries, expiring credentials):
  raised, resolved and told again every ``alert_sweep_seconds``;
* overdue follow-ups escalated to their provider's admin (and pushed to them), every
  ``followup_sweep_seconds``;
* retention, daily (narratives and locations past ``narrative_retention_days``; people with
  no live consent inactive past ``person_retention_days`` de-identified);
* re-reading the triage rule file when it changes.

A process that serves the API with its worker disabled runs only the rule reload.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from dataclasses import dataclass
from datetime import UTC

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from corespond.alerts.jobs import AlertJobs, schedule_alerts
from corespond.alerts.service import AlertPolicy
from corespond.assignments.policy import MatchPolicy
from corespond.clock import Clock
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.relay import DeliveryPolicy, Relay, schedule_relay
from corespond.followups.jobs import FollowUpJobs, schedule_follow_ups
from corespond.geo.service import Geography
from corespond.notify.relay import Notifier, SmsProvider
from corespond.notify.service import Vapid
from corespond.pipeline.jobs import CallFollowUp, EventWorker, schedule_pipeline
from corespond.retention.jobs import RetentionJob, schedule_retention
from corespond.triage.service import RuleBook

log = structlog.get_logger(__name__)


@dataclass
class Background:
    """The jobs of one process and the scheduler that runs them."""

    settings: Settings
    rulebook: RuleBook
    follow_up: CallFollowUp
    worker: EventWorker
    relay: Relay
    notifier: Notifier
    alerts: AlertJobs
    retention: RetentionJob
    follow_ups: FollowUpJobs
    scheduler: AsyncIOScheduler
    running_jobs: bool = False

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        http: httpx.AsyncClient,
        box: SecretBox,
        rulebook: RuleBook,
        geography: Geography,
        clock: Clock,
    ) -> Background:
        follow_up = CallFollowUp(database, MatchPolicy.of(settings), geography, clock)
        return cls(
            settings=settings,
            rulebook=rulebook,
            follow_up=follow_up,
            worker=EventWorker(
                database, settings.worker_batch_size, rulebook, geography, follow_up, clock
            ),
            relay=Relay(
                database,
                http,
                box,
                DeliveryPolicy.of(settings),
                clock,
                environment=settings.environment,
            ),
            notifier=Notifier(
                database,
                http,
                Vapid.of(box, settings.push_contact),
                environment=settings.environment,
                clock=clock,
                sms=SmsProvider.of(settings),
                box=box,
            ),
            alerts=AlertJobs(database, AlertPolicy.of(settings), clock),
            retention=RetentionJob(
                database,
                settings.narrative_retention_days,
                clock,
                person_days=settings.person_retention_days,
            ),
            follow_ups=FollowUpJobs(database, clock),
            scheduler=AsyncIOScheduler(timezone=UTC),
        )

    async def start(self, *, jobs: bool) -> None:
        """Start the scheduler; with ``jobs``, every background job (else the rule reload
        only: an API process whose worker runs elsewhere)."""
        settings = self.settings
        if jobs:
            await self.worker.start()
            await self.relay.start()
            schedule_pipeline(
                self.scheduler,
                self.worker,
                self.follow_up,
                events_every=settings.worker_sweep_seconds,
                follow_ups_every=settings.timer_sweep_seconds,
            )
            schedule_relay(self.scheduler, self.relay, settings.relay_sweep_seconds)
            await self.notifier.start()
            self.scheduler.add_job(
                self.notifier.relisten,
                "interval",
                seconds=settings.worker_sweep_seconds,
                id="notify-peers",
                max_instances=1,
                coalesce=True,
            )
            schedule_alerts(self.scheduler, self.alerts, settings.alert_sweep_seconds)
            schedule_retention(self.scheduler, self.retention)
            schedule_follow_ups(self.scheduler, self.follow_ups, settings.followup_sweep_seconds)
            self.running_jobs = True
        # The rule file is re-read on a timer, not per request; a broken one is logged and
        # the last good rules stay in force.
        self.scheduler.add_job(
            self.rulebook.reload_if_changed,
            "interval",
            seconds=settings.worker_sweep_seconds,
            id="triage-rules-reload",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()
        log.info("background_started", jobs=sorted(job.id for job in self.scheduler.get_jobs()))

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        if self.running_jobs:
            await self.notifier.stop()
            await self.relay.stop()
            await self.worker.stop()
            self.running_jobs = False


def settle_heap() -> None:
    """Once a process has started: what it loaded to run (triage rules and model, county
    shapes, the app) is set aside from the garbage collector, which otherwise walks those
    hundreds of thousands of objects on every full collection (some 150 ms, in the middle
    of a request or a batch); garbage from starting up is collected first."""
    gc.collect()
    gc.freeze()


async def run_until_stopped(background: Background) -> None:
    """``corespond worker``: every job, until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await background.start(jobs=True)
    settle_heap()
    log.info("worker_started")
    try:
        await stop.wait()
    finally:
        await background.stop()
        log.info("worker_stopped")
