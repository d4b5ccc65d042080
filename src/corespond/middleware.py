"""ASGI middleware: a request id on every request, the access log and HTTP metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import traceback
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corespond.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from corespond.metrics import REQUEST_SECONDS, REQUESTS

REQUEST_ID_HEADER = "x-request-id"
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

log = structlog.get_logger("corespond.access")


class RequestContextMiddleware:
    """Give each request an id (the caller's ``X-Request-ID`` if sane), log and measure it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
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
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode())],
                    }
                )
                body = {
                    "type": PROBLEM_BASE + "internal",
                    "title": "Internal error",
                    "status": 500,
                    "detail": f"quote request id {request_id} when reporting this",
                }
                await send({"type": "http.response.body", "body": json.dumps(body).encode()})
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
            )
            structlog.contextvars.clear_contextvars()


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
        document = {
            "type": PROBLEM_BASE + "payload-too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"{detail} of {self.limit} bytes",
        }
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode())],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(document).encode()})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second up to ``burst``. In-process: each
    instance limits what reaches it."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> float:
        """0 if a request may go now, else the seconds until one may."""
        tokens, updated = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > 10_000:  # forget idle keys (full buckets)
            full = [
                k for k, (t, u) in self._buckets.items() if t + (now - u) * self.rate >= self.burst
            ]
            for k in full:
                del self._buckets[k]
        return (1 - tokens) / self.rate


_CAD_EVENTS = re.compile(r"^/v1/cad/([^/]+)/events$")
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class RateLimitMiddleware:
    """Write requests are limited per client address (every write; the CAD webhook has its
    own rate, and its per-source limit is charged after the signature check, in the
    endpoint) and per API key (the bearer token, however its scheme is spelled), before
    anything is read or stored: over a limit, ``429`` with ``Retry-After``."""

    def __init__(
        self, app: ASGIApp, cad: TokenBuckets, writes: TokenBuckets, addresses: TokenBuckets
    ) -> None:
        self.app = app
        self.cad = cad
        self.writes = writes
        self.addresses = addresses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        client = f"ip:{(scope.get('client') or ('?', 0))[0]}"
        if _CAD_EVENTS.match(scope["path"]):
            checks = [(self.cad, client)]
        else:
            checks = [(self.addresses, client)]
            token = _bearer_token(dict(scope["headers"]).get(b"authorization", b""))
            if token:
                checks.append((self.writes, "key:" + hashlib.sha256(token).hexdigest()[:24]))
        for buckets, key in checks:
            wait = buckets.take(key, now)
            if wait > 0:
                await _too_many(send, wait, buckets.rate)
                return
        await self.app(scope, receive, send)


def _bearer_token(header: bytes) -> bytes:
    scheme, _, value = header.strip().partition(b" ")
    return value.strip() if scheme.lower() == b"bearer" else header.strip()


async def _too_many(send: Send, wait: float, rate: float) -> None:
    seconds = max(1, math.ceil(wait))
    body = {
        "type": PROBLEM_BASE + "rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": f"over the limit of {rate:g} requests a second; retry in {seconds} s",
    }
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"retry-after", str(seconds).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class TimeoutMiddleware:
    """A request that takes longer than ``seconds`` is answered ``503`` with a problem
    document (its transaction rolls back); roster imports, which may be long, are exempt."""

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
            body = {
                "type": PROBLEM_BASE + "timeout",
                "title": "Request took too long",
                "status": 503,
                "detail": f"not answered within {self.seconds:g} s; nothing was changed, retry",
            }
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                        (b"retry-after", b"1"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})
