"""The CAD event contract: what ``POST /v1/cad/{source}/events`` accepts and answers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

EventType = Literal["call.created", "call.updated", "call.closed", "call.cancelled"]

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MidText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Hazard = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

NARRATIVE_MAX_CHARS = 8000


class CadLocation(BaseModel):
    """Where the call is. ``lat`` and ``lon`` travel together (WGS 84 degrees)."""

    model_config = ConfigDict(extra="forbid")

    address: MidText | None = None
    city: ShortText | None = None
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)

    @model_validator(mode="after")
    def _lat_lon_together(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class CadCall(BaseModel):
    """The call as CAD describes it. An update may carry only the fields that changed."""

    model_config = ConfigDict(extra="forbid")

    incident_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    agency: ShortText | None = None
    call_type: ShortText | None = None
    call_type_description: MidText | None = None
    priority: int | None = Field(default=None, ge=0, le=99)
    location: CadLocation | None = None
    narrative: Annotated[str, StringConstraints(max_length=NARRATIVE_MAX_CHARS)] | None = None
    hazards: list[Hazard] | None = Field(default=None, max_length=32)
    status: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None


class CadEvent(BaseModel):
    """One event from a CAD system about one call."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
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
            ]
        },
    )

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    event_type: EventType
    occurred_at: AwareDatetime
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
