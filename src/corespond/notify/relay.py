"""The notifier: sends queued Web Push messages to push services (RFC 8030), signed with
VAPID (RFC 8292) and encrypted to the subscription's keys (RFC 8291, ``aes128gcm``, by
``pywebpush``).

Each message is claimed with ``FOR UPDATE SKIP LOCKED`` (several workers never send one twice);
the notifier wakes on the NOTIFY of the transaction that made the offer, and sweeps every half
second anyway. 201/202/200: sent. 404/410: the subscription is gone; ended, not
retried. 429, 5xx, timeouts and connection errors: retried with capped backoff until the
offer's deadline (a notification after it is useless), then dead. Other 4xx: dead at once.
Every attempt leaves its time, status and error on the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import structlog
from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts import service as alerts
from corespond.assignments.models import Assignment
from corespond.clock import Clock, system_clock
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch import outbox
from corespond.errors import InvalidPayload
from corespond.listen import WokenLoop
from corespond.metrics import NOTIFICATIONS
from corespond.notify import repository
from corespond.notify.models import Notification, PushSubscription
from corespond.notify.service import Vapid, e164, pinned_vapid
from corespond.roster.models import Peer
from corespond.sources.addresses import DestinationRefused, Resolver, checked_addresses, resolve
from corespond.sources.service import check_callback_url

log = structlog.get_logger(__name__)

SENT = frozenset({200, 201, 202})
GONE = frozenset({404, 410})
RETRYABLE = frozenset({408, 429})
BACKOFF_CAP = timedelta(seconds=30)
SWEEP_SECONDS = 0.5
SEND_SECONDS = 10.0
KEPT_BYTES = 300


SMS_STATUS_PATH = "/v1/notify/sms-status"


@dataclass(frozen=True)
class SmsProvider:
    """An SMS account (Twilio's REST API shape; the base URL is configurable)."""

    base_url: str
    account: str
    token: str
    sender: str
    public_url: str | None

    @classmethod
    def of(cls, settings: Settings) -> SmsProvider | None:
        token = settings.sms_auth_token
        if not (settings.sms_url and settings.sms_account_sid and token and settings.sms_from):
            return None
        return cls(
            settings.sms_url.rstrip("/"),
            settings.sms_account_sid,
            token.get_secret_value(),
            settings.sms_from,
            settings.public_url.rstrip("/") if settings.public_url else None,
        )


class Notifier:
    def __init__(
        self,
        database: Database,
        http: httpx.AsyncClient,
        vapid: Vapid,
        *,
        environment: str = "development",
        clock: Clock = system_clock,
        resolver: Resolver = resolve,
        sms: SmsProvider | None = None,
        box: SecretBox | None = None,
    ) -> None:
        """``vapid``: the push key derived from the secret key; with ``box``, the key a
        secret-key rotation pinned in the database is used instead, once there is one."""
        self._database = database
        self._sms = sms
        # An offer's transaction NOTIFYs the outbox channel (its CAD message): that wakes us.
        self._loop = WokenLoop(database, outbox.CHANNEL, "notify-peers")
        self._http = http
        self._vapid = vapid
        self._signer = Vapid02(private_key=vapid.private_key)
        self._box = box
        self._pinned = False
        self._environment = environment
        self._clock = clock
        self._resolver = resolver

    # --- running: woken by the offer's NOTIFY, and a pass every SWEEP_SECONDS anyway ----------

    async def start(self) -> None:
        await self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()

    async def relisten(self) -> None:
        """The scheduler's check: listen again if the connection was lost."""
        await self._loop.relisten()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._loop.wake.wait(), SWEEP_SECONDS)
            self._loop.wake.clear()
            await self.sweep()

    async def sweep(self) -> None:
        """One pass: send everything due (a failure is logged, never raised)."""
        try:
            await self.drain()
        except Exception as exc:
            log.error("notify_sweep_failed", error_type=type(exc).__name__)

    async def drain(self) -> int:
        sent = 0
        while await self.deliver_one():
            sent += 1
        return sent

    async def deliver_one(self) -> bool:
        """Send the next due notification; False when none is due."""
        async with self._database.sessionmaker() as session, session.begin():
            now = self._clock()
            row = await repository.claim_due(session, now)
            if row is None:
                return False
            subscription = (
                await session.get(PushSubscription, row.subscription_id)
                if row.subscription_id
                else None
            )
            row.attempts += 1
            row.last_attempt_at = now
            if row.alert_id is not None and not await alerts.still_open(session, row.alert_id):
                row.state = "skipped"
                row.last_error = "the alert was acknowledged or resolved before this was sent"
                NOTIFICATIONS.labels(row.channel, "skipped").inc()
                return True
            if row.only_if_offered:
                assignment = await session.get(Assignment, row.assignment_id)
                if assignment is None or assignment.status != "offered":
                    row.state = "skipped"
                    row.last_error = "the offer was answered before this channel's turn"
                    NOTIFICATIONS.labels(row.channel, "skipped").inc()
                    return True
            unusable = self._unusable(row, subscription, now)
            if unusable is not None:
                row.state, row.last_error = "dead", unusable
                NOTIFICATIONS.labels(row.channel, "dead").inc()
                return True
            # Bounded by the offer's deadline (and SEND_SECONDS): a slow or broken push service
            # costs this one row an attempt, never the queue behind it.
            budget = min(SEND_SECONDS, (row.expires_at - now).total_seconds())
            try:
                async with asyncio.timeout(max(0.1, budget)):
                    if subscription is None:  # an SMS
                        status, error = await self._send_sms(row, await _phone(session, row))
                    else:
                        await self._use_pinned_key(session)
                        status, error = await self._send(row, subscription, now)
            except TimeoutError:
                status, error = None, f"no answer within {budget:.1f} s"
            except Exception as exc:  # a bad key, a library error: this row only
                status, error = None, f"{type(exc).__name__} while sending"
            now = self._clock()
            row.last_status_code, row.last_error = status, error
            if status in SENT:
                row.state, row.sent_at = "sent", self._clock()
                outcome = "sent"
            elif status in GONE and subscription is not None:
                row.state, subscription.ended_at = "dead", now
                outcome = "gone"
            elif status is None or status in RETRYABLE or status >= 500:
                wait = min(BACKOFF_CAP, timedelta(seconds=2 ** (row.attempts - 1)))
                if now + wait >= row.expires_at:
                    row.state = "dead"
                    outcome = "dead"
                else:
                    row.next_attempt_at = now + wait
                    outcome = "retry"
            else:
                row.state = "dead"
                outcome = "dead"
            NOTIFICATIONS.labels(row.channel, outcome).inc()
            log.info(
                "notification_attempt",
                notification_id=str(row.id),
                peer_id=str(row.peer_id) if row.peer_id else None,
                key_id=str(row.key_id) if row.key_id else None,
                status=status,
                outcome=outcome,
            )
            return True

    async def _use_pinned_key(self, session: AsyncSession) -> None:
        """Sign with the pinned push key once a rotation has pinned one (read until then;
        once found it is kept: a pinned key's value never changes)."""
        if self._box is None or self._pinned:
            return
        pinned = await pinned_vapid(session, self._box, self._vapid.subject)
        if pinned is not None:
            self._vapid, self._signer = pinned, Vapid02(private_key=pinned.private_key)
            self._pinned = True

    def _unusable(
        self, row: Notification, subscription: PushSubscription | None, now: datetime
    ) -> str | None:
        """Why this notification can never be sent, if so."""
        if row.expires_at <= now:
            return "the offer's deadline passed before it could be sent"
        if row.channel == "sms":
            return None if self._sms is not None else "SMS is not configured (CORESPOND_SMS_*)"
        if subscription is None or subscription.ended_at is not None:
            return "the subscription has ended"
        return None

    async def _send_sms(
        self, row: Notification, phone: str | None
    ) -> tuple[int | None, str | None]:
        """POST the text to the SMS provider (Twilio's REST shape); nothing of the call in it."""
        sms = self._sms
        if sms is None or not phone:
            return None, "no phone number"
        page = str(row.payload.get("url") or "/peer")
        link = f"{sms.public_url}{page}" if sms.public_url else "the corespond app"
        form = {
            "To": e164(phone),
            "From": sms.sender,
            "Body": f"corespond: {row.payload['title']}. {row.payload['body']}: {link}",
        }
        if sms.public_url:
            form["StatusCallback"] = f"{sms.public_url}{SMS_STATUS_PATH}"
        try:
            response = await self._http.post(
                f"{sms.base_url}/2010-04-01/Accounts/{sms.account}/Messages.json",
                data=form,
                auth=(sms.account, sms.token),
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            return None, type(exc).__name__
        if response.status_code not in SENT:
            return response.status_code, response.text[:300]
        try:
            row.provider_message_id = str(response.json().get("sid") or "") or None
        except ValueError:
            row.provider_message_id = None
        return response.status_code, None

    async def _send(
        self, row: Notification, subscription: PushSubscription, now: datetime
    ) -> tuple[int | None, str | None]:
        endpoint = subscription.endpoint
        allow_internal = self._environment in ("development", "test")
        try:
            check_callback_url(endpoint, self._environment)
            parts = urlsplit(endpoint)
            await checked_addresses(
                parts.hostname or "",
                parts.port or (443 if parts.scheme == "https" else 80),
                allow_internal=allow_internal,
                resolver=self._resolver,
            )
        except InvalidPayload as exc:
            return None, f"push endpoint refused: {exc.detail}"
        except DestinationRefused as exc:
            return None, exc.reason
        pusher = WebPusher(
            {
                "endpoint": endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            }
        )
        body = pusher.encode(json.dumps(row.payload).encode(), "aes128gcm")["body"]
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(now.astimezone(UTC).timestamp()) + 12 * 3600,
            "sub": self._vapid.subject,
        }
        headers = {
            **self._signer.sign(claims),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(max(0, int((row.expires_at - now).total_seconds()))),
            "Urgency": "high",
            "Topic": row.payload.get("tag", "offer")[:32].replace("-", ""),
        }
        started = time.perf_counter()
        try:
            # Streamed: the answer's status, and at most a little of its body, never all of a
            # body a push service sends slowly.
            async with self._http.stream(
                "POST", endpoint, content=body, headers=headers, follow_redirects=False
            ) as response:
                if response.status_code in SENT:
                    return response.status_code, None
                kept = b""
                async for chunk in response.aiter_bytes():
                    kept += chunk
                    if len(kept) >= KEPT_BYTES:
                        break
                return response.status_code, kept[:KEPT_BYTES].decode(errors="replace")
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__} after {time.perf_counter() - started:.1f} s"


async def _phone(session: AsyncSession, row: Notification) -> str | None:
    """Where an SMS goes: the peer's phone, or the supervisor's contact."""
    if row.peer_id is not None:
        peer = await session.get(Peer, row.peer_id)
        return peer.phone if peer else None
    contact = await repository.contact_of(session, row.key_id) if row.key_id else None
    return contact.phone if contact else None
