"""Every query of the calls domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.calls.filters import CallFilter, ScopeFilter, scoped
from corespond.calls.models import Call


async def call_id_of(
    session: AsyncSession, source_id: str, incident_number: str
) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        select(Call.id).where(Call.source_id == source_id, Call.incident_number == incident_number)
    )
    return found


async def lock_call(session: AsyncSession, call_id: uuid.UUID) -> Call | None:
    # FOR NO KEY UPDATE: does not block ingest, whose event rows only reference the call.
    # populate_existing: a copy read before the lock was taken is refreshed, so whoever holds
    # the lock decides on the row as it is now, not as it was before the wait.
    return await session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


async def lock_calls(session: AsyncSession, call_ids: Sequence[uuid.UUID]) -> Sequence[Call]:
    # As ``lock_call``, several at once, in id order.
    return (
        await session.scalars(
            select(Call)
            .where(Call.id.in_(list(call_ids)))
            .order_by(Call.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).all()


async def get_call(session: AsyncSession, call_id: uuid.UUID) -> Call | None:
    return await session.get(Call, call_id)


async def list_calls(
    session: AsyncSession,
    where: CallFilter,
    *,
    scope: ScopeFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Call]:
    query = scoped(select(Call), scope)
    if where.county_fips:
        query = query.where(Call.county_fips == where.county_fips)
    if where.source:
        query = query.where(Call.source_id == where.source)
    if where.incident_number:
        query = query.where(Call.incident_number == where.incident_number)
    if where.agency:
        query = query.where(func.upper(Call.agency) == where.agency.upper())
    if where.status:
        query = query.where(Call.status == where.status)
    if where.decision:
        query = query.where(Call.decision == where.decision)
    if where.opened_from:
        query = query.where(Call.opened_at >= where.opened_from)
    if where.opened_to:
        query = query.where(Call.opened_at < where.opened_to)
    if after is not None:
        query = query.where(tuple_(Call.created_at, Call.id) < tuple_(*after))
    query = query.order_by(Call.created_at.desc(), Call.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def needing_triage_ids(
    session: AsyncSession, rules_version: str, limit: int
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Call.id)
        .where(
            Call.folded_at.is_not(None),
            # Purged: its text is gone and its last decision stands, unless new events came.
            or_(Call.purged_at.is_(None), Call.folded_at > Call.purged_at),
            or_(
                Call.decision.is_(None),
                Call.county_method.is_(None),
                # still nowhere: an agency registered since may place it
                and_(Call.ended_at.is_(None), Call.county_method == "unknown"),
                and_(Call.ended_at.is_(None), Call.decision_rules_version != rules_version),
            ),
        )
        .order_by(Call.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )
    return list(rows)


async def ended_among(session: AsyncSession, call_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not call_ids:
        return set()
    rows = await session.scalars(
        select(Call.id).where(
            Call.id.in_(list(call_ids)),
            or_(Call.ended_at.is_not(None), Call.status.in_(("closed", "cancelled"))),
        )
    )
    return set(rows)
