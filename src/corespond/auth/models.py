"""API keys of people and their tools: a role and an optional scope, the key itself only hashed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, LargeBinary, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

ROLES = (
    "dispatcher",
    "peer",
    "supervisor",
    "provider_admin",
    "auditor",
    "admin",
    "cad_integrator",
    "partner",
)
SCOPE_KINDS = ("agency", "county", "provider", "peer", "source", "organization")


class ApiKey(Base):
    """A bearer key. Only a SHA-256 of the key is stored; the key is shown once at creation."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role_known"),
        CheckConstraint(
            f"(scope_kind IS NULL AND scope_value IS NULL) OR "
            f"(scope_kind IN {SCOPE_KINDS!r} AND scope_value IS NOT NULL)",
            name="scope_complete",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    role: Mapped[str] = mapped_column(Text)
    scope_kind: Mapped[str | None] = mapped_column(Text)
    scope_value: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A browser sign-in (the supervisor page): the cookie holds a random token whose hash
    is stored here, tied to the key it was opened with; ended by sign-out, by its expiry, or
    when the key is revoked."""

    __tablename__ = "web_session"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_key.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
