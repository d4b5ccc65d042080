"""The CAD side of the reliability suite: a steady stream of signed call events (each
retried, as a CAD does, until it is answered 2xx), the CADs' callbacks, and peers who accept
some of the offers those callbacks hear of.

Everything here records what it saw, for ``books.balance`` to check against the database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import cad_event, encode, signed_headers

CHARLESTON = (38.3498, -81.6326)
AGENCY = "CHARLESTON PD"


# --- events ----------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One POST of an event: when (monotonic), how long, and the answer."""

    at: float
    seconds: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)
    error: str | None = None
    receipt: str | None = None  # "accepted" or "duplicate" on a 202
    target: str = ""
    sent_at: datetime | None = None  # wall clock, to compare with the database's times
    retry_after: float | None = None  # seconds, from a 429 or 503


@dataclass
class SentEvent:
    source: str
    secret: str
    event_id: str
    incident: str
    event_type: str
    body: bytes
    webhook_id: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(a.status is not None and 200 <= a.status < 300 for a in self.attempts)

    def receipts(self) -> list[str]:
        return [a.receipt for a in self.attempts if a.receipt is not None]


@dataclass(frozen=True)
class CadSource:
    id: str
    secret: str


class CadLoad:
    """Calls of the CAD sources, each a ``call.created``, a ``call.updated`` about a second
    later and a ``call.closed`` a few seconds after that, started at ``calls_per_second``
    (open loop: a slow answer does not slow the stream). Every event is posted, to the API
    processes in turn, until one answers 2xx or ``give_up_after`` seconds pass; between
    tries a CAD waits (``Retry-After``, at most 2 s, else a growing pause with jitter).

    ``copies`` > 1: every event posted that many times at once (a duplicate storm), each to
    the next API process, each answer recorded."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        targets: Callable[[], Sequence[str]],
        sources: Sequence[CadSource],
        *,
        calls_per_second: float = 3.0,
        close_after: tuple[float, float] = (3.0, 7.0),
        copies: int = 1,
        give_up_after: float = 60.0,
        prefix: str | None = None,
        seed: int = 18,
    ) -> None:
        self.client = client
        self.targets = targets
        self.sources = list(sources)
        self.calls_per_second = calls_per_second
        self.close_after = close_after
        self.copies = copies
        self.give_up_after = give_up_after
        self.prefix = prefix or uuid.uuid4().hex[:6].upper()
        self.rng = random.Random(seed)
        self.events: list[SentEvent] = []
        self.calls = 0
        self._turn = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the stream ------------------------------------------------------------------------

    async def run(self, seconds: float) -> None:
        """Start calls for ``seconds``, then wait until each of their events is answered
        (or given up)."""
        await self.start_calls(seconds)
        await self.finish()

    async def start_calls(self, seconds: float) -> None:
        started = time.monotonic()
        number = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = number / self.calls_per_second
            if due > elapsed:
                await asyncio.sleep(due - elapsed)
                continue
            number += 1
            source = self.sources[number % len(self.sources)]
            self._spawn(self._call(source, number))

    async def finish(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, source: CadSource, number: int) -> None:
        self.calls += 1
        incident = f"R{self.prefix}-{number:05d}"
        lat = CHARLESTON[0] + self.rng.uniform(-0.02, 0.02)
        lon = CHARLESTON[1] + self.rng.uniform(-0.02, 0.02)
        update_after = self.rng.uniform(0.5, 1.5)
        close_after = self.rng.uniform(*self.close_after)
        created = cad_event(
            event_id=f"{source.id}:{incident}:1",
            occurred_at=datetime.now(UTC).isoformat(),
            incident_number=incident,
            agency=AGENCY,
            location={
                "address": f"{number} Capitol St",
                "city": "Charleston",
                "lat": lat,
                "lon": lon,
            },
        )
        await self._post(source, incident, created)
        await asyncio.sleep(update_after)
        updated = cad_event(
            event_id=f"{source.id}:{incident}:2",
            event_type="call.updated",
            occurred_at=datetime.now(UTC).isoformat(),
            incident_number=incident,
            status="enroute",
        )
        await self._post(source, incident, updated)
        await asyncio.sleep(max(0.0, close_after - update_after))
        closed = cad_event(
            event_id=f"{source.id}:{incident}:3",
            event_type="call.closed",
            occurred_at=datetime.now(UTC).isoformat(),
            incident_number=incident,
            status="closed",
        )
        await self._post(source, incident, closed)

    async def _post(self, source: CadSource, incident: str, document: dict[str, Any]) -> None:
        body = encode(document)
        event = SentEvent(
            source.id,
            source.secret,
            document["event_id"],
            incident,
            document["event_type"],
            body,
            f"msg_{uuid.uuid4().hex}",
        )
        self.events.append(event)
        if self.copies == 1:
            await self._deliver(event)
        else:
            await asyncio.gather(*(self._deliver(event) for _ in range(self.copies)))

    async def _deliver(self, event: SentEvent) -> None:
        """Post until answered 2xx (a CAD's retries: the same webhook-id, signed anew)."""
        deadline = time.monotonic() + self.give_up_after
        pause = 0.25
        while time.monotonic() < deadline:
            attempt = await self.post_once(event)
            if attempt.status is not None and 200 <= attempt.status < 300:
                return
            wait = attempt_wait(attempt, pause, self.rng)
            pause = min(2.0, pause * 2)
            await asyncio.sleep(wait)

    async def post_once(self, event: SentEvent) -> Attempt:
        targets = self.targets()
        target = targets[next(self._turn) % len(targets)]
        url = f"{target}/v1/cad/{event.source}/events"
        headers = signed_headers(event.secret, event.body, message_id=event.webhook_id)
        started, sent_at = time.monotonic(), datetime.now(UTC)
        try:
            answer = await self.client.post(url, content=event.body, headers=headers)
        except httpx.HTTPError as exc:
            attempt = Attempt(started, time.monotonic() - started, None, type(exc).__name__)
        else:
            receipt = answer.json().get("status") if answer.status_code == 202 else None
            attempt = Attempt(
                started,
                time.monotonic() - started,
                answer.status_code,
                None if answer.is_success else answer.text[:300],
                receipt,
            )
            if answer.status_code in (429, 503) and answer.headers.get("retry-after", "").isdigit():
                attempt.retry_after = float(answer.headers["retry-after"])
        attempt.target, attempt.sent_at = target, sent_at
        event.attempts.append(attempt)
        return attempt

    # -- what it saw ----------------------------------------------------------------------

    def attempts(self) -> list[Attempt]:
        return [a for e in self.events for a in e.attempts]

    def unanswered(self) -> list[SentEvent]:
        return [e for e in self.events if not e.acknowledged]


def attempt_wait(attempt: Attempt, pause: float, rng: random.Random) -> float:
    """How long a CAD waits before trying again: what Retry-After says (at most 2 s), else
    its own pause; with jitter, so that retries do not come in waves."""
    if attempt.retry_after is not None:
        return min(2.0, attempt.retry_after) * rng.uniform(0.5, 1.0)
    return pause * rng.uniform(0.5, 1.0)


# --- the CADs' callbacks ---------------------------------------------------------------------


@dataclass
class Delivery:
    """One request to a callback: when it arrived, the verified message, and what the
    callback answered (0 while it is still answering)."""

    webhook_id: str
    message: dict[str, Any]
    arrived_at: datetime
    status: int = 0
    answered_at: datetime | None = None

    @property
    def call_id(self) -> str:
        return str(self.message["data"]["call"]["id"])

    @property
    def sequence(self) -> int:
        return int(self.message["data"]["sequence"])


async def answer_204() -> Response:
    return Response(status_code=204)


class Callback:
    """A CAD's callback on 127.0.0.1 that verifies every request's Standard Webhooks
    signature, then answers as ``behaviour`` says (switched while it runs); ``stop`` and
    ``start`` take it down and bring it back on the same port. Every verified request is
    kept in the order it arrived (not the order it was answered: a slow answer must not
    reorder what the sender did); a request that fails verification is counted."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.behaviour: Callable[[], Any] = answer_204
        self.requests: list[Delivery] = []
        self.unverified = 0
        self.port = 0
        self.listeners: list[Callable[[Delivery], None]] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cad/callback"

    @property
    def answering(self) -> int:
        """Requests it has not answered yet."""
        return sum(1 for d in self.requests if d.status == 0)

    def delivered(self) -> list[Delivery]:
        """The requests answered 2xx: what the CAD took."""
        return [d for d in self.requests if 200 <= d.status < 300]

    async def _receive(self, request: Request) -> Response:
        arrived = datetime.now(UTC)
        body = await request.body()
        try:
            message = self.webhook.verify(body, dict(request.headers))
        except Exception:
            self.unverified += 1
            return Response(status_code=400)
        delivery = Delivery(request.headers["webhook-id"], message, arrived)
        self.requests.append(delivery)
        answer: Response = await self.behaviour()
        delivery.status, delivery.answered_at = answer.status_code, datetime.now(UTC)
        if 200 <= answer.status_code < 300:
            for listener in self.listeners:
                listener(delivery)
        return answer

    async def start(self) -> Callback:
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(500):
            if self._server.started:
                break
            await asyncio.sleep(0.01)
        assert self._server.started, "the callback did not start"
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
        self._server = None
        self._task = None


def slow(seconds: float) -> Callable[[], Any]:
    async def answer() -> Response:
        await asyncio.sleep(seconds)
        return Response(status_code=204)

    return answer


def failing(status: int, retry_after: str | None = None) -> Callable[[], Any]:
    async def answer() -> Response:
        headers = {"retry-after": retry_after} if retry_after else None
        return Response(json.dumps({"error": "not now"}), status_code=status, headers=headers)

    return answer


# --- peers -----------------------------------------------------------------------------------


@dataclass
class Peers:
    """The program's peers, as their phones would act: each offer a callback hears of is
    accepted by its peer with probability ``share``, after a moment's thought (so some are
    accepted, some expire, some are cancelled first by CAD closing the call)."""

    client: httpx.AsyncClient
    targets: Callable[[], Sequence[str]]
    keys: dict[str, str]  # peer id -> API key
    share: float = 0.5
    answers: list[int | str] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def hear(self, delivery: Delivery) -> None:
        message = delivery.message
        peer = message["data"].get("peer")
        if message["type"] != "assignment.offered" or peer is None:
            return
        if self.rng.random() >= self.share:
            return
        task = asyncio.create_task(self._accept(message["data"]["assignment"]["id"], peer["id"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, assignment_id: str, peer_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.1, 1.5))
        targets = self.targets()
        target = targets[self.rng.randrange(len(targets))]
        try:
            answer = await self.client.post(
                f"{target}/v1/assignments/{assignment_id}/accept",
                headers={"Authorization": f"Bearer {self.keys[peer_id]}"},
            )
        except httpx.HTTPError as exc:
            self.answers.append(type(exc).__name__)
            return
        self.answers.append(answer.status_code)

    async def finish(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
