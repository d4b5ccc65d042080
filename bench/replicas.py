"""N replicas on one PostgreSQL: signed ingest and the worker keeping up, with 1, 2, 3 …
``corespond serve`` processes (each with its worker), as docs/scaling.md reports.

    python bench/replicas.py --processes 1 2 3 --seconds 20 --connections 32

For each N: a fresh database on the bench's own embedded PostgreSQL (var/pgdata-bench),
N ``corespond serve`` processes, and N ``wrk`` processes at once, one per replica with its
share of the connections (a round-robin load balancer, in effect), each sending its own
distinct, pre-signed CAD events (three per call: created, then two updates). While the
load runs it samples what the database's sessions wait on (``pg_stat_activity``) and the CPU
each side uses. Then it prints, per N: accepted events a second and latency, events folded a
second and the backlog when the load stopped (and how long it took to drain), the cores used
by the corespond processes, by PostgreSQL and by wrk, and the connections held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import psutil
from ingest_vs_bare import LUA, backlog, database, seed, wait_ready, wrk
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]


def signed_requests(secret: str, count: int, path: Path, run: str) -> None:
    """``count`` distinct signed events, three per call (created, updated, updated)."""
    hook = Webhook(secret)
    now = datetime.now(UTC)
    calls = max(1, count // 3)
    with path.open("w") as out:
        for index in range(count):
            incident, first = index % calls, index < calls
            call: dict[str, object] = {"incident_number": f"R-{run}-{incident:06d}"}
            if first:
                call |= {
                    "agency": "CHARLESTON PD",
                    "call_type": "OD",
                    "call_type_description": "OVERDOSE",
                    "priority": 2,
                    "location": {"address": "1 Capitol St", "city": "Charleston",
                                 "lat": 38.3498, "lon": -81.6326},
                    "narrative": "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
                    "status": "dispatched",
                }  # fmt: skip
            else:
                call["narrative"] = f"UPDATE {index}: SUBJ TALKING WITH EMS, CALM"
            body = json.dumps(
                {
                    "event_id": f"replicas-{run}:{index}",
                    "event_type": "call.created" if first else "call.updated",
                    "occurred_at": now.isoformat(),
                    "call": call,
                },
                separators=(",", ":"),
            )
            webhook_id = f"msg_{run}_{index}"
            signature = hook.sign(webhook_id, now, body)
            out.write(f"{webhook_id}\t{int(now.timestamp())}\t{signature}\t{body}\n")


def cpu_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings; a process started meanwhile counts from zero."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def postgres_processes() -> list[psutil.Process]:
    """The bench server's postmaster and every process under it (its backends)."""
    pid = int((ROOT / "var" / "pgdata-bench" / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children()]


async def sample_waits(dsn: str, stop: asyncio.Event, into: Counter[str], peak: list[int]) -> None:
    """What the database's active sessions are doing, twice a second: CPU (no wait), or the
    wait event; and the most connections seen."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
            peak[0] = max(peak[0], len(rows))
            for row in rows:
                if row["state"] != "active":
                    continue
                if row["wait_event_type"] in (None, "Client"):
                    into["running (CPU)" if row["wait_event_type"] is None else "Client"] += 1
                else:
                    into[f"{row['wait_event_type']}:{row['wait_event']}"] += 1
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def set_synchronous_commit(dsn: str, value: str) -> None:
    """For every later session of the database (each replica connects after this)."""
    conn = await asyncpg.connect(dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {value}')
    finally:
        await conn.close()


async def drop(dsn: str) -> None:
    """The run's database, dropped: each run makes a fresh one."""
    conn = await asyncpg.connect(dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    maintenance = await asyncpg.connect(dsn.replace(f"/{name}?", "/postgres?"))
    try:
        await maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await maintenance.close()


def run(processes: int, args: argparse.Namespace) -> dict[str, object]:
    from cryptography.fernet import Fernet

    url, dsn = database()
    key = Fernet.generate_key().decode()
    secret = asyncio.run(seed(url, key))
    if args.synchronous_commit:
        asyncio.run(set_synchronous_commit(dsn, args.synchronous_commit))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CORESPOND_")},
        "PYTHONPATH": str(args.src),
        "DATABASE_URL": url,
        "CORESPOND_SECRET_KEY": key,
        "CORESPOND_LOG_LEVEL": "warning",
        "CORESPOND_DATA_DIR": str(ROOT / "var" / "bench-replicas"),
        "CORESPOND_RATE_LIMIT_CAD_PER_SECOND": "1000000",
        "CORESPOND_RATE_LIMIT_CAD_BURST": "1000000",
    }
    logs = ROOT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    ports = [8031 + n for n in range(processes)]
    servers = []
    for port in ports:
        with (logs / f"replica-{port}.log").open("wb") as log:
            servers.append(
                subprocess.Popen(  # noqa: S603 - this interpreter, our own program
                    [sys.executable, "-m", "corespond", "serve", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}/readyz")
        count = int(args.rate_guess * args.seconds * 1.5 / processes)
        with tempfile.TemporaryDirectory() as folder:
            files = []
            for port in ports:
                path = Path(folder) / f"signed-{port}.tsv"
                signed_requests(secret, count, path, f"{port}{uuid.uuid4().hex[:6]}")
                files.append(path)
            ours = [psutil.Process(s.pid) for s in servers]
            before = (cpu_by_pid(ours), cpu_by_pid(postgres_processes()), time.monotonic())
            waits: Counter[str] = Counter()
            peak = [0]

            async def load() -> list[dict[str, float]]:
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_waits(dsn, stop, waits, peak))
                shares = [args.connections // processes] * processes
                runs = [
                    asyncio.to_thread(
                        wrk,
                        f"http://127.0.0.1:{port}/v1/cad/bench/events",
                        LUA / "signed.lua",
                        argparse.Namespace(threads=1, connections=share, seconds=args.seconds),
                        str(path),
                        "1",
                    )
                    for port, path, share in zip(ports, files, shares, strict=True)
                ]
                results = await asyncio.gather(*runs)
                stop.set()
                await sampler
                return list(results)

            results = asyncio.run(load())
            after = (cpu_by_pid(ours), cpu_by_pid(postgres_processes()), time.monotonic())
        loaded = after[2] - before[2]
        stored, folded = asyncio.run(backlog(dsn))
        at_end, folded_at_end = stored - folded, folded
        drain_started = time.monotonic()
        while folded < stored and time.monotonic() - drain_started < args.drain_seconds:
            time.sleep(1)
            stored, folded = asyncio.run(backlog(dsn))
        drained = time.monotonic() - drain_started
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        asyncio.run(drop(dsn))
    samples = sum(waits.values()) or 1
    return {
        "processes": processes,
        "rps": sum(r["rps"] for r in results),
        "p50": max(r.get("p50", 0.0) for r in results),
        "p99": max(r.get("p99", 0.0) for r in results),
        "non2xx": sum(r["non2xx"] for r in results),
        "stored": stored,
        "folded_during_load": (stored - at_end) / loaded,
        "backlog_at_end": at_end,
        "drained": folded >= stored,
        "drain_seconds": drained,
        "folded_while_draining": (folded - folded_at_end) / drained if drained else 0.0,
        "corespond_cores": cpu_used(before[0], after[0]) / loaded,
        "postgres_cores": cpu_used(before[1], after[1]) / loaded,
        "connections": peak[0],
        "waits": {k: round(100 * v / samples) for k, v in waits.most_common(6)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--drain-seconds", type=int, default=90)
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        help="set on the database: off takes the WAL flush out of each commit, to see what "
        "limits once commits are cheap (never in production)",
    )
    parser.add_argument(
        "--src", type=Path, default=ROOT / "src", help="the corespond to run (to compare a variant)"
    )
    parser.add_argument(
        "--rate-guess", type=float, default=600, help="events a second to pre-sign for"
    )
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs; wrk -c{args.connections} in all for {args.seconds} s per run; "
        "every replica runs the API and the worker"
    )
    for processes in args.processes:
        r = run(processes, args)
        print(
            f"{r['processes']} replica(s): {r['rps']:.0f} accepted/s (p50 {r['p50']:.0f} ms, "
            f"p99 {r['p99']:.0f} ms, non-2xx {r['non2xx']:.0f}); folded "
            f"{r['folded_during_load']:.0f}/s during the load, backlog {r['backlog_at_end']} "
            f"at its end, {'drained' if r['drained'] else 'NOT drained'} in "
            f"{r['drain_seconds']:.0f} s ({r['folded_while_draining']:.0f}/s); "
            f"cores: corespond {r['corespond_cores']:.2f}, "
            f"PostgreSQL {r['postgres_cores']:.2f}; {r['connections']} connections; "
            f"active sessions' waits (% of samples): {r['waits']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
