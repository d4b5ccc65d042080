"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from corespond.config import Settings
from corespond.db import database_of
from corespond.errors import (
    NotFound,
    Problem,
    ServiceUnavailable,
    Unauthorized,
    problem_responses,
)
from corespond.metrics import exposition
from corespond.migrate import current_revisions
from corespond.ops.signals import DatabaseGauges

router = APIRouter(tags=["operations"])

READY_SECONDS = 3.0  # /readyz answers within this, whatever the database does
# Checks given up on, kept until their cancellation ends (see _revisions_within).
_abandoned: set[asyncio.Task[set[str]]] = set()


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migrations: str = Field(
        description="head: the schema this code was written for; ahead: a newer release's "
        "(during a rolling upgrade)"
    )
    revision: str | None


# HEAD too: load balancers and uptime checks probe with it (the server sends no body).
@router.get("/healthz", response_model=Health)
@router.head("/healthz", response_model=Health, operation_id="healthz_head")
async def healthz() -> Health:
    """The process is up (says nothing about the database)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problem_responses(ServiceUnavailable))
@router.head(
    "/readyz",
    response_model=Readiness,
    responses=problem_responses(ServiceUnavailable),
    operation_id="readyz_head",
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    """Ready to serve: the database answers and its schema is at the migrations' head (or
    ahead of it: migrated by a newer release, during a rolling upgrade)."""
    database = getattr(request.app.state, "database", None)
    if database is None:
        raise ServiceUnavailable("database not configured yet")
    current = await _revisions_within(database_of(request).engine, READY_SECONDS)
    heads: set[str] = request.app.state.migration_heads
    if current == heads:
        return Readiness(status="ready", database="ok", migrations="head", revision=min(heads))
    known: set[str] = request.app.state.migration_revisions
    if current and not current & known:
        # Revisions this code has never heard of: a newer release migrated the database,
        # and its migrations only add (docs/operations.md), so this one keeps serving until
        # it is replaced. A rolling upgrade must not take every old instance out at once.
        return Readiness(status="ready", database="ok", migrations="ahead", revision=min(current))
    have = ", ".join(sorted(current)) or "none"
    raise ServiceUnavailable(
        f"database schema is at {have}, code expects {', '.join(sorted(heads))}; "
        "run `corespond migrate`"
    )


async def _revisions_within(engine: AsyncEngine, seconds: float) -> set[str]:
    """The schema's revisions, or ``ServiceUnavailable`` after ``seconds``.

    The check is left to finish its cancellation on its own rather than awaited: on a
    connection that stopped answering (a network partition, a stalled server) even the
    cancellation waits on the network, and /readyz would hang with it."""
    check = asyncio.ensure_future(current_revisions(engine))
    try:
        done, _ = await asyncio.wait({check}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(check)
        raise
    if not done:
        _abandon(check)
        raise ServiceUnavailable(f"database unreachable (no answer within {seconds:g} s)")
    failure = check.exception()
    if failure is not None:
        raise ServiceUnavailable(f"database unreachable ({type(failure).__name__})") from failure
    return check.result()


def _abandon(check: asyncio.Task[set[str]]) -> None:
    check.cancel()
    _abandoned.add(check)
    check.add_done_callback(_forget)


def _forget(check: asyncio.Task[set[str]]) -> None:
    _abandoned.discard(check)
    if not check.cancelled():
        check.exception()  # retrieved: whatever it was, /readyz has answered already


def metrics_refusal(settings: Settings, authorization: str) -> Problem | None:
    """With ``CORESPOND_METRICS_TOKEN`` set, the scrape must bring it as a bearer token;
    without one, metrics are open in development and test and absent (404) in production.
    (The API's /metrics and the worker's answer alike.)"""
    if settings.metrics_token is None:
        return NotFound() if settings.environment == "production" else None
    scheme, _, given = authorization.strip().partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    # Compared in constant time, as bytes (compare_digest refuses non-ASCII text).
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return Unauthorized("send the metrics token as 'Authorization: Bearer <token>'")
    return None


def metrics_access(request: Request) -> None:
    """``metrics_refusal`` as a dependency of the route."""
    refusal = metrics_refusal(request.app.state.settings, request.headers.get("authorization", ""))
    if refusal is not None:
        raise refusal


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        **problem_responses(Unauthorized, NotFound),
    },
    dependencies=[Depends(metrics_access)],
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format."""
    gauges: DatabaseGauges | None = getattr(request.app.state, "database_gauges", None)
    if gauges is not None:
        await gauges.refresh()
    return Response(exposition(request.app.state.metrics_directory), media_type=CONTENT_TYPE_LATEST)
