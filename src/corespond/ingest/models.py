"""The CAD event log: every accepted event, stored before it is acknowledged."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base


class CadEvent(Base):
    """One event as received. ``(source_id, event_id)`` is unique: a repeat is a duplicate.

    ``processed_at`` is null until the worker has folded it into its call; the partial index
    keeps the worker's claim query cheap however long the log grows.
    """

    __tablename__ = "cad_event"
    __table_args__ = (
        UniqueConstraint("source_id", "event_id"),
        Index(
            "ix_cad_event_pending",
            "id",
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index("ix_cad_event_call_id_occurred_at", "call_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("cad_source.id"))
    event_id: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    incident_number: Mapped[str] = mapped_column(Text)
    webhook_id: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload_sha256: Mapped[str] = mapped_column(Text)
    call_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("call.id"))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
