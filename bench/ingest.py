"""Ingest load generator: signed CAD events over HTTP against a running corespond.

Usage (with `make run` going in another terminal, which prints the demo secret):

    export CORESPOND_CAD_SECRET=whsec_...   # the demo source's secret
    .venv/bin/python bench/ingest.py --events 5000 --concurrency 32

Each event is a real Standard Webhooks request (fresh webhook-id, timestamp, HMAC). Events
are spread over `--incidents` calls: the first per incident is a call.created, the rest are
call.updated with a new narrative. Prints throughput and latency percentiles of the 202s.
The run is bounded by --events and --max-seconds and only ever talks to --url.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook


def build_event(run: str, index: int, incidents: int) -> dict[str, object]:
    incident = index % incidents
    first = index < incidents
    call: dict[str, object] = {"incident_number": f"BENCH-{run}-{incident:05d}"}
    if first:
        call.update(
            agency="CHARLESTON PD",
            call_type="OD",
            call_type_description="OVERDOSE",
            priority=2,
            location={
                "address": f"{100 + incident} Kanawha Blvd E",
                "city": "Charleston",
                "lat": 38.34,
                "lon": -81.62,
            },
            narrative="SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
            hazards=[],
            status="dispatched",
        )
    else:
        call["narrative"] = f"UPDATE {index}: SUBJ TALKING WITH EMS"
    return {
        "event_id": f"bench-{run}:{index}",
        "event_type": "call.created" if first else "call.updated",
        "occurred_at": datetime.now(UTC).isoformat(),
        "call": call,
    }


async def run(args: argparse.Namespace) -> int:
    signer = Webhook(args.secret)
    run_id = uuid.uuid4().hex[:8]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.events):
        queue.put_nowait(i)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + args.max_seconds
    path = f"/v1/cad/{args.source}/events"

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = json.dumps(build_event(run_id, index, args.incidents))
            message_id = f"msg_{uuid.uuid4().hex}"
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(message_id, now, body),
            }
            started = time.perf_counter()
            response = await client.post(path, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=30) as client:
        await client.get("/healthz")
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started

    sent = len(latencies)
    if not sent:
        print("no requests completed", file=sys.stderr)
        return 1
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    print(f"target          {args.url}{path}")
    print(f"events sent     {sent} over {args.incidents} incidents, concurrency {args.concurrency}")
    print(f"statuses        {dict(sorted(statuses.items()))}")
    print(f"elapsed         {elapsed:.2f} s")
    print(f"throughput      {sent / elapsed:.0f} events/s")
    print(
        f"latency ms      p50 {pct(50):.1f}  p90 {pct(90):.1f}  p99 {pct(99):.1f}  "
        f"max {ordered[-1] * 1000:.1f}  mean {statistics.fmean(ordered) * 1000:.1f}"
    )
    return 0 if set(statuses) == {202} else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="corespond base URL")
    parser.add_argument("--source", default="demo-cad", help="CAD source id")
    parser.add_argument(
        "--secret",
        default=os.environ.get("CORESPOND_CAD_SECRET"),
        help="signing secret (default $CORESPOND_CAD_SECRET)",
    )
    parser.add_argument("--events", type=int, default=2000, help="events to send")
    parser.add_argument("--incidents", type=int, default=200, help="distinct calls")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--max-seconds", type=float, default=120, help="stop after this long")
    args = parser.parse_args()
    if not args.secret:
        parser.error("give --secret or set CORESPOND_CAD_SECRET (printed by `make run`)")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
