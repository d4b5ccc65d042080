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


async def test_the_key_rotation_downgrade_refuses_while_it_holds_keys(
    test_server: PgServer,
) -> None:
    """A retired audit chain key or the pinned push key exists only in these tables: the
    downgrade that would drop them refuses, and leaves them in place."""
    from sqlalchemy import text

    name = f"corespond_mig_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    url = test_server.url(name)
    database = Database.connect(url)
    before_rotation = "4b8f1d6e2a73"
    try:
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url)
        config = alembic_config(MIGRATIONS, url)
        for table, row in (
            (
                "audit_chain_key",
                "INSERT INTO audit_chain_key (fingerprint, ciphertext, last_entry_id, retired_at)"
                " VALUES ('f', '\\x00', 1, now())",
            ),
            ("push_key", "INSERT INTO push_key (ciphertext, pinned_at) VALUES ('\\x00', now())"),
        ):
            async with database.engine.begin() as connection:
                await connection.execute(text(row))
            refused = False
            try:
                await asyncio.to_thread(command.downgrade, config, before_rotation)
            except Exception as exc:  # the DO block's exception, through alembic
                refused = "refusing to downgrade" in str(exc)
            assert refused, table
            assert await current_revisions(database.engine) == head_revisions(MIGRATIONS)
            async with database.engine.begin() as connection:
                assert await connection.scalar(text(f"SELECT count(*) FROM {table}")) == 1  # noqa: S608
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608
        # Empty, the downgrade goes through.
        await asyncio.to_thread(command.downgrade, config, before_rotation)
        assert await current_revisions(database.engine) == {before_rotation}
    finally:
        await database.dispose()
        await test_server.drop(name)
