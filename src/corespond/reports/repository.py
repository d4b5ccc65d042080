"""Every query of the reports: calls that opened in a period (only those a figure can count:
eligible now, or a peer requested) and the offers made on them. Only the columns a figure
needs are read: never a narrative, an address or a peer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from corespond.assignments.models import Assignment
from corespond.calls.models import Call

# When a call opened: CAD's time for it, else when corespond first stored it.
OPENED = func.coalesce(Call.opened_at, Call.created_at)


def _counted(query: Any, start: datetime, end: datetime, counties: Sequence[str] | None) -> Any:
    """``query`` (over ``call``) limited to calls that opened in ``[start, end)``, in
    ``counties`` (None: any county or none), that some figure counts."""
    other = aliased(Assignment)  # the outer query may select assignments itself
    requested = exists().where(other.call_id == Call.id)
    query = query.where(
        and_(OPENED >= start, OPENED < end), or_(Call.decision == "eligible", requested)
    )
    if counties is not None:
        query = query.where(Call.county_fips.in_(counties))
    return query


async def calls_opened(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(id, opened_at, county_fips, decision)`` of each counted call."""
    rows = await session.execute(
        _counted(
            select(Call.id, OPENED.label("opened_at"), Call.county_fips, Call.decision),
            start,
            end,
            counties,
        )
    )
    return rows.all()


async def offers_on_calls_opened(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """Every assignment row of the counted calls: ``(call_id, status, offered_at,
    accepted_at, en_route_at, outcome, referrals)``, oldest first."""
    rows = await session.execute(
        _counted(
            select(
                Assignment.call_id,
                Assignment.status,
                Assignment.offered_at,
                Assignment.accepted_at,
                Assignment.en_route_at,
                Assignment.outcome,
                Assignment.referrals,
            ).join(Call, Call.id == Assignment.call_id),
            start,
            end,
            counties,
        ).order_by(Assignment.created_at, Assignment.id)
    )
    return rows.all()
