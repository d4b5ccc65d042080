"""The audit log: reads and changes on record, append-only, a hash chain that shows tampering."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from corespond.audit import service as audit
from corespond.audit.models import AuditEntry
from corespond.db import Database
from tests import program
from tests.conftest import PgServer, Source, make_key
from tests.test_assignments import Program, auth, request
from tests.test_ingest_api import assert_problem


async def entries(db: Database) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


async def test_reads_and_changes_are_on_record(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    before = len(await entries(db))
    response = await client.get(
        f"/v1/calls/{p.call.id}", headers={**auth(p.dispatcher), "x-request-id": "req-audit-1"}
    )
    assert response.status_code == 200
    await client.get("/v1/calls", headers=auth(p.dispatcher))
    await client.get(f"/v1/assignments/{offer['id']}", headers=auth(p.ana_key))
    admin = await make_key(db, "admin")
    created = await client.post(
        "/v1/peers",
        json={"provider_id": "wvsl", "display_name": "New Nia"},
        headers=auth(admin),
    )
    assert created.status_code == 201
    refused = await client.post(  # a change that is refused leaves no entry
        "/v1/peers", json={"provider_id": "wvsl", "display_name": "X"}, headers=auth(p.ana_key)
    )
    assert refused.status_code == 403

    logged = (await entries(db))[before:]
    assert [e.action for e in logged] == ["call.read", "call.list", "assignment.read", "peer.post"]
    read = logged[0]
    assert (read.record_type, read.record_id) == ("call", str(p.call.id))
    assert (read.role, read.request_id) == ("dispatcher", response.headers["x-request-id"])
    assert read.detail["caller_request_id"] == "req-audit-1"
    assert str(p.call.id) in logged[1].detail["ids"]
    assert logged[2].role == "peer"
    assert logged[2].record_id == offer["id"]
    assert logged[3].detail["route"] == "/v1/peers"


async def test_a_caller_sent_request_id_is_kept_beside_ours_not_as_ours(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    before = len(await entries(db))
    sent = await client.get(
        f"/v1/calls/{call.id}", headers={**auth(dispatcher), "X-Request-ID": "cad-4711"}
    )
    unsent = await client.get(f"/v1/calls/{call.id}", headers=auth(dispatcher))
    insane = await client.get(
        f"/v1/calls/{call.id}", headers={**auth(dispatcher), "X-Request-ID": "a b"}
    )
    with_id, without_id, with_insane_id = (await entries(db))[before:]

    assert sent.headers["x-request-id"] != "cad-4711"
    assert with_id.request_id == sent.headers["x-request-id"]
    assert with_id.detail["caller_request_id"] == "cad-4711"
    assert without_id.request_id == unsent.headers["x-request-id"]
    assert "caller_request_id" not in without_id.detail
    assert with_insane_id.request_id == insane.headers["x-request-id"]
    assert "caller_request_id" not in with_insane_id.detail
    async with db.sessionmaker() as session:
        assert (await audit.verify(session)).intact


async def test_the_log_is_append_only_and_the_chain_shows_tampering(
    committed_db: Database, test_server: PgServer
) -> None:
    async with committed_db.sessionmaker() as session, session.begin():
        for n in range(5):
            await audit.record(session, None, "call.read", "call", f"c{n}", actor="test")
    async with committed_db.sessionmaker() as session:
        result = await audit.verify(session)
    assert result.intact
    assert result.entries == 5

    async with test_server.owner_of(committed_db) as owner:
        for statement in (
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            # The service has no such privilege; the owner is stopped by the trigger.
            async with committed_db.sessionmaker() as session, session.begin():
                with pytest.raises(DBAPIError, match="permission denied"):
                    await session.execute(text(statement))
            async with owner.sessionmaker() as session, session.begin():
                with pytest.raises(DBAPIError, match="append-only"):
                    await session.execute(text(statement))

        rows = await entries(committed_db)
        # The owner, who may switch the trigger off, edits one entry …
        async with owner.sessionmaker() as session, session.begin():
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            await session.execute(
                text("UPDATE audit_log SET actor = 'someone else' WHERE id = :id"),
                {"id": rows[2].id},
            )
            await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    async with committed_db.sessionmaker() as session:
        assert (await audit.verify(session)).broken_at == rows[2].id


async def test_a_removed_entry_breaks_the_chain(
    committed_db: Database, test_server: PgServer
) -> None:
    async with committed_db.sessionmaker() as session, session.begin():
        for n in range(3):
            await audit.record(session, None, "peer.post", "peer", f"p{n}", actor="test")
    rows = await entries(committed_db)
    async with (
        test_server.owner_of(committed_db) as owner,
        owner.sessionmaker() as session,
        session.begin(),
    ):
        await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": rows[1].id})
        await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    async with committed_db.sessionmaker() as session:
        assert (await audit.verify(session)).broken_at == rows[2].id


async def test_audit_api_for_auditors(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
    dispatcher = await make_key(db, "dispatcher")
    auditor = await make_key(db, "auditor")
    await client.get(f"/v1/calls/{call.id}", headers=auth(dispatcher))
    page = await client.get(
        "/v1/audit",
        params={"record_type": "call", "record_id": str(call.id)},
        headers=auth(auditor),
    )
    assert page.status_code == 200
    [entry] = page.json()["items"]
    assert entry["action"] == "call.read"
    assert entry["role"] == "dispatcher"
    assert len(entry["hash"]) == 64
    assert_problem(await client.get("/v1/audit", headers=auth(dispatcher)), 403)
    assert_problem(await client.get("/v1/audit"), 401)
    assert_problem(await client.get("/v1/audit?action=DROP%20TABLE", headers=auth(auditor)), 422)
    assert_problem(await client.get("/v1/audit?cursor=nope", headers=auth(auditor)), 400)


async def test_an_entry_forged_without_the_key_does_not_verify(committed_db: Database) -> None:
    import hashlib
    from datetime import UTC, datetime

    async with committed_db.sessionmaker() as session, session.begin():
        await audit.record(session, None, "call.read", "call", "c1", actor="test")
    [first] = await entries(committed_db)
    forged = AuditEntry(
        at=datetime.now(UTC),
        actor="someone",
        action="call.read",
        record_type="call",
        record_id="c2",
        detail={},
        prev_hash=first.hash,
    )
    # A well-formed chain link, but a plain hash: whoever wrote it lacked the secret key.
    forged.hash = hashlib.sha256(first.hash + audit.canonical(forged)).digest()
    async with committed_db.sessionmaker() as session, session.begin():
        session.add(forged)
    async with committed_db.sessionmaker() as session:
        result = await audit.verify(session)
    assert result.broken_at == forged.id
