"""A duplicate storm: every CAD event posted three times at once (a CAD retrying before its
first answer came back), the copies spread over two API processes. Each event is answered
202 three times, ``accepted`` once and ``duplicate`` twice, stored once, folded once; each
call is requested once, and each of its changes is one message to its CAD, in order."""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest

from tests.reliability import books, figures
from tests.reliability.cad import CadLoad, Peers
from tests.reliability.conftest import Program, Scratch
from tests.reliability.processes import Cluster

pytestmark = pytest.mark.reliability


async def test_every_event_three_times_at_once_is_stored_and_processed_once(
    scratch: Scratch, prepared: Program, cluster: Cluster, http: httpx.AsyncClient
) -> None:
    cluster.serve()
    cluster.serve()
    await cluster.ready(http)
    load = CadLoad(http, lambda: cluster.urls, prepared.sources, calls_per_second=3, copies=3)
    peers = Peers(http, lambda: cluster.urls, prepared.peer_keys)
    for callback in prepared.callbacks.values():
        callback.listeners.append(peers.hear)
    started = time.monotonic()
    await load.run(seconds=15)
    seconds = time.monotonic() - started
    await books.settle(scratch.database, logs=cluster.logs())
    await peers.finish()

    ledger = await books.balance(scratch.database, load, prepared.callbacks)
    await figures.measure(
        "duplicate storm", scratch.database, load, prepared.callbacks, seconds, processes=2
    )
    answers = Counter(tuple(sorted(Counter(e.receipts()).items())) for e in load.events)
    assert answers == {(("accepted", 1), ("duplicate", 2)): len(load.events)}, answers
    # The copies of one event went to both processes.
    assert all(len({a.target for a in e.attempts}) == 2 for e in load.events)
    print(ledger.line())
