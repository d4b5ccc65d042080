"""PostgreSQL out of reach under load, twice, with the same processes throughout (never
restarted):

* stopped for ten seconds (a proxy in front of it resets every connection and refuses new
  ones): the API answers CAD events 503 at once, never a 500, never a hang; /readyz says the
  database is unreachable;
* then frozen for eight (the proxy holds every byte and every new connection: a network
  partition, or a server that hangs): nothing can tell a hang from a slow answer, so each
  request is answered 503 at its time limit (``CORESPOND_REQUEST_TIMEOUT_SECONDS``), and no
  later; /readyz at its own, shorter one.

Each time it comes back, the API is ready again at once, and afterwards the books balance."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from corespond.ops.router import READY_SECONDS
from tests.reliability import books, figures
from tests.reliability.cad import Attempt, CadLoad, Peers
from tests.reliability.conftest import Program, Scratch
from tests.reliability.processes import Cluster, Service, proxied

pytestmark = pytest.mark.reliability

STOPPED_SECONDS = 10
FROZEN_SECONDS = 8
REQUEST_LIMIT = 4  # CORESPOND_REQUEST_TIMEOUT_SECONDS here (30 by default)


async def watch_readiness(
    http: httpx.AsyncClient, api: Service, seconds: float
) -> list[tuple[float, int | None, str]]:
    """/readyz asked every half second for ``seconds``: (how long it took, status, body)."""
    answers: list[tuple[float, int | None, str]] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        asked = time.monotonic()
        try:
            answer = await http.get(f"{api.url}/readyz", timeout=REQUEST_LIMIT + 10)
            answers.append((time.monotonic() - asked, answer.status_code, answer.text))
        except httpx.HTTPError as exc:
            answers.append((time.monotonic() - asked, None, type(exc).__name__))
        await asyncio.sleep(0.5)
    return answers


async def ready_again(http: httpx.AsyncClient, api: Service) -> float:
    """Seconds until /readyz answers 200."""
    back = time.monotonic()
    while time.monotonic() - back < 30:
        try:
            if (await http.get(f"{api.url}/readyz", timeout=5)).status_code == 200:
                return time.monotonic() - back
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("/readyz did not come back within 30 s")


def between(load: CadLoad, start: float, end: float) -> list[Attempt]:
    """The posts sent while the database was away (half a second in from each edge)."""
    return [a for a in load.attempts() if start + 0.5 <= a.at <= end - 0.5]


@pytest.mark.xfail(
    reason="known, open: ingest tries its statement again after a lost connection; when the "
    "first try had committed, the sender is answered 'duplicate' for its first send (stored "
    "once, but never answered 'accepted'); the retry needs to know its own row",
    strict=False,
)
async def test_database_away_answers_503_in_bounded_time_and_recovers_without_restart(
    scratch: Scratch, prepared: Program, cluster: Cluster, http: httpx.AsyncClient
) -> None:
    with proxied(scratch.upstream()) as proxy:
        cluster.env["DATABASE_URL"] = scratch.url_through(proxy.port)
        cluster.env["CORESPOND_REQUEST_TIMEOUT_SECONDS"] = str(REQUEST_LIMIT)
        api = cluster.serve(worker=False)
        cluster.worker()
        await cluster.ready(http)
        load = CadLoad(http, lambda: cluster.urls, prepared.sources, calls_per_second=3)
        peers = Peers(http, lambda: cluster.urls, prepared.peer_keys)
        for callback in prepared.callbacks.values():
            callback.listeners.append(peers.hear)
        started = time.monotonic()
        loading = asyncio.create_task(load.run(seconds=32))

        await asyncio.sleep(6)
        await proxy.cut()
        stopped = (time.monotonic(), 0.0)
        stopped_readiness = await watch_readiness(http, api, STOPPED_SECONDS)
        await proxy.restore()
        stopped = (stopped[0], time.monotonic())
        back_after_stop = await ready_again(http, api)

        await asyncio.sleep(4)
        proxy.freeze()
        frozen = (time.monotonic(), 0.0)
        frozen_readiness = await watch_readiness(http, api, FROZEN_SECONDS)
        await proxy.restore()
        frozen = (frozen[0], time.monotonic())
        back_after_freeze = await ready_again(http, api)

        await loading
        seconds = time.monotonic() - started
        await books.settle(scratch.database, logs=cluster.logs())
        await peers.finish()

    while_stopped = between(load, *stopped)
    while_frozen = between(load, *frozen)
    for name, attempts, readiness, back in (
        ("stopped", while_stopped, stopped_readiness, back_after_stop),
        ("frozen", while_frozen, frozen_readiness, back_after_freeze),
    ):
        print(
            f"{name}: {len(attempts)} posts answered {sorted({a.status for a in attempts})}, "
            f"slowest {max(a.seconds for a in attempts):.2f} s; /readyz slowest "
            f"{max(took for took, *_ in readiness):.2f} s; ready again after {back:.2f} s"
        )
        assert attempts, f"no event was posted while the database was {name}"
        assert readiness
        assert all(code == 503 for _, code, _ in readiness), readiness
    # Stopped: 503 at once, never a 500; /readyz names the cause.
    assert all(a.status == 503 for a in while_stopped), {(a.status, a.error) for a in while_stopped}
    assert max(a.seconds for a in while_stopped) < 2.0
    assert all("database unreachable" in body for *_, body in stopped_readiness)
    assert max(took for took, *_ in stopped_readiness) < 4.0
    # Frozen: 503 at the request's limit, never later (a post still waiting when the
    # database came back was answered 202).
    assert all(a.status in (202, 503) for a in while_frozen), {a.status for a in while_frozen}
    assert all(a.status == 503 for a in while_frozen if a.at + REQUEST_LIMIT + 0.5 < frozen[1]), {
        (round(frozen[1] - a.at, 1), a.status) for a in while_frozen
    }
    # (The limit, then at most the 2 s the driver gives a frozen connection to close
    # politely before it drops it, and a loaded machine's slack.)
    late = [
        (round(a.at - frozen[0], 2), round(a.at + a.seconds - frozen[1], 2), a.status)
        for a in while_frozen
        if a.seconds >= REQUEST_LIMIT + 2 + 1.5
    ]
    assert not late, f"(sent after the freeze, answered after the thaw, status): {late}"
    # /readyz keeps its own limit, shorter than a request's.
    assert all("no answer within 3 s" in body for *_, body in frozen_readiness)
    assert max(took for took, *_ in frozen_readiness) < READY_SECONDS + 1.5
    # The same processes throughout: recovered, not restarted.
    assert [s.starts for s in cluster.services] == [1, 1]
    assert all(s.running() for s in cluster.services)

    ledger = await books.balance(
        scratch.database,
        load,
        prepared.callbacks,
        # A post whose commit was on its way when the database froze is answered 503 at the
        # limit, yet stored when the bytes flow again: its retry is answered "duplicate".
        every_event_accepted_once=False,
    )
    await figures.measure("database away", scratch.database, load, prepared.callbacks, seconds)
    print(ledger.line())
