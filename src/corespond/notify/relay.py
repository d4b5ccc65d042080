"""The notifier: sends queued Web Push messages to push services (RFC 8030), signed with
VAPID (RFC 8292) and encrypted to the subscription's keys (RFC 8291, ``aes128gcm``, by
``pywebpush``).

Each message is claimed with ``FOR UPDATE SKIP LOCKED`` (several workers never send one twice)
and swept every half second. 201/202/200: sent. 404/410: the subscription is gone; ended, not
retried. 429, 5xx, timeouts and connection errors: retried with capped backoff until the
offer's deadline (a notification after it is useless), then dead. Other 4xx: dead at once.
Every attempt leaves its time, status and error on the row.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import structlog
from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy import select

from corespond.clock import Clock, system_clock
from corespond.db import Database
from corespond.errors import InvalidPayload
from corespond.metrics import NOTIFICATIONS
from corespond.notify.models import Notification, PushSubscription
from corespond.notify.service import Vapid
from corespond.sources.addresses import DestinationRefused, Resolver, checked_addresses, resolve
from corespond.sources.service import check_callback_url

log = structlog.get_logger(__name__)

SENT = frozenset({200, 201, 202})
GONE = frozenset({404, 410})
RETRYABLE = frozenset({408, 429})
BACKOFF_CAP = timedelta(seconds=30)
SWEEP_SECONDS = 0.5


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
    ) -> None:
        self._database = database
        self._http = http
        self._vapid = vapid
        self._signer = Vapid02(private_key=vapid.private_key)
        self._environment = environment
        self._clock = clock
        self._resolver = resolver

    async def sweep(self) -> None:
        """The scheduler's pass: send everything due (a failure is logged, never raised)."""
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
            row = await session.scalar(
                select(Notification)
                .where(Notification.state == "pending", Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return False
            subscription = await session.get(PushSubscription, row.subscription_id)
            row.attempts += 1
            row.last_attempt_at = now
            if row.expires_at <= now or subscription is None or subscription.ended_at:
                row.state = "dead"
                row.last_error = (
                    "the offer's deadline passed before it could be sent"
                    if row.expires_at <= now
                    else "the subscription has ended"
                )
                NOTIFICATIONS.labels("webpush", "dead").inc()
                return True
            status, error = await self._send(row, subscription, now)
            row.last_status_code, row.last_error = status, error
            if status in SENT:
                row.state, row.sent_at = "sent", self._clock()
                outcome = "sent"
            elif status in GONE:
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
            NOTIFICATIONS.labels("webpush", outcome).inc()
            log.info(
                "notification_attempt",
                notification_id=str(row.id),
                peer_id=str(row.peer_id),
                status=status,
                outcome=outcome,
            )
            return True

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
            response = await self._http.post(
                endpoint, content=body, headers=headers, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__} after {time.perf_counter() - started:.1f} s"
        error = None if response.status_code in SENT else response.text[:300]
        return response.status_code, error
