"""Alembic from code: upgrade to head, and whether a database is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def head_revisions(migrations_dir: Path) -> set[str]:
    """The head revision(s) of the migration scripts shipped with this code."""
    script = ScriptDirectory.from_config(alembic_config(migrations_dir, ""))
    return set(script.get_heads())


def known_revisions(migrations_dir: Path) -> set[str]:
    """Every revision of the migration scripts shipped with this code."""
    script = ScriptDirectory.from_config(alembic_config(migrations_dir, ""))
    return {revision.revision for revision in script.walk_revisions()}


async def current_revisions(engine: AsyncEngine) -> set[str]:
    """The revision(s) recorded in the database; empty when never migrated."""
    async with engine.connect() as conn:
        return await revisions_on(conn)


async def revisions_on(conn: AsyncConnection) -> set[str]:
    """The revision(s) recorded in the database of ``conn``."""
    exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return set()
    rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return {row[0] for row in rows}


def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Run ``alembic upgrade head`` (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(migrations_dir, database_url), "head")
