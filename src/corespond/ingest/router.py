"""``POST /v1/cad/{source}/events``: the CAD webhook."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from corespond.db import Database
from corespond.errors import (
    Forbidden,
    InvalidPayload,
    InvalidSignature,
    NotFound,
    PayloadTooLarge,
    Problem,
    RateLimited,
    ServiceUnavailable,
    UnsupportedMediaType,
    database_unreachable,
    problem_response,
    problem_responses,
)
from corespond.ingest import service
from corespond.ingest.reading import parse_eido, parse_event, parse_mapped
from corespond.ingest.schemas import EventReceipt
from corespond.ingest.signing import verify
from corespond.ingest.validation import EventValidation, describe
from corespond.kit.bodies import read_body_limited
from corespond.metrics import EVENTS_INGESTED
from corespond.sources import service as sources

log = structlog.get_logger(__name__)
router = APIRouter(tags=["CAD ingest"])

_SIGNATURE_HEADERS: list[dict[str, Any]] = [
    {
        "name": name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }
    for name, description in (
        ("webhook-id", "Unique message id (Standard Webhooks)."),
        ("webhook-timestamp", "Unix seconds when signed; must be within 5 minutes of now."),
        ("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` signatures."),
    )
]
_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A native CAD event (below), or, for a source whose format is `eido` "
        "or `mapped`, an EIDO or the source's own JSON shape.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CadEvent"}}},
    },
    "parameters": _SIGNATURE_HEADERS,
}
_EIDO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A NENA EIDO incident document (EmergencyIncidentDataObjectType of "
        "NENA-STA-021.1; https://github.com/NENA911/EIDO-JSON).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["$id", "lastUpdateTimeStamp"],
                    "properties": {
                        "$id": {"type": "string", "description": "The incident's id."},
                        "lastUpdateTimeStamp": {"type": "string", "format": "date-time"},
                        "incidentComponent": {"type": "object"},
                        "agencyComponent": {"type": "array", "items": {"type": "object"}},
                        "locationComponent": {"type": "array", "items": {"type": "object"}},
                        "notesComponent": {"type": "array", "items": {"type": "object"}},
                        "cautionComponent": {"type": "array", "items": {"type": "object"}},
                        "emergencyResourceComponent": {
                            "type": "array",
                            "items": {"type": "object"},
                        },
                    },
                    "additionalProperties": True,
                }
            }
        },
    },
    "parameters": _SIGNATURE_HEADERS,
}


VALIDATED: dict[int | str, dict[str, Any]] = {
    200: {"model": EventValidation, "description": "`?validate=true`: nothing stored."}
}


_RECEIVE_ERRORS = problem_responses(
    InvalidSignature,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidPayload,
    RateLimited,
    ServiceUnavailable,
)

Validate = Annotated[
    bool,
    Query(
        description="Check the signature and the body and answer 200 with the call this "
        "event describes and how triage would read it; nothing is stored."
    ),
]


@router.post(
    "/v1/cad/{source}/events",
    status_code=202,
    response_model=EventReceipt,
    responses=VALIDATED | _RECEIVE_ERRORS,
    openapi_extra=_REQUEST_BODY,
)
async def post_cad_event(source: str, request: Request, validate: Validate = False) -> Response:
    """Receive a signed call event from a CAD system; stored durably before the 202.
    The body is read in the source's format: the native event (the default), an EIDO, or
    the source's own shape through its declared field mapping (`PUT
    /v1/cad/{source}/mapping`). With `?validate=true`, an integrator's dry run: same checks
    and answers to bad input, then `200` with what would be stored and triage's reading of
    this event's fields, and nothing stored."""
    return await _receive(source, request, validate, eido=False)


@router.post(
    "/v1/cad/{source}/eido",
    status_code=202,
    response_model=EventReceipt,
    responses=VALIDATED | _RECEIVE_ERRORS,
    openapi_extra=_EIDO_BODY,
)
async def post_cad_eido(source: str, request: Request, validate: Validate = False) -> Response:
    """Receive a signed NENA EIDO (NENA-STA-021.1 JSON): one snapshot of one incident,
    read as a call event by the mapping table in the README (the incident's `$id` is its
    incident number; snapshots fold by `lastUpdateTimeStamp` exactly like native events).
    Signed, answered and `?validate=true` exactly as `/v1/cad/{source}/events`."""
    return await _receive(source, request, validate, eido=True)


# The hottest route: no ORM session and no transaction around it (the event is stored by one
# statement in autocommit, durable when it returns), the source and its decrypted secrets
# from the ``SourceCache``, and the receipt written straight out (no response model pass).
async def _receive(source: str, request: Request, validate: bool, *, eido: bool) -> Response:
    state = request.app.state
    settings = state.settings
    if not sources.SOURCE_ID_PATTERN.fullmatch(source):
        raise NotFound("unknown CAD source")
    database: Database = state.database
    # The body is read before the first query, so a slow client never holds a connection.
    body = await read_body_limited(request, settings.max_event_bytes)
    for attempt in (1, 2):
        try:
            cad_source = await state.source_cache.get(database, source)
            break
        except Exception as exc:  # a pooled connection cut: one more try on a new one
            if not _lost(exc):
                raise
            if attempt == 2:
                raise _unreachable(exc) from None
    try:
        webhook_id = verify(
            body, request.headers, cad_source.live_secrets(request.app.state.clock())
        )
        sources.require_enabled(cad_source)
        # Charged only once the signature holds: nobody else can use up a source's limit.
        wait = state.source_limits.take(f"source:{cad_source.id}", time.monotonic())
        if wait > 0:
            raise RateLimited(wait, state.source_limits.rate)
        content_type = request.headers.get("content-type", "application/json")
        if content_type.split(";")[0].strip().lower() not in ("application/json", ""):
            raise UnsupportedMediaType(f"send application/json, not {content_type[:80]!r}")
        zone = sources.zone_of(cad_source, settings.program_timezone)
        ignored: dict[str, Any] = {}
        if eido or cad_source.format == "eido":
            event = parse_eido(body, zone, cad_source.scene_secure_statuses)
        elif cad_source.format == "mapped":
            event = parse_mapped(body, sources.mapping_of(cad_source), zone)
        else:
            event, ignored = parse_event(body, zone, cad_source.id)
    except (InvalidSignature, UnsupportedMediaType, InvalidPayload, RateLimited, Forbidden):
        EVENTS_INGESTED.labels(cad_source.id, "rejected").inc()
        raise
    if not sources.files_for_by_name(cad_source, event.call.agency):
        try:
            async with database.sessionmaker() as session:
                await sources.require_agency(session, cad_source, event.call.agency)
        except Forbidden:
            EVENTS_INGESTED.labels(cad_source.id, "other_agency").inc()
            raise
    if validate:
        EVENTS_INGESTED.labels(cad_source.id, "validated").inc()
        dry_run = describe(event, ignored, state.rulebook.rules)
        return JSONResponse(dry_run.model_dump(mode="json"))
    for attempt in (1, 2):
        try:
            async with database.plain() as conn:
                result = await service.ingest(conn, cad_source.id, event, body, webhook_id, ignored)
            break
        except Exception as exc:
            if not _lost(exc):
                raise
            # A pooled connection cut (the database restarted): one more try on a new one.
            # Had the first try committed, this one answers ``duplicate``: stored once.
            if attempt == 2:
                raise _unreachable(exc) from None
    if result.status == "accepted":
        state.worker_wake.poke()
    EVENTS_INGESTED.labels(cad_source.id, result.status).inc()
    receipt = EventReceipt(event_id=result.event_id, status=result.status, call_id=result.call_id)
    return Response(receipt.model_dump_json(), status_code=202, media_type="application/json")


def _lost(exc: BaseException) -> bool:
    """The database out of reach or the connection lost (as ``errors.database_unreachable``
    reads it; on a plain connection also the socket's own errors and the server's shutdown)."""
    return (
        database_unreachable(exc)
        or isinstance(exc, OSError)
        or isinstance(exc, asyncpg.exceptions.OperatorInterventionError)
    )


def _unreachable(exc: BaseException) -> ServiceUnavailable:
    log.warning("cad_event_database_unreachable", error_type=type(exc).__name__)
    return ServiceUnavailable(
        "the database cannot be reached: the event may not be stored; send it again (a "
        "repeat of a stored event is answered duplicate)",
        headers={"Retry-After": "2"},
    )


_LANE = re.compile(r"/v1/cad/([^/]+)/(events|eido)")


class IngestLane:
    """CAD events go from the application's own middleware (request id, access log and
    metrics, the one-Authorization rule, rate limits, timeout, body limit: all still in
    front of this) straight to ``_receive``, past FastAPI's routing, request parsing and
    dependency machinery, which cost more than storing the event does. Only a plain ``POST``
    with no query string takes the lane; anything else (a dry run with ``?validate=true``,
    another method) goes the ordinary way, to the same routes, which also document it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes = {r.path: r for r in router.routes if isinstance(r, APIRoute)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = (
            _LANE.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if lane is None or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        eido = lane.group(2) == "eido"
        scope["route"] = self._routes[f"/v1/cad/{{source}}/{lane.group(2)}"]
        scope["path_params"] = {"source": lane.group(1)}
        request = Request(scope, receive)
        try:
            response = await _receive(lane.group(1), request, False, eido=eido)
        except Problem as problem:
            response = problem_response(problem, request)
        await response(scope, receive, send)
