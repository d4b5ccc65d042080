"""Every query of the dispatch domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.calls.filters import ScopeFilter, scoped
from corespond.calls.models import Call
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.sources.models import CadSource

NOTIFY_CHANNEL = "corespond_outbox"


@dataclass(frozen=True)
class DeliveryFilter:
    state: str | None = None
    source_id: str | None = None
    call_id: uuid.UUID | None = None


async def notify_relay(session: AsyncSession) -> None:
    """Wake the relays once this transaction commits (NOTIFY is transactional)."""
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def next_seq(session: AsyncSession, call_id: uuid.UUID) -> int:
    seq = await session.scalar(
        select(func.coalesce(func.max(OutboxMessage.seq), 0) + 1).where(
            OutboxMessage.call_id == call_id
        )
    )
    return int(seq or 1)


def _waits_behind_earlier() -> Any:
    """An earlier message of the same call is still pending: this one must wait."""
    earlier = OutboxMessage.__table__.alias("earlier")
    return (
        select(earlier.c.id)
        .where(
            and_(
                earlier.c.call_id == OutboxMessage.call_id,
                earlier.c.seq < OutboxMessage.seq,
                earlier.c.state == "pending",
            )
        )
        .exists()
    )


async def claim_next(
    session: AsyncSession, now: datetime, busy: Collection[str] = ()
) -> OutboxMessage | None:
    """The next due message that is first in its call's order, locked for this transaction
    (others skip it), of a source not in ``busy``. A call's next message waits while an
    earlier one is still pending."""
    conditions = [
        OutboxMessage.state == "pending",
        OutboxMessage.next_attempt_at <= now,
        ~_waits_behind_earlier(),
    ]
    if busy:
        conditions.append(OutboxMessage.source_id.not_in(list(busy)))
    return await session.scalar(
        select(OutboxMessage)
        .where(*conditions)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the next claimable message (first pending of its call) is due."""
    found: datetime | None = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.state == "pending", ~_waits_behind_earlier()
        )
    )
    return found


async def add_attempt(session: AsyncSession, attempt: DeliveryAttempt) -> None:
    session.add(attempt)
    await session.flush()


async def attempts_of(session: AsyncSession, message_id: uuid.UUID) -> Sequence[DeliveryAttempt]:
    return (
        await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.message_id == message_id)
            .order_by(DeliveryAttempt.id)
        )
    ).all()


async def list_messages(
    session: AsyncSession,
    where: DeliveryFilter,
    *,
    scope: ScopeFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[OutboxMessage]:
    query = select(OutboxMessage)
    if scope != ScopeFilter():
        query = scoped(query.join(Call, Call.id == OutboxMessage.call_id), scope)
    if where.state is not None:
        query = query.where(OutboxMessage.state == where.state)
    if where.source_id is not None:
        query = query.where(OutboxMessage.source_id == where.source_id)
    if where.call_id is not None:
        query = query.where(OutboxMessage.call_id == where.call_id)
    if after is not None:
        query = query.where(tuple_(OutboxMessage.created_at, OutboxMessage.id) < tuple_(*after))
    query = query.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


@dataclass(frozen=True)
class SourceBacklog:
    source_id: str
    pending: int
    dead: int
    failing_since: datetime | None  # oldest pending message that has failed at least once
    last_delivered_at: datetime | None
    last_dead_at: datetime | None = None  # when the newest dead message died


async def backlog_by_source(session: AsyncSession) -> list[SourceBacklog]:
    """Per source: what waits, what died, the oldest failed message still waiting, the last
    delivery. Reads pending and dead rows and one index probe per source, never the whole
    history of delivered messages."""
    rows = await session.execute(
        select(
            OutboxMessage.source_id,
            func.count().filter(OutboxMessage.state == "pending"),
            func.count().filter(OutboxMessage.state == "dead"),
            func.min(OutboxMessage.created_at).filter(
                OutboxMessage.state == "pending", OutboxMessage.attempts > 0
            ),
            func.max(OutboxMessage.dead_at).filter(OutboxMessage.state == "dead"),
        )
        .where(OutboxMessage.state.in_(("pending", "dead")))
        .group_by(OutboxMessage.source_id)
    )
    waiting = {
        str(source): (int(p), int(d), since, died) for source, p, d, since, died in rows.all()
    }
    sources = (await session.scalars(select(CadSource.id))).all()
    out = []
    for source_id in sources:
        last = await session.scalar(
            select(OutboxMessage.delivered_at)
            .where(OutboxMessage.source_id == source_id, OutboxMessage.delivered_at.is_not(None))
            .order_by(OutboxMessage.delivered_at.desc())
            .limit(1)
        )
        pending, dead, since, died = waiting.get(source_id, (0, 0, None, None))
        if pending or dead or last is not None:
            out.append(SourceBacklog(source_id, pending, dead, since, last, died))
    return out


async def oldest_pending_by_source(session: AsyncSession) -> dict[str, datetime]:
    """Per source, since when its oldest undelivered message has waited: written, or
    asked to be redelivered (reads pending rows only)."""
    since = func.min(func.coalesce(OutboxMessage.retry_from, OutboxMessage.created_at))
    rows = await session.execute(
        select(OutboxMessage.source_id, since)
        .where(OutboxMessage.state == "pending")
        .group_by(OutboxMessage.source_id)
    )
    return {str(source): at for source, at in rows.all()}


async def failing_since_by_source(session: AsyncSession) -> dict[str, datetime]:
    """Per source, since when dispatch has not been hearing from us: the first failed or
    refused attempt after its last delivery, or the oldest message still waiting for a
    callback URL to be set."""
    last_delivered = (
        select(OutboxMessage.source_id, func.max(OutboxMessage.delivered_at).label("at"))
        .where(OutboxMessage.delivered_at.is_not(None))
        .group_by(OutboxMessage.source_id)
        .subquery()
    )
    failed = await session.execute(
        select(OutboxMessage.source_id, func.min(DeliveryAttempt.attempted_at))
        .join(DeliveryAttempt, DeliveryAttempt.message_id == OutboxMessage.id)
        .outerjoin(last_delivered, last_delivered.c.source_id == OutboxMessage.source_id)
        .where(
            DeliveryAttempt.outcome != "delivered",
            or_(last_delivered.c.at.is_(None), DeliveryAttempt.attempted_at > last_delivered.c.at),
        )
        .group_by(OutboxMessage.source_id)
    )
    since = {str(source): at for source, at in failed.all()}
    waiting = await session.execute(
        select(OutboxMessage.source_id, func.min(OutboxMessage.created_at))
        .where(OutboxMessage.state == "pending", OutboxMessage.attempts == 0)
        .where(OutboxMessage.last_error.is_not(None))
        .group_by(OutboxMessage.source_id)
    )
    for source, at in waiting.all():
        since[str(source)] = min(at, since.get(str(source), at))
    return since


async def make_due(session: AsyncSession, source_id: str, now: datetime) -> int:
    rows = await session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.source_id == source_id, OutboxMessage.state == "pending")
        .values(next_attempt_at=now)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return len(rows.all())


LOCK_WAIT = "3s"  # a relay's attempt holds its message this long at most, usually far less


async def lock_message(session: AsyncSession, message_id: uuid.UUID) -> OutboxMessage | None:
    """The message, locked; waits for a relay delivering it at this moment, then raises
    (lock_not_available) after ``LOCK_WAIT``."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
    return await session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def later_delivered(session: AsyncSession, message: OutboxMessage) -> OutboxMessage | None:
    """The first later message of the same call that has been delivered."""
    return await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.call_id == message.call_id,
            OutboxMessage.seq > message.seq,
            OutboxMessage.state == "delivered",
        )
        .order_by(OutboxMessage.seq)
        .limit(1)
    )


async def lock_later_pending(session: AsyncSession, message: OutboxMessage) -> None:
    """Lock the call's later pending messages for this transaction; waits ``LOCK_WAIT`` for
    a relay delivering one of them, then raises."""
    await session.execute(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.call_id == message.call_id,
            OutboxMessage.seq > message.seq,
            OutboxMessage.state == "pending",
        )
        .with_for_update()
    )


FEED_LOCK = 0x636F_7265_0001  # advisory lock: one sequencing of the feed at a time


async def sequence_feed(session: AsyncSession) -> None:
    """Give every committed message without a feed position the next positions, in the
    order they were written (a call's messages in their ``seq`` order).

    Positions are given only to rows that are committed (the others are not visible here),
    one sequencing at a time (an advisory lock held to the end of the transaction), so a
    reader that has seen position N never later finds a new row below N. A message a relay
    holds while sending it (and its call's later ones) is left for the next reading, so a
    slow callback never makes a reader of the feed wait.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK})
    unsequenced = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.feed_position.is_(None))
    )
    if not unsequenced:
        return
    # nextval() in the select list of the ordered rows: positions follow that order.
    await session.execute(
        text(
            """
            WITH free AS MATERIALIZED (
                -- A message a relay is sending right now is locked: skipped, not waited on.
                SELECT id, call_id, seq, created_at FROM outbox
                WHERE feed_position IS NULL
                FOR UPDATE SKIP LOCKED
            ), held AS (
                -- ... and the call's later messages wait behind it, to keep its order.
                SELECT call_id, min(seq) AS seq FROM outbox
                WHERE feed_position IS NULL AND id NOT IN (SELECT id FROM free)
                GROUP BY call_id
            ), todo AS MATERIALIZED (
                SELECT id, nextval('outbox_feed_position_seq') AS position
                FROM (
                    SELECT free.id FROM free
                    LEFT JOIN held ON held.call_id = free.call_id
                    WHERE held.seq IS NULL OR free.seq < held.seq
                    ORDER BY free.created_at, free.call_id, free.seq
                ) AS ordered
            )
            UPDATE outbox SET feed_position = todo.position
            FROM todo WHERE outbox.id = todo.id
            """
        )
    )


async def feed_after(
    session: AsyncSession, source_id: str, after: int, limit: int
) -> Sequence[OutboxMessage]:
    """A source's messages after feed position ``after``, in feed order."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.source_id == source_id, OutboxMessage.feed_position > after)
        .order_by(OutboxMessage.feed_position)
        .limit(limit)
    )
    return rows.all()
