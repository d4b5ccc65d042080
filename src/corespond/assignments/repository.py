"""Every query of the assignments domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies.names import agency_key_sql
from corespond.assignments.models import (
    LIVE_STATUSES,
    Assignment,
    AssignmentChange,
    PeerRequest,
)
from corespond.calls.models import Call


@dataclass(frozen=True)
class AssignmentFilter:
    status: str | None = None
    call_id: uuid.UUID | None = None
    peer_id: uuid.UUID | None = None
    provider_id: str | None = None
    county_fips: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    source: str | None = None  # the CAD source of the call


async def live_for_call(session: AsyncSession, call_id: uuid.UUID) -> Assignment | None:
    return await session.scalar(
        select(Assignment).where(
            Assignment.call_id == call_id, Assignment.status.in_(LIVE_STATUSES)
        )
    )


async def latest_for_calls(
    session: AsyncSession, call_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Assignment]:
    """Each call's live assignment, else its most recent one."""
    if not call_ids:
        return {}
    rows = await session.scalars(
        select(Assignment)
        .where(Assignment.call_id.in_(call_ids))
        .ext(distinct_on(Assignment.call_id))
        .order_by(
            Assignment.call_id,
            Assignment.status.in_(LIVE_STATUSES).desc(),
            Assignment.created_at.desc(),
        )
    )
    return {a.call_id: a for a in rows}


async def has_request(session: AsyncSession, call_id: uuid.UUID) -> bool:
    found = await session.scalar(select(PeerRequest.id).where(PeerRequest.call_id == call_id))
    return found is not None


async def tried_peers(session: AsyncSession, request_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Peers already offered this request, with how their offer ended (or stands)."""
    rows = await session.execute(
        select(Assignment.peer_id, Assignment.status).where(
            Assignment.request_id == request_id, Assignment.peer_id.is_not(None)
        )
    )
    return {peer_id: status for peer_id, status in rows.all() if peer_id is not None}


async def busy_peers(session: AsyncSession, peer_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``peer_ids`` holding an active assignment."""
    if not peer_ids:
        return set()
    rows = await session.scalars(
        select(Assignment.peer_id).where(
            Assignment.peer_id.in_(peer_ids), Assignment.status.in_(LIVE_STATUSES)
        )
    )
    return {peer_id for peer_id in rows if peer_id is not None}


async def last_accepted(
    session: AsyncSession, peer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """When each peer last took a call (accepted an offer)."""
    if not peer_ids:
        return {}
    rows = await session.execute(
        select(Assignment.peer_id, func.max(Assignment.accepted_at))
        .where(Assignment.peer_id.in_(peer_ids))
        .group_by(Assignment.peer_id)
    )
    return {peer_id: at for peer_id, at in rows.all() if peer_id is not None and at is not None}


async def scene_secured_earlier(
    session: AsyncSession, call_id: uuid.UUID
) -> tuple[datetime, str | None] | None:
    """When (and by whom) the scene of a call was first reported secure, on any of its
    assignments: police secured the scene, whichever peer was offered the call then."""
    row = (
        await session.execute(
            select(Assignment.scene_secured_at, Assignment.scene_secured_by)
            .where(Assignment.call_id == call_id, Assignment.scene_secured_at.is_not(None))
            .order_by(Assignment.scene_secured_at)
            .limit(1)
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


async def latest_unfilled_since(
    session: AsyncSession, call_id: uuid.UUID, since: datetime
) -> Assignment | None:
    return await session.scalar(
        select(Assignment)
        .where(
            Assignment.call_id == call_id,
            Assignment.status == "unfilled",
            Assignment.created_at >= since,
        )
        .order_by(Assignment.created_at.desc())
        .limit(1)
    )


async def insert_offer(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert an offer unless the peer (or the call) already has a live assignment; the
    database decides, so two transactions can never both win the same peer."""
    inserted: uuid.UUID | None = await session.scalar(
        insert(Assignment).values(**values).on_conflict_do_nothing().returning(Assignment.id)
    )
    return inserted


async def compare_and_set(
    session: AsyncSession,
    assignment_id: uuid.UUID,
    expected: Sequence[str],
    values: dict[str, Any],
    *conditions: Any,
) -> Assignment | None:
    """Move an assignment on only if its status is one of ``expected`` (and ``conditions``
    hold), in one statement; None if another change got there first."""
    return await session.scalar(
        update(Assignment)
        .where(Assignment.id == assignment_id, Assignment.status.in_(expected), *conditions)
        .values(**values)
        .returning(Assignment)
        .execution_options(populate_existing=True, synchronize_session=False)
    )


async def add_change(session: AsyncSession, change: AssignmentChange) -> None:
    session.add(change)
    await session.flush()


async def changes_of(session: AsyncSession, assignment_id: uuid.UUID) -> Sequence[AssignmentChange]:
    return (
        await session.scalars(
            select(AssignmentChange)
            .where(AssignmentChange.assignment_id == assignment_id)
            .order_by(AssignmentChange.id)
        )
    ).all()


async def due_offers(session: AsyncSession, now: datetime, limit: int) -> Sequence[uuid.UUID]:
    """Offers past their deadline, oldest deadline first."""
    return (
        await session.scalars(
            select(Assignment.id)
            .where(Assignment.status == "offered", Assignment.expires_at <= now)
            .order_by(Assignment.expires_at)
            .limit(limit)
        )
    ).all()


async def live_with_calls(
    session: AsyncSession, call_ids: Sequence[uuid.UUID] | None = None
) -> Sequence[tuple[Assignment, Call]]:
    """Live assignments with their calls (at most one per peer: a short list)."""
    query = (
        select(Assignment, Call)
        .join(Call, Call.id == Assignment.call_id)
        .where(Assignment.status.in_(LIVE_STATUSES))
    )
    if call_ids is not None:
        query = query.where(Assignment.call_id.in_(call_ids))
    rows = await session.execute(query)
    return [(a, c) for a, c in rows.all()]


@dataclass(frozen=True)
class AutoWindow:
    decided_since: datetime
    occurred_since: datetime  # the call's latest CAD event, at the earliest …
    occurred_until: datetime  # … and at the latest (a CAD clock ahead is not "fresh")


async def unrequested_eligible(
    session: AsyncSession,
    window: AutoWindow,
    limit: int,
    agencies: Sequence[str],
    oris: Sequence[str],
    call_ids: Sequence[uuid.UUID] | None = None,
) -> Sequence[uuid.UUID]:
    """Open eligible calls of the given agencies (by name key or ORI) decided and last
    heard of within ``window`` that no one has requested a peer for."""
    key = agency_key_sql(Call.agency)
    query = (
        select(Call.id)
        .where(
            Call.decision == "eligible",
            Call.ended_at.is_(None),
            Call.decided_at >= window.decided_since,
            Call.last_event_at >= window.occurred_since,
            Call.last_event_at <= window.occurred_until,
            or_(key.in_(agencies), func.replace(key, " ", "").in_(oris)),
            ~select(PeerRequest.id).where(PeerRequest.call_id == Call.id).exists(),
        )
        .order_by(Call.decided_at)
        .limit(limit)
    )
    if call_ids is not None:
        query = query.where(Call.id.in_(call_ids))
    return (await session.scalars(query)).all()


async def list_assignments(
    session: AsyncSession,
    where: AssignmentFilter,
    *,
    agency: str | None,
    call_county: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Assignment]:
    query = select(Assignment)
    if agency is not None or call_county is not None or where.source is not None:
        query = query.join(Call, Call.id == Assignment.call_id)
        if where.source is not None:
            query = query.where(Call.source_id == where.source)
        if agency is not None:
            query = query.where(agency_key_sql(Call.agency) == agency)
        if call_county is not None:
            query = query.where(Call.county_fips == call_county)
    if where.status is not None:
        query = query.where(Assignment.status == where.status)
    if where.call_id is not None:
        query = query.where(Assignment.call_id == where.call_id)
    if where.peer_id is not None:
        query = query.where(Assignment.peer_id == where.peer_id)
    if where.provider_id is not None:
        query = query.where(Assignment.provider_id == where.provider_id)
    if where.county_fips is not None:
        query = query.where(Assignment.county_fips == where.county_fips)
    if where.created_from is not None:
        query = query.where(Assignment.created_at >= where.created_from)
    if where.created_to is not None:
        query = query.where(Assignment.created_at < where.created_to)
    if after is not None:
        query = query.where(tuple_(Assignment.created_at, Assignment.id) < tuple_(*after))
    query = query.order_by(Assignment.created_at.desc(), Assignment.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def live_by_peer(
    session: AsyncSession, peer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Assignment, Call]]:
    """Each of these peers' live assignment (at most one each), with its call."""
    if not peer_ids:
        return {}
    rows = await session.execute(
        select(Assignment, Call)
        .join(Call, Call.id == Assignment.call_id)
        .where(Assignment.peer_id.in_(list(peer_ids)), Assignment.status.in_(LIVE_STATUSES))
    )
    return {a.peer_id: (a, c) for a, c in rows.all() if a.peer_id is not None}
