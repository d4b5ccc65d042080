"""Schemathesis against the running application's own OpenAPI document, with a valid key
for each role: no 5xx, and no response that breaks its documented schema."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corespond.auth.models import ROLES
from corespond.db import Database
from tests.conftest import make_key

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live_server(committed_db: Database) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.engine.url.render_as_string(hide_password=False),
        "CORESPOND_ENVIRONMENT": "test",
        "CORESPOND_PORT": str(port),
        "CORESPOND_LOG_LEVEL": "WARNING",
        "CORESPOND_WORKER_ENABLED": "false",
        "CORESPOND_RATE_LIMIT_WRITES_PER_SECOND": "100000",
        "CORESPOND_RATE_LIMIT_WRITES_BURST": "100000",
        "CORESPOND_RATE_LIMIT_CAD_PER_SECOND": "100000",
        "CORESPOND_RATE_LIMIT_CAD_BURST": "100000",
    }
    server = subprocess.Popen(  # noqa: S603 - our own console script
        [str(BIN / "corespond"), "serve"], env=env, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


async def test_no_server_errors_and_no_schema_violations_for_any_role(
    live_server: str, committed_db: Database
) -> None:
    failures = []
    for role in ROLES:
        scope = (
            "provider:wvsl"
            if role == "provider_admin"
            else "source:demo-cad"
            if role == "cad_integrator"
            else f"peer:{uuid.uuid4()}"
            if role == "peer"
            else "agency:CHARLESTON PD"
            if role == "partner"
            else None
        )
        key = await make_key(committed_db, role, scope)
        result = subprocess.run(  # noqa: S603, ASYNC221 - a bounded run of the schemathesis CLI
            [
                str(BIN / "st"),
                "run",
                f"{live_server}/openapi.json",
                "-H",
                f"Authorization: Bearer {key}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--phases",
                "examples,fuzzing",
                "--max-examples",
                "4",
                "--seed",
                "7",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            failures.append(f"--- as {role} ---\n{result.stdout[-4000:]}")
    assert not failures, "\n".join(failures)
