"""The ``corespond`` command line against a real database."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from corespond.agencies.models import Agency
from corespond.auth.models import ApiKey
from corespond.cli import app
from corespond.config import PROJECT_ROOT, get_settings
from corespond.db import Database
from tests.conftest import TEST_KEY, PgServer

runner = CliRunner()


@pytest.fixture
async def cli_env(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Database]:
    url = committed_db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CORESPOND_SECRET_KEY", TEST_KEY.decode())
    monkeypatch.setenv("CORESPOND_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    await _register_agencies(committed_db)
    yield committed_db
    get_settings.cache_clear()


CLI_AGENCIES = {"PRINCETON PD": "54055", "LOGAN SO": "54045", "WELCH PD": "54047"}


async def _register_agencies(database: Database) -> None:
    """The agencies the CLI tests' CAD sources serve (a source needs registered ones)."""
    async with database.sessionmaker() as session, session.begin():
        for name, county in CLI_AGENCIES.items():
            session.add(Agency(name=name, home_county_fips=county))


async def invoke(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(runner.invoke, app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["init"],
        ["export"],
        ["import"],
        ["config-reference"],
        ["worker"],
        ["demo"],
        ["sources"],
        ["sources", "add"],
        ["sources", "list"],
        ["sources", "rotate-secret"],
        ["sources", "scene-secure"],
        ["sources", "set-callback"],
        ["dispatch-sink"],
        ["audit", "verify"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["keys", "rotate"],
        ["retention"],
        ["keys", "create"],
        ["cad", "send"],
        ["openapi"],
        ["agencies", "add"],
        ["agencies", "list"],
        ["agencies", "configure"],
        ["roster", "import"],
        ["roster", "add-provider"],
        ["triage", "eval"],
        ["sources", "set-agencies"],
        ["triage", "check"],
        ["triage", "classify"],
        ["secret-key", "generate"],
        ["secret-key", "rotate"],
    ],
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
    assert len(result.output.splitlines()) > 4


async def test_sources_add_list_and_rotate(cli_env: Database) -> None:
    code, output = await invoke(
        "sources", "add", "mercer-911", "--name", "Mercer County 911",
        "--agency", "WELCH PD", "--agency", "PRINCETON PD",
    )  # fmt: skip
    assert code == 0, output
    first = re.search(r"whsec_\S+", output)
    assert first

    code, output = await invoke("sources", "list")
    assert code == 0
    assert "mercer-911" in output
    assert "PRINCETON PD, WELCH PD" in output
    assert "whsec_" not in output

    code, output = await invoke("sources", "rotate-secret", "mercer-911", "--grace-hours", "2")
    assert code == 0, output
    second = re.search(r"whsec_\S+", output)
    assert second
    assert second.group() != first.group()
    assert "accepted until" in output


async def test_duplicate_source_and_bad_id_fail_with_a_message(cli_env: Database) -> None:
    await invoke("sources", "add", "logan-911", "--name", "Logan", "--agency", "LOGAN SO")
    code, output = await invoke(
        "sources", "add", "logan-911", "--name", "Logan", "--agency", "LOGAN SO"
    )
    assert code == 2
    assert "already exists" in output
    code, output = await invoke("sources", "add", "Bad Id!", "--name", "x")
    assert code == 2
    assert "source id" in output


async def test_keys_create_prints_a_key_stored_only_as_a_hash(cli_env: Database) -> None:
    code, output = await invoke(
        "keys", "create", "--role", "supervisor", "--scope", "county:54039", "--name", "Kanawha sup"
    )
    assert code == 0, output
    token = re.search(r"csk_\S+", output)
    assert token
    async with cli_env.sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.name == "Kanawha sup"))
    assert key is not None
    assert (key.role, key.scope_kind, key.scope_value) == ("supervisor", "county", "54039")
    assert token.group().encode() not in key.key_hash


async def test_keys_create_refuses_unknown_roles_and_scopes(cli_env: Database) -> None:
    code, output = await invoke("keys", "create", "--role", "sheriff")
    assert code == 2
    assert "role must be one of" in output
    code, output = await invoke("keys", "create", "--role", "dispatcher", "--scope", "planet:x")
    assert code == 2
    assert "scope must be" in output


async def test_demo_seeds_a_source_keys_and_folded_calls_and_can_run_again(
    cli_env: Database,
) -> None:
    code, output = await invoke("demo")
    assert code == 0, output
    assert "demo-cad" in output
    assert "demo events accepted this run: 10" in output
    assert re.search(r"peer app: +http://\S+/peer/sign-in\?token=psi_\S+ +\(Casey Adkins", output)
    secret = re.search(r"whsec_\S+", output)
    code, again = await invoke("demo")
    assert code == 0, again
    assert "demo events accepted this run: 0" in again
    assert secret
    assert secret.group() in again


async def test_demo_calls_show_every_triage_outcome(cli_env: Database) -> None:
    from corespond.calls.models import Call

    code, output = await invoke("demo")
    assert code == 0, output
    async with cli_env.sessionmaker() as session:
        calls = {c.incident_number: c for c in await session.scalars(select(Call))}
    assert calls["DEMO-0001"].decision == "eligible"
    assert calls["DEMO-0004"].decision == "review"
    assert calls["DEMO-0005"].decision == "ineligible"
    assert calls["DEMO-0005"].turned_dangerous_at is not None
    assert calls["DEMO-0002"].status == "onscene"
    assert (calls["DEMO-0001"].county_fips, calls["DEMO-0001"].county_method) == ("54039", "point")
    assert (calls["DEMO-0002"].county_fips, calls["DEMO-0002"].county_method) == ("54039", "place")
    assert (calls["DEMO-0006"].county_fips, calls["DEMO-0006"].county_method) == ("54045", "agency")

    from datetime import UTC, datetime

    from corespond.roster import service

    async with cli_env.sessionmaker() as session:
        on = await service.on_shift(
            session, "54039", datetime.now(UTC), ("prss_certification", "cjis_background", "nda")
        )
        logan = await service.on_shift(
            session, "54045", datetime.now(UTC), ("prss_certification", "cjis_background", "nda")
        )
    assert {o.peer.display_name: o.offerable for o in on} == {
        "Casey Adkins": True,
        "Jordan Miller": True,
    }
    assert [o.credential_problems[0].split(" expired")[0] for o in logan] == ["nda"]


async def test_demo_routes_calls_end_to_end(cli_env: Database) -> None:
    from corespond.assignments.models import Assignment
    from corespond.calls.models import Call
    from corespond.dispatch.models import OutboxMessage

    code, output = await invoke("demo")
    assert code == 0, output
    assert "supervisor key" in output
    assert "(Casey Adkins)" in output
    async with cli_env.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Call.incident_number, Assignment)
                .join(Assignment, Assignment.call_id == Call.id)
                .order_by(Assignment.created_at)
            )
        ).all()
        by_call: dict[str, list[Assignment]] = {}
        for incident, assignment in rows:
            by_call.setdefault(incident, []).append(assignment)
        routed = by_call["DEMO-0001"][0]
        assert (routed.status, routed.outcome, routed.referrals) == (
            "cleared",
            "referred",
            ["detox"],
        )
        assert routed.scene_secured_by == "CAD"
        assert [a.cancel_reason for a in by_call["DEMO-0005"]] == ["danger"]
        assert [a.cancel_reason for a in by_call["DEMO-0003"]] == ["call_closed"]
        # Not opted in: waits for a dispatcher.
        assert "DEMO-0002" not in by_call
        assert "DEMO-0006" not in by_call
        types = (
            await session.scalars(
                select(OutboxMessage.event_type)
                .where(OutboxMessage.call_id == routed.call_id)
                .order_by(OutboxMessage.seq)
            )
        ).all()
    assert types == [
        "assignment.offered",
        "assignment.accepted",
        "assignment.scene_secure",
        "assignment.en_route",
        "assignment.on_scene",
        "assignment.cleared",
    ]


async def test_agencies_add_and_list(cli_env: Database) -> None:
    code, output = await invoke("agencies", "add", "Bluefield PD", "--county", "Mercer")
    assert code == 0, output
    assert "BLUEFIELD PD: home county Mercer (54055)" in output
    code, output = await invoke("agencies", "add", "Nowhere PD", "--county", "Atlantis")
    assert code == 2
    assert "unknown county" in output
    code, output = await invoke("agencies", "list")
    assert code == 0
    assert "BLUEFIELD PD" in output
    assert "54055" in output


async def test_agencies_matching_settings(cli_env: Database) -> None:
    code, output = await invoke(
        "agencies", "add", "Morgantown PD", "--county", "Monongalia", "--auto-request"
    )
    assert code == 0, output
    assert "automatic peer requests, scene gate on" in output
    code, output = await invoke("agencies", "configure", "morgantown p.d.", "--no-scene-gate")
    assert code == 0, output
    assert "MORGANTOWN PD: automatic peer requests, scene gate off" in output
    code, output = await invoke("agencies", "configure", "Gotham PD", "--auto-request")
    assert code == 2
    assert "not registered" in output
    code, output = await invoke("agencies", "list")
    assert "scene gate off" in output


async def test_sources_set_callback(cli_env: Database) -> None:
    code, output = await invoke(
        "sources", "add", "mercer-911", "--name", "Mercer 911", "--agency", "PRINCETON PD"
    )
    assert code == 0, output
    code, output = await invoke(
        "sources", "set-callback", "mercer-911", "http://127.0.0.1:9100/events"
    )
    assert code == 0, output
    assert "callback http://127.0.0.1:9100/events; 0 waiting event(s) go now" in output
    code, output = await invoke(
        "sources", "set-callback", "mercer-911", "https://u:p@cad.example.org/"
    )
    assert code == 2
    assert "must not carry credentials" in output
    code, output = await invoke("sources", "set-callback", "mercer-911", "--remove")
    assert code == 0, output
    assert "no callback" in output
    code, output = await invoke("sources", "set-callback", "mercer-911")
    assert code == 2
    assert "give a URL, or --remove" in output


async def test_audit_verify(cli_env: Database, test_server: PgServer) -> None:
    from sqlalchemy import text

    from corespond.audit import service as audit

    async with cli_env.sessionmaker() as session, session.begin():
        for n in range(3):
            await audit.record(session, None, "call.read", "call", str(n), actor="test")
    code, output = await invoke("audit", "verify")
    assert code == 0, output
    assert "intact: 3 entries" in output
    async with (
        test_server.owner_of(cli_env) as owner,
        owner.sessionmaker() as session,
        session.begin(),
    ):
        await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await session.execute(text("UPDATE audit_log SET record_id = 'x' WHERE record_id = '1'"))
        await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    code, output = await invoke("audit", "verify")
    assert code == 1
    assert "broken" in output


@pytest.fixture
def chain_key() -> Iterator[None]:
    """The audit chain's key as the tests' secret key makes it, before and after."""
    from corespond.audit import service as audit
    from corespond.crypto import SecretBox

    audit.use_chain_key(SecretBox(TEST_KEY).derived_key("audit-chain"))
    yield
    audit.use_chain_key(SecretBox(TEST_KEY).derived_key("audit-chain"))


async def test_audit_verify_with_another_secret_key_says_the_key_does_not_match(
    cli_env: Database, chain_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from corespond.audit import service as audit

    async with cli_env.sessionmaker() as session, session.begin():
        for n in range(3):
            await audit.record(session, None, "call.read", "call", str(n), actor="test")
    monkeypatch.setenv("CORESPOND_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    code, output = await invoke("audit", "verify")
    assert code == 1
    assert "the key does not match the audit log" in output
    assert "not the key the log was written with" in output
    assert "altered, or an entry before it was removed" not in output


async def test_audit_verify_names_a_first_entry_that_does_not_verify(
    cli_env: Database, chain_key: None, test_server: PgServer
) -> None:
    from sqlalchemy import text

    from corespond.audit import service as audit

    async with cli_env.sessionmaker() as session, session.begin():
        for n in range(3):
            await audit.record(session, None, "call.read", "call", str(n), actor="test")
    async with (
        test_server.owner_of(cli_env) as owner,
        owner.sessionmaker() as session,
        session.begin(),
    ):
        await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await session.execute(text("UPDATE audit_log SET record_id = 'x' WHERE record_id = '0'"))
        await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    code, output = await invoke("audit", "verify")
    assert code == 1
    assert "broken at entry" in output
    assert "the first entry was altered, or the key may not be" in output


def test_dispatch_sink_refuses_a_bad_secret() -> None:
    result = runner.invoke(app, ["dispatch-sink", "--secret", "nope"])
    assert result.exit_code == 2
    assert "not a whsec_ secret" in result.output


async def test_sources_scene_secure_signals(cli_env: Database) -> None:
    code, output = await invoke(
        "sources", "add", "mercer-911", "--name", "Mercer 911", "--agency", "PRINCETON PD"
    )
    assert code == 0, output
    code, output = await invoke(
        "sources", "scene-secure", "mercer-911", "--status", "SECURE", "--flag", "10-98 SEC"
    )
    assert code == 0, output
    assert "scene secure when status is SECURE; or flagged 10-98 SEC" in output
    code, output = await invoke("sources", "scene-secure", "nowhere", "--status", "x")
    assert code == 2
    assert "unknown CAD source" in output


async def test_county_scope_is_stored_as_fips_whichever_way_it_is_written(
    cli_env: Database,
) -> None:
    code, output = await invoke(
        "keys", "create", "--role", "supervisor", "--scope", "county:Kanawha", "--name", "k"
    )
    assert code == 0, output
    async with cli_env.sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.name == "k"))
    assert key is not None
    assert key.scope_value == "54039"
    code, output = await invoke("keys", "create", "--role", "supervisor", "--scope", "county:Oz")
    assert code == 2
    assert "unknown county" in output


def test_cad_send_explains_a_missing_file_an_unreachable_server_and_a_bad_secret(
    tmp_path: Path,
) -> None:
    from corespond.sources.service import generate_secret

    secret = generate_secret()
    missing = runner.invoke(app, ["cad", "send", str(tmp_path / "nope.json"), "--secret", secret])
    assert missing.exit_code == 2
    assert "nope.json" in missing.output
    event = tmp_path / "event.json"
    event.write_text("{}")
    unreachable = runner.invoke(
        app, ["cad", "send", str(event), "--secret", secret, "--url", "http://127.0.0.1:9"]
    )
    assert unreachable.exit_code == 2
    assert "cannot reach" in unreachable.output
    bad = runner.invoke(app, ["cad", "send", str(event), "--secret", "whsec_%%%"])
    assert bad.exit_code == 2
    assert "not a whsec_" in bad.output


def test_serve_refuses_to_start_on_a_broken_rule_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: [\n")
    monkeypatch.setenv("CORESPOND_TRIAGE_RULES_FILE", str(rules))
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "invalid triage rules" in result.output
    assert "bad.yaml:" in result.output


async def test_rotation_grace_cannot_be_negative_and_callback_must_be_a_url(
    cli_env: Database,
) -> None:
    code, output = await invoke("sources", "add", "x-911", "--name", "X", "--callback-url", "nope")
    assert code == 2
    assert "callback URL" in output
    await invoke("sources", "add", "y-911", "--name", "Y", "--agency", "PRINCETON PD")
    code, output = await invoke("sources", "rotate-secret", "y-911", "--grace-hours", "-5")
    assert code == 2


async def test_roster_commands_add_a_provider_and_import_shifts(cli_env: Database) -> None:
    from corespond.auth.service import Principal
    from corespond.roster import service

    code, output = await invoke(
        "roster", "add-provider", "wvsl", "--name", "WVSL", "--county", "Kanawha",
        "--county", "Putnam:backup",
    )  # fmt: skip
    assert code == 0, output
    assert "54039 (primary)" in output
    admin = Principal(key_id=uuid.uuid4(), name="t", role="admin", scope=None)
    async with cli_env.sessionmaker() as session, session.begin():
        for name in ("Jordan Miller", "Casey Adkins"):
            await service.create_peer(session, admin, "wvsl", display_name=name)
    csv = PROJECT_ROOT / "examples" / "rosters" / "shifts.csv"
    code, output = await invoke("roster", "import", str(csv), "--provider", "wvsl", "--dry-run")
    assert code == 0, output
    assert "3 created" in output
    assert "dry run, nothing applied" in output
    code, output = await invoke("roster", "import", str(csv), "--provider", "wvsl")
    assert "applied" in output
    code, output = await invoke("roster", "import", str(csv), "--provider", "wvsl")
    assert "3 unchanged" in output


async def test_roster_import_names_bad_lines(cli_env: Database, tmp_path: Path) -> None:
    await invoke("roster", "add-provider", "wvsl", "--name", "WVSL")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "shift_id,peer,starts_at,ends_at,counties\n"
        "x,Nobody,2026-11-23 07:00,2026-11-23 19:00,Kanawha\n"
    )
    code, output = await invoke("roster", "import", str(bad), "--provider", "wvsl")
    assert code == 1
    assert "bad.csv:2: x: no peer 'Nobody'" in output
    assert "NOT applied" in output


async def test_keys_cli(cli_env: Database) -> None:
    code, output = await invoke(
        "keys", "create", "--role", "auditor", "--name", "Audit Ann", "--expires-days", "30"
    )
    assert code == 0, output
    prefix = output.split("csk_")[1].split("_")[0]
    code, listed = await invoke("keys", "list")
    assert code == 0
    assert "Audit Ann" in listed
    assert prefix in listed
    code, rotated = await invoke("keys", "rotate", prefix, "--grace-hours", "1")
    assert code == 0
    assert "auditor key: csk_" in rotated
    code, revoked = await invoke("keys", "revoke", prefix)
    assert code == 0
    assert f"revoked {prefix}" in revoked
    code, missing = await invoke("keys", "revoke", "nosuchkey")
    assert code == 2
    assert "no API key" in missing


async def test_retention_dry_run_and_run(cli_env: Database) -> None:
    code, output = await invoke("demo")
    assert code == 0, output
    code, output = await invoke("retention", "--dry-run", "--days", "0.01")
    assert code == 0, output
    assert "would purge" in output
    code, output = await invoke("retention", "--days", "365")
    assert code == 0, output
    assert "purged 0 call(s)" in output


def test_production_refuses_demo_data_and_template_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from corespond.config import Settings, get_settings

    key = TEST_KEY.decode()
    with pytest.raises(ValidationError, match="CHANGE-ME"):
        Settings(
            environment="production",
            database_url="postgresql://corespond:CHANGE-ME@127.0.0.1/corespond",
            secret_key=key,
        )
    with pytest.raises(ValidationError, match="Fernet key"):
        Settings(environment="production", database_url="postgresql://c:s@db/c", secret_key="short")
    monkeypatch.setenv("CORESPOND_ENVIRONMENT", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://c:s@db.invalid/c")
    monkeypatch.setenv("CORESPOND_SECRET_KEY", key)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["demo"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "no demo data in production" in result.output


async def test_configuration_changes_from_the_cli_are_on_the_audit_log(cli_env: Database) -> None:
    from corespond.audit.models import AuditEntry

    code, output = await invoke(
        "sources", "add", "wood-911", "--name", "Wood 911", "--agency", "PARKERSBURG PD"
    )
    assert code == 2  # an agency must be registered before a source may file its calls
    assert "not registered" in output
    code, output = await invoke("agencies", "add", "Parkersburg PD", "--county", "Wood")
    assert code == 0, output
    code, output = await invoke(
        "sources", "add", "wood-911", "--name", "Wood 911", "--agency", "PARKERSBURG PD"
    )
    assert code == 0, output
    code, output = await invoke("keys", "create", "--role", "auditor", "--name", "Ann")
    assert code == 0, output
    async with cli_env.sessionmaker() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(e.action, e.record_id) for e in entries] == [
        ("agency.create", "Parkersburg PD"),
        ("source.create", "wood-911"),
        ("key.create", "Ann"),
    ]
    assert all(e.actor.startswith("cli (") for e in entries)
    code, output = await invoke("audit", "verify")
    assert code == 0
    assert "3 entries" in output


async def test_sources_set_agencies_replaces_them_with_registered_ones(cli_env: Database) -> None:
    code, output = await invoke(
        "sources", "add", "mcdowell-911", "--name", "McDowell", "--agency", "WELCH PD"
    )
    assert code == 0, output
    code, output = await invoke(
        "sources", "set-agencies", "mcdowell-911", "--agency", "welch p.d.", "--agency", "LOGAN SO"
    )
    assert code == 0, output
    assert "files calls for LOGAN SO, WELCH PD" in output
    code, output = await invoke("sources", "set-agencies", "mcdowell-911", "--agency", "NOWHERE PD")
    assert code == 2
    assert "not registered" in output


async def test_sources_disable_and_enable(cli_env: Database) -> None:
    code, output = await invoke(
        "sources", "add", "boone-911", "--name", "Boone 911", "--agency", "WELCH PD"
    )
    assert code == 0, output
    code, output = await invoke("sources", "disable", "boone-911")
    assert code == 0, output
    assert "boone-911: disabled since" in output
    code, output = await invoke("sources", "enable", "boone-911")
    assert (code, output.strip()) == (0, "boone-911: enabled")
    code, output = await invoke("sources", "disable", "nowhere-911")
    assert code != 0
    assert "unknown CAD source" in output


async def test_init_creates_the_first_admin_key_once_and_says_what_next(
    cli_env: Database,
) -> None:
    code, output = await invoke("init", "--name", "county IT")
    assert code == 0, output
    token = re.search(r"admin key: (csk_\S+)", output)
    assert token
    assert "Next steps" in output
    for step in ("agencies add", "roster add-provider", "sources add", "keys create", "/readyz"):
        assert step in output, step
    async with cli_env.sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.name == "county IT"))
    assert key is not None
    assert key.role == "admin"

    code, output = await invoke("init")
    assert code == 2
    assert "already initialised: 1 live admin key(s) exist" in output
    assert "csk_" not in output


async def test_init_on_an_unmigrated_database_says_to_migrate_first(
    test_server: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.conftest import _admin

    name = f"corespond_init_{uuid.uuid4().hex[:8]}"
    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("DATABASE_URL", test_server.url(name))
    monkeypatch.setenv("CORESPOND_SECRET_KEY", TEST_KEY.decode())
    monkeypatch.setenv("CORESPOND_DATA_DIR", str(tmp_path))
    try:
        code, output = await invoke("init")
    finally:
        get_settings.cache_clear()
        await test_server.drop(name)
    assert code == 2
    assert "run `corespond migrate` first" in output


async def test_export_then_import_moves_the_configuration_without_secrets(
    cli_env: Database, test_server: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, output = await invoke(
        "roster", "add-provider", "wvsl", "--name", "West Virginia Sober Living",
        "--county", "Mercer", "--county", "Logan:backup",
    )  # fmt: skip
    assert code == 0, output
    code, output = await invoke(
        "sources", "add", "mercer-911", "--name", "Mercer 911", "--agency", "PRINCETON PD"
    )
    assert code == 0, output
    old_secret = re.search(r"whsec_\S+", output)
    assert old_secret
    await invoke("sources", "scene-secure", "mercer-911", "--status", "SECURE")
    await invoke("agencies", "configure", "PRINCETON PD", "--auto-request")
    exported = tmp_path / "corespond-config.yaml"
    code, output = await invoke("export", "--output", str(exported))
    assert code == 0, output
    text = exported.read_text()
    assert "whsec_" not in text
    assert "mercer-911" in text
    assert "SECURE" in text

    async with test_server.cloned() as other:
        monkeypatch.setenv("DATABASE_URL", other.engine.url.render_as_string(hide_password=False))
        get_settings.cache_clear()
        code, output = await invoke("import", str(exported), "--dry-run")
        assert code == 0, output
        assert "dry run: nothing changed" in output
        assert "whsec_" not in output
        async with other.sessionmaker() as session:
            assert await session.scalar(select(Agency).limit(1)) is None

        code, output = await invoke("import", str(exported))
        assert code == 0, output
        assert "agency PRINCETON PD: added" in output
        assert "provider wvsl: added, 2 county(ies) served" in output
        new_secret = re.search(r"signing secret of mercer-911: (whsec_\S+)", output)
        assert new_secret
        assert new_secret.group(1) != old_secret.group()

        code, output = await invoke("export")
        assert code == 0, output
        assert (
            output.split("exported_at")[1].split("\n", 1)[1]
            == (text.split("exported_at")[1].split("\n", 1)[1])
        )

        code, output = await invoke("import", str(exported))
        assert code == 0, output
        assert "source mercer-911: updated (its signing secret kept)" in output
        assert "whsec_" not in output


async def test_import_names_what_is_wrong_with_the_file(cli_env: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nagencies:\n  - name: X\n    home_county: Nowhere\n    colour: red\n"
    )
    code, output = await invoke("import", str(bad))
    assert code == 2
    assert "agencies.0.colour: Extra inputs are not permitted" in output
