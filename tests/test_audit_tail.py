"""A cut tail: the newest audit entries removed leave a chain that verifies, unless the last
hash of an earlier verification was kept outside the database and is looked for."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from corespond.audit import service as audit
from corespond.cli import app
from corespond.config import get_settings
from corespond.crypto import SecretBox
from corespond.db import Database
from tests.conftest import TEST_KEY, PgServer

runner = CliRunner()


async def append(database: Database, count: int) -> None:
    async with database.sessionmaker() as session, session.begin():
        for n in range(count):
            await audit.record(session, None, "call.read", "call", f"c{n}", actor="test")


async def cut_tail(server: PgServer, database: Database, count: int) -> None:
    """What someone owning the schema could do: switch the trigger off, delete the newest."""
    async with (
        server.owner_of(database) as owner,
        owner.sessionmaker() as session,
        session.begin(),
    ):
        await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await session.execute(
            text(
                "DELETE FROM audit_log WHERE id IN "
                "(SELECT id FROM audit_log ORDER BY id DESC LIMIT :n)"
            ),
            {"n": count},
        )
        await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


async def verified(database: Database, expect_last: bytes | None = None) -> audit.Verification:
    async with database.sessionmaker() as session:
        return await audit.verify(session, expect_last=expect_last)


async def test_a_cut_tail_verifies_without_the_kept_hash_and_fails_with_it(
    committed_db: Database, test_server: PgServer
) -> None:
    await append(committed_db, 5)
    kept = (await verified(committed_db)).last_hash
    assert kept is not None

    await cut_tail(test_server, committed_db, 2)

    alone = await verified(committed_db)
    assert alone.intact  # the chain cannot tell on its own
    assert alone.entries == 3
    result = await verified(committed_db, kept)
    assert result.chain_intact
    assert result.cut
    assert not result.intact
    assert result.expected_at is None


async def test_entries_after_the_kept_hash_are_growth_not_tampering(
    committed_db: Database,
) -> None:
    await append(committed_db, 3)
    first = await verified(committed_db)
    await append(committed_db, 4)

    result = await verified(committed_db, first.last_hash)
    assert result.intact
    assert not result.cut
    assert result.entries == 7
    assert result.added_since_expected == 4
    assert result.last_hash != first.last_hash


@pytest.fixture
async def cli_env(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Database]:
    monkeypatch.setenv("DATABASE_URL", committed_db.engine.url.render_as_string(False))
    monkeypatch.setenv("CORESPOND_SECRET_KEY", TEST_KEY.decode())
    monkeypatch.setenv("CORESPOND_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    audit.use_chain_key(SecretBox(TEST_KEY).derived_key("audit-chain"))  # as the CLI does
    yield committed_db
    get_settings.cache_clear()


async def verify(*options: str) -> tuple[int, str]:
    result = await asyncio.to_thread(runner.invoke, app, ["audit", "verify", *options])
    return result.exit_code, result.output


def words(output: str) -> str:
    """The output as one line of words, without the frame drawn around usage errors."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def printed_last_hash(output: str) -> str:
    found = re.search(r"^last hash ([0-9a-f]{64})$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


async def test_verify_prints_the_hash_to_keep_and_finds_a_cut_tail_with_it(
    cli_env: Database, test_server: PgServer
) -> None:
    await append(cli_env, 4)
    code, output = await verify()
    assert code == 0, output
    kept = printed_last_hash(output)
    assert "Keep this last hash outside the database" in output
    assert f"--expect-last {kept}" in output

    await append(cli_env, 2)
    code, output = await verify("--expect-last", kept)
    assert code == 0, output
    assert "6 entries" in output
    assert "2 entries added since" in output
    newer = printed_last_hash(output)

    await cut_tail(test_server, cli_env, 1)
    code, output = await verify()
    assert code == 0, output  # without the kept hash, a cut tail passes
    code, output = await verify("--expect-last", newer.upper())
    assert code == 1
    assert "audit log cut" in output
    assert f"no entry has the expected last hash {newer}" in output
    assert "entries were removed from the end of the log" in output
    assert "Keep this last hash" not in output  # nothing of a cut log is worth keeping


@pytest.mark.parametrize("value", ["not-hex", "abc", "ab" * 31, "ab" * 33, ""])
async def test_a_malformed_expected_hash_is_a_usage_error(cli_env: Database, value: str) -> None:
    code, output = await verify("--expect-last", value)
    assert code == 2
    assert "Invalid value for '--expect-last': not a last hash: give the 64 hexadecimal" in (
        words(output)
    )


async def test_verify_warns_when_its_role_could_rewrite_the_log(
    cli_env: Database, test_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = await verify()
    assert code == 0, output
    assert "warning" not in output  # the service's role

    name = cli_env.engine.url.database
    assert name is not None
    monkeypatch.setenv("DATABASE_URL", test_server.url(name))  # the owner's
    get_settings.cache_clear()
    code, output = await verify()
    assert code == 0, output
    assert "warning: the database role of DATABASE_URL may UPDATE, DELETE or TRUNCATE" in output
