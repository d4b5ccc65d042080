"""Two and three service processes on one database, behind a round-robin "load balancer"
(the CAD's client posts to each in turn, and peers answer through any of them): each serves
the API and runs every background job (fold, follow up, offer deadlines, relay), as N
replicas of one image would. They share nothing but PostgreSQL: claims with SKIP LOCKED,
each call's work under its row lock, LISTEN/NOTIFY to wake whichever is listening."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.reliability import books, figures
from tests.reliability.cad import CadLoad, Peers
from tests.reliability.conftest import Program, Scratch
from tests.reliability.processes import Cluster

pytestmark = pytest.mark.reliability

LOAD_SECONDS = 15


@pytest.mark.parametrize("replicas", [2, 3])
async def test_replicas_on_one_database_keep_the_books(
    replicas: int, scratch: Scratch, prepared: Program, cluster: Cluster, http: httpx.AsyncClient
) -> None:
    for _ in range(replicas):
        cluster.serve()
    await cluster.ready(http)
    load = CadLoad(http, lambda: cluster.urls, prepared.sources, calls_per_second=4)
    peers = Peers(http, lambda: cluster.urls, prepared.peer_keys)
    for callback in prepared.callbacks.values():
        callback.listeners.append(peers.hear)
    started = time.monotonic()
    async with figures.sessions(scratch.database) as seen:
        await load.run(seconds=LOAD_SECONDS)
    seconds = time.monotonic() - started
    await books.settle(scratch.database, logs=cluster.logs())
    await peers.finish()

    ledger = await books.balance(scratch.database, load, prepared.callbacks)
    await figures.measure(
        f"{replicas} replicas",
        scratch.database,
        load,
        prepared.callbacks,
        seconds,
        processes=replicas,
        seen=seen,
    )
    # Every process took events and did background work: the load was really shared.
    for api in cluster.apis:
        assert any(a.target == api.url and a.receipt for a in load.attempts()), api.name
    assert ledger.accepted_offers > 0, "no offer was accepted: the peers' side was not tried"
    assert all(a in (200, 409) for a in peers.answers), peers.answers
    assert all(api.running() for api in cluster.apis)
