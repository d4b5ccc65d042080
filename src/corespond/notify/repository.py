"""Every query of the notification domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.notify.models import Notification, PushSubscription


async def subscription_by_endpoint(session: AsyncSession, endpoint: str) -> PushSubscription | None:
    query = select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    return await session.scalar(query)


async def live_subscriptions(
    session: AsyncSession, peer_id: uuid.UUID
) -> Sequence[PushSubscription]:
    """The peer's subscriptions that have not ended, oldest first."""
    query = (
        select(PushSubscription)
        .where(PushSubscription.peer_id == peer_id, PushSubscription.ended_at.is_(None))
        .order_by(PushSubscription.created_at)
    )
    return (await session.scalars(query)).all()


async def claim_due(session: AsyncSession, now: datetime) -> Notification | None:
    """The next pending notification due by ``now``, locked; one another worker holds is
    skipped."""
    return await session.scalar(
        select(Notification)
        .where(Notification.state == "pending", Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


async def by_provider_message(session: AsyncSession, message_id: str) -> Notification | None:
    query = select(Notification).where(Notification.provider_message_id == message_id)
    return await session.scalar(query)
