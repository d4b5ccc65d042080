"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from corespond.db import database_of
from corespond.errors import ServiceUnavailable, problem_responses
from corespond.migrate import current_revisions

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migrations: str
    revision: str | None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (says nothing about the database)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problem_responses(ServiceUnavailable))
async def readyz(request: Request) -> Readiness | JSONResponse:
    """Ready to serve: the database answers and its schema is at the migrations' head."""
    database = getattr(request.app.state, "database", None)
    if database is None:
        raise ServiceUnavailable("database not configured yet")
    try:
        current = await asyncio.wait_for(current_revisions(database_of(request).engine), 3)
    except Exception as exc:
        raise ServiceUnavailable(f"database unreachable ({type(exc).__name__})") from exc
    heads: set[str] = request.app.state.migration_heads
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        raise ServiceUnavailable(
            f"database schema is at {have}, code expects {', '.join(sorted(heads))}; "
            "run `corespond migrate`"
        )
    return Readiness(status="ready", database="ok", migrations="head", revision=min(heads))


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
