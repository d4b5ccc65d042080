"""A connection that LISTENs on a PostgreSQL channel and pokes a callback on each NOTIFY.

Notifications are a wake-up, never the work itself: whoever listens also sweeps on a timer,
so a notification missed while the connection was down loses nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
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
