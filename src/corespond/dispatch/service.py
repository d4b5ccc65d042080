"""Reading the delivery log, replaying a message, and how each CAD source is being served."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.dispatch import repository
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.dispatch.repository import DeliveryFilter
from corespond.errors import NotFound
from corespond.sources.service import list_sources


async def list_messages(
    session: AsyncSession,
    where: DeliveryFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[OutboxMessage]:
    return await repository.list_messages(session, where, after=after, limit=limit)


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> OutboxMessage:
    message = await session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"delivery {message_id} not found")
    return message


async def attempts(session: AsyncSession, message_id: uuid.UUID) -> Sequence[DeliveryAttempt]:
    return await repository.attempts_of(session, message_id)


async def redeliver(session: AsyncSession, message_id: uuid.UUID, now: datetime) -> OutboxMessage:
    """Send a message again (dead, delivered, or pending and waiting out a backoff): it is
    due now, with the same ``webhook-id``, so a receiver that has it already can drop it."""
    message = await session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound(f"delivery {message_id} not found")
    message.state = "pending"
    message.next_attempt_at = now
    message.dead_at = None
    await session.flush()
    await repository.notify_relay(session)
    return message


async def send_pending_now(session: AsyncSession, source_id: str, now: datetime) -> int:
    """Make a source's pending messages due now (its callback was just set or fixed)."""
    count = await repository.make_due(session, source_id, now)
    await repository.notify_relay(session)
    return count


@dataclass(frozen=True)
class SourceDelivery:
    source_id: str
    callback_url: str | None
    pending: int
    dead: int
    failing_since: datetime | None
    last_delivered_at: datetime | None
    alert: bool


async def source_status(
    session: AsyncSession, now: datetime, alert_after: timedelta
) -> list[SourceDelivery]:
    """Per CAD source: its callback, what waits, what died, since when it has been failing."""
    backlog = {b.source_id: b for b in await repository.backlog_by_source(session)}
    out = []
    for source in await list_sources(session):
        b = backlog.get(source.id)
        failing_since = b.failing_since if b else None
        out.append(
            SourceDelivery(
                source_id=source.id,
                callback_url=source.callback_url,
                pending=b.pending if b else 0,
                dead=b.dead if b else 0,
                failing_since=failing_since,
                last_delivered_at=b.last_delivered_at if b else None,
                alert=failing_since is not None and now - failing_since > alert_after,
            )
        )
    return out
