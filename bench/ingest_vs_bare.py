"""Signed CAD ingest beside the bare floor, in one run, on one database.

    .venv/bin/python bench/ingest_vs_bare.py --seconds 20 --connections 32

Starts a PostgreSQL of its own (embedded, in var/pgdata-bench; a fresh database per run),
`corespond serve` with its worker, and `bench/bare.py` (FastAPI + asyncpg, one INSERT per
POST), then loads each in turn with wrk (Debian's `wrk`) at the same threads and
connections: the bare app with one fixed body, corespond with real Standard Webhooks
requests, each a distinct event (signed before the run, so the load generator spends nothing
on HMACs). Prints requests per second, latency percentiles, the ratio corespond/bare, and
how fast the worker folded what was accepted (events folded per second, backlog at the end
of the load and how long it took to drain).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
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


def database() -> tuple[str, str]:
    """A fresh database on the bench's own embedded server: (SQLAlchemy URL, asyncpg DSN)."""
    sys.path.insert(0, str(ROOT / "src"))
    from corespond.db import create_database_if_missing, ensure_embedded_server, server_url

    server = ensure_embedded_server(ROOT / "var", "pgdata-bench")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--drain-seconds", type=int, default=120)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: sudo apt-get install wrk")

    from cryptography.fernet import Fernet

    url, dsn = database()
    key = Fernet.generate_key().decode()
    secret = asyncio.run(seed(url, key))
    env = {
        "DATABASE_URL": url,
        "CORESPOND_SECRET_KEY": key,
        "CORESPOND_LOG_LEVEL": "warning",
        "CORESPOND_RATE_LIMIT_CAD_PER_SECOND": "1000000",
        "CORESPOND_RATE_LIMIT_CAD_BURST": "1000000",
    }
    logs = ROOT / "var" / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    serving = start(
        [str(BIN / "corespond"), "serve", "--port", "8021", "--no-migrate"],
        env,
        logs / "corespond.log",
    )
    bare = start(
        [str(BIN / "python"), "-m", "uvicorn", "bench.bare:app", "--port", "8022",
         "--log-level", "warning", "--no-access-log"],
        {"BARE_DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)},
        logs / "bare.log",
    )  # fmt: skip
    try:
        wait_ready("http://127.0.0.1:8021/readyz")
        wait_ready("http://127.0.0.1:8022/docs")
        floor = wrk("http://127.0.0.1:8022/events", LUA / "bare.lua", args)
        count = int(max(floor["rps"], 500) * args.seconds * 1.2)
        with tempfile.TemporaryDirectory() as folder:
            requests = Path(folder) / "signed.tsv"
            signed_requests(secret, count, requests)
            started = time.monotonic()
            ours = wrk(
                "http://127.0.0.1:8021/v1/cad/bench/events",
                LUA / "signed.lua",
                args,
                str(requests),
                str(args.threads),
            )
        loaded = time.monotonic() - started
        stored, folded = asyncio.run(backlog(dsn))
        at_end = stored - folded
        drain_start = time.monotonic()
        while folded < stored and time.monotonic() - drain_start < args.drain_seconds:
            time.sleep(1)
            stored, folded = asyncio.run(backlog(dsn))
        drained = time.monotonic() - drain_start
    finally:
        for process in (serving, bare):
            process.send_signal(signal.SIGINT)
        for process in (serving, bare):
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

    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {os.cpu_count()} CPUs")
    print(line("bare (one INSERT per POST)", floor))
    print(line("corespond signed ingest", ours))
    print(f"ratio corespond / bare: {ours['rps'] / floor['rps']:.3f}")
    accepted_rate = stored / loaded if loaded else 0
    print(
        f"worker: {stored} events stored; backlog {at_end} when the load stopped; "
        f"{'drained' if folded >= stored else 'NOT drained'} {drained:.0f} s later "
        f"({folded} folded); accepted {accepted_rate:.0f}/s, folded "
        f"{folded / (loaded + drained):.0f}/s over the run"
    )


if __name__ == "__main__":
    main()
