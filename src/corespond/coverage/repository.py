"""Every query of the coverage domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import (
    LIVE_STATUSES,
    Assignment,
    AssignmentChange,
    PeerRequest,
)
from corespond.calls.models import Call
from corespond.dispatch.models import DeliveryAttempt
from corespond.roster.models import Credential, Peer, PeerStatusChange, Shift, ShiftChange
from corespond.triage.models import TriageDecisionRecord

_OVERLAPS = text(
    "tstzrange(shift.starts_at, shift.ends_at, '[)') && tstzrange(CAST(:start AS timestamptz), "
    "CAST(:end AS timestamptz), '[)')"
)


async def shifts_overlapping(
    session: AsyncSession, start: datetime, end: datetime
) -> Sequence[tuple[Shift, Peer]]:
    """Live shifts overlapping ``[start, end)``, with their peers (the GiST range index)."""
    rows = await session.execute(
        select(Shift, Peer)
        .join(Peer, Peer.id == Shift.peer_id)
        .where(Shift.cancelled_at.is_(None), _OVERLAPS.bindparams(start=start, end=end))
        .order_by(Shift.starts_at)
    )
    return [(shift, peer) for shift, peer in rows.all()]


async def live_assignments_by_county(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Call.county_fips, func.count())
        .select_from(Assignment)
        .join(Call, Call.id == Assignment.call_id)
        .where(Assignment.status.in_(LIVE_STATUSES))
        .group_by(Call.county_fips)
    )
    return {str(fips): int(n) for fips, n in rows.all() if fips is not None}


async def unfilled_since(session: AsyncSession, since: datetime) -> Sequence[Any]:
    """Unfilled requests since ``since``: only the columns a supervisor list needs (never
    the call's narrative)."""
    rows = await session.execute(
        select(
            Assignment.id,
            Assignment.created_at,
            Assignment.next_available_at,
            Assignment.ranking["summary"].astext.label("summary"),
            Call.id.label("call_id"),
            Call.source_id,
            Call.incident_number,
            Call.county_fips,
            Call.county_name,
        )
        .join(Call, Call.id == Assignment.call_id)
        .where(Assignment.status == "unfilled", Assignment.created_at >= since)
        .order_by(Assignment.created_at.desc())
        .limit(200)
    )
    return rows.all()


async def unfilled_counties(
    session: AsyncSession, start: datetime, end: datetime
) -> Sequence[str | None]:
    """The county of each request that went unfilled in ``[start, end)``."""
    return (
        await session.scalars(
            select(Call.county_fips)
            .join(Assignment, Assignment.call_id == Call.id)
            .where(
                Assignment.status == "unfilled",
                Assignment.created_at >= start,
                Assignment.created_at < end,
            )
        )
    ).all()


async def eligible_calls(
    session: AsyncSession, start: datetime, end: datetime
) -> Sequence[tuple[str | None, int]]:
    rows = await session.execute(
        select(Call.county_fips, func.count())
        .where(Call.decision == "eligible", Call.decided_at >= start, Call.decided_at < end)
        .group_by(Call.county_fips)
    )
    return [(fips, int(n)) for fips, n in rows.all()]


async def requests_with_assignments(
    session: AsyncSession, start: datetime, end: datetime
) -> Sequence[tuple[PeerRequest, Call, Assignment]]:
    """Requests made in ``[start, end)`` with their calls and every assignment of each."""
    rows = await session.execute(
        select(PeerRequest, Call, Assignment)
        .join(Call, Call.id == PeerRequest.call_id)
        .join(Assignment, Assignment.request_id == PeerRequest.id)
        .where(PeerRequest.created_at >= start, PeerRequest.created_at < end)
        .order_by(PeerRequest.created_at, Assignment.created_at)
    )
    return [(r, c, a) for r, c, a in rows.all()]


async def change_stamp(session: AsyncSession) -> object:
    """Changes whenever what the supervisor page shows changes, but for the clock: a call
    folded or triaged (an override too), an assignment moved, a peer's status, a shift or a
    credential changed, a CAD delivery attempted. (Alerts add their own.)"""
    row = (
        await session.execute(
            select(
                select(func.max(Call.folded_at)).scalar_subquery(),
                select(func.max(TriageDecisionRecord.id)).scalar_subquery(),
                select(func.max(AssignmentChange.id)).scalar_subquery(),
                select(func.max(PeerStatusChange.id)).scalar_subquery(),
                select(func.max(ShiftChange.id)).scalar_subquery(),
                select(func.max(Credential.updated_at)).scalar_subquery(),
                # Every delivery attempt (delivered, to retry, dead): one primary-key probe.
                select(func.max(DeliveryAttempt.id)).scalar_subquery(),
            )
        )
    ).first()
    return tuple(row) if row is not None else None
