"""Every query of the event log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import BigInteger, DateTime, Uuid, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.ingest.models import CadEvent

NOTIFY_CHANNEL = "corespond_cad_event"
MAX_ATTEMPTS = 10


# One round trip for an event, on a plain connection in autocommit (the statement is its own
# transaction: the event is durable when it returns). The call is found (or its empty row
# made, unless the event is a repeat) and the event stored with it; or the earlier copy of a
# repeat read. No NOTIFY in it: PostgreSQL commits notifying transactions one at a time
# (the notification queue's lock is held through the commit's WAL flush), which caps
# ingest at a fraction of what the database commits otherwise; the worker is woken after
# commit instead (``service.WorkerWake``). The call's identity row is the one thing ingest writes of
# the calls table (its own module folds the rest). Outcomes, one row or none:
#   accepted   the event is stored (with its call id);
#   duplicate  an event of this id was stored before (its call id and body digest);
#   retry      a first event of the same new call, racing this one, made the call after
#              this statement's snapshot: nothing was stored; the next statement sees it;
#   (no row)   a repeat of this event committed after this statement's snapshot.
_STORE_EVENT = """
WITH found AS (
    SELECT id FROM call WHERE source_id = $1 AND incident_number = $2
), earlier AS (
    SELECT call_id, payload_sha256 FROM cad_event WHERE source_id = $1 AND event_id = $3
), created AS (
    INSERT INTO call (id, source_id, incident_number)
    SELECT $4, $1, $2
    WHERE NOT EXISTS (SELECT 1 FROM found) AND NOT EXISTS (SELECT 1 FROM earlier)
    ON CONFLICT (source_id, incident_number) DO NOTHING
    RETURNING id
), the_call AS (
    SELECT id FROM found UNION ALL SELECT id FROM created LIMIT 1
), stored AS (
    INSERT INTO cad_event (source_id, event_id, event_type, occurred_at, incident_number,
                           webhook_id, payload, payload_sha256, call_id)
    SELECT $1, $3, $5, $6, $2, $7, $8::jsonb, $9, the_call.id FROM the_call
    WHERE NOT EXISTS (SELECT 1 FROM earlier)
    ON CONFLICT (source_id, event_id) DO NOTHING
    RETURNING id, call_id
)
SELECT 'accepted' AS outcome, id, call_id, NULL AS payload_sha256 FROM stored
UNION ALL
SELECT 'duplicate', NULL, call_id, payload_sha256 FROM earlier
UNION ALL
SELECT 'retry', NULL, NULL, NULL
WHERE NOT EXISTS (SELECT 1 FROM the_call) AND NOT EXISTS (SELECT 1 FROM earlier)
"""
_EARLIER_EVENT = """
SELECT call_id, payload_sha256 FROM cad_event WHERE source_id = $1 AND event_id = $2
"""


@dataclass(frozen=True)
class Stored:
    """What storing an event came to: ``event_pk`` is None for a repeat (then
    ``payload_sha256`` is the digest of the body stored first)."""

    event_pk: int | None
    call_id: uuid.UUID | None
    payload_sha256: str | None = None


async def store_event(
    conn: asyncpg.Connection,
    *,
    source_id: str,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    incident_number: str,
    webhook_id: str,
    payload: str,
    payload_sha256: str,
) -> Stored:
    """Store an event (``payload``: its JSON) with its call, made if new, in one statement;
    or read the earlier copy of a repeat."""
    # A racing first event of the same call commits before the next statement sees it
    # (its conflict resolved only once it did), so a second try finds the call.
    for _ in range(3):
        row = await conn.fetchrow(
            _STORE_EVENT,
            source_id,
            incident_number,
            event_id,
            uuid.uuid4(),
            event_type,
            occurred_at,
            webhook_id,
            payload,
            payload_sha256,
        )
        if row is None:  # a repeat committed meanwhile
            row = await conn.fetchrow(_EARLIER_EVENT, source_id, event_id)
            if row is None:  # pragma: no cover - a stored event is never deleted
                raise RuntimeError("a conflicting CAD event is not there")
            return Stored(None, row["call_id"], row["payload_sha256"])
        if row["outcome"] == "accepted":
            return Stored(int(row["id"]), row["call_id"])
        if row["outcome"] == "duplicate":
            return Stored(None, row["call_id"], row["payload_sha256"])
    raise RuntimeError("the call of a CAD event could neither be found nor made")


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


async def processed_marks(
    session: AsyncSession, call_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, int, datetime, int]]:
    """Per call, how many of its events are processed, and the last of them in folding order
    (its ``occurred_at`` and id); calls with none are left out."""
    rows = await session.execute(_PROCESSED_MARKS, {"ids": list(call_ids)})
    return [(r.call_id, int(r.n), r.last_at, int(r.last_id)) for r in rows]


_PROCESSED_MARKS = text(
    """
    SELECT call_id, count(*) AS n,
           (array_agg(occurred_at ORDER BY occurred_at DESC, id DESC))[1] AS last_at,
           (array_agg(id ORDER BY occurred_at DESC, id DESC))[1] AS last_id
    FROM cad_event
    WHERE call_id = ANY(:ids) AND processed_at IS NOT NULL
    GROUP BY call_id
    """
).columns(call_id=Uuid(), n=BigInteger(), last_at=DateTime(timezone=True), last_id=BigInteger())


async def folded_and_claimed(
    session: AsyncSession, call_id: uuid.UUID, claimed: Sequence[int]
) -> Sequence[CadEvent]:
    return (
        await session.scalars(
            select(CadEvent)
            .where(
                CadEvent.call_id == call_id,
                or_(CadEvent.processed_at.is_not(None), CadEvent.id.in_(list(claimed))),
            )
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
                attempts=attempts + 1, next_attempt_at=func.now() + backoff, last_error=error[:500]
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
