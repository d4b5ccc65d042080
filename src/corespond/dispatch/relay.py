"""The relay: delivers outbox messages to each CAD's callback, signed, retried, in order.

* Claimed one at a time with ``FOR UPDATE SKIP LOCKED`` in a transaction that stays open for
  the HTTP request, so two relays (in one process or several) never send one message at the
  same time, and a relay killed mid-delivery leaves its message pending for the next try.
* A call's message n+1 is not claimable while message n is pending (delivered or dead ends
  the wait); different calls go out in parallel (``relay_concurrency`` at once), at most
  ``relay_per_source`` of them to one CAD source, so a CAD whose callback hangs holds only
  those and every other CAD's messages go on (per process: N processes, N times as many).
* Deliveries run in a pool of lanes that grows while there is work: a wake starts a lane
  if one is free, a lane that found a message starts another, a lane that finds none ends.
  A lane held by a slow callback never holds back a message that arrives meanwhile.
* 2xx: delivered. 4xx other than 408 and 429 (and any 3xx: redirects are not followed):
  dead at once, it will not get better by repeating. Timeouts, connection errors, 5xx, 408
  and 429 are retried with capped exponential backoff and full jitter (``Retry-After`` is
  honoured) until the horizon; then dead. Every attempt is logged in ``delivery_attempt``.
* Each attempt looks the callback's host name up once and connects to an address of that
  answer (the URL names the address; the ``Host`` header and the TLS name stay the host
  name), so nothing resolves the name again between the check and the connection. In
  production an answer with any internal address (``sources.addresses.is_internal``) is
  refused without connecting: a name checked when it was set can point inside the network
  later (an edited record, DNS rebinding). That refusal, like a name that does not resolve,
  is an attempt retried with backoff, not dead at once: the stored URL is right and its DNS
  is wrong, perhaps briefly; once DNS is fixed the held messages go out in order with nothing
  to replay, and meanwhile the failing-source alert tells the supervisor. Dead at once would
  lose a CAD's assignment events to one bad answer.
* Woken by ``NOTIFY corespond_outbox`` from the transaction that wrote the message, and swept
  on a timer as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from corespond import __version__
from corespond.clock import Clock, system_clock
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch import repository
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.errors import InvalidPayload
from corespond.listen import WokenLoop
from corespond.metrics import (
    DELIVERIES,
    DELIVERY_SECONDS,
    DISPATCH_FAILING_SOURCES,
    SUPERVISOR_ALERTS,
)
from corespond.sources.addresses import (
    DestinationRefused,
    IPAddress,
    Resolver,
    checked_addresses,
    resolve,
)
from corespond.sources.models import CadSource
from corespond.sources.service import check_callback_url, verification_secrets

log = structlog.get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 429})
DEFAULT_PORTS = {"https": 443, "http": 80}
BODY_KEPT = 1024  # characters of a response body kept in the attempt log
BACKOFF_BASE_SECONDS = 1.0
NO_CALLBACK_RETRY = timedelta(minutes=5)
MIN_IDLE_SECONDS = 0.25
ALERT_REPEAT = timedelta(minutes=10)  # a failing source is logged again this often


@dataclass(frozen=True)
class DeliveryPolicy:
    concurrency: int
    horizon: timedelta
    backoff_cap: timedelta
    alert_after: timedelta
    per_source: int = 2

    @classmethod
    def of(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            concurrency=settings.relay_concurrency,
            per_source=settings.relay_per_source,
            horizon=timedelta(hours=settings.delivery_horizon_hours),
            backoff_cap=timedelta(seconds=settings.delivery_backoff_cap_seconds),
            alert_after=timedelta(seconds=settings.delivery_alert_after_seconds),
        )


@dataclass(frozen=True)
class Answer:
    """What one attempt came to."""

    status_code: int | None
    body: str | None
    error: str | None
    latency_ms: float
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def permanent(self) -> bool:
        """A refusal that repeating will not change."""
        code = self.status_code
        return code is not None and 300 <= code < 500 and code not in RETRYABLE_STATUS


def backoff(attempts: int, cap: timedelta, rng: random.Random) -> timedelta:
    """Full jitter: a random wait up to min(cap, base * 2^attempts)."""
    ceiling = min(cap.total_seconds(), BACKOFF_BASE_SECONDS * 2 ** min(attempts, 30))
    return timedelta(seconds=rng.uniform(0, ceiling))


def retry_after(value: str | None, now: datetime, longest: timedelta) -> timedelta | None:
    """A ``Retry-After`` header (delay seconds or an HTTP date) as a wait between 0 and
    ``longest``; None if it is neither."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = min(int(value[:12]), int(longest.total_seconds()))
        return timedelta(seconds=seconds)
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return min(longest, max(timedelta(0), when - now))
    return None


def body_of(message: OutboxMessage) -> str:
    """The exact bytes signed and sent (compact JSON of the stored payload)."""
    return json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False)


class Relay:
    def __init__(
        self,
        database: Database,
        http: httpx.AsyncClient,
        box: SecretBox,
        policy: DeliveryPolicy,
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        environment: str = "development",
        resolver: Resolver = resolve,
    ) -> None:
        self._database = database
        self._environment = environment
        self._resolver = resolver
        self._http = http
        self._box = box
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._loop = WokenLoop(database, repository.NOTIFY_CHANNEL, "dispatch-relay")
        self._drain_lock = asyncio.Lock()  # one drain at a time: ``concurrency`` connections
        self._alerted: dict[str, datetime] = {}  # failing sources, when last logged
        self._claiming = asyncio.Lock()  # a claim and its count, one lane at a time
        self._in_flight: Counter[str] = Counter()  # deliveries under way, by source
        self._lanes: set[asyncio.Task[None]] = set()

    # --- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()
        lanes = list(self._lanes)
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                wait = await self._until_next_due()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._loop.wake.wait(), wait)
                self._loop.wake.clear()
                # (A due time someone else holds, another relay, a lock or a source at its
                # limit, is polled no faster than MIN_IDLE_SECONDS: see _until_next_due.)
                self._add_lane()
            except Exception as exc:
                log.error("dispatch_drain_failed", error_type=type(exc).__name__)
                await asyncio.sleep(1)

    def _add_lane(self) -> None:
        """One more lane, if fewer than ``concurrency`` are running."""
        if len(self._lanes) >= self._policy.concurrency:
            return
        lane = asyncio.create_task(self._lane_until_idle())
        self._lanes.add(lane)
        lane.add_done_callback(self._lanes.discard)

    async def _lane_until_idle(self) -> None:
        try:
            while await self.deliver_one(on_claim=self._add_lane):
                pass
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                return  # stopped mid-delivery: the transaction is rolled back, nothing lost
            log.error("dispatch_lane_failed", error_type=type(exc).__name__)

    async def _until_next_due(self) -> float:
        """Seconds until the next claimable retry is due (so a backoff of 2 s is not a
        sweep's 5 s); a message waiting behind an earlier one of its call does not count."""
        async with self._database.sessionmaker() as session:
            due = await repository.next_due_at(session)
        if due is None:
            return 60.0
        return min(60.0, max(MIN_IDLE_SECONDS, (due - self._clock()).total_seconds()))

    async def sweep(self) -> None:
        """The scheduler's pass: re-listen if the connection was lost, deliver what is due,
        and raise (or clear) the alert of sources whose deliveries keep failing."""
        try:
            await self._loop.relisten()
            await self.drain()
            await self.check_sources()
        except Exception as exc:  # a sweep must never kill the scheduler job
            log.error("dispatch_sweep_failed", error_type=type(exc).__name__)

    async def drain(self) -> int:
        """Deliver every message due now (a retry scheduled meanwhile waits for the next
        pass, however short its backoff); returns how many attempts were made."""
        async with self._drain_lock:
            cutoff = self._clock()
            counts = await asyncio.gather(
                *(self._lane(cutoff) for _ in range(self._policy.concurrency)),
                return_exceptions=True,
            )
        for failure in (c for c in counts if isinstance(c, BaseException)):
            log.error("dispatch_lane_failed", error_type=type(failure).__name__)
        return sum(c for c in counts if isinstance(c, int))

    async def _lane(self, cutoff: datetime) -> int:
        done = 0
        while await self.deliver_one(cutoff):
            done += 1
        return done

    # --- one message -----------------------------------------------------------------------

    async def deliver_one(
        self, due_by: datetime | None = None, on_claim: Callable[[], None] | None = None
    ) -> bool:
        """Claim the next message due by ``due_by`` (default now) of a source below its
        limit in flight, and try it once; False when nothing is due. ``on_claim`` is told
        when a message was claimed (there may be more)."""
        async with self._database.sessionmaker() as session, session.begin():
            async with self._claiming:
                limit = self._policy.per_source
                busy = [source for source, n in self._in_flight.items() if n >= limit]
                message = await repository.claim_next(session, due_by or self._clock(), busy)
                if message is None:
                    return False
                self._in_flight[message.source_id] += 1
            try:
                if on_claim is not None:
                    on_claim()
                await self._deliver(session, message)
            finally:
                self._in_flight[message.source_id] -= 1
                if self._in_flight[message.source_id] <= 0:
                    del self._in_flight[message.source_id]
        return True

    async def _deliver(self, session: AsyncSession, message: OutboxMessage) -> None:
        """One attempt at a claimed message, recorded."""
        source = await session.get(CadSource, message.source_id)
        url = source.callback_url if source is not None else None
        if source is None or source.disabled_at is not None:
            url = None
            answer = Answer(None, None, "the source is disabled", 0.0)
        elif url is None:
            answer = Answer(None, None, "no callback URL configured for this source", 0.0)
        else:
            try:
                answer = await self._post(message, source, url)
            except Exception as exc:  # recorded as a failed attempt, never a silent loop
                answer = Answer(None, None, f"relay error: {type(exc).__name__}", 0.0)
        await self._record(session, message, url, answer, self._clock())

    async def _post(self, message: OutboxMessage, source: CadSource, url: str) -> Answer:
        return await self._post_body(source, url, str(message.id), body_of(message))

    async def test_delivery(self, source: CadSource, now: datetime) -> tuple[str, Answer]:
        """Send one signed ``test`` message to the source's callback now, outside the outbox
        (nothing is stored or retried): its webhook id and what the callback answered."""
        webhook_id = f"test_{uuid.uuid4().hex}"
        if source.callback_url is None:
            return webhook_id, Answer(None, None, "no callback URL configured", 0.0)
        body = json.dumps(
            {
                "type": "test",
                "timestamp": now.isoformat(),
                "data": {
                    "source": source.id,
                    "note": "A test delivery from corespond: verify the signature and answer "
                    "2xx. Nothing about a call is in it.",
                },
            },
            separators=(",", ":"),
        )
        return webhook_id, await self._post_body(source, source.callback_url, webhook_id, body)

    async def _post_body(self, source: CadSource, url: str, webhook_id: str, body: str) -> Answer:
        try:  # the stored URL is checked again: it may predate today's rules
            check_callback_url(url, self._environment)
        except InvalidPayload as exc:
            return Answer(None, None, f"callback URL refused: {exc.detail}", 0.0)
        target = httpx.URL(url)
        try:
            addresses = await checked_addresses(
                target.raw_host.decode("ascii"),
                target.port or DEFAULT_PORTS[target.scheme],
                # As in check_callback_url: a local receiver only in development and tests.
                allow_internal=self._environment in ("development", "test"),
                resolver=self._resolver,
            )
            routes = self._routes(target, addresses)
        except DestinationRefused as exc:
            log.warning("dispatch_destination_refused", source=source.id, reason=exc.reason)
            return Answer(None, None, exc.reason, 0.0)
        sent_at = system_clock()  # the signature's timestamp must be real time
        # Signed with every live secret: during a rotation's grace period the CAD may still
        # verify with the old one (Standard Webhooks allows several signatures).
        signatures = " ".join(
            Webhook(secret).sign(webhook_id, sent_at, body)
            for secret in verification_secrets(source, self._box, sent_at)
        )
        headers = {
            "content-type": "application/json",
            "user-agent": f"corespond/{__version__}",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signatures,
            "host": target.netloc.decode("ascii"),
        }
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._http.timeout.read or 10.0):
                response, kept = await self._send(routes, target, body.encode(), headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            return Answer(None, None, f"timeout ({type(exc).__name__})", _ms(started))
        except httpx.HTTPError as exc:
            return Answer(None, None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))
        latency = _ms(started)
        DELIVERY_SECONDS.observe(latency / 1000)
        return Answer(
            response.status_code,
            kept.decode("utf-8", errors="replace"),
            None,
            latency,
            retry_after(response.headers.get("retry-after"), sent_at, self._policy.horizon)
            if response.status_code in (429, 503)
            else None,
        )

    def _routes(self, target: httpx.URL, addresses: list[IPAddress]) -> list[httpx.URL]:
        """The URLs to try in turn: one per checked address, so the connection goes to an
        address that was checked and nothing looks the name up again.

        Through a proxy (``HTTPS_PROXY``, as deploy/README.md advises) the name itself: the
        proxy resolves it and connects, so it is the proxy that must keep to public addresses
        (the relay's check of the same name is a first line only), and httpcore's tunnel would
        verify TLS against the address instead of the name.
        """
        if self._proxied(target):
            return [target]
        pinned = [target.copy_with(host=str(address)) for address in addresses]
        if any(self._proxied(url) for url in pinned):
            raise DestinationRefused(
                f"callback host {target.host!r} is exempt from the proxy (NO_PROXY) but its "
                "addresses are not; exempt both or neither"
            )
        return pinned

    def _proxied(self, url: httpx.URL) -> bool:
        # httpx has no public way to ask; this is how it routes a request (HTTP(S)_PROXY,
        # ALL_PROXY and NO_PROXY from the environment, or the client's proxy= or mounts=).
        return self._http._transport_for_url(url) is not self._http._transport

    async def _send(
        self, routes: list[httpx.URL], target: httpx.URL, content: bytes, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        """POST to each route in turn until one takes the connection (as a client resolving
        the name itself tries each address); the response and the start of its body."""
        *others, last = routes
        for url in others:
            with contextlib.suppress(httpx.ConnectError):  # nothing of the request was sent
                return await self._send_to(url, target, content, headers)
        return await self._send_to(last, target, content, headers)

    async def _send_to(
        self, url: httpx.URL, target: httpx.URL, content: bytes, headers: dict[str, str]
    ) -> tuple[httpx.Response, bytes]:
        # ``headers`` carry the callback's Host; TLS sends and verifies the callback's name
        # too, whatever address the URL names (httpcore's sni_hostname extension).
        async with self._http.stream(
            "POST",
            url,
            content=content,
            headers=headers,
            follow_redirects=False,
            extensions={"sni_hostname": target.raw_host.decode("ascii")},
        ) as response:
            return response, await _first_bytes(response, BODY_KEPT)

    async def _record(
        self,
        session: Any,
        message: OutboxMessage,
        url: str | None,
        answer: Answer,
        now: datetime,
    ) -> None:
        if url is None:
            # Not an attempt: this CAD takes no callbacks (yet). Kept, looked at again later,
            # dead at the horizon; set a callback URL and they go out at once.
            message.last_error = answer.error
            message.next_attempt_at = now + NO_CALLBACK_RETRY
            if now + NO_CALLBACK_RETRY - _horizon_start(message) > self._policy.horizon:
                message.state = "dead"
                message.dead_at = now
            return
        message.attempts += 1
        message.last_attempt_at = now
        message.last_status_code = answer.status_code
        if answer.delivered:
            outcome = "delivered"
            message.state = "delivered"
            message.delivered_at = now
            message.last_error = None
        elif answer.permanent:
            outcome = "dead"
            message.state = "dead"
            message.dead_at = now
            message.last_error = f"HTTP {answer.status_code}: refused, not retried"
        else:
            wait = answer.retry_after or backoff(
                message.attempts, self._policy.backoff_cap, self._rng
            )
            message.last_error = answer.error or f"HTTP {answer.status_code}"
            if now + wait - _horizon_start(message) > self._policy.horizon:
                outcome = "dead"
                message.state = "dead"
                message.dead_at = now
                message.last_error += "; retried until the horizon, given up"
            else:
                outcome = "retry"
                message.next_attempt_at = now + wait
        await repository.add_attempt(
            session,
            DeliveryAttempt(
                message_id=message.id,
                attempt=message.attempts,
                attempted_at=now,
                url=url,
                status_code=answer.status_code,
                latency_ms=round(answer.latency_ms, 2),
                response_body=answer.body,
                error=answer.error,
                outcome=outcome,
            ),
        )
        DELIVERIES.labels(message.source_id, outcome).inc()
        log.info(
            "dispatch_delivery",
            message_id=str(message.id),
            source=message.source_id,
            event_type=message.event_type,
            outcome=outcome,
            status_code=answer.status_code,
            attempt=message.attempts,
        )

    # --- failing sources -------------------------------------------------------------------

    async def check_sources(self) -> list[str]:
        """Sources whose oldest failed, still pending message is older than the alert
        threshold: a dispatch centre that stops hearing from us must be noticed."""
        async with self._database.sessionmaker() as session:
            failing_since = await repository.failing_since_by_source(session)
        now = self._clock()
        failing = sorted(
            source
            for source, since in failing_since.items()
            if now - since > self._policy.alert_after
        )
        for source in failing:
            if source not in self._alerted:
                SUPERVISOR_ALERTS.labels("deliveries_failing").inc()
            last = self._alerted.get(source)
            if last is None or now - last >= ALERT_REPEAT:
                log.warning(
                    "supervisor_alert",
                    kind="deliveries_failing",
                    source=source,
                    failing_since=failing_since[source].isoformat(),
                )
                self._alerted[source] = now
        for source in set(self._alerted) - set(failing):
            log.info("deliveries_recovered", source=source)
            del self._alerted[source]
        DISPATCH_FAILING_SOURCES.set(len(failing))
        return failing


def _horizon_start(message: OutboxMessage) -> datetime:
    return message.retry_from or message.created_at


async def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a response body, without reading the rest into memory."""
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept.extend(chunk[: limit - len(kept)])
        if len(kept) >= limit:
            break
    return bytes(kept)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def schedule_relay(scheduler: AsyncIOScheduler, relay: Relay, seconds: float) -> None:
    """Sweep every ``seconds`` (and once right away: a restart delivers what was left)."""
    scheduler.add_job(
        relay.sweep,
        "interval",
        seconds=seconds,
        id="dispatch-relay",
        max_instances=1,
        coalesce=True,
        next_run_time=system_clock(),  # the scheduler's time is the system's
    )
