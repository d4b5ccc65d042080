"""What a scenario measured, printed at the end of the run (docs/scaling.md quotes them):
ingest answers, offers at the CAD, deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from corespond.db import Database
from tests.reliability.cad import CadLoad, Callback

REPORT: list[str] = []


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: Sequence[float], unit: float = 1000.0, suffix: str = "ms") -> str:
    if not values:
        return "none"
    return (
        f"p50 {percentile(values, 50) * unit:.0f} / p99 {percentile(values, 99) * unit:.0f} / "
        f"max {max(values) * unit:.0f} {suffix} (n={len(values)})"
    )


@dataclass
class Figures:
    name: str
    lines: list[str]

    def report(self) -> str:
        return "\n".join([f"{self.name}:", *(f"  {line}" for line in self.lines)])


@dataclass
class Sessions:
    """The scenario's database sessions, sampled: the most connections seen, and what the
    active ones were doing (running, or the wait event)."""

    peak: int = 0
    samples: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        total = sum(self.samples.values()) or 1
        shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in self.samples.most_common(5))
        return f"connections: at most {self.peak}; active sessions: {shares or 'none seen'}"


@asynccontextmanager
async def sessions(database: Database, every: float = 0.5) -> AsyncIterator[Sessions]:
    seen = Sessions()
    query = text(
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )

    async def sample() -> None:
        while True:
            with contextlib.suppress(Exception):  # the database may be cut off on purpose
                async with database.engine.connect() as conn:
                    while True:
                        rows = (await conn.execute(query)).all()
                        seen.peak = max(seen.peak, len(rows))
                        for state, kind, event in rows:
                            if state == "active":
                                seen.samples["running" if kind is None else f"{kind}:{event}"] += 1
                        await asyncio.sleep(every)
            await asyncio.sleep(every)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def measure(
    name: str,
    database: Database,
    load: CadLoad,
    callbacks: dict[str, Callback],
    seconds: float,
    *,
    processes: int = 1,
    seen: Sessions | None = None,
) -> Figures:
    """Ingest answers (2xx), accepted events a second; CAD event -> the call's first
    assignment message at its CAD (offered or unfilled); outbox commit -> first 2xx at the
    CAD."""
    answered = [a for a in load.attempts() if a.status is not None and 200 <= a.status < 300]
    async with database.engine.connect() as conn:
        calls = {
            row[0]: row[1]
            for row in await conn.execute(
                text("SELECT source_id || ' ' || event_id, call_id FROM cad_event")
            )
        }
        created: dict[str, datetime] = {
            row[0]: row[1]
            for row in await conn.execute(text("SELECT id::text, created_at FROM outbox"))
        }
        # Offers that lost a peer to another call's transaction: the single-booking index
        # said no (ON CONFLICT DO NOTHING) and the next candidate was asked.
        offered, lost = (
            await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE status <> 'unfilled'), "
                    "(SELECT count(*) FROM assignment a, "
                    "jsonb_array_elements(a.ranking->'left_out') x "
                    "WHERE x->>'why' = 'taken by another call') FROM assignment"
                )
            )
        ).one()
    first_sent: dict[str, datetime] = {}
    for event in load.events:
        if event.event_type == "call.created" and event.acknowledged:
            sent = [a.sent_at for a in event.attempts if a.sent_at is not None]
            call = calls.get(f"{event.source} {event.event_id}")
            if call is not None and sent:
                first_sent[str(call)] = min(sent)
    first_message: dict[str, datetime] = {}
    first_arrival: dict[str, datetime] = {}
    for callback in callbacks.values():
        for delivery in callback.delivered():
            first_arrival.setdefault(delivery.webhook_id, delivery.arrived_at)
            if delivery.sequence == 1:
                first_message.setdefault(delivery.call_id, delivery.arrived_at)
    offers = [
        (first_message[call] - sent).total_seconds()
        for call, sent in first_sent.items()
        if call in first_message
    ]
    lags = [
        (arrived - created[webhook_id]).total_seconds()
        for webhook_id, arrived in first_arrival.items()
        if webhook_id in created
    ]
    accepted = sum(1 for a in answered if a.receipt == "accepted")
    figures = Figures(
        name,
        [
            f"{processes} process(es), {load.calls} calls, {len(load.events)} events in "
            f"{seconds:.0f} s: {accepted / seconds:.1f} accepted events/s",
            f"ingest 2xx: {spread([a.seconds for a in answered])}",
            f"CAD event -> first assignment message at the CAD: {spread(offers)}",
            f"outbox commit -> first 2xx at the CAD: {spread(lags)}",
            f"offers: {offered}; candidates lost to a concurrent offer: {lost}",
            *([seen.line()] if seen is not None else []),
        ],
    )
    REPORT.append(figures.report())
    return figures


def cad_lags(
    messages: dict[str, Any], callback: Callback, between: tuple[datetime, datetime] | None = None
) -> list[float]:
    """Seconds from each message's commit (``messages``: id -> created_at) to its first 2xx
    at ``callback``; only messages committed ``between`` two times if given."""
    first: dict[str, datetime] = {}
    for delivery in callback.delivered():
        first.setdefault(delivery.webhook_id, delivery.arrived_at)
    lags = []
    for webhook_id, arrived in first.items():
        created = messages.get(webhook_id)
        if created is None:
            continue
        if between is not None and not between[0] <= created <= between[1]:
            continue
        lags.append((arrived - created).total_seconds())
    return lags
