"""Every query of the event log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.ingest.models import CadEvent

NOTIFY_CHANNEL = "corespond_cad_event"
MAX_ATTEMPTS = 10


# One round trip for an event: the call is found (or its empty row made, unless the event is
# a repeat), the event stored with it, the worker told, all in one statement. The call's
# identity row is the one thing ingest writes of the calls table (its own module folds the
# rest); two first events of a new call racing each other leave one event without its call,
# which ``store_event``'s caller then attaches.
_STORE_EVENT = text(
    """
    WITH found AS (
        SELECT id FROM call
        WHERE source_id = :source_id AND incident_number = :incident_number
    ), created AS (
        INSERT INTO call (id, source_id, incident_number)
        SELECT :new_call_id, :source_id, :incident_number
        WHERE NOT EXISTS (SELECT 1 FROM found)
          AND NOT EXISTS (
              SELECT 1 FROM cad_event WHERE source_id = :source_id AND event_id = :event_id
          )
        ON CONFLICT (source_id, incident_number) DO NOTHING
        RETURNING id
    ), the_call AS (
        SELECT id FROM found UNION ALL SELECT id FROM created
    ), stored AS (
        INSERT INTO cad_event (source_id, event_id, event_type, occurred_at, incident_number,
                               webhook_id, payload, payload_sha256, call_id)
        VALUES (:source_id, :event_id, :event_type, :occurred_at, :incident_number,
                :webhook_id, CAST(:payload AS jsonb), :payload_sha256,
                (SELECT id FROM the_call LIMIT 1))
        ON CONFLICT (source_id, event_id) DO NOTHING
        RETURNING id, call_id
    )
    SELECT stored.id, stored.call_id, pg_notify(:channel, '') FROM stored
    """
)


async def store_event(
    session: AsyncSession, *, payload: dict[str, Any], **values: Any
) -> tuple[int, uuid.UUID | None] | None:
    """Store an event with its call (made if new) and wake the worker, in one statement:
    the event's id and its call's, or None if ``(source_id, event_id)`` was stored before.
    A call id of None means a concurrent first event made the call a moment ago."""
    row = (
        await session.execute(
            _STORE_EVENT,
            {
                **values,
                "payload": json.dumps(payload, separators=(",", ":")),
                "new_call_id": uuid.uuid4(),
                "channel": NOTIFY_CHANNEL,
            },
        )
    ).first()
    if row is None:
        return None
    return int(row[0]), (uuid.UUID(str(row[1])) if row[1] is not None else None)


async def existing_event(session: AsyncSession, source_id: str, event_id: str) -> CadEvent | None:
    return await session.scalar(
        select(CadEvent).where(CadEvent.source_id == source_id, CadEvent.event_id == event_id)
    )


async def attach_call(session: AsyncSession, event_pk: int, call_id: uuid.UUID) -> None:
    await session.execute(update(CadEvent).where(CadEvent.id == event_pk).values(call_id=call_id))


async def claim_pending(session: AsyncSession, limit: int) -> Sequence[CadEvent]:
    """Lock a batch of unprocessed events, oldest first, skipping ones another worker holds."""
    return (
        await session.scalars(
            select(CadEvent)
            .where(
                CadEvent.processed_at.is_(None),
                CadEvent.attempts < MAX_ATTEMPTS,
                or_(CadEvent.next_attempt_at.is_(None), CadEvent.next_attempt_at <= func.now()),
            )
            .order_by(CadEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def events_of_call(session: AsyncSession, call_id: uuid.UUID) -> Sequence[CadEvent]:
    return (
        await session.scalars(
            select(CadEvent)
            .where(CadEvent.call_id == call_id)
            .order_by(CadEvent.occurred_at, CadEvent.id)
        )
    ).all()


async def mark_processed(session: AsyncSession, event_pks: Sequence[int]) -> None:
    # The event log keeps the database's time, which ``claim_pending`` compares with.
    await session.execute(
        update(CadEvent)
        .where(CadEvent.id.in_(event_pks))
        .values(processed_at=func.now(), attempts=CadEvent.attempts + 1, last_error=None)
    )


async def mark_failed(session: AsyncSession, event_pks: Sequence[int], error: str) -> None:
    """Record a failed attempt; the next one waits 2, 4, 8 … seconds (at most 10 minutes),
    by the database's clock, which ``claim_pending`` compares with."""
    rows = await session.execute(
        select(CadEvent.id, CadEvent.attempts).where(CadEvent.id.in_(event_pks))
    )
    for event_pk, attempts in rows.all():
        backoff = timedelta(seconds=min(600, 2 ** (attempts + 1)))
        await session.execute(
            update(CadEvent)
            .where(CadEvent.id == event_pk)
            .values(
                attempts=attempts + 1,
                next_attempt_at=func.now() + backoff,
                last_error=error[:500],
            )
        )


async def unprocessed_counts(session: AsyncSession) -> tuple[int, int]:
    """(pending, dead): events still to fold, and events that ran out of attempts."""
    dead = CadEvent.attempts >= MAX_ATTEMPTS
    row = (
        await session.execute(
            select(func.count().filter(~dead), func.count().filter(dead)).where(
                CadEvent.processed_at.is_(None)
            )
        )
    ).one()
    return int(row[0]), int(row[1])
