"""The CAD event contract: what ``POST /v1/cad/{source}/events`` accepts and answers.

The schema is strict: no unknown fields, no type coercion (``"2"`` is not a priority), times
as RFC 3339 strings with an offset, text without NUL characters and within length caps.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

EventType = Literal["call.created", "call.updated", "call.closed", "call.cancelled"]

NARRATIVE_MAX_CHARS = 8000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it here with a field name, not later.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


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
        raise ValueError("must be an RFC 3339 date-time string with a UTC offset")
    return value


def _within_service_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("date-time is out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError("date-time must be between 1970 and 2200")
    return utc


NoNul = AfterValidator(_no_nul)


Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339_string), AfterValidator(_within_service_range)
]
"""An RFC 3339 date-time with an offset, within 1970-2200, normalised to UTC."""

QueryTimestamp = Annotated[AwareDatetime, AfterValidator(_within_service_range)]

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
MidText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]
Hazard = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul
]
IncidentNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
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
Latitude = Annotated[float, Field(ge=-90, le=90, strict=True, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True, allow_inf_nan=False)]


class CadLocation(BaseModel):
    """Where the call is. ``lat`` and ``lon`` travel together (WGS 84 degrees)."""

    model_config = ConfigDict(extra="forbid")

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

    model_config = ConfigDict(extra="forbid")

    incident_number: IncidentNumber
    agency: ShortText | None = None
    call_type: ShortText | None = None
    call_type_description: MidText | None = None
    priority: Annotated[int, Field(ge=0, le=99, strict=True)] | None = None
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

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_EVENT]})

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
