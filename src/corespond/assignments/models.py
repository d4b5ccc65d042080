"""Peer requests and assignments: who was offered which call, and what became of it.

Each offer is one ``assignment`` row. An offer that is declined or expires stays as it is and
the next candidate gets a new row of the same ``peer_request``; when no one is left the
request ends in an ``unfilled`` row (no peer) saying when the next shift starts.

The database, not only the code, keeps the two promises dispatch relies on: a peer holds at
most one active assignment, and a call at most one live one (two partial unique indexes).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

LIVE_STATUSES = ("offered", "accepted", "en_route", "on_scene")
ENDED_STATUSES = ("cleared", "declined", "expired", "cancelled", "unfilled")
STATUSES = LIVE_STATUSES + ENDED_STATUSES
TRIGGERS = ("auto", "dispatcher")
# Who or what called a peer off: a dispatcher, a supervisor, a danger signal, CAD ending the
# call, or a supervisor handing the call to another peer (``reassigned``).
CANCEL_REASONS = (
    "dispatcher",
    "supervisor",
    "danger",
    "call_cancelled",
    "call_closed",
    "reassigned",
)
OUTCOMES = ("contact_made", "referred", "declined_services", "no_contact")
REFERRALS = ("detox", "inpatient", "outpatient", "mat", "recovery_housing", "other_services")

_LIVE_SQL = "status IN ('offered', 'accepted', 'en_route', 'on_scene')"


class PeerRequest(Base):
    """A request for a peer on a call: automatic (the agency opted in) or a dispatcher's."""

    __tablename__ = "peer_request"
    __table_args__ = (CheckConstraint(f"trigger IN {TRIGGERS!r}", name="trigger_known"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    call_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("call.id"), index=True)
    trigger: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    # What the dispatcher wants the peer to know (shown to the peer as written).
    note: Mapped[str | None] = mapped_column(Text)
    # A language the person speaks (BCP 47, e.g. "es"): peers who speak it are offered first.
    language: Mapped[str | None] = mapped_column(Text)
    # Asked again with the providers of neighbouring counties (the program allows it).
    neighbouring_providers: Mapped[bool] = mapped_column(Boolean, server_default="false")


class Assignment(Base):
    """One offer of a call to a peer (or, with no peer, the request going unfilled)."""

    __tablename__ = "assignment"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint("(peer_id IS NULL) = (status = 'unfilled')", name="peer_unless_unfilled"),
        CheckConstraint(
            f"cancel_reason IS NULL OR cancel_reason IN {CANCEL_REASONS!r}",
            name="cancel_reason_known",
        ),
        CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES!r}", name="outcome_known"),
        # The two promises, kept by the database whatever the code does.
        Index(
            "uq_assignment_peer_active", "peer_id", unique=True, postgresql_where=text(_LIVE_SQL)
        ),
        Index("uq_assignment_call_live", "call_id", unique=True, postgresql_where=text(_LIVE_SQL)),
        # The offer timers: the sweep reads only offers, by deadline.
        Index(
            "ix_assignment_offer_deadline",
            "expires_at",
            postgresql_where=text("status = 'offered'"),
        ),
        Index("ix_assignment_peer_offered_at", "peer_id", "offered_at"),
        Index("ix_assignment_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer_request.id"), index=True)
    call_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("call.id"), index=True)
    peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"))
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("provider.id"))
    status: Mapped[str] = mapped_column(Text)
    # Where the peer comes from: the call's county, or a neighbour when no one there was free.
    county_fips: Mapped[str | None] = mapped_column(Text)
    fallback: Mapped[bool] = mapped_column(Boolean, server_default="false")
    place: Mapped[int | None] = mapped_column(Integer)
    distance_km: Mapped[float | None] = mapped_column(Double)
    # The ranked candidates and the peers left out, with the reason for each place.
    ranking: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    en_route_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    on_scene_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scene_secure_required: Mapped[bool] = mapped_column(Boolean, server_default="true")
    scene_secured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scene_secured_by: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    next_available_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # For program evaluation only; never sent to dispatch (42 CFR Part 2).
    outcome: Mapped[str | None] = mapped_column(Text)
    referrals: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")


class AssignmentChange(Base):
    """Every status change of an assignment: from, to, who, why, when."""

    __tablename__ = "assignment_change"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    assignment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assignment.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
