"""corespond's own processes for the reliability suite: ``corespond serve`` and ``corespond
worker`` started from this checkout (``python -m corespond``) against a scratch database,
each logging to a file of its own, killed however a scenario likes and never left behind.
And the PostgreSQL proxy a scenario cuts and restores (``pgproxy.py``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from corespond.config import PROJECT_ROOT
from tests.conftest import TEST_KEY
from tests.test_operator_walkthrough import free_port

SRC = PROJECT_ROOT / "src"
START_SECONDS = 90  # a cold start on a busy 2-core machine imports numpy, sklearn, shapely

# Quick timers, so that a scenario of seconds sees every job run many times: sweeps (the
# safety nets under LISTEN/NOTIFY), offer deadlines, delivery backoff and its timeout.
SETTINGS = {
    "CORESPOND_ENVIRONMENT": "test",
    "CORESPOND_SECRET_KEY": TEST_KEY.decode(),
    "CORESPOND_LOG_JSON": "true",
    "CORESPOND_WORKER_SWEEP_SECONDS": "1",
    "CORESPOND_RELAY_SWEEP_SECONDS": "1",
    "CORESPOND_TIMER_SWEEP_SECONDS": "0.5",
    "CORESPOND_ACK_TIMEOUT_SECONDS": "4",
    "CORESPOND_OUTBOUND_TIMEOUT_SECONDS": "2",
    "CORESPOND_DELIVERY_BACKOFF_CAP_SECONDS": "2",
    "CORESPOND_ALERT_SWEEP_SECONDS": "5",
    # The load is deliberate; the limits have tests of their own.
    "CORESPOND_RATE_LIMIT_CAD_PER_SECOND": "10000",
    "CORESPOND_RATE_LIMIT_CAD_BURST": "10000",
    "CORESPOND_RATE_LIMIT_WRITES_PER_SECOND": "10000",
    "CORESPOND_RATE_LIMIT_WRITES_BURST": "10000",
}


class Service:
    """One ``corespond serve`` or ``corespond worker`` process; started again on the same
    port (and log) after a kill. It stays in the test's process group, so that whatever
    stops the test run as a whole (``timeout`` in ``make test-reliability``, Ctrl-C) stops
    it too, even where no finaliser gets to run."""

    def __init__(self, kind: str, name: str, home: Path, env: dict[str, str]) -> None:
        self.kind = kind
        self.name = name
        self.home = home
        self.env = env
        self.port = int(env["CORESPOND_PORT"]) if kind == "serve" else None
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_mark = 0  # where the log stood at the last start

    @property
    def url(self) -> str:
        assert self.port is not None, "a worker serves no API"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Service:
        assert not self.running(), f"{self.name} is running already"
        self.starts += 1
        with self.log_file.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self._log_mark = log.tell()
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
                [sys.executable, "-m", "corespond", self.kind],
                cwd=self.home,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """``kill -9``: no shutdown, no rollback but the database's own."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def log(self, chars: int = 3000) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return f"=== {self.name} ({self.kind}) ===\n{text[-chars:]}"

    async def ready(self, client: httpx.AsyncClient, within: float = START_SECONDS) -> None:
        """Until the API answers /readyz 200 (serve) or the jobs have started (worker)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name} exited while starting\n{self.log()}")
            if self.kind == "serve":
                with suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200:
                        return
            elif b"worker_started" in self.log_file.read_bytes()[self._log_mark :]:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready within {within} s\n{self.log()}")


class Cluster:
    """The processes of one scenario on one database."""

    def __init__(self, home: Path, database_url: str, **settings: str) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("CORESPOND_") and k not in ("DATABASE_URL", "PYTHONPATH")
            },
            **SETTINGS,
            "CORESPOND_DATA_DIR": str(home / "var"),
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(SRC),
            **settings,
        }
        self.services: list[Service] = []

    def _add(self, kind: str, name: str, **env: str) -> Service:
        service = Service(kind, name, self.home, {**self.env, **env})
        self.services.append(service)
        return service.start()

    def serve(self, *, worker: bool = True, **env: str) -> Service:
        """An API process (with its own worker unless ``worker`` is false)."""
        number = sum(1 for s in self.services if s.kind == "serve") + 1
        return self._add(
            "serve",
            f"serve-{number}",
            CORESPOND_PORT=str(free_port()),
            CORESPOND_WORKER_ENABLED="true" if worker else "false",
            **env,
        )

    def worker(self, **env: str) -> Service:
        number = sum(1 for s in self.services if s.kind == "worker") + 1
        return self._add("worker", f"worker-{number}", **env)

    @property
    def apis(self) -> list[Service]:
        return [s for s in self.services if s.kind == "serve"]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.apis]

    async def ready(self, client: httpx.AsyncClient) -> None:
        await asyncio.gather(*(s.ready(client) for s in self.services if s.running()))

    def logs(self) -> str:
        return "\n".join(s.log() for s in self.services)

    def close(self) -> None:
        """Every process stopped (SIGTERM, then SIGKILL): none outlives its scenario."""
        for service in self.services:
            if service.running():
                assert service.process is not None
                service.process.send_signal(signal.SIGTERM)
        for service in self.services:
            service.stop(timeout=15)


def server_address(url: str) -> str:
    """Where the PostgreSQL of ``url`` listens: ``host:port``, or its Unix socket's path."""
    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or "127.0.0.1"
    host = host if isinstance(host, str) else host[0]
    port = parsed.port or 5432
    return f"{host}/.s.PGSQL.{port}" if host.startswith("/") else f"{host}:{port}"


def through(url: str, port: int) -> str:
    """``url`` (its user, password and database) reached through 127.0.0.1:``port``."""
    return (
        make_url(url)
        .set(host="127.0.0.1", port=port, query={})
        .render_as_string(hide_password=False)
    )


class PgProxy:
    """``pgproxy.py`` in a process of its own, in front of the database's server."""

    def __init__(self, upstream: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(Path(__file__).with_name("pgproxy.py")), upstream],
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip().isdigit(), f"the proxy did not start: {line!r}"
        self.port = int(line)

    def _accepts(self) -> bool:
        import socket

        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    async def cut(self) -> None:
        """Reset every connection and refuse new ones (the server is gone)."""
        self.process.send_signal(signal.SIGUSR1)
        for _ in range(100):
            if not self._accepts():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the proxy still accepts connections")

    def freeze(self) -> None:
        """Hold every byte, either way, and every new connection (a partition)."""
        self.process.send_signal(signal.SIGHUP)

    async def restore(self) -> None:
        """Listen and let bytes through again (after a cut or a freeze)."""
        self.process.send_signal(signal.SIGUSR2)
        for _ in range(100):
            if self._accepts():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the proxy does not listen again")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def proxied(upstream: str) -> Iterator[PgProxy]:
    proxy = PgProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
