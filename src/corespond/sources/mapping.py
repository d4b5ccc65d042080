"""A source's own JSON shape, declared: which field of its export is which field of a CAD event.

A CAD whose export is neither the native event nor an EIDO needs no code change: the program
saves a small, versioned map for its source (``PUT /v1/cad/{source}/mapping``), checked when it
is saved, and tries it on a sample (``POST /v1/cad/{source}/mapping/preview``). Each target
field is read with a JMESPath expression (https://jmespath.org) from the posted document;
``values`` translate the CAD's own words (``"NEW"`` → ``call.created``), and ``constants``
fill what the export does not carry. The result is then read exactly like a native event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAPPING_VERSION = 1

TARGETS: dict[str, str] = {
    "event_id": "unique id of this event (the same id again is a repeat)",
    "event_type": "call.created, call.updated, call.closed or call.cancelled",
    "occurred_at": "when it happened (RFC 3339; without an offset, the source's time zone)",
    "call.incident_number": "the CAD's incident number",
    "call.agency": "the agency that owns the call",
    "call.call_type": "the CAD's call-type code",
    "call.call_type_description": "its description",
    "call.priority": "priority, a number",
    "call.location.address": "street address",
    "call.location.city": "city",
    "call.location.lat": "latitude (WGS 84)",
    "call.location.lon": "longitude (WGS 84)",
    "call.narrative": "the call-taker's narrative (a list of strings is joined by lines)",
    "call.hazards": "premise and officer-safety flags (a string or a list of strings)",
    "call.status": "the CAD's status of the call",
}
"""Every field a mapping may fill, with what it means."""

REQUIRED = ("event_id", "event_type", "occurred_at", "call.incident_number")


class FieldMapping(BaseModel):
    """A source's declared mapping, version 1."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "version": 1,
                    "fields": {
                        "event_id": "msg.uuid",
                        "event_type": "msg.kind",
                        "occurred_at": "msg.sent",
                        "call.incident_number": "inc.number",
                        "call.call_type": "inc.nature.code",
                        "call.call_type_description": "inc.nature.text",
                        "call.narrative": "inc.comments[].text",
                        "call.location.lat": "inc.where.y",
                        "call.location.lon": "inc.where.x",
                    },
                    "values": {
                        "event_type": {
                            "NEW": "call.created",
                            "UPD": "call.updated",
                            "CLS": "call.closed",
                            "CAN": "call.cancelled",
                        }
                    },
                    "constants": {"call.agency": "CHARLESTON PD"},
                }
            ]
        },
    )

    version: Literal[1] = Field(description="The mapping language's version (1).")
    fields: dict[str, str] = Field(
        description="Target field → JMESPath expression over the posted document."
    )
    values: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Target field → {the CAD's value: the value to use}; a value not listed "
        "is used as it is.",
    )
    constants: dict[str, Any] = Field(
        default_factory=dict,
        description="Target field → a fixed value, used when its expression finds nothing "
        "(or when the field has no expression).",
    )

    @field_validator("fields")
    @classmethod
    def _expressions(cls, fields: dict[str, str]) -> dict[str, str]:
        for target, expression in fields.items():
            _known(target)
            if not isinstance(expression, str) or not expression.strip():
                raise ValueError(f"{target}: the expression is empty")
            try:
                jmespath.compile(expression)
            except JMESPathError as exc:
                raise ValueError(f"{target}: {expression!r} is not JMESPath ({exc})") from exc
        return fields

    @field_validator("values", "constants")
    @classmethod
    def _targets(cls, table: dict[str, Any]) -> dict[str, Any]:
        for target in table:
            _known(target)
        return table

    @model_validator(mode="after")
    def _required(self) -> FieldMapping:
        missing = [t for t in REQUIRED if t not in self.fields and t not in self.constants]
        if missing:
            raise ValueError(f"no expression or constant for {', '.join(missing)}")
        return self


def _known(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown target field {target!r}; known: {', '.join(TARGETS)}")


class MappingFailed(ValueError):
    """A saved expression that cannot be evaluated on this document (a type error)."""

    def __init__(self, target: str, expression: str, reason: str) -> None:
        super().__init__(f"{target} (from {expression}): {reason}")
        self.target = target
        self.expression = expression


def apply_mapping(mapping: FieldMapping, document: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The native event document ``mapping`` reads from ``document``, and, for each target
    it filled, the expression it came from (to name the source field when a value is bad)."""
    event: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for target in TARGETS:
        value = None
        expression = mapping.fields.get(target)
        if expression is not None:
            try:
                value = jmespath.search(expression, document)
            except JMESPathError as exc:  # compiled on save, but fails on this document
                raise MappingFailed(target, expression, str(exc)) from exc
            origins[target] = expression
        if target in mapping.values and _hashable(value):
            value = mapping.values[target].get(str(value), value)
        if value is None or value == [] or value == "":
            if target not in mapping.constants:
                continue
            value = mapping.constants[target]
            origins[target] = "constants"
        _put(event, target, _shaped(target, value))
    return event, origins


def _shaped(target: str, value: Any) -> Any:
    if target == "call.narrative" and isinstance(value, list):
        return "\n".join(str(v) for v in value if v not in (None, ""))
    if target == "call.hazards" and isinstance(value, str):
        return [value]
    return value


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _put(event: dict[str, Any], target: str, value: Any) -> None:
    *parents, name = target.split(".")
    holder = event
    for parent in parents:
        holder = holder.setdefault(parent, {})
    holder[name] = value


def origin_of(name: str, origins: Mapping[str, str]) -> str:
    """A native field name (``call.priority``) with where the mapping read it from."""
    expression = origins.get(name)
    return f"{name} (from {expression})" if expression else name
