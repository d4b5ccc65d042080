"""Matching under load: time from a stored eligible call to an offered assignment.

    .venv/bin/python bench/matching.py [--peers 500] [--days 365] [--requests 1000]
                                       [--concurrency 8] [--events 200] [--rate 5]
                                       [--port 8765]

Builds a scratch database (``corespond_bench_matching``, dropped first) on the embedded
PostgreSQL or the DATABASE_URL server, migrates it and bulk-seeds a program: 7 counties, one
provider each, ``--peers`` peers with home bases and credentials, one 12-hour shift per peer
per day for ``--days`` days around today. Then it starts ``corespond serve`` on
``--port`` against that database and measures two paths:

* dispatcher: ``--requests`` eligible calls already stored (triaged, located); each is
  requested with ``POST /v1/calls/{id}/peer-requests`` (``--concurrency`` at a time) and the
  offer is then cancelled, so the peer is free again. Latency of the request is the time
  from the stored eligible call to the offer.
* automatic: ``--events`` signed CAD events (``--rate`` a second) from an agency that opted
  in to automatic requests, each taking a peer (keep it below the peers on shift); the
  figure is ``assignment.offered_at - cad_event.received_at`` per call, read from the
  database: receipt, fold, locate, triage and match, through the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import scratch  # bench/scratch.py: the scratch database and percentile lines
from shapely.geometry import Point
from sqlalchemy import insert, text
from standardwebhooks.webhooks import Webhook

from corespond.agencies.models import Agency
from corespond.auth.service import create_key
from corespond.calls.models import Call
from corespond.config import get_settings
from corespond.crypto import secret_box
from corespond.db import Database
from corespond.geo.service import geography_for
from corespond.roster.models import Credential, Peer, Provider, ProviderCounty, Shift
from corespond.sources.service import create_source

COUNTIES = ("54011", "54039", "54045", "54055", "54061", "54081", "54107")
NAME = "corespond_bench_matching"
SOURCE = "bench-cad"
AUTO_AGENCY = "BENCH AUTO PD"
MANUAL_AGENCY = "BENCH PD"


def points_in(fips: str, count: int, rng: random.Random) -> list[tuple[float, float]]:
    """Random points inside a county (rejection sampling over its bounding box)."""
    atlas = geography_for().atlas
    county = atlas.by_fips[fips]
    west, south, east, north = county.geometry.bounds
    found: list[tuple[float, float]] = []
    while len(found) < count:
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if county.geometry.covers(Point(lon, lat)) and atlas.locate(lat, lon) is county:
            found.append((lat, lon))
    return found


async def seed(database: Database, args: argparse.Namespace, rng: random.Random) -> dict[str, str]:
    now = datetime.now(UTC)
    first_day = now.replace(hour=7, minute=0, second=0, microsecond=0) - timedelta(
        days=args.days // 2
    )
    settings = get_settings()
    async with database.sessionmaker() as session, session.begin():
        providers = [{"id": f"p{i}", "name": f"Provider {i}"} for i in range(len(COUNTIES))]
        await session.execute(insert(Provider), providers)
        await session.execute(
            insert(ProviderCounty),
            [
                {"provider_id": f"p{i}", "county_fips": fips, "role": "primary"}
                for i, fips in enumerate(COUNTIES)
            ],
        )
        peers, credentials, shifts = [], [], []
        homes = {fips: points_in(fips, args.peers, rng) for fips in COUNTIES}
        for index in range(args.peers):
            county_index = index % len(COUNTIES)
            fips = COUNTIES[county_index]
            peer_id = uuid.uuid4()
            lat, lon = homes[fips][index]
            peers.append(
                {
                    "id": peer_id,
                    "provider_id": f"p{county_index}",
                    "display_name": f"Peer {index}",
                    "status": "available",
                    "home_lat": lat,
                    "home_lon": lon,
                    "embedded_agency": MANUAL_AGENCY if index % 10 == 0 else None,
                }
            )
            credentials.extend(
                {"peer_id": peer_id, "kind": kind, "expires_at": now + timedelta(days=400)}
                for kind in ("prss_certification", "cjis_background", "nda")
            )
            # Half the peers work days, half nights: someone is on in every county around
            # the clock.
            offset = timedelta(hours=12 * ((index // len(COUNTIES)) % 2))
            for day in range(args.days):
                begins = first_day + timedelta(days=day) + offset
                shifts.append(
                    {
                        "id": uuid.uuid4(),
                        "peer_id": peer_id,
                        "provider_id": f"p{county_index}",
                        "starts_at": begins,
                        "ends_at": begins + timedelta(hours=12),
                        "counties": [fips],
                        "kind": "on_duty",
                        "created_by": "bench",
                    }
                )
        await session.execute(insert(Peer), peers)
        await session.execute(insert(Credential), credentials)
        for chunk in range(0, len(shifts), 5000):
            await session.execute(insert(Shift), shifts[chunk : chunk + 5000])
        await session.execute(
            insert(Agency),
            [
                {"name": AUTO_AGENCY, "home_county_fips": COUNTIES[1], "auto_request": True},
                {"name": MANUAL_AGENCY, "home_county_fips": COUNTIES[1]},
            ],
        )
        _, secret = await create_source(
            session,
            secret_box(settings),
            source_id=SOURCE,
            display_name="Bench CAD",
            agencies=[AUTO_AGENCY, MANUAL_AGENCY],
        )
        _, dispatcher = await create_key(
            session, role="dispatcher", name="bench dispatcher", now=datetime.now(UTC)
        )
        _, supervisor = await create_key(
            session, role="supervisor", name="bench supervisor", now=datetime.now(UTC)
        )
    print(f"seeded {len(shifts):,} shifts for {args.peers} peers over {args.days} days")
    return {"secret": secret, "dispatcher": dispatcher, "supervisor": supervisor}


async def stored_calls(database: Database, count: int, rng: random.Random) -> list[uuid.UUID]:
    """Eligible calls as the worker leaves them: folded, located, triaged."""
    now = datetime.now(UTC)
    atlas = geography_for().atlas
    rows = []
    for index in range(count):
        fips = COUNTIES[index % len(COUNTIES)]
        lat, lon = points_in(fips, 1, rng)[0]
        rows.append(
            {
                "id": uuid.uuid4(),
                "source_id": SOURCE,
                "incident_number": f"STORED-{index:05d}",
                "agency": MANUAL_AGENCY,
                "call_type": "OD",
                "lat": lat,
                "lon": lon,
                "status": "dispatched",
                "county_fips": fips,
                "county_name": atlas.by_fips[fips].name,
                "county_method": "point",
                "decision": "eligible",
                "decision_summary": "eligible: bench",
                "decided_at": now,
                "opened_at": now,
            }
        )
    async with database.sessionmaker() as session, session.begin():
        await session.execute(insert(Call), rows)
    return [row["id"] for row in rows]


def free_port_or_exit(port: int) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"port {port} is in use; pass --port")


async def wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if server.poll() is not None:
            sys.exit("the server exited; run it by hand to see why")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    sys.exit("the server did not become ready in 30 s")


async def dispatcher_path(
    client: httpx.AsyncClient, calls: list[uuid.UUID], keys: dict[str, str], concurrency: int
) -> tuple[list[float], dict[int, int]]:
    queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
    for call_id in calls:
        queue.put_nowait(call_id)
    latencies: list[float] = []
    codes: dict[int, int] = {}
    request_headers = {"Authorization": f"Bearer {keys['dispatcher']}"}
    cancel_headers = {"Authorization": f"Bearer {keys['supervisor']}"}

    async def worker() -> None:
        while not queue.empty():
            call_id = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post(
                f"/v1/calls/{call_id}/peer-requests", headers=request_headers
            )
            elapsed = time.perf_counter() - started
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            if response.status_code == 201:
                latencies.append(elapsed)
                assignment = response.json()["id"]
                await client.post(f"/v1/assignments/{assignment}/cancel", headers=cancel_headers)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, codes


async def automatic_path(
    client: httpx.AsyncClient,
    database: Database,
    secret: str,
    events: int,
    rate: float,
    rng: random.Random,
) -> list[float]:
    signer = Webhook(secret)
    run = uuid.uuid4().hex[:6]
    for index in range(events):
        fips = COUNTIES[index % len(COUNTIES)]
        lat, lon = points_in(fips, 1, rng)[0]
        body = json.dumps(
            {
                "event_id": f"{run}:{index}",
                "event_type": "call.created",
                "occurred_at": datetime.now(UTC).isoformat(),
                "call": {
                    "incident_number": f"AUTO-{run}-{index:05d}",
                    "agency": AUTO_AGENCY,
                    "call_type": "OD",
                    "call_type_description": "OVERDOSE",
                    "location": {"lat": lat, "lon": lon},
                    "narrative": "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
                    "status": "dispatched",
                },
            }
        )
        message_id = f"msg_{uuid.uuid4().hex}"
        at = datetime.now(UTC)
        response = await client.post(
            f"/v1/cad/{SOURCE}/events",
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signer.sign(message_id, at, body),
            },
        )
        response.raise_for_status()
        await asyncio.sleep(1 / rate)
    query = text(
        """
        SELECT EXTRACT(EPOCH FROM a.offered_at - e.received_at)
        FROM cad_event e JOIN assignment a ON a.call_id = e.call_id AND a.place IS NOT NULL
        WHERE e.incident_number LIKE :prefix
        """
    )
    deadline = time.monotonic() + 60
    rows: list[float] = []
    while time.monotonic() < deadline:
        async with database.sessionmaker() as session:
            rows = [float(r) for (r,) in await session.execute(query, {"prefix": f"AUTO-{run}-%"})]
        if len(rows) >= events:
            break
        await asyncio.sleep(0.5)
    return rows


async def main(args: argparse.Namespace) -> None:
    free_port_or_exit(args.port)
    settings = get_settings()
    url = await scratch.create(settings, NAME)
    database = Database.connect(url)
    rng = random.Random(7)
    keys = await seed(database, args, rng)
    async with database.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
    calls = await stored_calls(database, args.requests, rng)

    program = Path(sys.executable).with_name("corespond")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CORESPOND_LOG_LEVEL": "WARNING",
        "CORESPOND_WORKER_ENABLED": "true",
        # A load generator is one key doing what many dispatchers would: lift the limit.
        "CORESPOND_RATE_LIMIT_WRITES_PER_SECOND": "100000",
        "CORESPOND_RATE_LIMIT_WRITES_BURST": "100000",
    }
    server = subprocess.Popen(  # noqa: S603, ASYNC220 - our own console script, started once
        [str(program), "serve", "--port", str(args.port)], env=env
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{args.port}", timeout=30
        ) as client:
            await wait_ready(client, server)
            latencies, codes = await dispatcher_path(client, calls, keys, args.concurrency)
            automatic = await automatic_path(
                client, database, keys["secret"], args.events, args.rate, rng
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        await database.dispose()
        if not args.keep:
            await scratch.drop(settings, NAME)
    print(f"dispatcher requests: {dict(sorted(codes.items()))} (concurrency {args.concurrency})")
    print(scratch.line("stored call -> offer (HTTP)", latencies))
    print(scratch.line("CAD event -> offer (auto)", automatic))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--events", type=int, default=200, help="CAD events (keep below the peers on shift)"
    )
    parser.add_argument("--rate", type=float, default=5.0, help="CAD events per second")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    asyncio.run(main(parser.parse_args()))
