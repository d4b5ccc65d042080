"""Signed CAD ingest beside the bare floor, in one run, on one database.

    .venv/bin/python bench/ingest_vs_bare.py --seconds 20 --connections 32
        [--worker serve|process] [--rate EVENTS_PER_SECOND] [--log-level info]

Starts a PostgreSQL of its own (embedded, in var/pgdata-bench; a fresh database per run),
`corespond serve` with its worker (or, with ``--worker process``, serve without one and a
`corespond worker` process), and `bench/bare.py` (FastAPI + asyncpg, one INSERT per POST),
then loads each in turn with wrk (Debian's `wrk`) at the same threads and connections: the
bare app with one fixed body, corespond with real Standard Webhooks requests, each a
distinct event (signed before the run, so the load generator spends nothing on HMACs), as
fast as they go or, with ``--rate``, paced to about that many a second. Prints requests per
second, latency percentiles, the ratio corespond/bare, the load average, how fast events
were accepted and folded during the load (each second, and the most the backlog reached),
the CPU each process used, and how long the backlog left at the end took to drain.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LUA = Path(__file__).resolve().parent / "wrk"
PGDATA = ROOT / "var" / "pgdata-bench"


def database() -> tuple[str, str]:
    """A fresh database on the bench's own embedded server: (SQLAlchemy URL, asyncpg DSN)."""
    sys.path.insert(0, str(ROOT / "src"))
    from corespond.db import create_database_if_missing, ensure_embedded_server, server_url

    server = ensure_embedded_server(PGDATA.parent, PGDATA.name)
    name = f"bench_{int(time.time())}"
    create_database_if_missing(server, name)
    url = server_url(server, name)
    return url, url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(url: str, key: str) -> str:
    """Migrate, register CHARLESTON PD and a source ``bench``; the source's secret."""
    from pydantic import SecretStr

    from corespond.agencies.models import Agency
    from corespond.config import Settings
    from corespond.crypto import SecretBox
    from corespond.db import Database
    from corespond.migrate import upgrade_to_head
    from corespond.sources.service import create_source

    settings = Settings(database_url=url, secret_key=SecretStr(key))
    await asyncio.to_thread(upgrade_to_head, settings.migrations_dir, url)
    db = Database.connect(url)
    async with db.sessionmaker() as session, session.begin():
        session.add(Agency(name="CHARLESTON PD", home_county_fips="54039"))
        await session.flush()
        _, secret = await create_source(
            session,
            SecretBox(key),
            source_id="bench",
            display_name="Bench CAD",
            agencies=["CHARLESTON PD"],
        )
    await db.engine.dispose()
    return secret


def signed_requests(secret: str, count: int, path: Path) -> None:
    """``count`` distinct signed events, one per line: id, timestamp, signature, body."""
    hook = Webhook(secret)
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    with path.open("w") as out:
        for index in range(count):
            incident = index % 2000
            first = index < 2000
            call: dict[str, object] = {"incident_number": f"B-{run}-{incident:05d}"}
            if first:
                call |= {
                    "agency": "CHARLESTON PD",
                    "call_type": "OD",
                    "call_type_description": "OVERDOSE",
                    "priority": 2,
                    "location": {"address": "1 Capitol St", "city": "Charleston"},
                    "narrative": "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
                    "status": "dispatched",
                }
            else:
                call["narrative"] = f"UPDATE {index}: SUBJ TALKING WITH EMS, CALM"
            body = json.dumps(
                {
                    "event_id": f"bench-{run}:{index}",
                    "event_type": "call.created" if first else "call.updated",
                    "occurred_at": now.isoformat(),
                    "call": call,
                },
                separators=(",", ":"),
            )
            webhook_id = f"msg_{run}_{index}"
            signature = hook.sign(webhook_id, now, body)
            out.write(f"{webhook_id}\t{int(now.timestamp())}\t{signature}\t{body}\n")


def free_port() -> int:
    """A port nobody listens on now (other benchmarks may be running on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Output to a file: a pipe nobody reads would fill and stall the server.
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own programs
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )


def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def wrk(url: str, script: Path, args: argparse.Namespace, *extra: str) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
        *(["--", *extra] if extra else []),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if found:
            value, unit = float(found.group(1)), found.group(2)
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
            figures[f"p{pct}"] = value * scale
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    figures["non2xx"] = float(errors.group(1)) if errors else 0.0
    figures["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return figures


async def backlog(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS stored, count(*) FILTER (WHERE processed_at IS NOT NULL) AS folded "
            "FROM cad_event"
        )
        return int(row["stored"]), int(row["folded"])
    finally:
        await conn.close()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Sampler(threading.Thread):
    """Every second: events stored and folded so far, and the CPU seconds used by each kind
    of process (corespond's serve and worker by pid, PostgreSQL, wrk)."""

    def __init__(self, dsn: str, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.pids = pids
        self.samples: list[tuple[float, int, int]] = []
        self.cpu_start: dict[str, float] = {}
        self.cpu_end: dict[str, float] = {}
        self.stop = threading.Event()

    def cpu(self) -> dict[str, float]:
        named = {pid: name for name, pid in self.pids.items()}
        stats: dict[int, tuple[str, list[str]]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (comm, fields)
        # This bench's PostgreSQL (others may be running): its postmaster and its backends.
        postmaster = next((pid for pid in stats if str(PGDATA).encode() in _cmdline(pid)), None)
        used: dict[str, float] = {}
        for pid, (comm, fields) in stats.items():
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            if pid == postmaster:
                # With the backends that have ended (cutime, cstime).
                name, ticks = "postgres", ticks + int(fields[13]) + int(fields[14])
            elif postmaster is not None and int(fields[1]) == postmaster:
                name = "postgres"
            else:
                name = named.get(pid) or comm
            if name in (*self.pids, "postgres", "wrk"):
                used[name] = used.get(name, 0.0) + ticks
        tick = os.sysconf("SC_CLK_TCK")
        return {name: ticks / tick for name, ticks in used.items()}

    def run(self) -> None:
        self.cpu_start = self.cpu()
        while not self.stop.is_set():
            stored, folded = asyncio.run(backlog(self.dsn))
            self.samples.append((time.monotonic(), stored, folded))
            self.cpu_end = self.cpu()  # the last look before wrk exits counts its CPU
            self.stop.wait(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--drain-seconds", type=int, default=120)
    parser.add_argument(
        "--worker",
        choices=("serve", "process", "after"),
        default="serve",
        help="fold in the serve process (its own worker), in `corespond worker` processes, "
        "or in those only after the load (ingest alone beside the bare app)",
    )
    parser.add_argument(
        "--worker-processes", type=int, default=1, help="with --worker process or after: how many"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="pace corespond's load to about this many events a second (0: as fast as it goes)",
    )
    parser.add_argument("--log-level", default="warning", help="corespond's (info: access log)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: sudo apt-get install wrk")

    from cryptography.fernet import Fernet

    load_before = os.getloadavg()
    url, dsn = database()
    key = Fernet.generate_key().decode()
    secret = asyncio.run(seed(url, key))
    env = {
        "DATABASE_URL": url,
        "CORESPOND_SECRET_KEY": key,
        "CORESPOND_LOG_LEVEL": args.log_level,
        "CORESPOND_RATE_LIMIT_CAD_PER_SECOND": "1000000",
        "CORESPOND_RATE_LIMIT_CAD_BURST": "1000000",
        "CORESPOND_WORKER_ENABLED": "true" if args.worker == "serve" else "false",
    }
    logs = ROOT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    ours_port, bare_port = free_port(), free_port()
    processes = {
        "serve": start(
            [str(BIN / "corespond"), "serve", "--port", str(ours_port), "--no-migrate"],
            env,
            logs / "corespond.log",
        ),
        "bare": start(
            [str(BIN / "python"), "-m", "uvicorn", "bench.bare:app", "--port", str(bare_port),
             "--log-level", "warning", "--no-access-log"],
            {"BARE_DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)},
            logs / "bare.log",
        ),
    }  # fmt: skip

    def start_workers() -> None:
        for number in range(1, args.worker_processes + 1):
            processes[f"worker{number}"] = start(
                [str(BIN / "corespond"), "worker"], env, logs / f"corespond-worker{number}.log"
            )

    if args.worker == "process":
        start_workers()
    try:
        wait_ready(f"http://127.0.0.1:{ours_port}/readyz")
        wait_ready(f"http://127.0.0.1:{bare_port}/docs")
        bare_sampler = Sampler(dsn, {"bare": processes["bare"].pid})
        bare_sampler.start()
        floor = wrk(f"http://127.0.0.1:{bare_port}/events", LUA / "bare.lua", args)
        bare_sampler.stop.set()
        bare_sampler.join()
        expected = args.rate if args.rate else max(floor["rps"], 500)
        count = int(expected * args.seconds * 1.2)
        # Each connection waits this long before each request: about --rate in all.
        pause = max(1, round(args.connections * 1000 / args.rate)) if args.rate else 0
        with tempfile.TemporaryDirectory() as folder:
            requests = Path(folder) / "signed.tsv"
            signed_requests(secret, count, requests)
            ours_pids = {n: p.pid for n, p in processes.items() if n != "bare"}
            sampler = Sampler(dsn, ours_pids)
            sampler.start()
            started = time.monotonic()
            ours = wrk(
                f"http://127.0.0.1:{ours_port}/v1/cad/bench/events",
                LUA / "signed.lua",
                args,
                str(requests),
                str(args.threads),
                str(pause),
            )
            loaded = time.monotonic() - started
            sampler.stop.set()
            sampler.join()
        if args.worker == "after":
            start_workers()
        stored, folded = asyncio.run(backlog(dsn))
        at_end = stored - folded
        drain_start = time.monotonic()
        while folded < stored and time.monotonic() - drain_start < args.drain_seconds:
            time.sleep(1)
            stored, folded = asyncio.run(backlog(dsn))
        drained = time.monotonic() - drain_start
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGINT)
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def line(name: str, f: dict[str, float]) -> str:
        return (
            f"{name:<28} {f['rps']:>9.0f} req/s   p50 {f.get('p50', 0):6.1f} ms   "
            f"p90 {f.get('p90', 0):6.1f} ms   p99 {f.get('p99', 0):6.1f} ms   "
            f"non-2xx {f['non2xx']:.0f} of {f['requests']:.0f}"
        )

    paced = f", paced to ~{args.rate:g}/s" if args.rate else ""
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"worker in {args.worker}{paced}; log level {args.log_level}"
    )
    print(line("bare (one INSERT per POST)", floor))
    print(line("corespond signed ingest", ours))
    print(f"ratio corespond / bare: {ours['rps'] / floor['rps']:.3f}")
    samples = sampler.samples
    if len(samples) >= 2:
        (t0, s0, f0), (t1, s1, f1) = samples[0], samples[-1]
        worst = max(s - f for _, s, f in samples)
        print(
            f"during the load: accepted {(s1 - s0) / (t1 - t0):.0f}/s, folded "
            f"{(f1 - f0) / (t1 - t0):.0f}/s; backlog at most {worst}"
        )
        per_second = ", ".join(
            f"{b[1] - a[1]}/{b[2] - a[2]}" for a, b in itertools.pairwise(samples)
        )
        print(f"accepted/folded each second: {per_second}")
    bare_spent = {
        k: v - bare_sampler.cpu_start.get(k, 0.0) for k, v in bare_sampler.cpu_end.items()
    }
    print(
        "CPU during the bare load (cores): "
        + ", ".join(f"{k} {v / args.seconds:.2f}" for k, v in sorted(bare_spent.items()))
    )
    if bare_spent.get("bare") and floor["requests"]:
        print(f"bare CPU per request: {1e6 * bare_spent['bare'] / floor['requests']:.0f} us")
    spent = {k: v - sampler.cpu_start.get(k, 0.0) for k, v in sampler.cpu_end.items()}
    print(
        "CPU during the load (cores): "
        + ", ".join(f"{k} {v / loaded:.2f}" for k, v in sorted(spent.items()))
    )
    if spent.get("serve") and ours["requests"]:
        print(f"serve CPU per request: {1e6 * spent['serve'] / ours['requests']:.0f} us")
    print(
        f"worker: {stored} events stored; backlog {at_end} when the load stopped; "
        f"{'drained' if folded >= stored else 'NOT drained'} {drained:.0f} s later "
        f"({folded} folded); folded {folded / (loaded + drained):.0f}/s over the run"
    )


if __name__ == "__main__":
    main()
