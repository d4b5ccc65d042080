"""The outbox: what dispatch must hear, written in the same transaction as the change.

Each row is one message to a CAD source's callback, in order per call (``seq``). Its id is
the ``webhook-id`` the receiver sees, stable across retries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
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

OUTBOX_STATES = ("pending", "delivered", "dead")


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("call_id", "seq"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state_known"),
        # The relay's claim walks this in order (and stops at the first claimable row).
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            "created_at",
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_outbox_created_at_id", "created_at", "id"),
        Index("ix_outbox_source_id_delivered_at", "source_id", "delivered_at"),
        Index(
            "ix_outbox_unsequenced", "created_at", postgresql_where=text("feed_position IS NULL")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source_id: Mapped[str] = mapped_column(ForeignKey("cad_source.id"), index=True)
    call_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("call.id"))
    seq: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    # Retries run until the horizon counted from here (a redelivery starts a new one).
    retry_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Its place in the resync feed, given once it is committed (dispatch.feed), in commit order.
    feed_position: Mapped[int | None] = mapped_column(BigInteger, index=True, unique=True)


class DeliveryAttempt(Base):
    """One try at delivering an outbox message: when, the answer, how long it took."""

    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    url: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Double)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text)  # delivered, retry, dead
