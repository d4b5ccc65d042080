"""End to end: a signed CAD event in, `assignment.offered` out at the CAD's callback.

    .venv/bin/python bench/end_to_end.py [--events 40] [--rate 2] [--background 100]
                                         [--peers 300] [--worker serve|process]

Builds a scratch database (``corespond_bench_e2e``, dropped first) seeded like
bench/matching.py (7 counties, ``--peers`` peers on 12-hour shifts around the clock, an
agency that opted in to automatic requests), registers a receiver on 127.0.0.1 (a real HTTP
server in this process that verifies every signature) as the source's callback, and starts
``corespond serve`` with its worker (or, with ``--worker process``, serve and a separate
``corespond worker``). Then, twice: ``--events`` eligible calls of the opted-in agency,
``--rate`` a second, each timed from the moment its POST is sent to the moment the receiver
holds its ``assignment.offered``: first with nothing else going on, then with
``--background`` other CAD events a second (new calls and updates of an agency that did not
opt in: each folded, located and triaged, none matched) sent all along.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import matching  # bench/matching.py: the seeded program
import scratch  # bench/scratch.py: the scratch database and percentile lines
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corespond.config import get_settings
from corespond.db import Database
from corespond.sources.service import set_callback

NAME = "corespond_bench_e2e"


class Receiver:
    """The CAD's callback: verifies each delivery, notes when each call's offer arrived."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.offered: dict[str, float] = {}
        self.bad = 0
        self.server: uvicorn.Server | None = None

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        arrived = time.perf_counter()
        try:
            message = self.verifier.verify(body, dict(request.headers))
        except Exception:
            self.bad += 1
            return Response(status_code=401)
        if message["type"] == "assignment.offered":
            self.offered.setdefault(message["data"]["call"]["id"], arrived)
        return Response(status_code=204)

    async def start(self) -> str:
        app = Starlette(routes=[Route("/", self.receive, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        asyncio.create_task(self.server.serve())  # noqa: RUF006 - lives as long as the run
        for _ in range(500):  # uvicorn exposes a flag, not an event
            if self.server.started:
                break
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/"


class Poster:
    """Signs and posts CAD events of the bench source."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self.client = client
        self.signer = Webhook(secret)

    async def post(self, document: dict[str, object]) -> httpx.Response:
        body = json.dumps(document)
        message_id = f"msg_{uuid.uuid4().hex}"
        at = datetime.now(UTC)
        return await self.client.post(
            f"/v1/cad/{matching.SOURCE}/events",
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": self.signer.sign(message_id, at, body),
            },
        )


def event(
    incident: str, agency: str, lat: float, lon: float, *, update: int = 0
) -> dict[str, object]:
    call: dict[str, object] = {"incident_number": incident}
    if update:
        call["narrative"] = f"UPDATE {update}: SUBJ TALKING WITH EMS, CALM"
    else:
        call |= {
            "agency": agency,
            "call_type": "OD",
            "call_type_description": "OVERDOSE",
            "location": {"lat": lat, "lon": lon},
            "narrative": "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
            "status": "dispatched",
        }
    return {
        "event_id": f"{incident}:{update}",
        "event_type": "call.updated" if update else "call.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "call": call,
    }


async def background(poster: Poster, rate: float, stop: asyncio.Event, rng: random.Random) -> int:
    """``rate`` events a second until ``stop``: one call in five new, the rest updates of
    the last 200 calls; each on its own task, so a slow answer does not slow the pace."""
    run = uuid.uuid4().hex[:6]
    sent = 0
    tasks: set[asyncio.Task[httpx.Response]] = set()
    points = matching.points_in(matching.COUNTIES[1], 50, rng)
    started = time.perf_counter()
    created: list[str] = []
    while not stop.is_set():
        lat, lon = points[sent % len(points)]
        if sent % 5 == 0:
            created.append(f"BG-{run}-{len(created):06d}")
            document = event(created[-1], matching.MANUAL_AGENCY, lat, lon)
        else:
            incident = rng.choice(created[-200:])
            document = event(incident, matching.MANUAL_AGENCY, lat, lon, update=sent)
        task = asyncio.create_task(poster.post(document))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    await asyncio.gather(*tasks, return_exceptions=True)
    return sent


async def offers(
    poster: Poster, receiver: Receiver, count: int, rate: float, rng: random.Random
) -> tuple[list[float], int]:
    """``count`` eligible calls of the opted-in agency, ``rate`` a second: for each, the
    seconds from sending its event to holding its offer (and how many never arrived)."""
    run = uuid.uuid4().hex[:6]
    sent: dict[str, float] = {}
    for index in range(count):
        fips = matching.COUNTIES[index % len(matching.COUNTIES)]
        lat, lon = matching.points_in(fips, 1, rng)[0]
        document = event(f"E2E-{run}-{index:04d}", matching.AUTO_AGENCY, lat, lon)
        at = time.perf_counter()
        response = await poster.post(document)
        response.raise_for_status()
        sent[response.json()["call_id"]] = at
        await asyncio.sleep(1 / rate)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(c in receiver.offered for c in sent):  # noqa: ASYNC110 - polling another server's record
        await asyncio.sleep(0.05)
    latencies = [receiver.offered[c] - at for c, at in sent.items() if c in receiver.offered]
    return latencies, len(sent) - len(latencies)


async def main(args: argparse.Namespace) -> None:
    matching.free_port_or_exit(args.port)
    settings = get_settings()
    url = await scratch.create(settings, NAME)
    database = Database.connect(url)
    rng = random.Random(11)
    keys = await matching.seed(database, args, rng)
    async with database.engine.connect() as conn:
        await conn.exec_driver_sql("ANALYZE")
    receiver = Receiver(keys["secret"])
    callback = await receiver.start()
    async with database.sessionmaker() as session, session.begin():
        await set_callback(session, matching.SOURCE, callback, "development")

    program = Path(sys.executable).with_name("corespond")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CORESPOND_LOG_LEVEL": "WARNING",
        "CORESPOND_WORKER_ENABLED": "true" if args.worker == "serve" else "false",
        "CORESPOND_RATE_LIMIT_CAD_PER_SECOND": "100000",
        "CORESPOND_RATE_LIMIT_CAD_BURST": "100000",
    }
    servers = [
        subprocess.Popen(  # noqa: S603, ASYNC220 - our own console script, started once
            [str(program), "serve", "--port", str(args.port)], env=env
        )
    ]
    if args.worker == "process":
        servers.append(
            subprocess.Popen([str(program), "worker"], env=env)  # noqa: S603, ASYNC220
        )
    results: list[tuple[str, list[float], int]] = []
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{args.port}",
            timeout=30,
            limits=httpx.Limits(max_connections=64),
        ) as client:
            await matching.wait_ready(client, servers[0])
            poster = Poster(client, keys["secret"])
            # A warm-up call, so the first measured one pays no start-up costs.
            await offers(poster, receiver, 1, args.rate, rng)
            latencies, lost = await offers(poster, receiver, args.events, args.rate, rng)
            results.append(("idle", latencies, lost))
            if args.background:
                stop = asyncio.Event()
                load = asyncio.create_task(background(poster, args.background, stop, rng))
                await asyncio.sleep(2)
                latencies, lost = await offers(poster, receiver, args.events, args.rate, rng)
                stop.set()
                sent = await load
                results.append((f"{args.background:g} events/s besides", latencies, lost))
                print(f"background: {sent} events sent")
    finally:
        for server in reversed(servers):
            server.terminate()
            server.wait(timeout=30)
        await database.dispose()
        if receiver.server is not None:
            receiver.server.should_exit = True
        if not args.keep:
            await scratch.drop(settings, NAME)
    print(f"worker in {args.worker}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    for name, latencies, lost in results:
        print(scratch.line(f"CAD event -> offer at CAD, {name}", latencies, 44), end="")
        print(f"  (never arrived: {lost})" if lost else "")
    if receiver.bad:
        print(f"deliveries failing verification: {receiver.bad}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--peers", type=int, default=300)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--events", type=int, default=40, help="measured calls in each phase")
    parser.add_argument("--rate", type=float, default=2.0, help="measured calls a second")
    parser.add_argument(
        "--background", type=float, default=100, help="other CAD events a second (0: none)"
    )
    parser.add_argument("--worker", choices=("serve", "process"), default="serve")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    asyncio.run(main(parser.parse_args()))
