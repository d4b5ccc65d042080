"""Offer to phone: time from an offer committed to its Web Push received by a push service.

    .venv/bin/python bench/push.py [--offers 200]

Builds a scratch database (``corespond_bench_push``, dropped first) on the embedded PostgreSQL
or the DATABASE_URL server, seeds one provider, one peer on shift with a Web Push
subscription, a CAD source and an agency, and starts a push service on 127.0.0.1 that checks
each VAPID JWT and decrypts each payload (``tests/pushservice.py``). Then, ``--offers`` times:
a call is stored, a dispatcher's request makes the offer (its notification queued in the same
transaction), and the clock runs until the push service has decrypted it; the offer is then
cancelled so the peer is free again. The notifier runs as ``corespond worker`` runs it: woken
by the offer's NOTIFY, with a pass every half second anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import scratch  # bench/scratch.py: the scratch database and percentile lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pushservice import push_service

from corespond.agencies.models import Agency
from corespond.assignments import lifecycle
from corespond.assignments.policy import Context, MatchPolicy
from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.calls.models import Call
from corespond.config import get_settings
from corespond.crypto import SecretBox, secret_box
from corespond.db import Database
from corespond.geo.service import geography_for
from corespond.notify import service as notify
from corespond.notify.relay import SWEEP_SECONDS, Notifier
from corespond.notify.service import Vapid
from corespond.pipeline import flow
from corespond.roster.models import Credential, Peer, Provider, ProviderCounty, Shift
from corespond.sources.service import create_source

NAME = "corespond_bench_push"
KANAWHA = "54039"
ADMIN = Principal(key_id=uuid.UUID(int=0), name="bench", role="admin", scope=None)


async def seed(database: Database, box: SecretBox, endpoint: dict[str, Any]) -> uuid.UUID:
    now = datetime.now(UTC)
    async with database.sessionmaker() as session, session.begin():
        session.add(Agency(name="BENCH PD", home_county_fips=KANAWHA))
        await session.flush()
        await create_source(
            session, box, source_id="bench-cad", display_name="Bench", agencies=["BENCH PD"]
        )
        session.add(Provider(id="bench", name="Bench Recovery"))
        await session.flush()
        session.add(ProviderCounty(provider_id="bench", county_fips=KANAWHA, role="primary"))
        peer = Peer(provider_id="bench", display_name="Bench Peer", status="available")
        session.add(peer)
        await session.flush()
        for kind in ("prss_certification", "cjis_background", "nda"):
            session.add(
                Credential(peer_id=peer.id, kind=kind, expires_at=now + timedelta(days=400))
            )
        session.add(
            Shift(
                peer_id=peer.id,
                provider_id="bench",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=11),
                counties=[KANAWHA],
                kind="on_duty",
                created_by="bench",
            )
        )
        keys = endpoint["keys"]
        await notify.subscribe(
            session,
            str(endpoint["endpoint"]),
            keys["p256dh"],
            keys["auth"],
            "test",
            peer_id=peer.id,
        )
    return peer.id


async def run(offers: int) -> None:
    settings = get_settings()
    url = await scratch.create(settings, NAME)
    database = Database.connect(url)
    box = secret_box(settings)
    audit.use_chain_key(box.derived_key("audit-chain"))
    geography = geography_for()
    policy = MatchPolicy.of(settings)
    latencies: list[float] = []
    try:
        async with push_service() as pushes, httpx.AsyncClient() as http:
            await seed(database, box, pushes.subscribe("bench-phone"))
            notifier = Notifier(
                database, http, Vapid.of(box, "mailto:bench@localhost"), environment="test"
            )

            await notifier.start()  # as corespond worker runs it
            for number in range(offers):
                async with database.sessionmaker() as session, session.begin():
                    call = Call(
                        source_id="bench-cad",
                        incident_number=f"B-{number}",
                        agency="BENCH PD",
                        call_type="OD",
                        lat=38.3498,
                        lon=-81.6326,
                        county_fips=KANAWHA,
                        decision="eligible",
                        status="dispatched",
                        opened_at=datetime.now(UTC),
                    )
                    session.add(call)
                    await session.flush()
                    ctx = Context(policy, geography, datetime.now(UTC))
                    result = await flow.request_peer(session, ADMIN, call.id, ctx)
                started = time.perf_counter()
                while len(pushes.received) <= number:
                    pushes.arrived.clear()
                    if len(pushes.received) <= number:
                        await pushes.arrived.wait()
                latencies.append(pushes.received[number].at - started)
                async with database.sessionmaker() as session, session.begin():
                    ctx = Context(policy, geography, datetime.now(UTC))
                    await lifecycle.act(session, ADMIN, result.assignment.id, "cancel", ctx)
            await notifier.stop()
            print(f"offer committed → push received, decrypted ({offers} offers)")
            print(
                f"  the notifier wakes on the offer's NOTIFY (and sweeps every {SWEEP_SECONDS} s)"
            )
            print(scratch.line("offer → push", latencies))
            print(f"  push service refused: {len(pushes.refused)}")
    finally:
        await database.dispose()
        await scratch.drop(settings, NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.offers))


if __name__ == "__main__":
    main()
