"""Migrations: an empty database upgrades to head, models match, and down/up round-trips."""

from __future__ import annotations

import asyncio
import uuid

from alembic import command
from alembic.util.exc import CommandError

from corespond.config import PROJECT_ROOT
from corespond.db import Database
from corespond.migrate import alembic_config, current_revisions, head_revisions, upgrade_to_head
from tests.conftest import PgServer, _admin

MIGRATIONS = PROJECT_ROOT / "migrations"


async def test_empty_database_upgrades_to_head_and_matches_the_models(
    test_server: PgServer,
) -> None:
    name = f"corespond_mig_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    url = test_server.url(name)
    database = Database.connect(url)
    try:
        assert await current_revisions(database.engine) == set()
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url)
        assert await current_revisions(database.engine) == head_revisions(MIGRATIONS)

        config = alembic_config(MIGRATIONS, url)
        try:
            await asyncio.to_thread(command.check, config)
        except CommandError as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"models and migrations differ: {exc}") from exc

        await asyncio.to_thread(command.downgrade, config, "base")
        assert await current_revisions(database.engine) == set()
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url)
        assert await current_revisions(database.engine) == head_revisions(MIGRATIONS)
    finally:
        await database.dispose()
        await test_server.drop(name)


def test_migration_files_are_named_by_date_and_slug() -> None:
    import re

    names = [p.name for p in (MIGRATIONS / "versions").glob("*.py")]
    assert names
    for name in names:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{4}_[a-z0-9_]+\.py", name), name


def test_there_is_a_single_head() -> None:
    assert len(head_revisions(MIGRATIONS)) == 1
