"""``POST /v1/cad/{source}/events``: the CAD webhook."""

from __future__ import annotations

import json
import time
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from pydantic import ValidationError

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


@router.post(
    "/v1/cad/{source}/events",
    status_code=202,
    response_model=EventReceipt,
    responses=problem_responses(
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
async def post_cad_event(source: str, request: Request, session: SessionDep) -> EventReceipt:
    """Receive a signed call event from a CAD system; stored durably before the 202."""
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
    result = await service.ingest(session, cad_source.id, event, body, webhook_id, ignored)
    EVENTS_INGESTED.labels(cad_source.id, result.status).inc()
    return EventReceipt(event_id=result.event_id, status=result.status, call_id=result.call_id)
