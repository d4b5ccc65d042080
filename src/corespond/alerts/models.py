"""Alerts: what a supervisor must know about, told on their channels until acknowledged.

One row per occurrence, kept after it ends (the alert history). At most one unresolved
alert per subject (a call, a CAD source, a peer's credential): the database keeps that
promise, so two sweeps cannot raise the same alert twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

KINDS = ("unfilled", "deliveries_failing", "credential_expiring")


class Alert(Base):
    """An alert: raised, told to the supervisors in scope (again every so often), then
    acknowledged by one of them (it stops repeating) and resolved when its cause is gone."""

    __tablename__ = "alert"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind_known"),
        CheckConstraint(
            "(acknowledged_at IS NULL) = (acknowledged_by IS NULL)", name="acknowledged_by_whom"
        ),
        Index(
            "uq_alert_open_subject",
            "kind",
            "subject",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
        Index("ix_alert_raised_at_id", "raised_at", "id"),
        Index(
            "ix_alert_next_notice_at",
            "next_notice_at",
            postgresql_where=text("resolved_at IS NULL AND acknowledged_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text)
    # What it is about; one unresolved alert each (a call id, a CAD source, a credential).
    subject: Mapped[str] = mapped_column(Text)
    # Whose supervisors see it: keys scoped to one of these counties, and unscoped keys;
    # null: statewide (unscoped keys only).
    counties: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    # What its push or SMS says (title, body, tag): one line, nothing of a call's content.
    notice: Mapped[dict[str, str]] = mapped_column(JSONB)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notices: Mapped[int] = mapped_column(Integer, server_default="0")
    last_notice_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the supervisors are told again, unless it is acknowledged or resolved first.
    next_notice_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    acknowledged_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id"))
    acknowledged_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_reason: Mapped[str | None] = mapped_column(Text)
    # What it points at, for the page's links (any may be null).
    call_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("call.id"), index=True)
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assignment.id"))
    source_id: Mapped[str | None] = mapped_column(ForeignKey("cad_source.id"))
    peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"))
