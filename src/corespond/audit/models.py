"""The audit log: who read or changed what, when; append-only and hash-chained."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base


class AuditEntry(Base):
    """One audited read or change. ``hash`` = SHA-256 of the previous entry's hash and this
    entry's canonical content, so removing or editing an entry breaks the chain; a trigger
    refuses UPDATE, DELETE and TRUNCATE on the table."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_record", "record_type", "record_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, index=True)
    record_type: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    prev_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class RetiredChainKey(Base):
    """A chain key that entries up to ``last_entry_id`` were written with, kept (sealed under
    the newest secret key) once the secret key it was derived from is rotated out, so that
    those entries still verify; an entry after ``last_entry_id`` never verifies under it.
    Only the schema's owner writes here (``corespond secret-key rotate``)."""

    __tablename__ = "audit_chain_key"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text, unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    last_entry_id: Mapped[int] = mapped_column(BigInteger)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
