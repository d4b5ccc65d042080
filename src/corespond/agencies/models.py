"""Law-enforcement agencies: the name CAD uses, ORI if known, and home county."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, Text, func
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
    # Eligible calls of this agency are matched as soon as triage decides, without a request.
    auto_request: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Peers wait for the scene to be reported secure before going en route. An agency whose
    # peers ride in the officer's unit switches this off.
    scene_gate: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
