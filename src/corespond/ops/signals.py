"""Gauges read from the database when the API's ``/metrics`` is scraped: how long the oldest
message for each CAD callback has waited, and how many peers each county has free and on
shift.

Read at scrape time, not kept by a job: a job runs in the worker, and a stopped worker is
exactly when an operator must still see messages piling up. Every API instance reads the
same rows, so each reports the same value (alert on ``max``, never ``sum``). Each instance
reads at most once every ``read_every`` seconds whatever the number of scrapers, within
``READ_SECONDS``; when a read fails the gauges are left out of that scrape (an absent series,
and ``corespond_metrics_database_read_failures_total`` counts it), never shown stale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from corespond.clock import Clock
from corespond.coverage import service as coverage
from corespond.db import Database
from corespond.dispatch import service as dispatch
from corespond.geo.atlas import CountyAtlas
from corespond.metrics import (
    DATABASE_GAUGE_FAILURES,
    DISPATCH_OLDEST_UNDELIVERED,
    PEERS_AVAILABLE,
    PEERS_ON_SHIFT,
)
from corespond.sources import service as sources

log = structlog.get_logger(__name__)

READ_SECONDS = 2.0


@dataclass(frozen=True)
class CountyPeers:
    fips: str
    name: str
    available: int
    on_shift: int


@dataclass(frozen=True)
class Readings:
    oldest_undelivered: dict[str, float]  # enabled source -> seconds (0: nothing waits)
    counties: list[CountyPeers]


async def read(
    database: Database, atlas: CountyAtlas, required: Sequence[str], now: datetime
) -> Readings:
    """What the gauges show, from one read-only session."""
    async with database.sessionmaker() as session:
        waiting = await dispatch.oldest_undelivered(session)
        enabled = await sources.enabled_source_ids(session)
        _, counties = await coverage.coverage_at(session, atlas, now, required, now)
    return Readings(
        oldest_undelivered={
            source: max(0.0, (now - waiting[source]).total_seconds()) if source in waiting else 0.0
            for source in enabled
        },
        counties=[
            CountyPeers(c.fips, c.name, c.available, len(c.peers))
            for c in counties
            if c.provider_id is not None or c.peers
        ],
    )


def publish(readings: Readings | None) -> None:
    """Set the gauges to ``readings``; None leaves them out."""
    if readings is None:
        for gauge in (DISPATCH_OLDEST_UNDELIVERED, PEERS_AVAILABLE, PEERS_ON_SHIFT):
            gauge.hide()
        return
    DISPATCH_OLDEST_UNDELIVERED.show(
        {(source,): round(seconds, 3) for source, seconds in readings.oldest_undelivered.items()}
    )
    PEERS_AVAILABLE.show({(c.fips, c.name): c.available for c in readings.counties})
    PEERS_ON_SHIFT.show({(c.fips, c.name): c.on_shift for c in readings.counties})


class DatabaseGauges:
    """The database's gauges of one API process, read when it is scraped."""

    def __init__(
        self,
        database: Database,
        atlas: CountyAtlas,
        required: Sequence[str],
        clock: Clock,
        *,
        read_every: float = 5.0,
    ) -> None:
        self._database = database
        self._atlas = atlas
        self._required = tuple(required)
        self._clock = clock
        self._read_every = read_every
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Read them again unless read within ``read_every`` seconds (concurrent scrapes
        wait for one read)."""
        async with self._lock:
            if self._read_at is not None and time.monotonic() - self._read_at < self._read_every:
                return
            try:
                async with asyncio.timeout(READ_SECONDS):
                    readings = await read(
                        self._database, self._atlas, self._required, self._clock()
                    )
            except Exception as exc:  # a scrape must answer, with what it can
                DATABASE_GAUGE_FAILURES.inc()
                log.warning("metrics_database_read_failed", error_type=type(exc).__name__)
                publish(None)
                self._read_at = None
                return
            publish(readings)
            self._read_at = time.monotonic()
