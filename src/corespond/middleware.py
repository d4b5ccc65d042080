"""ASGI middleware: the client address behind a trusted proxy, a request id on every request,
the access log and HTTP metrics, one Authorization header, rate limits, timeouts and the body
limit."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import math
import re
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corespond.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from corespond.ingest.signing import REQUIRED_HEADERS as WEBHOOK_HEADERS
from corespond.metrics import REQUEST_SECONDS, REQUESTS

REQUEST_ID_HEADER = "x-request-id"
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

log = structlog.get_logger("corespond.access")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


async def send_problem(
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with an RFC 9457 problem document, from middleware (before any route)."""
    document = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(document).encode()})


def _header_values(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key.lower() == name]


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


class TrustedProxyMiddleware:
    """The client address and scheme as a trusted reverse proxy reports them.

    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are read only when the connecting peer is
    in ``trusted``; from anyone else they are ignored. The client is the right-most
    ``X-Forwarded-For`` address that is not itself a trusted proxy: every hop left of it
    was written by the client and proves nothing. An unreadable hop stops the walk, and the
    proxy that reported it stands as the client.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or ("", 0))[0]
        if not self.trusts(_address(peer)):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        hops = b",".join(_header_values(scope, b"x-forwarded-for")).decode("latin-1")
        client = peer
        for hop in reversed(hops.split(",") if hops else []):
            address = _address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(address):
                break
        scope["client"] = (client, 0)
        proto = b",".join(_header_values(scope, b"x-forwarded-proto")).decode("latin-1")
        scheme = proto.rsplit(",", 1)[-1].strip().lower()
        if scheme in ("http", "https"):
            scope["scheme"] = scheme if scope["type"] == "http" else scheme.replace("http", "ws")
        await self.app(scope, receive, send)


class RequestContextMiddleware:
    """Give each request an id of our own, returned in ``X-Request-ID``; log and measure it.

    A caller's ``X-Request-ID`` is never the request id: anyone may send any value, and the
    audit log and the logs must not carry ids a caller chose (two requests under one id, an
    id that impersonates another's). A sane one is kept beside ours as ``caller_request_id``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if _SAFE_REQUEST_ID.fullmatch(incoming):
            structlog.contextvars.bind_contextvars(caller_request_id=incoming)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # A bug, never client input. Log where, not what: exception text can quote data
            # (a narrative in a failed statement). Answer 500 here, so nothing re-raises into
            # the server's own logger with the full message.
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            log.error(
                "unhandled_error",
                error_type=type(exc).__name__,
                at=f"{frame.filename}:{frame.lineno}" if frame else None,
            )
            if not response_started:
                await send_problem(
                    send_with_id,
                    500,
                    "internal",
                    "Internal error",
                    f"quote request id {request_id} when reporting this",
                )
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_SECONDS.labels(method, route).observe(elapsed)
            log.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                # The client as the trusted proxy reported it (TrustedProxyMiddleware is
                # outside this one), and which key it presented: its public prefix only.
                client=(scope.get("client") or ("-", 0))[0],
                key_prefix=_key_prefix(scope),
            )
            structlog.contextvars.clear_contextvars()


_KEY_PREFIX = re.compile(rb"^\s*bearer\s+csk_([0-9a-f]{8})_", re.IGNORECASE)


def _key_prefix(scope: Scope) -> str | None:
    """The public prefix of the API key a request presents (``csk_<prefix>_…``), never the
    key; whether it was valid is the status's business."""
    for value in _header_values(scope, b"authorization"):
        found = _KEY_PREFIX.match(value)
        if found:
            return found.group(1).decode()
    return None


class OneAuthorizationMiddleware:
    """Refuse (400) a request carrying more than one ``Authorization`` header before
    anything reads one: the rate limit and authentication must see the same key, and with
    two each could pick a different one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(_header_values(scope, b"authorization")) > 1:
            await send_problem(
                send,
                400,
                "bad-request",
                "Bad request",
                "more than one Authorization header; send exactly one",
            )
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse a request body over ``limit`` bytes with a 413 problem before any endpoint
    parses it; routes with larger limits of their own (roster imports) are exempt.

    The body is read (up to the limit) and handed on unchanged, so a chunked body without a
    Content-Length is held to the same limit as a declared one.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, f"body of {declared} bytes exceeds the limit")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, "body exceeds the limit")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, send: Send, detail: str) -> None:
        await send_problem(
            send,
            413,
            "payload-too-large",
            "Request body too large",
            f"{detail} of {self.limit} bytes",
        )


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second up to ``burst``. In-process: each
    instance limits what reaches it.

    At most ``max_keys`` buckets are kept, however many distinct addresses or keys come:
    past that the least recently used is forgotten, and a forgotten key starts again with a
    full bucket (it has been idle longest, so it most likely was full anyway)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - updated) * self.rate)

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may go (0: now), taking nothing."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str, now: float) -> float:
        """0 if a request may go now (and it is counted), else the seconds until one may."""
        tokens = self._tokens(key, now)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0 if allowed else (1 - tokens) / self.rate


_CAD_EVENTS = re.compile(r"^/v1/cad/([^/]+)/events$")
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# What a CAD post that is not from a signing source is answered: a bad signature, or a
# source that does not exist.
_CAD_FAILURES = {401, 404}


class RateLimitMiddleware:
    """Write requests are limited per client address and per API key (the bearer token,
    however its scheme is spelled), before anything is read or stored: over a limit,
    ``429`` with ``Retry-After``.

    The CAD webhook is not charged here: its per-source limit is charged in the endpoint,
    once the signature holds, so nobody else can use it up. Posts to it that fail (a bad
    signature, an unknown source) are charged afterwards to ``cad_failures`` by client
    address; while that bucket is empty, unsigned posts from the address are refused
    without being read. A post carrying signature headers always reaches the check, so a
    correctly signed event is never refused for someone else's junk from its address."""

    def __init__(
        self,
        app: ASGIApp,
        writes: TokenBuckets,
        addresses: TokenBuckets,
        cad_failures: TokenBuckets,
    ) -> None:
        self.app = app
        self.writes = writes
        self.addresses = addresses
        self.cad_failures = cad_failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        client = f"ip:{(scope.get('client') or ('?', 0))[0]}"
        if _CAD_EVENTS.match(scope["path"]):
            await self._cad_event(scope, receive, send, client, now)
            return
        checks = [(self.addresses, client)]
        authorization = _header_values(scope, b"authorization")
        token = _bearer_token(authorization[0]) if authorization else b""
        if token:
            checks.append((self.writes, "key:" + hashlib.sha256(token).hexdigest()[:24]))
        for buckets, key in checks:
            wait = buckets.take(key, now)
            if wait > 0:
                await _too_many(send, wait, buckets.rate)
                return
        await self.app(scope, receive, send)

    async def _cad_event(
        self, scope: Scope, receive: Receive, send: Send, client: str, now: float
    ) -> None:
        wait = self.cad_failures.wait(client, now)
        if wait > 0 and not _signed(scope):
            await _too_many(send, wait, self.cad_failures.rate)
            return

        async def charging_failures(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _CAD_FAILURES:
                self.cad_failures.take(client, time.monotonic())
            await send(message)

        await self.app(scope, receive, charging_failures)


def _signed(scope: Scope) -> bool:
    """Carries every Standard Webhooks header (whether the signature holds is the
    endpoint's to say)."""
    present = {key.lower() for key, value in scope["headers"] if value.strip()}
    return all(name.encode() in present for name in WEBHOOK_HEADERS)


def _bearer_token(header: bytes) -> bytes:
    scheme, _, value = header.strip().partition(b" ")
    return value.strip() if scheme.lower() == b"bearer" else header.strip()


async def _too_many(send: Send, wait: float, rate: float) -> None:
    seconds = max(1, math.ceil(wait))
    await send_problem(
        send,
        429,
        "rate-limited",
        "Too many requests",
        f"over the limit of {rate:g} requests a second; retry in {seconds} s",
        [(b"retry-after", str(seconds).encode())],
    )


class TimeoutMiddleware:
    """A request that takes longer than ``seconds`` is answered ``503`` with a problem
    document; roster imports, which may be long, are exempt. Its transaction rolls back,
    unless its commit was already on its way to a database that stopped answering: then no
    one can say whether it was made, and the answer does not pretend to know."""

    def __init__(self, app: ASGIApp, seconds: float, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            await send_problem(
                send,
                503,
                "timeout",
                "Request took too long",
                f"not answered within {self.seconds:g} s; it may not have been carried out: retry",
                [(b"retry-after", b"1")],
            )
