"""The call as the API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corespond.calls.models import Call
from corespond.kit.validators import ReasonText


class CallLocation(BaseModel):
    address: str | None
    city: str | None
    lat: float | None
    lon: float | None


class CallCounty(BaseModel):
    """The county of a call and how it was found."""

    fips: str | None
    name: str | None
    method: Literal["point", "place", "agency", "outside", "unknown"] | None = Field(
        description="point: from lat/lon; place: ZIP or city; agency: the agency's home county; "
        "outside: the point is beyond the service area (not snapped); null until located."
    )
    detail: str | None


class CallEventOut(BaseModel):
    """One CAD event of the call, in folding order (``occurred_at``, then receipt)."""

    event_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    processed: bool


class CallAssignment(BaseModel):
    """The call's live assignment, else its latest (see ``/v1/assignments/{id}``)."""

    id: uuid.UUID
    status: str
    peer_id: uuid.UUID | None
    peer_display_name: str | None
    provider_id: str | None
    expires_at: datetime | None
    scene_secured_at: datetime | None
    next_available_at: datetime | None
    outcome: str | None = Field(
        default=None,
        description="What came of it (contact_made, referred, declined_services, "
        "no_contact); for supervisors, auditors and admins, not dispatch.",
    )
    referrals: list[str] | None = Field(default=None, description="Where to, if referred.")


class CallOut(BaseModel):
    """A call folded from its CAD events. Once retention has purged it (`purged_at`), it
    keeps only de-identified facts: times, county, agency, call type, the triage decision
    and its reasons without the words they matched, and the assignment's outcome; its
    narrative and location are null."""

    id: uuid.UUID
    source: str
    incident_number: str
    agency: str | None
    call_type: str | None
    call_type_description: str | None
    priority: int | None
    location: CallLocation
    county: CallCounty
    narrative: str | None = Field(description="Null once the call has been purged.")
    hazards: list[str]
    status: str | None = Field(
        description="CAD status of the call; `closed` or `cancelled` once CAD ended it, "
        "null until its first event has been processed."
    )
    opened_at: datetime | None
    ended_at: datetime | None
    last_event_at: datetime | None
    event_count: int
    created_at: datetime
    folded_at: datetime | None = Field(description="When the call was last rebuilt from events.")
    decision: Literal["eligible", "review", "ineligible"] | None = Field(
        description="Current triage decision; null until the call has been triaged."
    )
    decision_summary: str | None = Field(description="The decision and its reasons in one line.")
    turned_dangerous_at: datetime | None = Field(
        description="When a call that was eligible or under review showed a danger signal; "
        "cleared by a supervisor's override (`POST /v1/calls/{call_id}/danger-override`)."
    )
    assignment: CallAssignment | None = Field(
        default=None, description="The peer assignment: the live one, else the latest."
    )
    purged_at: datetime | None = Field(
        description="When retention purged the call's narrative and location; null if it "
        "has not been."
    )

    @classmethod
    def of(cls, call: Call) -> CallOut:
        purged = call.purged_at is not None
        # A late CAD event can bring text back to a purged call before retention runs
        # again: past retention, none of it is shown.
        return cls(
            id=call.id,
            source=call.source_id,
            incident_number=call.incident_number,
            agency=call.agency,
            call_type=call.call_type,
            call_type_description=call.call_type_description,
            priority=call.priority,
            location=(
                CallLocation(address=None, city=None, lat=None, lon=None)
                if purged
                else CallLocation(address=call.address, city=call.city, lat=call.lat, lon=call.lon)
            ),
            county=CallCounty(
                fips=call.county_fips,
                name=call.county_name,
                method=call.county_method,  # type: ignore[arg-type]
                detail=None if purged else call.county_detail,
            ),
            narrative=None if purged else call.narrative,
            hazards=list(call.hazards or []),
            status=call.status,
            opened_at=call.opened_at,
            ended_at=call.ended_at,
            last_event_at=call.last_event_at,
            event_count=call.event_count,
            created_at=call.created_at,
            folded_at=call.folded_at,
            decision=call.decision,  # type: ignore[arg-type]
            decision_summary=call.decision_summary,
            turned_dangerous_at=call.turned_dangerous_at,
            purged_at=call.purged_at,
        )


class CallTriageReason(BaseModel):
    rule: str = Field(description="Rule id, e.g. danger.weapon.")
    kind: Literal[
        "danger",
        "risk",
        "exclusion",
        "substance",
        "kind",
        "negated",
        "resolved",
        "policy",
        "model",
    ] = Field(description="As in `POST /v1/triage/classify`.")
    label: str = Field(description="What the rule means, for a dispatcher.")
    detail: str | None = Field(
        description="The text that made it fire, and where; null once the call is purged."
    )


class CallTriageRecord(BaseModel):
    """One decision in a call's triage history."""

    decision: Literal["eligible", "review", "ineligible"]
    summary: str
    reasons: list[CallTriageReason]
    rules_version: str
    inputs_sha256: str
    turned_dangerous: bool
    override_by: str | None = Field(
        default=None,
        description="Set on a supervisor's override of the call's danger (police reported it "
        "unfounded): who; the `policy.danger_overridden` reason says why.",
    )
    decided_at: datetime


class DangerOverrideIn(BaseModel):
    """A supervisor's override of a call that turned dangerous."""

    model_config = ConfigDict(extra="forbid")

    reason: ReasonText = Field(
        description="Why the danger no longer holds, e.g. who in the police reported it "
        "unfounded; kept in the triage history and on the audit log."
    )


class CallDetail(CallOut):
    """A call with its CAD event history and its triage history (oldest first)."""

    events: list[CallEventOut]
    triage: list[CallTriageRecord]


class CallPage(BaseModel):
    """A page of calls, newest first."""

    items: list[CallOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
    order: Literal["newest_first"] = "newest_first"
