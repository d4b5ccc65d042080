"""Law-enforcement agencies: the name CAD uses, ORI if known, and home county."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base


class Agency(Base):
    """An agency as CAD names it (``CHARLESTON PD``); names are stored upper-case."""

    __tablename__ = "agency"
    __table_args__ = (
        CheckConstraint("name = upper(name)", name="name_upper"),
        CheckConstraint("home_county_fips ~ '^[0-9]{5}$'", name="fips_format"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(Text, unique=True)
    ori: Mapped[str | None] = mapped_column(Text)
    home_county_fips: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
