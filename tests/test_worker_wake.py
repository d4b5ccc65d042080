"""Waking the worker after events are stored: a burst costs a few NOTIFYs, not one each."""

from __future__ import annotations

import asyncio

from corespond.ingest.service import EVENTS_CHANNEL, WorkerWake


class SlowNotifier:
    """Stands in for the database: each NOTIFY takes a round trip (until released)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.release = asyncio.Event()

    async def notify(self, channel: str) -> None:
        await self.release.wait()
        self.sent.append(channel)


async def test_a_burst_of_events_sends_one_notify_and_one_after_it() -> None:
    database = SlowNotifier()
    woken: list[int] = []
    wake = WorkerWake(database, lambda: woken.append(1))  # type: ignore[arg-type]
    wake.poke()
    await asyncio.sleep(0)  # its NOTIFY is on its way
    for _ in range(99):
        wake.poke()  # committed while it is: one more NOTIFY after it covers them all
    database.release.set()
    await wake.close()
    assert database.sent == [EVENTS_CHANNEL, EVENTS_CHANNEL]
    assert len(woken) == 100  # the worker of this process is told of each at once


async def test_an_event_after_the_last_notify_sends_another() -> None:
    database = SlowNotifier()
    database.release.set()
    wake = WorkerWake(database)  # type: ignore[arg-type]
    wake.poke()
    await wake.close()
    wake.poke()
    await wake.close()
    assert database.sent == [EVENTS_CHANNEL, EVENTS_CHANNEL]


async def test_a_notify_that_fails_is_left_to_the_sweep() -> None:
    class Down:
        async def notify(self, channel: str) -> None:
            raise OSError("connection refused")

    wake = WorkerWake(Down())  # type: ignore[arg-type]
    wake.poke()
    await wake.close()  # no error: the worker's sweep finds the events
