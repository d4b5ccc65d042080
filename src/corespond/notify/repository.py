"""Every query of the notification domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.models import ApiKey
from corespond.notify.models import Notification, PushKey, PushSubscription, SupervisorContact


async def push_key(session: AsyncSession) -> PushKey | None:
    return await session.get(PushKey, 1)


async def add_push_key(session: AsyncSession, row: PushKey) -> None:
    session.add(row)
    await session.flush()


async def subscription_by_endpoint(session: AsyncSession, endpoint: str) -> PushSubscription | None:
    query = select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    return await session.scalar(query)


async def live_subscriptions(
    session: AsyncSession, *, peer_id: uuid.UUID | None = None, key_id: uuid.UUID | None = None
) -> Sequence[PushSubscription]:
    """The subscriptions of a peer (or of a supervisor's key) that have not ended, oldest
    first."""
    owner = (
        PushSubscription.peer_id == peer_id
        if peer_id is not None
        else PushSubscription.key_id == key_id
    )
    query = (
        select(PushSubscription)
        .where(owner, PushSubscription.ended_at.is_(None))
        .order_by(PushSubscription.created_at)
    )
    return (await session.scalars(query)).all()


def _reachable() -> ColumnElement[bool]:
    """A key with a contact (SMS) or a live push subscription: someone a notice reaches."""
    return or_(
        SupervisorContact.key_id.is_not(None),
        ApiKey.id.in_(
            select(PushSubscription.key_id).where(
                PushSubscription.key_id.is_not(None), PushSubscription.ended_at.is_(None)
            )
        ),
    )


async def supervisors_in_scope(
    session: AsyncSession, counties: Sequence[str] | None, now: datetime
) -> list[tuple[uuid.UUID, SupervisorContact | None]]:
    """Live supervisor keys whose scope covers one of the counties (unscoped, or scoped to
    one of them; ``None``: unscoped keys only) and that have a contact or a live push
    subscription, with their contact."""
    covers: ColumnElement[bool] = ApiKey.scope_kind.is_(None)
    if counties:
        covers = or_(
            covers, and_(ApiKey.scope_kind == "county", ApiKey.scope_value.in_(list(counties)))
        )
    reachable = _reachable()
    query = (
        select(ApiKey.id, SupervisorContact)
        .outerjoin(SupervisorContact, SupervisorContact.key_id == ApiKey.id)
        .where(
            ApiKey.role == "supervisor",
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            covers,
            reachable,
        )
        .order_by(ApiKey.created_at)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def provider_admins_of(
    session: AsyncSession, provider_id: str, now: datetime
) -> list[tuple[uuid.UUID, SupervisorContact | None]]:
    """Live provider admin keys scoped to the provider that have a contact or a live push
    subscription, with their contact."""
    reachable = _reachable()
    query = (
        select(ApiKey.id, SupervisorContact)
        .outerjoin(SupervisorContact, SupervisorContact.key_id == ApiKey.id)
        .where(
            ApiKey.role == "provider_admin",
            ApiKey.scope_kind == "provider",
            ApiKey.scope_value == provider_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            reachable,
        )
        .order_by(ApiKey.created_at)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def notices_of_key(
    session: AsyncSession, key_id: uuid.UUID, tag: str, limit: int
) -> Sequence[Notification]:
    """A key's latest notices with this payload tag, newest first."""
    query = (
        select(Notification)
        .where(Notification.key_id == key_id, Notification.payload["tag"].astext == tag)
        .order_by(Notification.created_at.desc(), Notification.id)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def contact_of(session: AsyncSession, key_id: uuid.UUID) -> SupervisorContact | None:
    return await session.get(SupervisorContact, key_id)


async def unfilled_notices(
    session: AsyncSession, assignment_ids: Sequence[uuid.UUID]
) -> Sequence[Notification]:
    """The supervisors' notices of these unfilled requests."""
    if not assignment_ids:
        return []
    query = select(Notification).where(
        Notification.assignment_id.in_(assignment_ids), Notification.key_id.is_not(None)
    )
    return (await session.scalars(query)).all()


async def alert_notices(
    session: AsyncSession, alert_ids: Sequence[uuid.UUID]
) -> Sequence[Notification]:
    if not alert_ids:
        return []
    query = select(Notification).where(Notification.alert_id.in_(alert_ids))
    return (await session.scalars(query.order_by(Notification.created_at))).all()


async def skip_pending_of_alert(session: AsyncSession, alert_id: uuid.UUID, why: str) -> int:
    """Pending notices of an alert become ``skipped`` (one being sent right now holds its
    row lock; this waits for it, then leaves it as it ended)."""
    rows = await session.scalars(
        update(Notification)
        .where(Notification.alert_id == alert_id, Notification.state == "pending")
        .values(state="skipped", last_error=why)
        .returning(Notification.id)
    )
    return len(rows.all())


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
