"""Reading a CAD body into a call event: the native event, an EIDO, or a source's own shape
through its declared field mapping. Every refusal is a 422 naming the field (for an EIDO or a
mapping, with the part of the CAD's document it was read from)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from corespond.errors import InvalidParam, InvalidPayload, invalid_params_from_errors
from corespond.ingest.eido import EidoProblem, event_from_eido
from corespond.ingest.schemas import CadEvent, read_event, unknown_fields
from corespond.metrics import CAD_UNKNOWN_FIELDS
from corespond.sources.mapping import FieldMapping, MappingFailed, apply_mapping, origin_of


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
    event = validated_event(document, zone)
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
    return validated_event(native, zone, EIDO_ORIGINS)


def parse_mapped(body: bytes, mapping: FieldMapping, zone: ZoneInfo | None = None) -> CadEvent:
    """The event a source's own JSON shape in ``body`` describes through its declared
    ``mapping``, or a 422 naming each bad field with the expression it was read from."""
    document = decode_document(body)
    try:
        native, origins = apply_mapping(mapping, document)
    except MappingFailed as exc:
        name = origin_of(exc.target, {exc.target: exc.expression})
        raise InvalidPayload(
            f"invalid field(s): {name}", [InvalidParam(name=name, reason=str(exc))]
        ) from exc
    return validated_event(native, zone, origins)


EIDO_ORIGINS = {
    "call.incident_number": "$id",
    "occurred_at": "lastUpdateTimeStamp",
    "call.agency": "agencyComponent",
    "call.call_type": "incidentComponent.incidentTypeInternalCode",
    "call.priority": "incidentComponent.incidentCommonPriorityNumber",
    "call.hazards": "cautionComponent",
    "call.narrative": "notesComponent",
}


def validated_event(
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
