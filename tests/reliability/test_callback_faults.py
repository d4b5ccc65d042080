"""One CAD's callback misbehaves under load, five seconds each way: down (connection
refused), slow (answers after the relay's time limit), 500, then 429 with Retry-After. Its
messages reach it later, every one, in order per call; the other CAD's keep arriving while
it fails (not after it recovers), about as fast as before."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from tests.reliability import books, figures
from tests.reliability.cad import CadLoad, Peers, answer_204, failing, slow
from tests.reliability.conftest import Program, Scratch
from tests.reliability.processes import Cluster

pytestmark = pytest.mark.reliability

PHASE_SECONDS = 5
TIMEOUT_SECONDS = 2  # CORESPOND_OUTBOUND_TIMEOUT_SECONDS in processes.SETTINGS


@pytest.mark.xfail(
    reason="known, open: since the relay's per-source lanes and the batched worker were merged "
    "together, two messages to the healthy CAD arrived 0.13-0.18 s after the failing CAD "
    "recovered; not yet explained",
    strict=False,
)
async def test_a_failing_callback_gets_its_messages_later_in_order_and_holds_back_no_other(
    scratch: Scratch, prepared: Program, cluster: Cluster, http: httpx.AsyncClient
) -> None:
    cluster.serve()
    await cluster.ready(http)
    failing_cad, healthy_cad = prepared.callbacks["metro-911"], prepared.callbacks["county-911"]
    load = CadLoad(http, lambda: cluster.urls, prepared.sources, calls_per_second=3)
    peers = Peers(http, lambda: cluster.urls, prepared.peer_keys)
    for callback in prepared.callbacks.values():
        callback.listeners.append(peers.hear)
    started = time.monotonic()
    loading = asyncio.create_task(load.run(seconds=30))

    await asyncio.sleep(5)
    await failing_cad.stop()
    faults_from = datetime.now(UTC)
    await asyncio.sleep(PHASE_SECONDS)
    down_until = datetime.now(UTC)
    failing_cad.behaviour = slow(TIMEOUT_SECONDS + 1.5)
    await failing_cad.start()
    await asyncio.sleep(PHASE_SECONDS)
    failing_cad.behaviour = failing(500)
    await asyncio.sleep(PHASE_SECONDS)
    failing_cad.behaviour = failing(429, retry_after="1")
    await asyncio.sleep(PHASE_SECONDS)
    failing_cad.behaviour = answer_204
    faults_until = datetime.now(UTC)

    await loading
    seconds = time.monotonic() - started
    await books.settle(scratch.database, logs=cluster.logs())
    await peers.finish()
    ledger = await books.balance(scratch.database, load, prepared.callbacks)
    await figures.measure("callback faults", scratch.database, load, prepared.callbacks, seconds)

    async with scratch.database.engine.connect() as conn:
        created = {
            row[0]: row[1]
            for row in await conn.execute(
                text("SELECT id::text, created_at FROM outbox WHERE source_id = 'metro-911'")
            )
        }
        healthy_created = {
            row[0]: row[1]
            for row in await conn.execute(
                text("SELECT id::text, created_at FROM outbox WHERE source_id = 'county-911'")
            )
        }
        attempts = (
            await conn.execute(
                text(
                    "SELECT a.status_code, a.error FROM delivery_attempt a "
                    "JOIN outbox o ON o.id = a.message_id WHERE o.source_id = 'metro-911'"
                )
            )
        ).all()

    # Each fault was met: refused connections, time-outs, 500s and 429s, all retried.
    errors = [a.error or "" for a in attempts if a.status_code is None]
    assert any("ConnectError" in e for e in errors), errors[:5]
    assert any("timeout" in e for e in errors), errors[:5]
    assert any(a.status_code == 500 for a in attempts)
    assert any(a.status_code == 429 for a in attempts)
    # What the failing CAD missed while it was down reached it afterwards.
    missed = [webhook_id for webhook_id, at in created.items() if faults_from <= at <= down_until]
    assert missed, "no message fell due while the callback was down"
    first = {}
    for delivery in failing_cad.delivered():
        first.setdefault(delivery.webhook_id, delivery.arrived_at)
    early = [m for m in missed if first[m] <= down_until]
    assert not early, f"delivered while the callback was down? {early}"

    # The healthy CAD heard its calls' news while the other was failing, not after.
    during = [
        webhook_id
        for webhook_id, at in healthy_created.items()
        if faults_from <= at <= faults_until
    ]
    assert len(during) >= 5, "too few messages to the healthy CAD while the other failed"
    healthy_first = {}
    for delivery in healthy_cad.delivered():
        healthy_first.setdefault(delivery.webhook_id, delivery.arrived_at)
    lags = [(healthy_first[m] - healthy_created[m]).total_seconds() for m in during]
    late = [lag for m, lag in zip(during, lags, strict=True) if healthy_first[m] > faults_until]
    print(
        f"healthy CAD while the other failed: {figures.spread(lags)}; "
        f"before and after: {figures.spread(figures.cad_lags(healthy_created, healthy_cad))}"
    )
    assert not late, f"held back until the failing CAD recovered: {late}"
    assert statistics.median(lags) < 1.0, lags
    print(ledger.line())
