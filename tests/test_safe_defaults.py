"""Safe by default: development stays on this machine, every command reads the service's
environment file, no embedded database starts where an operator did not mean one, load
balancers' HEAD probes work, and the logs keep one format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import select
from typer.testing import CliRunner

from corespond.auth.models import ApiKey
from corespond.cli import app
from corespond.config import Settings, bind_refusal, get_settings, is_loopback
from corespond.db import Database, embedded_refusal
from corespond.logging import configure_logging
from tests.conftest import TEST_KEY

runner = CliRunner()


@pytest.fixture
def no_operator_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A shell with none of the developer's corespond settings."""
    for name in ("CORESPOND_ENVIRONMENT", "CORESPOND_ENV_FILE", "DATABASE_URL", "CORESPOND_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CORESPOND_MIGRATION_DATABASE_URL", raising=False)
    monkeypatch.delenv("CORESPOND_DATA_DIR", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_development_may_listen_on_loopback(host: str) -> None:
    assert is_loopback(host)
    assert bind_refusal(Settings(environment="development"), host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.0.0.5", "corespond.example.org"])  # noqa: S104
def test_development_refuses_any_other_address_saying_how_to_fix_it(host: str) -> None:
    refusal = bind_refusal(Settings(environment="development"), host)
    assert refusal is not None
    assert "Set CORESPOND_ENVIRONMENT=production" in refusal
    assert "or listen on 127.0.0.1" in refusal
    assert bind_refusal(Settings(environment="test"), host) is not None


def test_production_listens_where_it_is_told() -> None:
    production = Settings(
        environment="production",
        database_url="postgresql://corespond_app:pw@db:5432/corespond",
        secret_key=TEST_KEY.decode(),
    )
    assert bind_refusal(production, "0.0.0.0") is None  # noqa: S104


def test_serve_on_a_public_address_without_an_environment_does_not_start(
    no_operator_settings: None,
) -> None:
    code, output = invoke("serve", "--host", "0.0.0.0")  # noqa: S104
    assert code == 2
    assert "refusing to listen on 0.0.0.0 in development mode" in output
    assert "Set CORESPOND_ENVIRONMENT=production" in output


def test_a_named_environment_file_that_is_missing_is_an_error(
    no_operator_settings: None, tmp_path: Path
) -> None:
    missing = tmp_path / "corespond.env"
    code, output = invoke("--env-file", str(missing), "migrate")
    assert code == 2
    assert f"cannot read the environment file {missing}" in output


def test_the_environment_file_is_read_and_its_mistakes_named(
    no_operator_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "corespond.env"
    env.write_text("CORESPOND_ENVIRONMENT=production\n")
    code, output = invoke("--env-file", str(env), "migrate")
    assert code == 2
    assert "CORESPOND_SECRET_KEY is required in production" in output
    # The same file named by CORESPOND_ENV_FILE, as the systemd unit and containers do.
    monkeypatch.setenv("CORESPOND_ENV_FILE", str(env))
    code, output = invoke("migrate")
    assert code == 2
    assert "CORESPOND_SECRET_KEY is required in production" in output


async def test_a_command_given_the_services_environment_file_works_on_its_database(
    no_operator_settings: None, committed_db: Database, tmp_path: Path
) -> None:
    env = tmp_path / "corespond.env"
    url = committed_db.engine.url.render_as_string(hide_password=False)
    env.write_text(
        f"# as deploy/corespond.env.example\nDATABASE_URL={url}\n"
        f"CORESPOND_SECRET_KEY={TEST_KEY.decode()}\nCORESPOND_DATA_DIR={tmp_path}\n"
    )
    code, output = await asyncio.to_thread(
        invoke, "--env-file", str(env), "keys", "create", "--role", "auditor", "--name", "from env"
    )
    assert code == 0, output
    assert re.search(r"csk_\S+", output)
    async with committed_db.sessionmaker() as session:
        assert await session.scalar(select(ApiKey.role).where(ApiKey.name == "from env")) == (
            "auditor"
        )


def test_no_embedded_database_outside_the_checkouts_var(
    no_operator_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORESPOND_DATA_DIR", str(tmp_path / "elsewhere"))
    code, output = invoke("migrate")
    assert code == 2
    assert "refused: no DATABASE_URL is set" in output
    assert "--env-file or CORESPOND_ENV_FILE" in output
    assert not (tmp_path / "elsewhere").exists()  # nothing was started there


def test_an_installed_package_never_starts_an_embedded_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import corespond.db

    monkeypatch.setattr(corespond.db, "IN_CHECKOUT", False)
    refusal = embedded_refusal(Settings(environment="development"))
    assert refusal is not None
    assert "this installed corespond starts no embedded database" in refusal
    assert embedded_refusal(Settings(environment="development", data_dir=Path("var"))) is not None


async def test_load_balancers_may_probe_with_head(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = await client.head(path)
        assert response.status_code == 200, path


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_logs_are_json_off_a_terminal_with_the_client_and_key_prefix(
    logs: io.StringIO, client: httpx.AsyncClient
) -> None:
    configure_logging("INFO", json=None, stream=logs)
    logging.getLogger("uvicorn.error").info("Uvicorn running")
    await client.get("/healthz", headers={"Authorization": "Bearer csk_0a1b2c3d_notarealkey"})

    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert records[0]["event"] == "Uvicorn running"
    access = next(r for r in records if r["event"] == "request")
    assert access["key_prefix"] == "0a1b2c3d"
    assert access["client"] == "127.0.0.1"
    assert "notarealkey" not in logs.getvalue()


async def test_logs_on_a_terminal_are_all_lines_for_people(client: httpx.AsyncClient) -> None:
    terminal = Terminal()
    try:
        configure_logging("INFO", json=None, stream=terminal)
        logging.getLogger("uvicorn.error").info("Uvicorn running")
        await client.get("/healthz")
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    lines = [line for line in terminal.getvalue().splitlines() if line.strip()]
    assert len(lines) >= 2
    assert not [line for line in lines if line.lstrip().startswith("{")]
    assert any("request" in line and "/healthz" in line for line in lines)
