"""``POST /v1/cad/{source}/events``: the CAD webhook."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

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
from corespond.ingest.schemas import CadEvent, EventReceipt, read_event, unknown_fields
from corespond.ingest.signing import verify
from corespond.metrics import CAD_UNKNOWN_FIELDS, EVENTS_INGESTED
from corespond.sources import service as sources
from corespond.triage.classifier import TriageInput, classify
from corespond.triage.schemas import ClassifyResponse

router = APIRouter(tags=["CAD ingest"])

_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CadEvent"}}},
    },
    "parameters": [
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
    ],
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


def parse_event(
    body: bytes, zone: ZoneInfo | None = None, source: str | None = None
) -> tuple[CadEvent, dict[str, Any]]:
    """The event in ``body`` and the fields of it the contract does not know (ignored), or a
    422 naming every field that is wrong. Offset-less times are read in ``zone``; unknown
    fields are counted for ``source``."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload("body is not valid JSON") from exc
    except RecursionError as exc:
        raise InvalidPayload("body is nested too deeply") from exc
    if not isinstance(document, dict):
        raise InvalidPayload("body must be a JSON object (a CAD event)")
    try:
        event = read_event(document, zone)
    except ValidationError as exc:
        params = invalid_params_from_errors(exc.errors(include_input=False))
        raise InvalidPayload(
            f"invalid field(s): {', '.join(p.name for p in params)}", params
        ) from exc
    ignored = unknown_fields(document)
    if ignored and source is not None:
        CAD_UNKNOWN_FIELDS.labels(source).inc(len(ignored))
    missing = event.missing_on_create()
    if missing:
        raise InvalidPayload(
            f"call.created must carry {', '.join(missing)}",
            [InvalidParam(name=name, reason="required on call.created") for name in missing],
        )
    return event, ignored


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


@router.post(
    "/v1/cad/{source}/events",
    status_code=202,
    response_model=EventReceipt,
    responses=VALIDATED
    | problem_responses(
        InvalidSignature,
        Forbidden,
        NotFound,
        PayloadTooLarge,
        UnsupportedMediaType,
        InvalidPayload,
        RateLimited,
    ),
    openapi_extra=_REQUEST_BODY,
)
async def post_cad_event(
    source: str,
    request: Request,
    session: SessionDep,
    validate: Annotated[
        bool,
        Query(
            description="Check the signature and the body and answer 200 with the call this "
            "event describes and how triage would read it; nothing is stored."
        ),
    ] = False,
) -> EventReceipt | JSONResponse:
    """Receive a signed call event from a CAD system; stored durably before the 202.
    With `?validate=true`, an integrator's dry run: same checks and answers to bad input,
    then `200` with what would be stored and triage's reading of this event's fields, and
    nothing stored."""
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
        event, ignored = parse_event(body, ZoneInfo(settings.program_timezone), cad_source.id)
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
