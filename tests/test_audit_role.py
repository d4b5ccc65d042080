"""The service runs as a role that may append to the audit log but never rewrite it."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from corespond.agencies.models import Agency
from corespond.audit import service as audit
from corespond.config import PROJECT_ROOT
from corespond.db import (
    EMBEDDED_SERVICE_LOGIN,
    SERVICE_ROLE,
    Database,
    ensure_embedded_server,
    ensure_service_login,
    server_url,
)
from corespond.migrate import alembic_config, upgrade_to_head
from tests.conftest import PgServer, _admin

MIGRATIONS = PROJECT_ROOT / "migrations"
REWRITES = (
    "UPDATE audit_log SET actor = 'someone else'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
)


async def _who(database: Database) -> dict[str, object]:
    async with database.sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT current_user AS user, r.rolsuper AS superuser, "
                    "pg_has_role(current_user, :group, 'MEMBER') AS in_group, "
                    "t.tableowner = current_user AS owns_audit_log "
                    "FROM pg_roles r, pg_tables t "
                    "WHERE r.rolname = current_user AND t.tablename = 'audit_log'"
                ),
                {"group": SERVICE_ROLE},
            )
        ).one()
    return dict(row._mapping)


async def _may(database: Database, table: str, privilege: str) -> bool:
    async with database.sessionmaker() as session:
        allowed: bool = await session.scalar(
            text("SELECT has_table_privilege(:table, :privilege)"),
            {"table": table, "privilege": privilege},
        )
    return allowed


async def _run(database: Database, *statements: str) -> None:
    async with database.sessionmaker() as session, session.begin():
        for statement in statements:
            await session.execute(text(statement))


async def test_the_app_runs_as_the_service_role(app: FastAPI) -> None:
    database: Database = app.state.database
    who = await _who(database)
    assert who["in_group"] is True
    assert who["superuser"] is False
    assert who["owns_audit_log"] is False
    assert [await _may(database, "audit_log", p) for p in ("SELECT", "INSERT")] == [True, True]
    for privilege in ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"):
        assert not await _may(database, "audit_log", privilege), privilege


async def test_the_service_appends_to_the_audit_log_but_cannot_rewrite_it(db: Database) -> None:
    async with db.sessionmaker() as session, session.begin():
        entry = await audit.record(session, None, "call.read", "call", "c1", actor="test")
    assert entry.id is not None

    for statement in (
        *REWRITES,
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "DROP TRIGGER audit_log_no_update_or_delete ON audit_log",
    ):
        # Refused for want of privilege, before the table's trigger would even run.
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner") as refused:
            await _run(db, statement)
        assert getattr(refused.value.orig, "sqlstate", None) == "42501", statement

    # A role that logged in as itself has no other role to go back to.
    with pytest.raises(DBAPIError, match="permission denied"):
        await _run(db, "RESET ROLE", REWRITES[0])


async def test_the_service_writes_its_other_tables(db: Database) -> None:
    async with db.sessionmaker() as session, session.begin():
        session.add(Agency(name="ROLE TEST PD", home_county_fips="54039"))
        await session.flush()
        agency = await session.scalar(select(Agency).where(Agency.name == "ROLE TEST PD"))
        assert agency is not None
        agency.auto_request = True
        await session.flush()
        await session.delete(agency)
        await session.flush()
    # Only migrations move the schema's revision.
    assert await _may(db, "alembic_version", "SELECT")
    assert not await _may(db, "alembic_version", "UPDATE")


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="embedded server only")
async def test_the_embedded_server_gives_the_service_its_own_login(test_server: PgServer) -> None:
    server = await asyncio.to_thread(ensure_embedded_server, PROJECT_ROOT / "var", "pgdata-test")
    await asyncio.to_thread(ensure_service_login, server)
    await asyncio.to_thread(ensure_service_login, server)  # a second start finds it made
    name = await test_server.clone()
    database = Database.connect(server_url(server, name, EMBEDDED_SERVICE_LOGIN))
    try:
        who = await _who(database)
        assert who == {
            "user": EMBEDDED_SERVICE_LOGIN,
            "superuser": False,
            "in_group": True,
            "owns_audit_log": False,
        }
        assert await _may(database, "audit_log", "INSERT")
        assert not await _may(database, "audit_log", "DELETE")
    finally:
        await database.dispose()
        await test_server.drop(name)


async def test_the_grants_come_and_go_with_their_migration(test_server: PgServer) -> None:
    name = f"corespond_role_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    url = test_server.url(name)
    owner = Database.connect(url)

    async def service_may(table: str, privilege: str) -> bool:
        async with owner.sessionmaker() as session:
            allowed: bool = await session.scalar(
                text("SELECT has_table_privilege(:role, :table, :privilege)"),
                {"role": SERVICE_ROLE, "table": table, "privilege": privilege},
            )
        return allowed

    async def default_grants() -> int:
        async with owner.sessionmaker() as session:
            found: int = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_default_acl d, pg_roles r WHERE r.rolname = :role "
                    "AND r.oid = ANY(SELECT (aclexplode(d.defaclacl)).grantee)"
                ),
                {"role": SERVICE_ROLE},
            )
        return found

    try:
        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url)
        assert await service_may("call", "UPDATE")
        assert not await service_may("audit_log", "UPDATE")
        assert await default_grants() == 2  # tables and sequences made later

        below = "5c1d0e7a9b42"  # the revision before the service role's
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, url), below)
        assert not await service_may("call", "SELECT")
        assert not await service_may("audit_log", "INSERT")
        assert await default_grants() == 0

        await asyncio.to_thread(upgrade_to_head, MIGRATIONS, url)
        assert await service_may("call", "DELETE")
        assert not await service_may("audit_log", "DELETE")
    finally:
        await owner.dispose()
        await test_server.drop(name)
