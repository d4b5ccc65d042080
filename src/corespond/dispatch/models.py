"""The outbox: what dispatch must hear, written in the same transaction as the change.

Each row is one message to a CAD source's callback, in order per call (``seq``). Its id is
the ``webhook-id`` the receiver sees, stable across retries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
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
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
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
