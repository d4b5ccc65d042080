"""Push subscriptions and notifications of peers (offers) and of supervisors (unfilled
requests), and a supervisor's contact."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

NOTIFICATION_STATES = ("pending", "sent", "dead", "skipped")
CHANNELS = ("webpush", "sms")


ONE_OWNER = "(peer_id IS NULL) <> (key_id IS NULL)"


class PushKey(Base):
    """The seed of the VAPID key pair browsers subscribe with, sealed under the newest secret
    key. Until a secret-key rotation pins it here, the key is derived from the (only)
    secret key; pinned, it outlives that key, and every phone's subscription with it. Only
    the schema's owner writes here (``corespond secret-key rotate``)."""

    __tablename__ = "push_key"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="1")
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    pinned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SupervisorContact(Base):
    """How a supervisor (their key) is reached when a request in their scope goes unfilled:
    the channels in order of preference, and a phone for SMS."""

    __tablename__ = "supervisor_contact"

    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_key.id"), primary_key=True)
    phone: Mapped[str | None] = mapped_column(Text)
    notify_channels: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{webpush}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PushSubscription(Base):
    """A browser's Web Push subscription (RFC 8030) for a peer or a supervisor's key: where
    to post, and the keys a payload is encrypted to (RFC 8291). Ended when the push service
    says it is gone."""

    __tablename__ = "push_subscription"
    __table_args__ = (CheckConstraint(ONE_OWNER, name="one_owner"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"), index=True)
    key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id"), index=True)
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(Text)
    auth: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """One message for one subscription or phone, of a peer (an offer) or a supervisor (an
    unfilled request), written in the transaction that made it (a crash loses nothing),
    sent by the notifier, retried with backoff, every attempt kept in ``attempts``/
    ``last_*``. ``skipped``: the offer was answered before its turn came."""

    __tablename__ = "notification"
    __table_args__ = (
        CheckConstraint(f"state IN {NOTIFICATION_STATES!r}", name="state_known"),
        CheckConstraint(ONE_OWNER, name="one_owner"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"), index=True)
    key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_key.id"), index=True)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("push_subscription.id"))
    assignment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assignment.id"))
    # The supervisors' alert it tells of: not sent once the alert is acknowledged or resolved.
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alert.id"), index=True)
    channel: Mapped[str] = mapped_column(Text, server_default="webpush")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(Text, server_default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The next channel, sent only if the offer is still unanswered when it is due.
    only_if_offered: Mapped[bool] = mapped_column(Boolean, server_default="false")
    provider_message_id: Mapped[str | None] = mapped_column(Text, index=True)
    delivery_status: Mapped[str | None] = mapped_column(Text)  # the SMS provider's last word
