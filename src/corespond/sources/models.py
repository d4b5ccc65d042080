"""Tables of CAD sources: who may post call events, and with which signing secrets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    LargeBinary,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from corespond.db import Base


class CadSource(Base):
    """A computer-aided dispatch system that posts call events to ``/v1/cad/{id}/events``."""

    __tablename__ = "cad_source"
    __table_args__ = (
        CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name="id_slug"),
        CheckConstraint(
            "format IN ('native', 'eido', 'mapped') AND (format <> 'mapped' OR field_mapping "
            "IS NOT NULL)",
            name="format_known",
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    display_name: Mapped[str] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text)
    agencies: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # What in this CAD's events means police have secured the scene: a call status, or a
    # flag in the call's hazards list (compared without regard to case).
    scene_secure_statuses: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default="{scene_secure}"
    )
    scene_secure_flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # What /v1/cad/{id}/events reads: the native event, an EIDO, or the source's own shape
    # through its declared field mapping (sources.mapping).
    format: Mapped[str] = mapped_column(Text, server_default="native")
    field_mapping: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The zone of this CAD's offset-less times (the program's zone when unset).
    timezone: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    secrets: Mapped[list[CadSourceSecret]] = relationship(
        back_populates="source", order_by="CadSourceSecret.id", lazy="selectin"
    )


class CadSourceSecret(Base):
    """A signing secret of a source, encrypted; a rotated-out secret keeps working until expiry."""

    __tablename__ = "cad_source_secret"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("cad_source.id"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    source: Mapped[CadSource] = relationship(back_populates="secrets")
