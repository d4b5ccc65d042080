"""The CAD event contract: what ``POST /v1/cad/{source}/events`` accepts and answers.

A forgiving reader, a strict writer: what real CAD exports send is read as meant, and what
cannot be read is refused with a 422 naming the field. An optional field that is an empty or
whitespace-only string is absent; a number or a coordinate sent as a string of digits is that
number; a time without an offset is in the program's time zone; fields this contract does not
know are ignored (kept in the stored raw event, counted per source). Required fields, text
with NUL characters, values out of range and text over the length caps are refused.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from corespond.kit.validators import INCIDENT_NUMBER_MAX, NoNul, within_service_range

EventType = Literal["call.created", "call.updated", "call.closed", "call.cancelled"]

NARRATIVE_MAX_CHARS = 8000


# Control, format (zero-width, bidi), line and paragraph separators, private use, surrogates.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})


def _identifier(value: str) -> str:
    """An identifier as it is compared: NFKC (full-width digits are digits), and
    refused with the character named if it holds one that cannot be seen, so that two
    numbers that look the same are the same call."""
    normal = unicodedata.normalize("NFKC", value).strip()
    for char in normal:
        if unicodedata.category(char) in _INVISIBLE:
            name = unicodedata.name(char, "a control character")
            raise ValueError(
                f"must not contain control or format characters (U+{ord(char):04X} {name})"
            )
    if not normal:
        raise ValueError("must not be empty")
    return normal


def _rfc3339_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


def _in_zone(value: datetime, info: ValidationInfo) -> datetime:
    """A time without an offset is a wall-clock time in the program's zone (the
    validation context's ``zone``, UTC without one)."""
    if value.tzinfo is None:
        zone = (info.context or {}).get("zone") or UTC
        return value.replace(tzinfo=zone)
    return value


def _number(value: Any) -> Any:
    """ "2" is 2 and " 38.35 " is 38.35, as CAD exports often send them; anything else is
    left to the type check (and refused there, with the field named)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            return value
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_rfc3339_string),
    AfterValidator(_in_zone),
    AfterValidator(within_service_range),
]
"""An RFC 3339 date-time (an offset-less one is in the program's zone), within 1970-2200,
normalised to UTC."""

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
MidText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
# A premise hazard is a safety fact: a long one is kept whole, never the reason a call is lost.
Hazard = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNul
]
IncidentNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=INCIDENT_NUMBER_MAX),
    NoNul,
    AfterValidator(_identifier),
]
EventId = Annotated[
    str, StringConstraints(min_length=1, max_length=128), NoNul, AfterValidator(_identifier)
]
Narrative = Annotated[str, StringConstraints(max_length=NARRATIVE_MAX_CHARS), NoNul]
CadStatus = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), NoNul
]
Latitude = Annotated[
    float, BeforeValidator(_number), Field(ge=-90, le=90, strict=True, allow_inf_nan=False)
]
Longitude = Annotated[
    float, BeforeValidator(_number), Field(ge=-180, le=180, strict=True, allow_inf_nan=False)
]
Priority = Annotated[int, BeforeValidator(_number), Field(ge=0, le=99, strict=True)]


def _blank_is_absent(data: Any, required: frozenset[str] = frozenset()) -> Any:
    """An optional field that is an empty or whitespace-only string is left out (absent, not
    an update that clears it); so are blank entries of a list."""
    if not isinstance(data, dict):
        return data
    kept: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, str) and not value.strip() and name not in required:
            continue
        if isinstance(value, list):
            value = [v for v in value if not (isinstance(v, str) and not v.strip())]
        kept[name] = value
    return kept


class CadLocation(BaseModel):
    """Where the call is. ``lat`` and ``lon`` travel together (WGS 84 degrees)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _forgiving(cls, data: Any) -> Any:
        return _blank_is_absent(data)

    address: MidText | None = None
    city: ShortText | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None

    @model_validator(mode="after")
    def _lat_lon_together(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class CadCall(BaseModel):
    """The call as CAD describes it. An update may carry only the fields that changed."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _forgiving(cls, data: Any) -> Any:
        return _blank_is_absent(data, frozenset({"incident_number"}))

    incident_number: IncidentNumber
    agency: ShortText | None = None
    call_type: ShortText | None = None
    call_type_description: MidText | None = None
    priority: Priority | None = None
    location: CadLocation | None = None
    narrative: Narrative | None = None
    hazards: list[Hazard] | None = Field(default=None, max_length=32)
    status: CadStatus | None = None


EXAMPLE_EVENT: dict[str, Any] = {
    "event_id": "kanawha-911:884213",
    "event_type": "call.created",
    "occurred_at": "2026-11-23T04:12:09-05:00",
    "call": {
        "incident_number": "26-118734",
        "agency": "CHARLESTON PD",
        "call_type": "OD",
        "call_type_description": "OVERDOSE",
        "priority": 2,
        "location": {
            "address": "1 Capitol St",
            "city": "Charleston",
            "lat": 38.3498,
            "lon": -81.6326,
        },
        "narrative": "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
        "hazards": [],
        "status": "dispatched",
    },
}
"""The API outline's example: an overdose, person revived and conscious, no weapons."""


class CadEvent(BaseModel):
    """One event from a CAD system about one call."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_EVENT]})

    event_id: EventId
    event_type: EventType
    occurred_at: Timestamp
    call: CadCall

    def missing_on_create(self) -> list[str]:
        """Fields a ``call.created`` must carry but this one lacks (dotted names)."""
        if self.event_type != "call.created":
            return []
        return [f"call.{f}" for f in ("agency", "call_type") if getattr(self.call, f) is None]

    def changes(self) -> dict[str, object]:
        """The call fields this event sets, as JSON values (absent fields are not changes)."""
        return self.call.model_dump(mode="json", exclude_unset=True, exclude={"incident_number"})


class EventReceipt(BaseModel):
    """The 202 answer: the event is stored (or was already), and which call it belongs to."""

    event_id: str
    status: Literal["accepted", "duplicate"]
    call_id: uuid.UUID | None


def unknown_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``document`` this contract does not know, by dotted name, with their
    values (ignored when read, kept with the stored event, counted per source)."""
    found = {name: v for name, v in document.items() if name not in CadEvent.model_fields}
    call = document.get("call")
    if isinstance(call, dict):
        found |= {f"call.{n}": v for n, v in call.items() if n not in CadCall.model_fields}
        location = call.get("location")
        if isinstance(location, dict):
            found |= {
                f"call.location.{n}": v
                for n, v in location.items()
                if n not in CadLocation.model_fields
            }
    return found


def read_event(document: dict[str, Any], zone: ZoneInfo | None = None) -> CadEvent:
    """Validate a CAD event, reading offset-less times in ``zone``."""
    return CadEvent.model_validate(document, context={"zone": zone})
