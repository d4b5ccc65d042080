"""The call table: one row per (CAD source, incident number), folded from its events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base


class Call(Base):
    """A 911 call as CAD last described it. Rebuilt from its events, never edited by hand."""

    __tablename__ = "call"
    __table_args__ = (
        UniqueConstraint("source_id", "incident_number"),
        Index("ix_call_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_id: Mapped[str] = mapped_column(ForeignKey("cad_source.id"))
    incident_number: Mapped[str] = mapped_column(Text)
    agency: Mapped[str | None] = mapped_column(Text, index=True)
    call_type: Mapped[str | None] = mapped_column(Text)
    call_type_description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    narrative: Mapped[str | None] = mapped_column(Text)
    hazards: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    status: Mapped[str | None] = mapped_column(Text, index=True)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    event_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # clock_timestamp(), not now(): the moment of insertion, distinct within one transaction.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    folded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where: the county and how it was found (point, place, agency, outside, unknown).
    county_fips: Mapped[str | None] = mapped_column(Text, index=True)
    county_name: Mapped[str | None] = mapped_column(Text)
    county_method: Mapped[str | None] = mapped_column(Text)
    county_detail: Mapped[str | None] = mapped_column(Text)
    # The point it was placed at when located: its own (swapped back if CAD swapped it), else
    # its ZIP's or town's. None: nowhere known, or located before points were kept.
    located_lat: Mapped[float | None] = mapped_column(Double)
    located_lon: Mapped[float | None] = mapped_column(Double)
    # The current triage decision (its history lives with triage).
    decision: Mapped[str | None] = mapped_column(Text, index=True)
    decision_summary: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_rules_version: Mapped[str | None] = mapped_column(Text)
    turned_dangerous_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its narrative and location were purged after the retention period.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
