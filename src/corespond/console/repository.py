"""The console's one query of its own: what changes when calls or assignments change."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import AssignmentChange
from corespond.calls.models import Call


async def change_stamp(session: AsyncSession) -> object:
    """Changes whenever a call is folded or triaged, or an assignment moves."""
    calls_at = await session.scalar(select(func.max(Call.folded_at)))
    moved = await session.scalar(select(func.max(AssignmentChange.id)))
    return (calls_at, moved)
