"""Who-is-on queries against a year of shifts for hundreds of peers.

    .venv/bin/python bench/roster.py [--peers 300] [--days 365] [--queries 2000]

Builds a scratch database (``corespond_bench_roster``, dropped first) on the embedded
PostgreSQL or the DATABASE_URL server, migrates it, bulk-inserts one 12-hour shift per peer
per day over 7 counties, then times ``on_shift`` (peers on shift in a county at an instant,
with status and credentials) and ``next_on_shift`` at random instants of the year.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import scratch  # bench/scratch.py: the scratch database and percentile lines
from sqlalchemy import insert

from corespond.config import get_settings
from corespond.db import Database
from corespond.roster import service
from corespond.roster.models import Credential, Peer, Provider, ProviderCounty, Shift

COUNTIES = ("54011", "54039", "54045", "54055", "54061", "54081", "54107")
NAME = "corespond_bench_roster"


async def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    url = await scratch.create(settings, NAME)
    database = Database.connect(url)
    rng = random.Random(5)
    start = datetime(2026, 1, 1, 7, tzinfo=UTC)
    started = time.perf_counter()
    async with database.sessionmaker() as session, session.begin():
        await session.execute(insert(Provider), [{"id": "p", "name": "Provider"}])
        await session.execute(
            insert(ProviderCounty),
            [{"provider_id": "p", "county_fips": c, "role": "primary"} for c in COUNTIES],
        )
        peers = [uuid.uuid4() for _ in range(args.peers)]
        await session.execute(
            insert(Peer),
            [
                {"id": p, "provider_id": "p", "display_name": f"Peer {i}", "status": "available"}
                for i, p in enumerate(peers)
            ],
        )
        await session.execute(
            insert(Credential),
            [
                {"peer_id": p, "kind": k, "expires_at": start + timedelta(days=400)}
                for p in peers
                for k in ("prss_certification", "cjis_background", "nda")
            ],
        )
        rows = []
        for i, peer in enumerate(peers):
            county = COUNTIES[i % len(COUNTIES)]
            offset = timedelta(hours=12 * (i % 2))
            for day in range(args.days):
                begins = start + timedelta(days=day) + offset
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "peer_id": peer,
                        "provider_id": "p",
                        "starts_at": begins,
                        "ends_at": begins + timedelta(hours=12),
                        "counties": [county],
                        "kind": "on_duty",
                        "created_by": "bench",
                    }
                )
        for chunk in range(0, len(rows), 5000):
            await session.execute(insert(Shift), rows[chunk : chunk + 5000])
    seconds = time.perf_counter() - started
    print(f"seeded {len(rows):,} shifts for {args.peers} peers in {seconds:.1f} s")
    async with database.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
    required = settings.required_credentials
    on_times, next_times, found = [], [], 0
    async with database.sessionmaker() as session:
        for _ in range(args.queries):
            at = start + timedelta(seconds=rng.uniform(0, args.days * 86400))
            county = rng.choice(COUNTIES)
            t0 = time.perf_counter()
            on = await service.on_shift(session, county, at, required)
            on_times.append(time.perf_counter() - t0)
            found += len(on)
            t0 = time.perf_counter()
            await service.next_on_shift(session, county, at)
            next_times.append(time.perf_counter() - t0)
    await database.dispose()
    if not args.keep:
        await scratch.drop(settings, NAME)

    print(f"{args.queries} queries of each kind ({found / args.queries:.1f} peers on per query)")
    print(scratch.line("on_shift", on_times, 14))
    print(scratch.line("next_on_shift", next_times, 14))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    asyncio.run(main(parser.parse_args()))
