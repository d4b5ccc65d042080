"""Assignments as the API shows them, and what peers and dispatchers send."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from corespond.assignments.models import Assignment, AssignmentChange
from corespond.auth.service import Principal
from corespond.calls.models import Call
from corespond.calls.schemas import CallLocation
from corespond.confidentiality.peer_view import (
    NOTE_LIMIT,
    PeerCall,
    shown_location,
    shown_to_peer,
)
from corespond.geo.atlas import CountyAtlas
from corespond.kit.validators import ReasonText
from corespond.roster.models import Peer

Status = Literal[
    "offered",
    "accepted",
    "en_route",
    "on_scene",
    "cleared",
    "declined",
    "expired",
    "cancelled",
    "unfilled",
]
Outcome = Literal["contact_made", "referred", "declined_services", "no_contact"]
Referral = Literal["detox", "inpatient", "outpatient", "mat", "recovery_housing", "other_services"]


class Position(BaseModel):
    """Where the peer is now (optional; improves the next ranking)."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, strict=True, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, strict=True, allow_inf_nan=False)


class PeerUpdateIn(BaseModel):
    """Body of a peer's accept / decline / en-route / on-scene (all optional)."""

    model_config = ConfigDict(extra="forbid")

    position: Position | None = None


Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
    ),
]


class PeerRequestIn(BaseModel):
    """Body of a dispatcher's request for a peer (optional)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None,
        max_length=NOTE_LIMIT,
        description="For the peer, shown as written (Unicode folded, on one line): where to "
        "meet, who called. Never law-enforcement-only information.",
    )
    language: Language | None = Field(
        default=None,
        description="A language the person speaks, as a BCP 47 tag (`es`, `es-MX`): peers "
        "who list it among their languages are offered first; the others still may be.",
    )
    neighbouring_providers: bool = Field(
        default=False,
        description="Ask the providers of neighbouring counties too (those that do not serve "
        "the call's county), within the travel limit; `403` where the program does not "
        "allow it (`CORESPOND_NEIGHBOUR_PROVIDERS`). A new request even right after an "
        "unfilled one.",
    )


class ReassignIn(BaseModel):
    """A supervisor hands the call to another peer."""

    model_config = ConfigDict(extra="forbid")

    peer_id: uuid.UUID = Field(
        description="The peer to offer the call to (`GET /v1/assignments/{id}/candidates` "
        "lists who could take it)."
    )
    reason: ReasonText = Field(
        description="Why; kept in the assignment's history and on the audit log."
    )


class CancelIn(BaseModel):
    """Why the peer is called off (a supervisor's key must say; a dispatcher's may)."""

    model_config = ConfigDict(extra="forbid")

    reason: ReasonText | None = Field(
        default=None, description="Kept in the assignment's history and on the audit log."
    )


class ClearIn(BaseModel):
    """What came of the co-response. Kept for program evaluation; never sent to dispatch."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = Field(
        description="contact_made; referred (say where in `referrals`); declined_services; "
        "no_contact."
    )
    referrals: list[Referral] = Field(default=[], max_length=6)


class CountyRef(BaseModel):
    fips: str
    name: str


class FactOut(BaseModel):
    kind: Literal["substance", "risk", "kind"] = Field(
        description="substance: what the person is using; risk: what to be careful of; "
        "kind: the kind of call."
    )
    label: str = Field(description="The triage rule's label, e.g. `overdose`.")


class PeerCallOut(BaseModel):
    """The call as a peer sees it, composed (never the CAD narrative as such)."""

    facts: list[FactOut] = Field(description="The triage facts: substance use, risk, kind.")
    hazards: list[str] = Field(description="CAD hazard flags written only in peer words.")
    hazards_withheld: int = Field(description="Hazard flags not shown: ask dispatch.")
    narrative_excerpt: list[str] = Field(
        description="Clauses of the narrative that state a substance-use fact or how the "
        "person is, in peer words only (folded to upper case); neighbouring ones joined."
    )
    narrative_withheld: int = Field(
        description="Narrative clauses not shown (law-enforcement only, no fact, or not "
        "readable): ask dispatch."
    )
    note: str | None = Field(description="The dispatcher's note for the peer.")


class CallRef(BaseModel):
    """The call, as much as the co-response needs. A peer's key gets `narrative` and CAD's
    `status` null, the address and city only up to any comment in them, and `call_type`,
    `call_type_description` and `hazards` only when written in peer words; the peer's view is
    `for_peer` (dispatchers and supervisors see it too)."""

    id: uuid.UUID
    source: str
    incident_number: str
    agency: str | None
    call_type: str | None
    call_type_description: str | None
    status: str | None
    decision: str | None
    county: CountyRef | None
    location: CallLocation
    hazards: list[str]
    narrative: str | None = Field(
        description="The full CAD narrative: dispatchers and supervisors only (always null "
        "for a peer)."
    )
    for_peer: PeerCallOut


class PeerRef(BaseModel):
    id: uuid.UUID
    display_name: str
    provider_id: str
    phone: str | None


class RankedOut(BaseModel):
    place: int
    peer_id: uuid.UUID
    display_name: str
    provider_id: str
    county_fips: str
    distance_km: float | None
    reasons: list[str]


class LeftOutOut(BaseModel):
    peer_id: uuid.UUID
    display_name: str
    why: str


class ReassignedOut(BaseModel):
    """The assignment a supervisor handed to this peer, and why."""

    from_assignment_id: uuid.UUID
    from_peer: str | None
    by: str
    reason: str


class RankingOut(BaseModel):
    """Who could be offered the call when this assignment was made, best first, with the
    reasons for each place; and the peers on shift who were left out, with why."""

    call_position: str | None
    candidates: list[RankedOut]
    left_out: list[LeftOutOut]
    summary: str | None = None
    reassigned: ReassignedOut | None = Field(
        default=None, description="Set when a supervisor handed the call to this peer."
    )


class CandidatesOut(BaseModel):
    """Who an assignment could be handed to now, by matching's own tests, best first; and
    the peers on shift who could not take it, with why."""

    assignment_id: uuid.UUID
    status: Status
    candidates: list[RankedOut]
    left_out: list[LeftOutOut]


class ChangeOut(BaseModel):
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    changed_at: datetime


class AssignmentOut(BaseModel):
    """One offer of a call to a peer and what became of it (``unfilled``: no one to offer)."""

    id: uuid.UUID
    request_id: uuid.UUID
    status: Status
    call: CallRef
    peer: PeerRef | None
    county: CountyRef | None = Field(description="Where the peer comes from.")
    fallback: bool = Field(description="The peer comes from a neighbouring county.")
    place: int | None = Field(description="The peer's place in the ranking (1 = first).")
    distance_km: float | None
    offered_at: datetime | None
    expires_at: datetime | None = Field(description="Accept before this, or the offer moves on.")
    accepted_at: datetime | None
    en_route_at: datetime | None
    on_scene_at: datetime | None
    ended_at: datetime | None
    scene_secure_required: bool = Field(
        description="The peer stays staged after accepting until the scene is reported secure."
    )
    scene_secured_at: datetime | None
    scene_secured_by: str | None
    cancel_reason: (
        Literal["dispatcher", "supervisor", "danger", "call_cancelled", "call_closed", "reassigned"]
        | None
    ) = Field(
        description="Who or what called the peer off: `dispatcher`, `supervisor`, `danger` "
        "(the call reported danger), `call_cancelled` or `call_closed` (by CAD), "
        "`reassigned` (a supervisor gave the call to another peer)."
    )
    next_available_at: datetime | None = Field(
        description="Unfilled: when the next shift in the call's county starts."
    )
    outcome: Outcome | None = Field(
        default=None, description="Shown to peers and supervisors; not to dispatch."
    )
    referrals: list[Referral] | None = None
    ranking: RankingOut | None = Field(
        default=None, description="Why this peer: shown to supervisors only."
    )


class AssignmentDetail(AssignmentOut):
    history: list[ChangeOut]


class AssignmentPage(BaseModel):
    items: list[AssignmentOut]
    next_cursor: str | None
    order: Literal["newest_first"] = "newest_first"


def _county(atlas: CountyAtlas, fips: str | None) -> CountyRef | None:
    county = atlas.by_fips.get(fips) if fips else None
    return CountyRef(fips=county.fips, name=county.name) if county else None


def call_ref(call: Call, for_peer: PeerCall, principal: Principal, atlas: CountyAtlas) -> CallRef:
    """The call in an assignment: whole for dispatchers and supervisors, composed for a peer."""
    peer = principal.role == "peer"
    return CallRef(
        id=call.id,
        source=call.source_id,
        incident_number=call.incident_number,
        agency=call.agency,
        call_type=shown_to_peer(call.call_type) if peer else call.call_type,
        call_type_description=(
            shown_to_peer(call.call_type_description) if peer else call.call_type_description
        ),
        status=None if peer else call.status,
        decision=call.decision,
        county=_county(atlas, call.county_fips),
        location=CallLocation(
            address=shown_location(call.address, 80) if peer else call.address,
            city=shown_location(call.city, 40) if peer else call.city,
            lat=call.lat,
            lon=call.lon,
        ),
        hazards=list(for_peer.hazards) if peer else list(call.hazards or []),
        narrative=None if peer else call.narrative,
        for_peer=PeerCallOut(
            facts=[FactOut(kind=f.kind, label=f.label) for f in for_peer.facts],  # type: ignore[arg-type]
            hazards=list(for_peer.hazards),
            hazards_withheld=for_peer.hazards_withheld,
            narrative_excerpt=list(for_peer.narrative_excerpt),
            narrative_withheld=for_peer.narrative_withheld,
            note=for_peer.note,
        ),
    )


def assignment_out(
    assignment: Assignment,
    call: Call,
    for_peer: PeerCall,
    peer: Peer | None,
    principal: Principal,
    atlas: CountyAtlas,
    history: list[AssignmentChange] | None = None,
) -> AssignmentOut:
    """The view of an assignment a key's role may see: the call composed for a peer;
    outcomes not for dispatchers; the ranking (other peers, their credentials and status) for
    supervisors only."""
    fields: dict[str, Any] = {
        "id": assignment.id,
        "request_id": assignment.request_id,
        "status": assignment.status,
        "call": call_ref(call, for_peer, principal, atlas),
        "peer": (
            PeerRef(
                id=peer.id,
                display_name=peer.display_name,
                provider_id=peer.provider_id,
                phone=peer.phone,
            )
            if peer
            else None
        ),
        "county": _county(atlas, assignment.county_fips),
        "fallback": assignment.fallback,
        "place": assignment.place,
        "distance_km": (
            round(assignment.distance_km, 2) if assignment.distance_km is not None else None
        ),
        "offered_at": assignment.offered_at,
        "expires_at": assignment.expires_at,
        "accepted_at": assignment.accepted_at,
        "en_route_at": assignment.en_route_at,
        "on_scene_at": assignment.on_scene_at,
        "ended_at": assignment.ended_at,
        "scene_secure_required": assignment.scene_secure_required,
        "scene_secured_at": assignment.scene_secured_at,
        "scene_secured_by": assignment.scene_secured_by,
        "cancel_reason": assignment.cancel_reason,
        "next_available_at": assignment.next_available_at,
    }
    if principal.role != "dispatcher":
        fields["outcome"] = assignment.outcome
        fields["referrals"] = list(assignment.referrals or [])
    if principal.role in ("supervisor", "admin"):
        fields["ranking"] = RankingOut.model_validate(
            {"call_position": None, "candidates": [], "left_out": [], **(assignment.ranking or {})}
        )
    if history is not None:
        return AssignmentDetail(
            **fields,
            history=[
                ChangeOut(
                    from_status=c.from_status,
                    to_status=c.to_status,
                    actor=c.actor,
                    reason=c.reason,
                    changed_at=c.changed_at,
                )
                for c in history
            ],
        )
    return AssignmentOut(**fields)
