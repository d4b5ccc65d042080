"""PostgreSQL gone for ten seconds under load (a proxy in front of it resets every
connection and refuses new ones, then listens again): the API answers CAD events 503 at
once, never hangs nor 500s; /readyz says the database is unreachable; once it is back,
the same processes (never restarted) take events again and the books balance."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.reliability import books, figures
from tests.reliability.cad import CadLoad, Peers
from tests.reliability.conftest import Program, Scratch
from tests.reliability.processes import Cluster, proxied

pytestmark = pytest.mark.reliability

OUTAGE_SECONDS = 10


async def test_database_outage_answers_503_fast_and_recovers_without_restart(
    scratch: Scratch, prepared: Program, cluster: Cluster, http: httpx.AsyncClient
) -> None:
    with proxied(scratch.upstream()) as proxy:
        cluster.env["DATABASE_URL"] = scratch.url_through(proxy.port)
        api = cluster.serve(worker=False)
        cluster.worker()
        await cluster.ready(http)
        load = CadLoad(http, lambda: cluster.urls, prepared.sources, calls_per_second=3)
        peers = Peers(http, lambda: cluster.urls, prepared.peer_keys)
        for callback in prepared.callbacks.values():
            callback.listeners.append(peers.hear)
        started = time.monotonic()
        loading = asyncio.create_task(load.run(seconds=25))

        await asyncio.sleep(6)
        await proxy.cut()
        cut_at = time.monotonic()
        readiness: list[tuple[float, int | None, str]] = []
        while time.monotonic() - cut_at < OUTAGE_SECONDS:
            asked = time.monotonic()
            try:
                answer = await http.get(f"{api.url}/readyz", timeout=10)
                readiness.append((time.monotonic() - asked, answer.status_code, answer.text))
            except httpx.HTTPError as exc:
                readiness.append((time.monotonic() - asked, None, type(exc).__name__))
            await asyncio.sleep(0.5)
        await proxy.restore()
        restored_at = time.monotonic()
        back_after = None
        while time.monotonic() - restored_at < 30:
            with_db = await http.get(f"{api.url}/readyz", timeout=10)
            if with_db.status_code == 200:
                back_after = time.monotonic() - restored_at
                break
            await asyncio.sleep(0.2)
        await loading
        seconds = time.monotonic() - started
        await books.settle(scratch.database, logs=cluster.logs())
        await peers.finish()

    during = [a for a in load.attempts() if cut_at + 0.5 <= a.at <= restored_at - 0.5]
    print(
        f"outage: {len(during)} posts, answers {sorted({a.status for a in during}, key=str)}, "
        f"slowest {max(a.seconds for a in during):.2f} s; /readyz back after {back_after} s"
    )
    print("readiness during the outage:", [(round(took, 2), c) for took, c, _ in readiness])
    assert during, "no event was posted during the outage"
    assert all(a.status == 503 for a in during), {(a.status, a.error) for a in during}
    assert max(a.seconds for a in during) < 2.0, "an answer during the outage was slow"
    assert readiness
    assert all(code == 503 for _, code, _ in readiness), readiness
    assert all("database unreachable" in body for *_, body in readiness), readiness
    assert max(took for took, *_ in readiness) < 4.0
    assert back_after is not None, "/readyz did not come back"
    # The same processes throughout: recovered, not restarted.
    assert [s.starts for s in cluster.services] == [1, 1]
    assert all(s.running() for s in cluster.services)
    ledger = await books.balance(scratch.database, load, prepared.callbacks)
    await figures.measure("database outage", scratch.database, load, prepared.callbacks, seconds)
    print(ledger.line())
