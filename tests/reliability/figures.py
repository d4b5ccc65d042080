"""What a scenario measured, printed at the end of the run (docs/scaling.md quotes them):
ingest answers, offers at the CAD, deliveries."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


async def measure(
    name: str,
    database: Database,
    load: CadLoad,
    callbacks: dict[str, Callback],
    seconds: float,
    *,
    processes: int = 1,
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
