"""Push to dispatch: commit-to-2xx latency and sustained deliveries per second.

    .venv/bin/python bench/dispatch.py [--messages 5000] [--calls 500] [--latency 400]
                                       [--rate 20] [--concurrency 4] [--per-source 2]
                                       [--stalled 0]

Builds a scratch database (``corespond_bench_dispatch``, dropped first) on the embedded
PostgreSQL or the DATABASE_URL server, and a receiver on 127.0.0.1 (a real HTTP server in
this process that verifies every signature with the ``standardwebhooks`` library). Then:

* sustained: ``--messages`` outbox messages over ``--calls`` calls are committed at once; a
  relay (``--concurrency`` lanes) delivers them all, in order per call; deliveries/s.
* latency: with the relay listening (LISTEN/NOTIFY), ``--latency`` messages are committed
  one per transaction, ``--rate`` a second, as matching writes them; for each, the time from
  its commit to the receiver's 2xx.
* with ``--stalled N``: before the latency run, N messages (on N calls) are committed for a
  second CAD whose callback never answers (each attempt waits out the client's 2 s timeout
  and is retried): the healthy CAD's commit-to-2xx is measured beside it. Run it with
  ``--per-source 2`` (the default) and with ``--per-source 32`` (no limit) to see the limit's
  effect.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import httpx
import scratch  # bench/scratch.py: the scratch database and percentile lines
import uvicorn
from sqlalchemy import func, insert, select
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corespond.agencies.models import Agency
from corespond.calls.models import Call
from corespond.config import get_settings
from corespond.crypto import secret_box
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.dispatch.relay import DeliveryPolicy, Relay
from corespond.dispatch.repository import notify_relay
from corespond.logging import configure_logging
from corespond.sources.service import create_source, set_callback

NAME = "corespond_bench_dispatch"
SOURCE = "bench-cad"
STALLED = "bench-stalled"


class Receiver:
    """Verifies each delivery and notes when its 2xx went out, by webhook-id."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.answered: dict[str, float] = {}
        self.order: dict[str, list[int]] = defaultdict(list)
        self.bad = 0
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = self.verifier.verify(body, dict(request.headers))
        except Exception:
            self.bad += 1
            return Response(status_code=401)
        self.order[event["data"]["call"]["id"]].append(event["data"]["seq"])
        self.answered[request.headers["webhook-id"]] = time.perf_counter()
        return Response(status_code=204)

    async def start(self) -> str:
        app = Starlette(routes=[Route("/", self.receive, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):  # uvicorn exposes a flag, not an event
            if self.server.started:
                break
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"


async def stalled_callback() -> tuple[str, uvicorn.Server]:
    """A callback that accepts the connection and never answers."""

    async def hang(request: Request) -> Response:
        await asyncio.sleep(3600)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/", hang, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    asyncio.create_task(server.serve())  # noqa: RUF006 - lives as long as the run
    for _ in range(500):  # uvicorn exposes a flag, not an event
        if server.started:
            break
        await asyncio.sleep(0.01)
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/", server


def message(call_id: uuid.UUID, seq: int, source: str = SOURCE) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "source_id": source,
        "call_id": call_id,
        "seq": seq,
        "event_type": "assignment.offered",
        "payload": {
            "type": "assignment.offered",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"call": {"id": str(call_id), "source": source}, "seq": seq},
        },
    }


async def calls(
    database: Database, count: int, prefix: str, source: str = SOURCE
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with database.sessionmaker() as session, session.begin():
        await session.execute(
            insert(Call),
            [
                {"id": i, "source_id": source, "incident_number": f"{prefix}-{n}"}
                for n, i in enumerate(ids)
            ],
        )
    return ids


async def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    configure_logging("WARNING", json=True)
    url = await scratch.create(settings, NAME)
    database = Database.connect(url)
    box = secret_box(settings)
    async with database.sessionmaker() as session, session.begin():
        session.add(Agency(name="BENCH PD", home_county_fips="54039"))
        await session.flush()
        _, secret = await create_source(
            session, box, source_id=SOURCE, display_name="Bench", agencies=["BENCH PD"]
        )
    receiver = Receiver(secret)
    callback = await receiver.start()
    async with database.sessionmaker() as session, session.begin():
        await set_callback(session, SOURCE, callback, "development")
    policy = DeliveryPolicy.of(settings)
    policy = DeliveryPolicy(
        args.concurrency,
        policy.horizon,
        policy.backoff_cap,
        policy.alert_after,
        per_source=args.per_source,
    )
    timeout = 2.0 if args.stalled else settings.outbound_timeout_seconds
    async with httpx.AsyncClient(timeout=timeout) as http:
        # Sustained: a backlog delivered as fast as the relay goes.
        ids = await calls(database, args.calls, "S")
        each = max(1, args.messages // args.calls)
        rows = [message(c, seq) for c in ids for seq in range(1, each + 1)]
        async with database.sessionmaker() as session, session.begin():
            for chunk in range(0, len(rows), 2000):
                await session.execute(insert(OutboxMessage), rows[chunk : chunk + 2000])
        relay = Relay(database, http, box, policy)
        started = time.perf_counter()
        await relay.drain()
        seconds = time.perf_counter() - started
        async with database.sessionmaker() as session:
            delivered = await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state == "delivered")
            )
        in_order = all(seqs == sorted(seqs) for seqs in receiver.order.values())
        print(
            f"sustained: {delivered}/{len(rows)} delivered in {seconds:.1f} s = "
            f"{len(rows) / seconds:,.0f} deliveries/s ({args.concurrency} lanes; "
            f"in order per call: {in_order}; bad signatures: {receiver.bad})"
        )

        stall: uvicorn.Server | None = None
        if args.stalled:
            async with database.sessionmaker() as session, session.begin():
                await create_source(
                    session, box, source_id=STALLED, display_name="Stalled", agencies=["BENCH PD"]
                )
            hanging, stall = await stalled_callback()
            async with database.sessionmaker() as session, session.begin():
                await set_callback(session, STALLED, hanging, "development")
            stalled_ids = await calls(database, args.stalled, "X", STALLED)
            async with database.sessionmaker() as session, session.begin():
                await session.execute(
                    insert(OutboxMessage), [message(c, 1, STALLED) for c in stalled_ids]
                )

        # Latency: one commit at a time, the relay woken by NOTIFY.
        await relay.start()
        ids = await calls(database, args.latency, "L")
        committed: dict[str, float] = {}
        for call_id in ids:
            row = message(call_id, 1)
            async with database.sessionmaker() as session, session.begin():
                await session.execute(insert(OutboxMessage), [row])
                await notify_relay(session)
            committed[str(row["id"])] = time.perf_counter()
            await asyncio.sleep(1 / args.rate)
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:  # a bounded wait for the last deliveries
            if receiver.answered.keys() >= committed.keys():
                break
            await asyncio.sleep(0.05)
        await relay.stop()
        latencies = [
            receiver.answered[k] - t for k, t in committed.items() if k in receiver.answered
        ]
        beside = (
            f", beside {args.stalled} to a stalled CAD, per source {args.per_source}"
            if args.stalled
            else ""
        )
        print(scratch.line(f"commit -> 2xx @ {args.rate:g}/s{beside}", latencies, 24))
        if stall is not None:
            stall.should_exit = True
    if receiver.server is not None:
        receiver.server.should_exit = True
    await database.dispose()
    if not args.keep:
        await scratch.drop(settings, NAME)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--latency", type=int, default=400)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--per-source", type=int, default=2)
    parser.add_argument("--stalled", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    asyncio.run(main(parser.parse_args()))
