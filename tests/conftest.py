"""Fixtures: a real PostgreSQL (embedded unless DATABASE_URL), migrated once per session.

Migrations run as the server's administrator (the owner of the schema); every database the
tests use connects, like the service, as a login role in ``corespond_service`` made for
this session. ``PgServer.owner_of`` gives a test the owner's view when it must do what the
service may not (tamper with the audit log).

* ``db``: the default. Each test runs inside one transaction that is rolled back at the end
  (sessions join it through savepoints), so tests never see each other's rows.
* ``committed_db``: for tests that need real commits across connections (races, LISTEN,
  restarts): a fresh database cloned from the migrated template, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from corespond.agencies.models import Agency
from corespond.app import create_app
from corespond.auth.service import Scope, create_key
from corespond.config import PROJECT_ROOT, Settings
from corespond.crypto import SecretBox
from corespond.db import (
    Database,
    asyncpg_url,
    ensure_embedded_server,
    server_url,
    service_login_sql,
)
from corespond.migrate import upgrade_to_head
from corespond.sources.service import create_source

TEST_KEY = Fernet.generate_key()


def _server_base_url() -> str:
    """An asyncpg URL of a maintenance database on the server the tests may create DBs on."""
    if os.environ.get("DATABASE_URL"):
        return asyncpg_url(os.environ["DATABASE_URL"])
    server = ensure_embedded_server(PROJECT_ROOT / "var", "pgdata-test")
    return server_url(server, "postgres")


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_plain_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass(frozen=True)
class PgServer:
    base_url: str
    template: str
    service_login: str
    service_password: str

    def url(self, database: str) -> str:
        """The owner's URL of ``database``."""
        return _with_database(self.base_url, database)

    def service_url(self, database: str) -> str:
        """The service's URL of ``database``."""
        url = make_url(self.url(database))
        url = url.set(username=self.service_login, password=self.service_password)
        return url.render_as_string(hide_password=False)

    @asynccontextmanager
    async def owner_of(self, database: Database) -> AsyncIterator[Database]:
        """The same database as its owner sees it."""
        name = database.engine.url.database
        assert name is not None
        owner = Database.connect(self.url(name))
        try:
            yield owner
        finally:
            await owner.dispose()

    async def clone(self) -> str:
        name = f"corespond_t_{uuid.uuid4().hex[:12]}"
        await _admin(self.base_url, f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    async def drop(self, name: str) -> None:
        await _admin(self.base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @asynccontextmanager
    async def cloned(self) -> AsyncIterator[Database]:
        """A fresh migrated database, dropped on exit."""
        name = await self.clone()
        database = Database.connect(self.service_url(name))
        try:
            yield database
        finally:
            await database.dispose()
            await self.drop(name)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        database_url=None,
        data_dir=tmp_path_factory.mktemp("var"),
        secret_key=SecretStr(TEST_KEY.decode()),
        worker_enabled=False,
        log_json=True,
        # A test's own transaction never commits, so its NOTIFY of a source change never
        # reaches the cache: sources are read on every event (tests/test_source_cache.py
        # covers the cache on a database that commits).
        source_cache_seconds=0,
        # Races and floods in tests are deliberate; the limits have tests of their own.
        rate_limit_cad_per_second=10_000,
        rate_limit_cad_burst=10_000,
        rate_limit_writes_per_second=10_000,
        rate_limit_writes_burst=10_000,
    )


@pytest.fixture(scope="session")
def box() -> SecretBox:
    return SecretBox(TEST_KEY)


@pytest.fixture(scope="session")
async def test_server() -> AsyncIterator[PgServer]:
    base = await asyncio.to_thread(_server_base_url)
    template = f"corespond_tpl_{uuid.uuid4().hex[:12]}"
    await _admin(base, f'CREATE DATABASE "{template}"')
    login = f"corespond_test_{uuid.uuid4().hex[:12]}"
    server = PgServer(base, template, login, secrets.token_urlsafe(24))
    try:
        migrations = Path(PROJECT_ROOT / "migrations")
        await asyncio.to_thread(upgrade_to_head, migrations, server.url(template))
        await _admin(base, service_login_sql(login, server.service_password))
        yield server
    finally:
        await server.drop(template)
        await _admin(base, f"DROP ROLE IF EXISTS {login}")


@pytest.fixture(scope="session")
async def shared_database(test_server: PgServer) -> AsyncIterator[Database]:
    async with test_server.cloned() as database:
        yield database


@pytest.fixture
async def db(shared_database: Database) -> AsyncIterator[Database]:
    """A database view whose every commit is undone when the test ends."""
    async with shared_database.engine.connect() as conn:
        outer = await conn.begin()
        maker = async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield Database(shared_database.engine, maker)
        finally:
            await outer.rollback()


@pytest.fixture
async def committed_db(test_server: PgServer) -> AsyncIterator[Database]:
    """A database of its own where commits are real (races, LISTEN/NOTIFY, restarts)."""
    async with test_server.cloned() as database:
        yield database


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    async with db.sessionmaker() as session:
        yield session


@dataclass(frozen=True)
class Source:
    id: str
    secret: str


async def make_source(database: Database, box: SecretBox, source_id: str = "kanawha-911") -> Source:
    """A CAD source of Charleston PD (registered with its home county if it is not yet)."""
    async with database.sessionmaker() as session, session.begin():
        if await session.scalar(select(Agency).where(Agency.name == "CHARLESTON PD")) is None:
            session.add(Agency(name="CHARLESTON PD", home_county_fips="54039"))
            await session.flush()
        _, secret = await create_source(
            session,
            box,
            source_id=source_id,
            display_name="Kanawha County Metro 911",
            agencies=["CHARLESTON PD"],
        )
    return Source(source_id, secret)


async def make_key(database: Database, role: str, scope: str | None = None) -> str:
    async with database.sessionmaker() as session, session.begin():
        _, token = await create_key(
            session, role=role, scope=Scope.parse(scope) if scope else None, now=datetime.now(UTC)
        )
    return token


async def serve_agency(database: Database, source_id: str, name: str, county: str) -> None:
    """Register an agency (if new) with its home county FIPS and let a CAD source file its
    calls."""
    from corespond.sources.models import CadSource

    async with database.sessionmaker() as session, session.begin():
        if await session.scalar(select(Agency).where(Agency.name == name)) is None:
            session.add(Agency(name=name, home_county_fips=county))
        row = await session.get(CadSource, source_id)
        assert row is not None
        row.agencies = sorted({*row.agencies, name})


@pytest.fixture
async def source(db: Database, box: SecretBox) -> Source:
    return await make_source(db, box)


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=db)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
