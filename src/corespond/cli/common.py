"""What the commands share: the consoles, the settings (or exit 2 saying what is wrong with
them), one committed transaction with its audit entry."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.config import EnvFileError, Settings, get_settings
from corespond.crypto import secret_box
from corespond.db import (
    Database,
    EmbeddedDatabaseRefused,
    resolve_database_url,
    resolve_migration_url,
)
from corespond.errors import Problem

T = TypeVar("T")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def load_settings() -> Settings:
    """The settings, or exit 2 saying what is wrong with them (a file, a value)."""
    try:
        return get_settings()
    except EnvFileError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            field = f"CORESPOND_{where.upper()}: " if where else ""
            message = problem["msg"].removeprefix("Value error, ")
            err.print(f"[red]invalid setting:[/red] {field}{message}", highlight=False)
        raise typer.Exit(2) from None


def database_url(resolve: Callable[[Settings], str], settings: Settings) -> str:
    """A URL from ``resolve``, or exit 2 when it would start an embedded database where
    none may be started (saying how to name the real one)."""
    try:
        return resolve(settings)
    except EmbeddedDatabaseRefused as exc:
        err.print(f"[red]refused:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def settings_with_database() -> tuple[Settings, str]:
    settings = load_settings()
    url = database_url(resolve_database_url, settings)
    return settings.model_copy(update={"database_url": url}), url


def run_in_session(
    work: Callable[[AsyncSession, Settings], Awaitable[T]],
    audit: tuple[str, str | None] | None = None,
    *,
    as_owner: bool = False,
) -> T:
    """Run ``work(session, settings)`` in one committed transaction. ``audit``: (action,
    record id) of a configuration change, put on the audit log in that transaction.
    ``as_owner``: as the schema's owner (CORESPOND_MIGRATION_DATABASE_URL, else
    DATABASE_URL), for what the service's role may not do."""
    settings, url = settings_with_database()
    if as_owner:
        url = database_url(resolve_migration_url, settings)

    async def runner() -> T:
        from corespond.audit import service as audit_log

        audit_log.use_secret_box(secret_box(settings))
        database = Database.connect(url)
        try:
            async with database.sessionmaker() as session, session.begin():
                result = await work(session, settings)
                if audit is not None:
                    action, record_id = audit
                    await audit_log.record(
                        session,
                        None,
                        action,
                        action.split(".")[0],
                        record_id,
                        actor=f"cli ({getpass.getuser()})",
                    )
                return result
        finally:
            await database.dispose()

    try:
        return asyncio.run(runner())
    except Problem as problem:
        err.print(f"[red]error:[/red] {problem.detail or problem.title}")
        raise typer.Exit(2) from None


class DryRunDone(Exception):
    """Carries a dry run's report out of its transaction, which is then rolled back."""

    def __init__(self, report: Any) -> None:
        super().__init__("dry run")
        self.report = report


def program_name() -> str:
    """How the user ran us (``.venv/bin/corespond`` under make), for copy-paste hints."""
    invoked = Path(sys.argv[0])
    if invoked.name == "corespond" and invoked.exists():
        try:
            return str(invoked.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(invoked)
    return "corespond"
