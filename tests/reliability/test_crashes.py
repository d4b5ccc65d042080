"""``kill -9`` under load, then a restart: of the separate worker while it delivers to a
CAD (the message it was sending when it died is sent again, and nothing after it goes
first), of the API process (the CAD's posts in flight fail and are retried: each event is
stored once whether its first 202 was lost or never made), and of both at once. Nothing is
lost, nothing is done twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from tests.reliability import books, figures
from tests.reliability.cad import CadLoad, Peers, answer_204, slow
from tests.reliability.conftest import Program, Scratch
from tests.reliability.processes import Cluster

pytestmark = pytest.mark.reliability

LOAD_SECONDS = 24


async def until(what: str, check: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {within} s")


async def test_kill_9_of_the_worker_and_of_serve_under_load_loses_nothing(
    scratch: Scratch, prepared: Program, cluster: Cluster, http: httpx.AsyncClient
) -> None:
    api = cluster.serve(worker=False)
    worker = cluster.worker()
    await cluster.ready(http)
    load = CadLoad(http, lambda: cluster.urls, prepared.sources, calls_per_second=3)
    peers = Peers(http, lambda: cluster.urls, prepared.peer_keys)
    callback = prepared.callbacks["metro-911"]
    for each in prepared.callbacks.values():
        each.listeners.append(peers.hear)
    started = time.monotonic()
    loading = asyncio.create_task(load.run(seconds=LOAD_SECONDS))

    # The worker, killed while a CAD holds one of its deliveries: that message was taken by
    # the CAD and never recorded as delivered.
    await asyncio.sleep(4)
    callback.behaviour = slow(1.5)
    await until("a delivery in flight", lambda: callback.answering > 0)
    held = {d.webhook_id for d in callback.requests if d.status == 0}
    worker.kill()
    callback.behaviour = answer_204
    await asyncio.sleep(2)
    await worker.start().ready(http)

    # The API, with CAD posts in flight.
    await asyncio.sleep(3)
    api.kill()
    await asyncio.sleep(1)
    await api.start().ready(http)

    # Both at once.
    await asyncio.sleep(4)
    worker.kill()
    api.kill()
    await asyncio.sleep(1)
    api.start()
    worker.start()
    await cluster.ready(http)

    await loading
    seconds = time.monotonic() - started
    await books.settle(scratch.database, logs=cluster.logs())
    await peers.finish()

    ledger = await books.balance(
        scratch.database,
        load,
        prepared.callbacks,
        # A 202 lost with its process: the retry is answered "duplicate".
        every_event_accepted_once=False,
        answers_allowed=frozenset({None, 503}),
    )
    await figures.measure("kill -9", scratch.database, load, prepared.callbacks, seconds)
    sent_again = [d for d in callback.delivered() if d.webhook_id in held]
    assert len(sent_again) >= 2 * len(held), "the delivery cut short was not sent again"
    assert any(a.status is None for a in load.attempts()), "no post was cut by the kill"
    assert api.starts == 3
    assert worker.starts == 3
    print(ledger.line())
