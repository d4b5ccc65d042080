"""One-time sign-in links for peers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base


class PeerSignIn(Base):
    """A link that signs one peer in once, before it expires. Only the token's hash is
    stored; using it stamps ``used_at``, so a second use (or a forwarded copy) is refused."""

    __tablename__ = "peer_sign_in"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    peer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer.id"), index=True)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id"))  # its session's
