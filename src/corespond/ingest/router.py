"""``POST /v1/cad/{source}/events``: the CAD webhook."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.db import SessionDep
from corespond.errors import (
    Forbidden,
    InvalidPayload,
    InvalidSignature,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    UnsupportedMediaType,
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
async def post_cad_event(
    source: str, request: Request, session: SessionDep, validate: Validate = False
) -> EventReceipt | JSONResponse:
    """Receive a signed call event from a CAD system; stored durably before the 202.
    The body is read in the source's format: the native event (the default), an EIDO, or
    the source's own shape through its declared field mapping (`PUT
    /v1/cad/{source}/mapping`). With `?validate=true`, an integrator's dry run: same checks
    and answers to bad input, then `200` with what would be stored and triage's reading of
    this event's fields, and nothing stored."""
    return await _receive(source, request, session, validate, eido=False)


@router.post(
    "/v1/cad/{source}/eido",
    status_code=202,
    response_model=EventReceipt,
    responses=VALIDATED | _RECEIVE_ERRORS,
    openapi_extra=_EIDO_BODY,
)
async def post_cad_eido(
    source: str, request: Request, session: SessionDep, validate: Validate = False
) -> EventReceipt | JSONResponse:
    """Receive a signed NENA EIDO (NENA-STA-021.1 JSON): one snapshot of one incident,
    read as a call event by the mapping table in the README (the incident's `$id` is its
    incident number; snapshots fold by `lastUpdateTimeStamp` exactly like native events).
    Signed, answered and `?validate=true` exactly as `/v1/cad/{source}/events`."""
    return await _receive(source, request, session, validate, eido=True)


async def _receive(
    source: str, request: Request, session: AsyncSession, validate: bool, *, eido: bool
) -> EventReceipt | JSONResponse:
    settings = request.app.state.settings
    if not sources.SOURCE_ID_PATTERN.fullmatch(source):
        raise NotFound("unknown CAD source")
    # The body is read before the first query, so a slow client never holds a connection.
    body = await read_body_limited(request, settings.max_event_bytes)
    cad_source = await request.app.state.source_cache.get(session, source)
    try:
        webhook_id = verify(body, request.headers, cad_source.live_secrets())
        sources.require_enabled(cad_source)
        # Charged only once the signature holds: nobody else can use up a source's limit.
        wait = request.app.state.source_limits.take(f"source:{cad_source.id}", time.monotonic())
        if wait > 0:
            raise RateLimited(wait, request.app.state.source_limits.rate)
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
    try:
        await sources.require_agency(session, cad_source, event.call.agency)
    except Forbidden:
        EVENTS_INGESTED.labels(cad_source.id, "other_agency").inc()
        raise
    if validate:
        EVENTS_INGESTED.labels(cad_source.id, "validated").inc()
        dry_run = describe(event, ignored, request.app.state.rulebook.rules)
        return JSONResponse(dry_run.model_dump(mode="json"))
    result = await service.ingest(session, cad_source.id, event, body, webhook_id, ignored)
    EVENTS_INGESTED.labels(cad_source.id, result.status).inc()
    return EventReceipt(event_id=result.event_id, status=result.status, call_id=result.call_id)
