"""Every query of the triage history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.triage.models import TriageDecisionRecord


async def latest(session: AsyncSession, call_id: uuid.UUID) -> TriageDecisionRecord | None:
    return await session.scalar(
        select(TriageDecisionRecord)
        .where(TriageDecisionRecord.call_id == call_id)
        .order_by(TriageDecisionRecord.id.desc())
        .limit(1)
    )


async def history(session: AsyncSession, call_id: uuid.UUID) -> Sequence[TriageDecisionRecord]:
    return (
        await session.scalars(
            select(TriageDecisionRecord)
            .where(TriageDecisionRecord.call_id == call_id)
            .order_by(TriageDecisionRecord.id)
        )
    ).all()


async def histories(
    session: AsyncSession, call_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TriageDecisionRecord]]:
    found: dict[uuid.UUID, list[TriageDecisionRecord]] = {}
    for record in await session.scalars(
        select(TriageDecisionRecord)
        .where(TriageDecisionRecord.call_id.in_(list(call_ids)))
        .order_by(TriageDecisionRecord.call_id, TriageDecisionRecord.id)
    ):
        found.setdefault(record.call_id, []).append(record)
    return found


async def add(session: AsyncSession, record: TriageDecisionRecord) -> TriageDecisionRecord:
    session.add(record)
    await session.flush()
    return record
