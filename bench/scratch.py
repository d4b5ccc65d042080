"""What the database benchmarks share: a scratch database made, migrated and dropped, and
one line of percentiles."""

from __future__ import annotations

import asyncio
import statistics

import asyncpg
from sqlalchemy.engine import make_url

from corespond.config import Settings
from corespond.db import resolve_migration_url
from corespond.migrate import upgrade_to_head


async def admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create(settings: Settings, name: str) -> str:
    """A fresh database ``name`` (dropped first if it exists), migrated; its URL."""
    base = resolve_migration_url(settings)
    await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin(base, f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade_to_head, settings.migrations_dir, url)
    return url


async def drop(settings: Settings, name: str) -> None:
    await admin(resolve_migration_url(settings), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def line(name: str, seconds: list[float], width: int = 28) -> str:
    """``name  n=…  p50 … ms  p99 … ms  mean … ms``."""
    if not seconds:
        return f"  {name:<{width}} no samples"
    values = sorted(seconds)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (
        f"  {name:<{width}} n={len(values):<5} p50 {values[len(values) // 2] * 1000:7.2f} ms  "
        f"p99 {p99 * 1000:7.2f} ms  mean {statistics.fmean(values) * 1000:7.2f} ms"
    )
