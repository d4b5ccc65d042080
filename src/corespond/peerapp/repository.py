"""Every query of the peer app."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import LIVE_STATUSES, Assignment, AssignmentChange
from corespond.roster.models import PeerStatusChange


async def change_stamp(session: AsyncSession, peer_id: uuid.UUID) -> tuple[object, ...]:
    """The latest assignment change, scene report and status change of a peer, in one
    statement."""
    changes = (
        select(func.max(AssignmentChange.id))
        .join(Assignment, Assignment.id == AssignmentChange.assignment_id)
        .where(Assignment.peer_id == peer_id)
        .scalar_subquery()
    )
    scene = (
        select(func.max(Assignment.scene_secured_at))
        .where(Assignment.peer_id == peer_id)
        .scalar_subquery()
    )
    status = (
        select(func.max(PeerStatusChange.id))
        .where(PeerStatusChange.peer_id == peer_id)
        .scalar_subquery()
    )
    row = (await session.execute(select(changes, scene, status))).one()
    return tuple(row)


async def recent_assignments(
    session: AsyncSession, peer_id: uuid.UUID, ended_since: datetime, limit: int
) -> Sequence[Assignment]:
    """The peer's live assignments and those ended since ``ended_since``, newest first."""
    query = (
        select(Assignment)
        .where(
            Assignment.peer_id == peer_id,
            Assignment.status.in_(LIVE_STATUSES) | (Assignment.ended_at >= ended_since),
        )
        .order_by(Assignment.created_at.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def cleared_since(
    session: AsyncSession, peer_id: uuid.UUID, since: datetime, limit: int
) -> Sequence[Assignment]:
    """The peer's assignments cleared since ``since``, newest first (whom they met is
    recorded after the call)."""
    query = (
        select(Assignment)
        .where(
            Assignment.peer_id == peer_id,
            Assignment.status == "cleared",
            Assignment.ended_at >= since,
        )
        .order_by(Assignment.ended_at.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()
