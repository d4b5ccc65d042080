"""Rotating CORESPOND_SECRET_KEY as docs/operations.md tells it, on a real database: the old
key alone; the new key in front of it everywhere; `corespond secret-key rotate`; the old key
removed. CAD events still verify, deliveries still sign, the push key stays the one phones
subscribed with, and the audit log still verifies, all under the new key alone."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from corespond.app import create_app
from corespond.audit import service as audit
from corespond.cli import app as cli
from corespond.config import Settings, get_settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.relay import Relay
from corespond.sources.models import CadSourceSecret
from tests.conftest import TEST_KEY, PgServer, Source, make_key, make_source
from tests.helpers import cad_event, encode, minutes_ago, signed_headers
from tests.receiver import Receiver
from tests.test_dispatch import FAST, messages

runner = CliRunner()


@pytest.fixture
def old_key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def new_key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def operator(
    committed_db: Database,
    test_server: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[CommandLine]:
    name = committed_db.engine.url.database
    assert name is not None
    monkeypatch.setenv("DATABASE_URL", committed_db.engine.url.render_as_string(False))
    monkeypatch.setenv("CORESPOND_MIGRATION_DATABASE_URL", test_server.url(name))
    monkeypatch.setenv("CORESPOND_DATA_DIR", str(tmp_path))
    yield CommandLine(monkeypatch)
    get_settings.cache_clear()
    # Other tests write audit entries under the test key, as their apps set it.
    audit.use_secret_box(SecretBox(TEST_KEY))


class CommandLine:
    """`corespond …` with CORESPOND_SECRET_KEY as the environment file would give it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    async def run(self, keys: list[bytes], *args: str) -> tuple[int, str]:
        self._monkeypatch.setenv("CORESPOND_SECRET_KEY", ",".join(k.decode() for k in keys))
        get_settings.cache_clear()
        result = await asyncio.to_thread(runner.invoke, cli, list(args))
        return result.exit_code, result.output


@asynccontextmanager
async def service(
    settings: Settings, database: Database, keys: list[bytes]
) -> AsyncIterator[httpx.AsyncClient]:
    """The API as a process started with CORESPOND_SECRET_KEY set to ``keys``."""
    configured = settings.model_copy(
        update={"secret_key": SecretStr(",".join(k.decode() for k in keys))}
    )
    app = create_app(configured, database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def post_event(client: httpx.AsyncClient, cad: Source, number: int) -> httpx.Response:
    body = encode(
        cad_event(
            event_id=f"kanawha-911:rot-{number}",
            occurred_at=minutes_ago(1).isoformat(),
            incident_number=f"26-90000{number}",
        )
    )
    return await client.post(
        "/v1/cad/kanawha-911/events", content=body, headers=signed_headers(cad.secret, body)
    )


async def push_key(client: httpx.AsyncClient) -> str:
    response = await client.get("/peer/push-key")
    assert response.status_code == 200
    key: str = response.json()["public_key"]
    return key


async def stored_ciphertexts(database: Database) -> list[bytes]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(CadSourceSecret.ciphertext))).all())


def opens_with(key: bytes, ciphertext: bytes) -> bool:
    try:
        Fernet(key).decrypt(ciphertext)
    except InvalidToken:
        return False
    return True


async def test_a_new_key_is_rolled_in_and_the_old_one_removed_with_nothing_lost(
    committed_db: Database,
    settings: Settings,
    operator: CommandLine,
    old_key: bytes,
    new_key: bytes,
) -> None:
    cad = await make_source(committed_db, SecretBox(old_key))
    receiver = await Receiver(cad.secret).start()
    try:
        # 1. The old key alone, as the deployment has run so far.
        code, output = await operator.run(
            [old_key], "sources", "set-callback", cad.id, receiver.url
        )
        assert code == 0, output
        async with service(settings, committed_db, [old_key]) as api:
            assert (await post_event(api, cad, 1)).status_code == 202
            phones_subscribed_with = await push_key(api)

        # 2. The new key in front of the old one, in every process.
        async with service(settings, committed_db, [new_key, old_key]) as api:
            assert (await post_event(api, cad, 2)).status_code == 202
            assert await push_key(api) == phones_subscribed_with
        code, output = await operator.run(
            [new_key, old_key], "sources", "set-callback", cad.id, receiver.url
        )
        assert code == 0, output
        # Entries of both keys: the new key alone cannot verify the old one's yet.
        code, output = await operator.run([new_key], "audit", "verify")
        assert code == 1, output
        code, output = await operator.run([new_key, old_key], "audit", "verify")
        assert code == 0, output

        # 3. Everything stored brought under the new key.
        code, output = await operator.run([new_key, old_key], "secret-key", "rotate")
        assert code == 0, output
        assert "CAD signing secrets: 1 re-encrypted under the newest key, 0 already" in output
        assert "push key (VAPID): pinned in the database" in output
        assert re.search(r"1 older chain key\(s\) retired for entries up to \d+", output)
        assert "Remove the older key(s)" in output
        code, output = await operator.run([new_key, old_key], "secret-key", "rotate")
        assert code == 0, output  # again: nothing left to do
        assert "CAD signing secrets: 0 re-encrypted under the newest key, 1 already" in output
        assert "push key (VAPID): already under the newest key" in output

        # 4. The old key removed.
        for ciphertext in await stored_ciphertexts(committed_db):
            assert opens_with(new_key, ciphertext)
            assert not opens_with(old_key, ciphertext)
        async with service(settings, committed_db, [new_key]) as api:
            accepted = await post_event(api, cad, 3)
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["status"] == "accepted"
            assert await push_key(api) == phones_subscribed_with
        [message] = await messages(committed_db, cad)
        async with httpx.AsyncClient(timeout=2) as http:
            assert await Relay(committed_db, http, SecretBox(new_key), FAST).drain() == 1
    finally:
        await receiver.stop()
    [delivered] = receiver.received
    assert delivered.verified  # signed with the source's secret, read under the new key
    assert delivered.webhook_id == str(message.id)

    code, output = await operator.run([new_key], "audit", "verify")
    assert code == 0, output
    assert "audit log intact" in output
    entries = int(re.search(r"intact: (\d+) entries", output).group(1))  # type: ignore[union-attr]
    assert entries >= 4  # two callbacks set, two rotations, under two keys


async def test_an_entry_written_under_a_removed_key_after_the_rotation_breaks_the_chain(
    committed_db: Database, operator: CommandLine, old_key: bytes, new_key: bytes
) -> None:
    await make_source(committed_db, SecretBox(old_key))
    code, output = await operator.run([old_key], "sources", "disable", "kanawha-911")
    assert code == 0, output
    code, output = await operator.run([new_key, old_key], "secret-key", "rotate")
    assert code == 0, output
    # A process forgotten on the old key keeps writing after the rotation.
    audit.use_chain_key(SecretBox(old_key).derived_key("audit-chain"))
    async with committed_db.sessionmaker() as session, session.begin():
        forged = await audit.record(session, None, "call.read", "call", "late")
    code, output = await operator.run([new_key], "audit", "verify")
    assert code == 1
    assert f"audit log broken at entry {forged.id}" in " ".join(output.split())


async def test_an_old_key_cannot_write_entries_that_verify_after_the_rotation(
    committed_db: Database, operator: CommandLine, old_key: bytes, new_key: bytes
) -> None:
    """A retired chain key verifies only what it wrote before its retirement, even while
    its secret key is still listed; rotating again never extends that silently."""
    await make_source(committed_db, SecretBox(old_key))
    code, output = await operator.run([old_key], "sources", "disable", "kanawha-911")
    assert code == 0, output
    code, output = await operator.run([new_key, old_key], "secret-key", "rotate")
    assert code == 0, output

    # After the rollover, an entry keyed by the old key's chain key.
    audit.use_chain_key(SecretBox(old_key).derived_key("audit-chain"))
    async with committed_db.sessionmaker() as session, session.begin():
        late = await audit.record(session, None, "person.read", "person", "written-after-rotate")

    # Broken at that entry, with the old key still listed or not.
    for keys in ([new_key, old_key], [new_key]):
        code, output = await operator.run(keys, "audit", "verify")
        assert code == 1, output
        assert f"audit log broken at entry {late.id}" in " ".join(output.split())

    # Rotating again refuses to cover it, naming it, and changes nothing.
    code, output = await operator.run([new_key, old_key], "secret-key", "rotate")
    assert code == 1, output
    assert str(late.id) in output
    assert "nothing was changed" in " ".join(output.split())
    code, output = await operator.run([new_key], "audit", "verify")
    assert code == 1, output

    # Only when the operator accepts exactly that entry, by id, is it covered.
    code, output = await operator.run(
        [new_key, old_key], "secret-key", "rotate", "--accept-late-entries", str(late.id)
    )
    assert code == 0, output
    code, output = await operator.run([new_key], "audit", "verify")
    assert code == 0, output
    assert "audit log intact" in output


async def test_a_dry_run_says_what_would_change_and_changes_nothing(
    committed_db: Database, operator: CommandLine, old_key: bytes, new_key: bytes
) -> None:
    await make_source(committed_db, SecretBox(old_key))
    before = await stored_ciphertexts(committed_db)
    code, output = await operator.run([new_key, old_key], "secret-key", "rotate", "--dry-run")
    assert code == 0, output
    assert "CAD signing secrets: 1 would be re-encrypted under the newest key" in output
    assert "push key (VAPID): would be pinned in the database" in output
    assert "dry run: nothing changed" in output
    assert await stored_ciphertexts(committed_db) == before


async def test_removing_the_old_key_before_rotating_is_refused_naming_the_sources(
    committed_db: Database, operator: CommandLine, old_key: bytes, new_key: bytes
) -> None:
    await make_source(committed_db, SecretBox(old_key))
    before = await stored_ciphertexts(committed_db)
    code, output = await operator.run([new_key], "secret-key", "rotate")
    assert code == 1
    flat = " ".join(output.split())
    assert "CAD source(s) kanawha-911 cannot be decrypted" in flat
    assert "nothing was changed" in flat
    assert await stored_ciphertexts(committed_db) == before


def test_generate_prints_a_key_the_settings_take_in_front_of_the_old_one(
    old_key: bytes,
) -> None:
    result = runner.invoke(cli, ["secret-key", "generate"])
    assert result.exit_code == 0
    key = result.stdout.strip()
    settings = Settings(environment="test", secret_key=SecretStr(f"{key},{old_key.decode()}"))
    assert settings.secret_key is not None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not-a-key", "Fernet keys"),
        ("{new},", "empty key"),
        ("{new},{new}", "same key twice"),
        ("{new},short", "key 2 of 2 is not one"),
    ],
)
def test_a_key_list_that_is_not_fernet_keys_newest_first_is_refused(
    new_key: bytes, value: str, says: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=says):
        Settings(environment="test", secret_key=SecretStr(value.format(new=new_key.decode())))


async def test_offers_reach_phones_with_the_push_key_they_subscribed_with_after_the_rotation(
    committed_db: Database, test_server: PgServer, settings: Settings, new_key: bytes
) -> None:
    """Phones subscribe while the deployment runs on the test key; a rotation to ``new_key``
    pins the push key; a worker with ``new_key`` alone (which would derive another one)
    signs with the pinned one, the key the phones know."""
    from datetime import UTC, datetime

    from corespond.notify.relay import Notifier
    from corespond.notify.service import Vapid, pin_push_key
    from tests.pushservice import push_service
    from tests.test_assignments import auth
    from tests.test_peer_app import _link, _sign_in, _two_peers, session_of

    source = await make_source(committed_db, SecretBox(TEST_KEY))
    async with service(settings, committed_db, [TEST_KEY]) as api, push_service() as pushes:
        ana, _, call = await _two_peers(committed_db, source)
        admin = await make_key(committed_db, "admin")
        phone = session_of(await _sign_in(api, await _link(api, admin, ana)))
        subscribed_with = await push_key(api)
        subscribed = await api.post(
            "/peer/push-subscriptions", headers=phone, json=pushes.subscribe("ana-phone")
        )
        assert subscribed.status_code == 201, subscribed.text
        async with (
            test_server.owner_of(committed_db) as owner,
            owner.sessionmaker() as session,
            session.begin(),
        ):
            rotated = SecretBox(new_key, TEST_KEY)
            assert await pin_push_key(session, rotated, datetime.now(UTC)) == "pinned"
        dispatcher = await make_key(committed_db, "dispatcher")
        offer = await api.post(f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher))
        assert offer.status_code == 201, offer.text
        only_new = SecretBox(new_key)
        derived = Vapid.of(only_new, "mailto:ops@example.org")
        assert derived.public_key != subscribed_with
        async with httpx.AsyncClient() as http:
            notifier = Notifier(committed_db, http, derived, environment="test", box=only_new)
            assert await notifier.drain() == 1
    assert pushes.refused == []
    [push] = pushes.received
    assert f"k={subscribed_with}" in push.headers["authorization"]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO push_key (id, ciphertext, pinned_at) VALUES (1, '\\x00', now())",
        "INSERT INTO audit_chain_key (fingerprint, ciphertext, last_entry_id, retired_at) "
        "VALUES ('f', '\\x00', 1000000, now())",
        "DELETE FROM audit_chain_key",
    ],
)
async def test_the_service_role_may_read_the_sealed_keys_but_not_write_them(
    committed_db: Database, statement: str
) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    async with committed_db.sessionmaker() as session:
        assert (await session.execute(text("SELECT count(*) FROM audit_chain_key"))).scalar() == 0
        with pytest.raises(ProgrammingError, match="permission denied"):
            await session.execute(text(statement))


def test_an_empty_key_in_the_environment_file_is_unset_and_production_asks_for_one() -> None:
    from pydantic import ValidationError

    assert Settings(environment="test", secret_key=SecretStr(" ")).secret_key is None
    with pytest.raises(ValidationError, match="CORESPOND_SECRET_KEY is required in production"):
        Settings(
            environment="production",
            database_url="postgresql://corespond@db.example.org/corespond",
            secret_key=SecretStr(""),
        )
