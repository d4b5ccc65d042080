"""Providers, peers, credentials and shifts: who can be sent, where and when."""

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
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

PEER_STATUSES = ("available", "busy", "off_duty")
CREDENTIAL_KINDS = ("prss_certification", "cjis_background", "nda")
SHIFT_KINDS = ("on_duty", "on_call")


class Provider(Base):
    """An organisation that supplies peers (West Virginia Sober Living, Recovery Point …)."""

    __tablename__ = "provider"
    __table_args__ = (CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name="id_slug"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProviderCounty(Base):
    """A county a provider serves: as the primary provider (one per county) or as backup."""

    __tablename__ = "provider_county"
    __table_args__ = (
        CheckConstraint("role IN ('primary', 'backup')", name="role_known"),
        Index(
            "uq_provider_county_one_primary",
            "county_fips",
            unique=True,
            postgresql_where=text("role = 'primary'"),
        ),
    )

    provider_id: Mapped[str] = mapped_column(ForeignKey("provider.id"), primary_key=True)
    county_fips: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text)


class Peer(Base):
    """A Peer Recovery Support Specialist."""

    __tablename__ = "peer"
    __table_args__ = (
        CheckConstraint(f"status IN {PEER_STATUSES!r}", name="status_known"),
        Index("ix_peer_provider_id_id", "provider_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    provider_id: Mapped[str] = mapped_column(ForeignKey("provider.id"))
    display_name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    home_place: Mapped[str | None] = mapped_column(Text)
    home_lat: Mapped[float | None] = mapped_column(Double)
    home_lon: Mapped[float | None] = mapped_column(Double)
    embedded_agency: Mapped[str | None] = mapped_column(Text)
    languages: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    # How an offer reaches the peer, tried in this order (the next at half the deadline).
    notify_channels: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{webpush,sms}")
    status: Mapped[str] = mapped_column(Text, server_default="off_duty")
    # Where the peer was last known to be (reported with an assignment update).
    last_lat: Mapped[float | None] = mapped_column(Double)
    last_lon: Mapped[float | None] = mapped_column(Double)
    last_located_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class Credential(Base):
    """A peer's credential of one kind (the latest), with its expiry (null: no expiry)."""

    __tablename__ = "credential"
    __table_args__ = (
        UniqueConstraint("peer_id", "kind"),
        CheckConstraint(f"kind IN {CREDENTIAL_KINDS!r}", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    peer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer.id"))
    kind: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PeerStatusChange(Base):
    """Every status change of a peer, with who made it."""

    __tablename__ = "peer_status_change"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    peer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer.id"), index=True)
    status: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class Shift(Base):
    """A peer's shift in one or more counties. Times in UTC; ``[starts_at, ends_at)``.

    The database refuses two live shifts of one peer that overlap (an exclusion constraint),
    so a shift ending exactly when the next begins is fine and an overlap never gets in.
    A cancelled shift stays, with who cancelled it and when.
    """

    __tablename__ = "shift"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(f"kind IN {SHIFT_KINDS!r}", name="kind_known"),
        CheckConstraint("cardinality(counties) > 0", name="has_county"),
        ExcludeConstraint(
            ("peer_id", "="),
            (text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            where=text("cancelled_at IS NULL"),
            using="gist",
            name="ex_shift_no_overlap",
        ),
        Index("ix_shift_counties", "counties", postgresql_using="gin"),
        Index(
            "ix_shift_live_range",
            text("tstzrange(starts_at, ends_at, '[)')"),
            postgresql_using="gist",
            postgresql_where=text("cancelled_at IS NULL"),
        ),
        Index("ix_shift_starts_at", "starts_at"),
        UniqueConstraint("provider_id", "external_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    peer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer.id"))
    provider_id: Mapped[str] = mapped_column(ForeignKey("provider.id"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counties: Mapped[list[str]] = mapped_column(ARRAY(Text))
    kind: Mapped[str] = mapped_column(Text, server_default="on_duty")
    external_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    created_by: Mapped[str] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_by: Mapped[str | None] = mapped_column(Text)


class ShiftChange(Base):
    """The history of a shift: created, updated (before and after), cancelled."""

    __tablename__ = "shift_change"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    shift_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shift.id"), index=True)
    action: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
