"""Web Push for peers: the VAPID key, subscriptions, and the notifications an offer makes.

The VAPID key pair (RFC 8292) is derived from ``CORESPOND_SECRET_KEY``, so it is stable for a
deployment without another secret to keep. A notification carries no call details at all:
"New call offer — answer within 2 minutes" and a link to ``/peer``; the peer reads the call
on the page, signed in.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.crypto import SecretBox
from corespond.errors import InvalidPayload
from corespond.notify.models import Notification, PushSubscription
from corespond.sources.service import check_callback_url

# The order of the P-256 group: a derived private key is a number in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAX_SUBSCRIPTIONS = 5


@dataclass(frozen=True)
class Vapid:
    private_key: ec.EllipticCurvePrivateKey
    subject: str

    @classmethod
    def of(cls, box: SecretBox, subject: str) -> Vapid:
        seed = int.from_bytes(box.derived_key("vapid"), "big")
        return cls(ec.derive_private_key(seed % (_P256_ORDER - 1) + 1, ec.SECP256R1()), subject)

    @property
    def public_key(self) -> str:
        """The application server key a browser subscribes with (base64url, no padding)."""
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64(value: str, size: int, name: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise InvalidPayload(f"keys.{name} is not base64url") from None
    if len(raw) != size:
        raise InvalidPayload(f"keys.{name} must be {size} bytes")
    return value


async def subscribe(
    session: AsyncSession,
    peer_id: uuid.UUID,
    endpoint: str,
    p256dh: str,
    auth: str,
    environment: str,
) -> PushSubscription:
    """Record a browser's subscription for the peer (the same endpoint again replaces its
    keys). The endpoint is held to the rules of a CAD callback: https outside development,
    no credentials, no internal address."""
    endpoint = check_callback_url(endpoint, environment)
    _b64(p256dh, 65, "p256dh")
    _b64(auth, 16, "auth")
    row = await session.scalar(
        select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    )
    if row is None:
        live = await session.scalars(
            select(PushSubscription)
            .where(PushSubscription.peer_id == peer_id, PushSubscription.ended_at.is_(None))
            .order_by(PushSubscription.created_at)
        )
        current = list(live.all())
        for old in current[: max(0, len(current) - MAX_SUBSCRIPTIONS + 1)]:
            old.ended_at = datetime.now(old.created_at.tzinfo)
        row = PushSubscription(peer_id=peer_id, endpoint=endpoint, p256dh=p256dh, auth=auth)
        session.add(row)
    else:
        row.peer_id, row.p256dh, row.auth, row.ended_at = peer_id, p256dh, auth, None
    await session.flush()
    return row


async def offer_made(
    session: AsyncSession,
    peer_id: uuid.UUID,
    assignment_id: uuid.UUID,
    expires_at: datetime | None,
    now: datetime,
) -> int:
    """Queue a push to each of the peer's subscriptions, in the offer's transaction."""
    subscriptions = await session.scalars(
        select(PushSubscription).where(
            PushSubscription.peer_id == peer_id, PushSubscription.ended_at.is_(None)
        )
    )
    deadline = expires_at or now + timedelta(minutes=2)
    minutes = max(1, round((deadline - now).total_seconds() / 60))
    payload = {
        "title": "New call offer",
        "body": f"Answer within {minutes} minute{'s' if minutes != 1 else ''}",
        "url": "/peer",
        "tag": f"offer-{assignment_id}",
    }
    count = 0
    for subscription in subscriptions:
        session.add(
            Notification(
                peer_id=peer_id,
                subscription_id=subscription.id,
                assignment_id=assignment_id,
                payload=payload,
                next_attempt_at=now,
                expires_at=deadline,
            )
        )
        count += 1
    await session.flush()
    return count
