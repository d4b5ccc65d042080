"""What ``corespond worker`` answers over HTTP, when given a port: ``/healthz`` (the process
and its event loop are up) and ``/metrics`` (its own counters: events folded, deliveries,
notifications, the backlog gauges), under the same token rule as the API's.

The jobs' metrics live in the process that runs them: with the jobs in worker processes, the
API's /metrics no longer has them, so Prometheus scrapes the workers too. A deliberately
small HTTP/1.0 responder on asyncio: two GET routes, no bodies read, one request per
connection.
"""

from __future__ import annotations

import asyncio
import json

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from corespond.config import Settings
from corespond.ops.router import metrics_refusal

log = structlog.get_logger(__name__)

MAX_HEADER_LINES = 100
READ_SECONDS = 5.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
}


def worker_response(
    settings: Settings, method: str, path: str, authorization: str
) -> tuple[int, str, bytes]:
    """Status, content type and body for one request to the worker."""
    route = path.split("?", 1)[0]
    if route not in ("/healthz", "/metrics"):
        return _problem(404, "not-found", "the worker answers /healthz and /metrics only")
    if method not in ("GET", "HEAD"):
        return _problem(405, "method-not-allowed", "GET or HEAD")
    if route == "/healthz":
        return 200, "application/json", b'{"status":"ok"}'
    refusal = metrics_refusal(settings, authorization)
    if refusal is not None:
        return refusal.status, "application/problem+json", json.dumps(refusal.document()).encode()
    return 200, CONTENT_TYPE_LATEST, generate_latest()


def _problem(status: int, slug: str, detail: str) -> tuple[int, str, bytes]:
    document = {
        "type": f"https://corespond.dev/problems/{slug}",
        "title": _REASONS[status],
        "status": status,
        "detail": detail,
    }
    return status, "application/problem+json", json.dumps(document).encode()


async def start_worker_http(settings: Settings, host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port``; close the returned server to stop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body, method = await _answer(reader)
            head = (
                f"HTTP/1.0 {status} {_REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(reader: asyncio.StreamReader) -> tuple[int, str, bytes, str]:
        request_line = await asyncio.wait_for(reader.readline(), READ_SECONDS)
        parts = request_line.decode("latin-1").split()
        authorization = ""
        for _ in range(MAX_HEADER_LINES):
            line = await asyncio.wait_for(reader.readline(), READ_SECONDS)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "authorization":
                authorization = value.strip()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return (*_problem(400, "bad-request", "not an HTTP request line"), "GET")
        method, path = parts[0].upper(), parts[1]
        return (*worker_response(settings, method, path, authorization), method)

    server = await asyncio.start_server(handle, host, port)
    log.info("worker_http_listening", host=host, port=port)
    return server
