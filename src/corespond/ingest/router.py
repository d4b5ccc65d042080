"""``POST /v1/cad/{source}/events``: the CAD webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.crypto import SecretBox
from corespond.db import SessionDep
from corespond.errors import (
    Forbidden,
    InvalidParam,
    InvalidPayload,
    InvalidSignature,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    invalid_params_from_errors,
    problem_responses,
)
from corespond.ingest import service
from corespond.ingest.eido import EidoProblem, event_from_eido
from corespond.ingest.mapping import FieldMapping, apply_mapping, origin_of
from corespond.ingest.schemas import CadEvent, EventReceipt, read_event, unknown_fields
from corespond.ingest.signing import verify
from corespond.metrics import CAD_UNKNOWN_FIELDS, EVENTS_INGESTED
from corespond.sources import service as sources
from corespond.triage.classifier import TriageInput, classify
from corespond.triage.schemas import ClassifyResponse

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


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
    return bytes(body)


def decode_document(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``, or a 422 saying why there is none."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload("body is not valid JSON") from exc
    except RecursionError as exc:
        raise InvalidPayload("body is nested too deeply") from exc
    if not isinstance(document, dict):
        raise InvalidPayload("body must be a JSON object (a CAD event)")
    return document


def parse_event(
    body: bytes, zone: ZoneInfo | None = None, source: str | None = None
) -> tuple[CadEvent, dict[str, Any]]:
    """The native event in ``body`` and the fields of it the contract does not know
    (ignored), or a 422 naming every field that is wrong. Offset-less times are read in
    ``zone``; unknown fields are counted for ``source``."""
    document = decode_document(body)
    event = _validated(document, zone)
    ignored = unknown_fields(document)
    if ignored and source is not None:
        CAD_UNKNOWN_FIELDS.labels(source).inc(len(ignored))
    return event, ignored


def parse_eido(
    body: bytes, zone: ZoneInfo | None = None, scene_secure: Sequence[str] = ()
) -> CadEvent:
    """The event an EIDO document in ``body`` describes, or a 422 naming the EIDO part (or
    the event field it became) that is wrong."""
    document = decode_document(body)
    try:
        native = event_from_eido(document, scene_secure)
    except EidoProblem as exc:
        raise InvalidPayload(
            f"EIDO {exc.field}: {exc.reason}", [InvalidParam(name=exc.field, reason=exc.reason)]
        ) from exc
    return _validated(native, zone, EIDO_ORIGINS)


def parse_mapped(body: bytes, mapping: FieldMapping, zone: ZoneInfo | None = None) -> CadEvent:
    """The event a source's own JSON shape in ``body`` describes through its declared
    ``mapping``, or a 422 naming each bad field with the expression it was read from."""
    document = decode_document(body)
    native, origins = apply_mapping(mapping, document)
    return _validated(native, zone, origins)


EIDO_ORIGINS = {
    "call.incident_number": "$id",
    "occurred_at": "lastUpdateTimeStamp",
    "call.agency": "agencyComponent",
    "call.call_type": "incidentComponent.incidentTypeInternalCode",
    "call.priority": "incidentComponent.incidentCommonPriorityNumber",
    "call.hazards": "cautionComponent",
    "call.narrative": "notesComponent",
}


def _validated(
    document: dict[str, Any], zone: ZoneInfo | None, origins: dict[str, str] | None = None
) -> CadEvent:
    try:
        event = read_event(document, zone)
    except ValidationError as exc:
        params = invalid_params_from_errors(exc.errors(include_input=False))
        if origins:
            params = [p.model_copy(update={"name": origin_of(p.name, origins)}) for p in params]
        raise InvalidPayload(
            f"invalid field(s): {', '.join(p.name for p in params)}", params
        ) from exc
    missing = event.missing_on_create()
    if missing:
        named = [origin_of(name, origins or {}) for name in missing]
        raise InvalidPayload(
            f"call.created must carry {', '.join(named)}",
            [InvalidParam(name=name, reason="required on call.created") for name in named],
        )
    return event


class EventValidation(BaseModel):
    """The answer to `?validate=true`: nothing was stored."""

    event_id: str
    valid: bool = Field(description="Always true: an invalid event is answered 4xx.")
    stored: bool = Field(description="Always false for a dry run.")
    call: dict[str, Any] = Field(description="The call fields this event sets, as read.")
    ignored_fields: list[str] = Field(description="Fields the contract does not know.")
    triage: ClassifyResponse = Field(
        description="How triage reads this event's own fields (an update carries only the "
        "fields that changed, so its reading is of those alone)."
    )


VALIDATED: dict[int | str, dict[str, Any]] = {
    200: {"model": EventValidation, "description": "`?validate=true`: nothing stored."}
}


def _validation(request: Request, event: CadEvent, ignored: dict[str, Any]) -> JSONResponse:
    call = event.call
    inputs = TriageInput(
        agency=call.agency,
        call_type=call.call_type,
        call_type_description=call.call_type_description,
        narrative=call.narrative,
        hazards=tuple(call.hazards or ()),
    )
    decision = classify(inputs, request.app.state.rulebook.rules)
    body = EventValidation(
        event_id=event.event_id,
        valid=True,
        stored=False,
        call={"incident_number": call.incident_number, **event.changes()},
        ignored_fields=sorted(ignored),
        triage=ClassifyResponse.of(decision),
    )
    return JSONResponse(body.model_dump(mode="json"))


_RECEIVE_ERRORS = problem_responses(
    InvalidSignature,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidPayload,
    RateLimited,
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
    box: SecretBox = request.app.state.secret_box
    if not sources.SOURCE_ID_PATTERN.fullmatch(source):
        raise NotFound("unknown CAD source")
    # The body is read before the first query, so a slow client never holds a connection.
    body = await read_body_limited(request, settings.max_event_bytes)
    cad_source = await sources.receiving_source(session, source)
    try:
        webhook_id = verify(body, request.headers, sources.verification_secrets(cad_source, box))
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
        return _validation(request, event, ignored)
    result = await service.ingest(session, cad_source.id, event, body, webhook_id, ignored)
    EVENTS_INGESTED.labels(cad_source.id, result.status).inc()
    return EventReceipt(event_id=result.event_id, status=result.status, call_id=result.call_id)
