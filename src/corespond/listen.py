"""A connection that LISTENs on a PostgreSQL channel and pokes a callback on each NOTIFY.

Notifications are a wake-up, never the work itself: whoever listens also sweeps on a timer,
so a notification missed while the connection was down loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from corespond.db import Database

log = structlog.get_logger(__name__)


class Listener:
    def __init__(self, database: Database, channel: str, wake: Callable[[], None]) -> None:
        self._database = database
        self._channel = channel
        self._wake = wake
        self._conn: AsyncConnection | None = None

    def alive(self) -> bool:
        if self._conn is None or self._conn.closed:
            return False
        raw = self._conn.sync_connection
        driver = raw.connection.driver_connection if raw is not None else None
        return driver is not None and not driver.is_closed()

    async def start(self) -> bool:
        """(Re)connect and listen; wakes once, to catch up on anything sent meanwhile."""
        await self.close()
        try:
            conn = await self._database.engine.connect()
            raw = await conn.get_raw_connection()
            await raw.driver_connection.add_listener(self._channel, self._notified)  # type: ignore[union-attr]
        except Exception as exc:
            log.warning("listen_failed", channel=self._channel, error_type=type(exc).__name__)
            return False
        self._conn = conn
        self._wake()
        return True

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
                await self._conn.close()
            self._conn = None

    def _notified(self, *_: Any) -> None:
        self._wake()


class WokenLoop:
    """A background task woken by NOTIFY on a channel, with its listening connection: the
    event worker, the relay and the notifier each run their own loop body in one of these,
    started, stopped and re-listened the same way."""

    def __init__(self, database: Database, channel: str, name: str) -> None:
        self.wake = asyncio.Event()
        self._listener = Listener(database, channel, self.wake.set)
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Listen, then run ``body`` (a loop that waits on ``wake``) as a task."""
        await self._listener.start()
        self._task = asyncio.create_task(body(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._listener.close()

    async def relisten(self) -> None:
        """Listen again if the connection was lost (a sweep's check while running)."""
        if self._task is not None and not self._listener.alive():
            await self._listener.start()
