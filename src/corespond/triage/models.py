"""The triage history: every decision made about a call, with what it was made from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base


class TriageDecisionRecord(Base):
    """One decision. Rows are only added: a re-classification is a new row, never an edit.

    ``inputs_sha256`` and ``rules_version`` let an auditor replay the decision;
    ``turned_dangerous`` marks a call that was eligible or under review and now has a
    danger signal (the matching step withdraws a peer on it). ``override_by`` marks a
    supervisor's override of that danger after police reported it unfounded: the call goes
    back to ``review`` and the danger signals it overrode (its ``resolved`` reasons) no longer
    count; a new one does.
    """

    __tablename__ = "triage_decision"
    __table_args__ = (
        CheckConstraint("decision IN ('eligible', 'review', 'ineligible')", name="decision_known"),
        Index("ix_triage_decision_call_id_id", "call_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    call_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("call.id"))
    decision: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    rules_version: Mapped[str] = mapped_column(Text)
    inputs_sha256: Mapped[str] = mapped_column(Text)
    danger: Mapped[bool] = mapped_column(Boolean)
    turned_dangerous: Mapped[bool] = mapped_column(Boolean, server_default="false")
    override_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
