"""``corespond serve --workers N``: N processes serve one API on one port; the background
jobs never run in them (``corespond worker`` runs them); /metrics counts the requests of
every process, whichever process answers the scrape."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from typer.testing import CliRunner

from corespond.cli import app
from corespond.config import get_settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.ingest.models import CadEvent
from tests.conftest import TEST_KEY, Source, make_source
from tests.helpers import cad_event, encode, signed_headers
from tests.test_operator_walkthrough import free_port

EVENTS = 6


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics: Path

    def log_events(self) -> list[dict[str, object]]:
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def started(self) -> list[dict[str, object]]:
        """The lifespans that finished starting, one per process."""
        return [e for e in self.log_events() if e.get("event") == "started"]


@pytest.fixture
def served(committed_db: Database, tmp_path: Path) -> Iterator[Served]:
    """``corespond serve --workers 2`` on a free port, its metrics in a directory holding an
    earlier run's file."""
    port = free_port()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"\0" * 16)
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.engine.url.render_as_string(hide_password=False),
        "CORESPOND_SECRET_KEY": TEST_KEY.decode(),
        "CORESPOND_DATA_DIR": str(tmp_path / "var"),
        "CORESPOND_ENVIRONMENT": "test",
        "CORESPOND_WORKER_ENABLED": "false",
        "CORESPOND_LOG_JSON": "true",
        "CORESPOND_LOG_LEVEL": "INFO",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    for inherited in ("CORESPOND_ENV_FILE", "CORESPOND_TRUSTED_PROXIES", "CORESPOND_PORT"):
        env.pop(inherited, None)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            [sys.executable, "-m", "corespond", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log, metrics)
    try:
        deadline = time.monotonic() + 120
        while len(served.started()) < 2:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve --workers 2 did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def fresh(url: str) -> httpx.Client:
    """A client that opens a connection per request, so that requests spread over the
    processes accepting on the port."""
    return httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def sample(text: str, line_start: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def total(text: str, name: str) -> float:
    """The sum of a metric's series."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


def counted_alone(served: Served) -> dict[int, str]:
    """What each process counted, read from its own file alone."""
    counted = {}
    for file in served.metrics.glob("counter_*.db"):
        alone = served.log.parent / f"alone-{file.stem}"
        alone.mkdir()
        shutil.copy(file, alone / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        counted[int(file.stem.removeprefix("counter_"))] = generate_latest(registry).decode()
    return counted


@pytest.mark.slow
async def test_two_processes_serve_readiness_ingest_and_one_count_of_metrics(
    served: Served, committed_db: Database, box: SecretBox
) -> None:
    source: Source = await make_source(committed_db, box)
    with fresh(served.url) as client:
        for _ in range(6):
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "ready"
        for n in range(EVENTS):
            body = encode(cad_event(f"{source.id}:{9000 + n}", incident_number=f"26-{n}"))
            posted = client.post(
                f"/v1/cad/{source.id}/events",
                content=body,
                headers=signed_headers(source.secret, body),
            )
            assert posted.status_code == 202, posted.text
        scrapes = [client.get("/metrics") for _ in range(6)]

    async with committed_db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CadEvent)) == EVENTS

    # Two processes, each counting in its own file; the earlier run's file is gone.
    accepted = f'corespond_cad_events_ingested_total{{source="{source.id}",status="accepted"}}'
    alone = counted_alone(served)
    assert len(alone) == 2
    assert 1 not in alone
    assert sum(sample(text, accepted) or 0 for text in alone.values()) == EVENTS
    # Each took some of the 18 connections (the kernel hands each to a waiting process).
    assert all(total(text, "corespond_http_requests_total") > 0 for text in alone.values())
    # Whichever process answered, each scrape counts every accepted event once.
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert sample(scrape.text, accepted) == EVENTS
        assert "pid=" not in scrape.text
        assert sample(scrape.text, "corespond_dispatch_failing_sources") == 0
        oldest = f'corespond_dispatch_oldest_undelivered_seconds{{source="{source.id}"}}'
        assert sample(scrape.text, oldest) == 0
    # The jobs ran in neither process: with them elsewhere, events wait for `corespond worker`.
    assert [e["worker"] for e in served.started()] == [False, False]
    assert sample(scrapes[-1].text, "corespond_cad_events_processed_total") == 0

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0
    assert [e["event"] for e in served.log_events()].count("stopped") == 2


def test_several_processes_refuse_to_run_the_jobs_in_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.delenv("CORESPOND_WORKER_ENABLED", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--workers", "3"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "CORESPOND_WORKER_ENABLED=false" in result.output
    assert "corespond worker" in result.output
