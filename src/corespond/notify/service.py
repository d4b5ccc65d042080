"""Web Push for peers: the VAPID key, subscriptions, and the notifications an offer makes;
notices to supervisors (a request unfilled) and to provider admins (follow-ups overdue).

The VAPID key pair (RFC 8292) is derived from ``CORESPOND_SECRET_KEY``, so it is stable for a
deployment without another secret to keep; the first rotation of that key pins it in the
database (sealed), so that phones subscribed with it keep being reached after the key it was
derived from is gone. A notification carries no call details at all:
"New call offer — answer within 2 minutes" and a link to ``/peer``; the peer reads the call
on the page, signed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.errors import InvalidPayload
from corespond.notify import repository
from corespond.notify.models import (
    CHANNELS,
    Notification,
    PushKey,
    PushSubscription,
    SupervisorContact,
)
from corespond.roster.models import Peer
from corespond.sources.service import check_callback_url

# The order of the P-256 group: a derived private key is a number in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAX_SUBSCRIPTIONS = 5
VAPID_PURPOSE = "vapid"


@dataclass(frozen=True)
class Vapid:
    private_key: ec.EllipticCurvePrivateKey
    subject: str

    @classmethod
    def of(cls, box: SecretBox, subject: str) -> Vapid:
        """Derived from the oldest configured secret key: adding a new key in front of it,
        the first step of a rotation, leaves it as it was."""
        return cls.from_seed(box.oldest_derived_key(VAPID_PURPOSE), subject)

    @classmethod
    def from_seed(cls, seed: bytes, subject: str) -> Vapid:
        number = int.from_bytes(seed, "big")
        return cls(ec.derive_private_key(number % (_P256_ORDER - 1) + 1, ec.SECP256R1()), subject)

    @property
    def public_key(self) -> str:
        """The application server key a browser subscribes with (base64url, no padding)."""
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def pinned_vapid(session: AsyncSession, box: SecretBox, subject: str) -> Vapid | None:
    """The VAPID key a secret-key rotation pinned, if one has."""
    row = await repository.push_key(session)
    if row is None:
        return None
    return Vapid.from_seed(bytes.fromhex(box.open(row.ciphertext)), subject)


async def current_vapid(session: AsyncSession, box: SecretBox, subject: str) -> Vapid:
    """The VAPID key of this deployment: pinned, else derived from the secret key."""
    return await pinned_vapid(session, box, subject) or Vapid.of(box, subject)


async def pin_push_key(session: AsyncSession, box: SecretBox, now: datetime) -> str:
    """Keep the VAPID key in use (sealed under the newest secret key) so that it survives
    the removal of the key it was derived from: ``pinned`` the first time, then
    ``resealed`` when it was sealed under an older key, else ``current``."""
    row = await repository.push_key(session)
    if row is None:
        seed = box.oldest_derived_key(VAPID_PURPOSE)
        await repository.add_push_key(
            session, PushKey(id=1, ciphertext=box.seal(seed.hex()), pinned_at=now)
        )
        return "pinned"
    if box.is_current(row.ciphertext):
        return "current"
    row.ciphertext = box.reseal(row.ciphertext)
    await session.flush()
    return "resealed"


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
    endpoint: str,
    p256dh: str,
    auth: str,
    environment: str,
    *,
    now: datetime,
    peer_id: uuid.UUID | None = None,
    key_id: uuid.UUID | None = None,
) -> PushSubscription:
    """Record a browser's subscription for a peer or a supervisor's key (the same endpoint
    again replaces its keys). The endpoint is held to the rules of a CAD callback: https
    outside development, no credentials, no internal address."""
    if (peer_id is None) == (key_id is None):
        raise ValueError("a subscription belongs to a peer or to a key")
    endpoint = check_callback_url(endpoint, environment)
    _b64(p256dh, 65, "p256dh")
    _b64(auth, 16, "auth")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))
        )
    except ValueError:
        raise InvalidPayload("keys.p256dh is not a point of the P-256 curve") from None
    row = await repository.subscription_by_endpoint(session, endpoint)
    owner = {"peer_id": peer_id, "key_id": key_id}
    if row is None:
        current = list(await repository.live_subscriptions(session, **owner))
        for old in current[: max(0, len(current) - MAX_SUBSCRIPTIONS + 1)]:
            old.ended_at = now
        row = PushSubscription(**owner, endpoint=endpoint, p256dh=p256dh, auth=auth)
        session.add(row)
    elif (row.peer_id, row.key_id) != (peer_id, key_id):
        # Another person's browser (or a copied URL): its row ends, and a new one begins; a
        # subscription never silently changes hands.
        row.endpoint = f"{row.endpoint}#ended-{row.id}"
        row.ended_at = now
        await session.flush()
        row = PushSubscription(**owner, endpoint=endpoint, p256dh=p256dh, auth=auth)
        session.add(row)
    else:
        row.p256dh, row.auth, row.ended_at = p256dh, auth, None
    await session.flush()
    return row


async def offer_made(
    session: AsyncSession,
    peer: Peer,
    assignment_id: uuid.UUID,
    expires_at: datetime | None,
    now: datetime,
) -> int:
    """Queue the offer's notifications in its transaction, by the peer's channels in order:
    the first channel the peer can be reached on at once (each push subscription, or an SMS
    to their phone), the next one at half the deadline, sent only if the offer is still
    unanswered then."""
    subscriptions = list(await repository.live_subscriptions(session, peer_id=peer.id))
    deadline = expires_at or now + timedelta(minutes=2)
    minutes = max(1, round((deadline - now).total_seconds() / 60))
    payload = {
        "title": "New call offer",
        "body": f"Answer within {minutes} minute{'s' if minutes != 1 else ''}",
        "url": "/peer",
        "tag": f"offer-{assignment_id}",
    }
    reachable = [
        channel
        for channel in (peer.notify_channels or [])
        if (channel == "webpush" and subscriptions) or (channel == "sms" and peer.phone)
    ]
    halfway = now + (deadline - now) / 2
    count = 0
    for turn, channel in enumerate(reachable[:2]):
        targets: list[PushSubscription | None] = (
            list(subscriptions) if channel == "webpush" else [None]
        )
        for subscription in targets:
            session.add(
                Notification(
                    peer_id=peer.id,
                    subscription_id=subscription.id if subscription else None,
                    assignment_id=assignment_id,
                    channel=channel,
                    payload=payload,
                    next_attempt_at=now if turn == 0 else halfway,
                    only_if_offered=turn > 0,
                    expires_at=deadline,
                )
            )
            count += 1
    await session.flush()
    return count


def sms_configured(settings: Settings) -> bool:
    """SMS can be sent (every ``CORESPOND_SMS_*`` setting it needs is there)."""
    return bool(
        settings.sms_url
        and settings.sms_account_sid
        and settings.sms_auth_token
        and settings.sms_from
    )


async def sign_in_link_made(
    session: AsyncSession, peer: Peer, path: str, expires_at: datetime, now: datetime
) -> bool:
    """Queue a one-time sign-in link to the peer's own phone by SMS (``path`` on the public
    URL), if the peer has a phone; whether it was queued."""
    if not peer.phone:
        return False
    session.add(
        Notification(
            peer_id=peer.id,
            channel="sms",
            payload={
                "title": "Sign in to the peer app",
                "body": "Open this link on your phone, once, in the next few minutes",
                "url": path,
                "tag": "sign-in",
            },
            next_attempt_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return True


async def set_contact(
    session: AsyncSession,
    key_id: uuid.UUID,
    phone: str | None,
    channels: list[str],
    now: datetime,
) -> SupervisorContact:
    """How a supervisor (a request in their scope unfilled) or a provider admin (its
    follow-ups overdue) is reached."""
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or len(set(channels)) != len(channels):
        raise InvalidPayload(f"channels: each of {', '.join(CHANNELS)} at most once")
    if "sms" in channels and not phone:
        raise InvalidPayload("phone: SMS needs a phone number")
    if phone is not None and not 7 <= sum(c.isdigit() for c in phone) <= 15:
        raise InvalidPayload("phone: 7 to 15 digits")
    contact = await session.get(SupervisorContact, key_id)
    if contact is None:
        contact = SupervisorContact(key_id=key_id)
        session.add(contact)
    contact.phone, contact.notify_channels = phone, channels
    contact.updated_at = now
    await session.flush()
    return contact


async def tell_supervisors(
    session: AsyncSession,
    counties: Sequence[str] | None,
    payload: dict[str, str],
    now: datetime,
    expires_at: datetime,
    *,
    alert_id: uuid.UUID | None = None,
    assignment_id: uuid.UUID | None = None,
) -> int:
    """Queue a notice to every supervisor in scope (an unscoped supervisor key, or one scoped
    to one of ``counties``; ``None``: unscoped keys only) on each of their channels, in the
    caller's transaction. The payload says what happened in a line, never anything of a
    call's content. Returns how many notifications were queued."""
    recipients = await repository.supervisors_in_scope(session, counties, now)
    return await _queue_for_keys(
        session,
        recipients,
        payload,
        now,
        expires_at,
        alert_id=alert_id,
        assignment_id=assignment_id,
    )


FOLLOW_UPS_TAG = "followups-overdue"


async def tell_provider_admins(
    session: AsyncSession,
    provider_id: str,
    payload: dict[str, str],
    now: datetime,
    expires_at: datetime,
) -> int:
    """Queue a notice to each provider admin of the provider (a live key scoped to it) who
    turned notices on (a browser's push subscription, or SMS to a phone), on each of their
    channels, in the caller's transaction. The payload says what happened in a line, never
    who (a push service or a phone carrier is not a recipient of anyone's consent)."""
    recipients = await repository.provider_admins_of(session, provider_id, now)
    return await _queue_for_keys(session, recipients, payload, now, expires_at)


async def _queue_for_keys(
    session: AsyncSession,
    recipients: Sequence[tuple[uuid.UUID, SupervisorContact | None]],
    payload: dict[str, str],
    now: datetime,
    expires_at: datetime,
    *,
    alert_id: uuid.UUID | None = None,
    assignment_id: uuid.UUID | None = None,
) -> int:
    count = 0
    for key_id, contact in recipients:
        subscriptions = list(await repository.live_subscriptions(session, key_id=key_id))
        channels = contact.notify_channels if contact is not None else ["webpush"]
        for channel in channels:
            targets: list[PushSubscription | None] = []
            if channel == "webpush":
                targets = list(subscriptions)
            elif channel == "sms" and contact is not None and contact.phone:
                targets = [None]
            for subscription in targets:
                session.add(
                    Notification(
                        key_id=key_id,
                        subscription_id=subscription.id if subscription else None,
                        assignment_id=assignment_id,
                        alert_id=alert_id,
                        channel=channel,
                        payload=payload,
                        next_attempt_at=now,
                        expires_at=expires_at,
                    )
                )
                count += 1
    await session.flush()
    return count


async def notices_of_key(
    session: AsyncSession, key_id: uuid.UUID, tag: str, limit: int = 5
) -> Sequence[Notification]:
    """What a key was told lately under ``tag`` (the provider page's "you were told")."""
    return await repository.notices_of_key(session, key_id, tag, limit)


async def contact_of(session: AsyncSession, key_id: uuid.UUID) -> SupervisorContact | None:
    """How a key (a supervisor, a provider admin) is reached, if it said."""
    return await repository.contact_of(session, key_id)


async def push_subscriptions(session: AsyncSession, key_id: uuid.UUID) -> int:
    """How many browsers of this key get a push."""
    return len(await repository.live_subscriptions(session, key_id=key_id))


async def withdraw(session: AsyncSession, alert_id: uuid.UUID, why: str) -> int:
    """Notices of an alert not sent yet are not sent (``skipped``, saying why)."""
    return await repository.skip_pending_of_alert(session, alert_id, why)


async def supervisor_contact(session: AsyncSession, key_id: uuid.UUID) -> SupervisorContact | None:
    """Where a supervisor's key is told of alerts (push, SMS), if it said."""
    return await repository.contact_of(session, key_id)


async def unfilled_notices(
    session: AsyncSession, assignment_ids: Sequence[uuid.UUID]
) -> Sequence[Notification]:
    """The supervisors' notices of these unfilled requests."""
    return await repository.unfilled_notices(session, assignment_ids)


async def alert_notices(
    session: AsyncSession, alert_ids: Sequence[uuid.UUID]
) -> Sequence[Notification]:
    """The supervisors' notices of these alerts."""
    return await repository.alert_notices(session, alert_ids)


def e164(phone: str) -> str:
    """A phone number as SMS providers want it: ``+`` and digits; ten digits are a North
    American number."""
    digits = "".join(c for c in phone if c.isdigit())
    if phone.strip().startswith("+"):
        return "+" + digits
    return "+1" + digits if len(digits) == 10 else "+" + digits


def sms_signature(token: str, url: str, params: dict[str, str]) -> str:
    """The SMS provider's request signature (Twilio's scheme): base64 of HMAC-SHA1 over the
    callback URL followed by each parameter's name and value, sorted by name."""
    message = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
