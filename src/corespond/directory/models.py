"""The resource directory: services per county that peers refer people to (detox, inpatient
treatment, MOUD prescribers, outpatient care, recovery housing, START, QRT, the VA, harm
reduction), imported from Open Referral HSDS files. Each row keeps the HSDS ids it came from,
so importing the same file again changes nothing and an updated file updates its rows."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Double, ForeignKey, Index, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

# The kinds of service a peer refers to, in the order the program reports them.
KINDS = (
    "detox",
    "inpatient",
    "mat",
    "outpatient",
    "recovery_housing",
    "start",
    "qrt",
    "va",
    "harm_reduction",
)
STATUSES = ("active", "inactive", "defunct", "temporarily closed")


class DirectoryOrganization(Base):
    """An HSDS organization: who delivers services (and whom a consent may name)."""

    __tablename__ = "directory_organization"

    # The HSDS organization id, as the file gives it.
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DirectoryService(Base):
    """An HSDS service as a peer looks it up: what kind, in which counties, where, how to
    reach it. ``status`` other than active: kept, but not offered in searches."""

    __tablename__ = "directory_service"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint(f"kinds <@ ARRAY{list(KINDS)!r}::text[]", name="kinds_known"),
        CheckConstraint("cardinality(kinds) > 0", name="has_kind"),
        CheckConstraint("cardinality(counties) > 0", name="has_county"),
        Index("ix_directory_service_counties", "counties", postgresql_using="gin"),
        Index("ix_directory_service_kinds", "kinds", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The HSDS service id: importing the same id again updates this row.
    hsds_id: Mapped[str] = mapped_column(Text, unique=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("directory_organization.id"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # FIPS codes: the location's county, and the counties of its service areas.
    counties: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text, server_default="active")
    address: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    postal_code: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Double)
    lon: Mapped[float | None] = mapped_column(Double)
    phone: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
