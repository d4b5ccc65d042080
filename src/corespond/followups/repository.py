"""Every query of follow-up tasks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.followups.models import FollowUp


@dataclass(frozen=True)
class TaskFilter:
    provider_id: str
    state: str | None = None
    due_before: datetime | None = None
    escalated: bool | None = None
    # A peer's view: theirs and the team's (unassigned); None: the provider's whole queue.
    peer_or_team: uuid.UUID | None = None
    assignee: uuid.UUID | None = None
    team_only: bool = False
    person_id: uuid.UUID | None = None


async def list_tasks(session: AsyncSession, where: TaskFilter, limit: int) -> Sequence[FollowUp]:
    query = select(FollowUp).where(FollowUp.provider_id == where.provider_id)
    if where.state is not None:
        query = query.where(FollowUp.state == where.state)
    if where.due_before is not None:
        query = query.where(FollowUp.due_at < where.due_before)
    if where.escalated is not None:
        query = query.where(
            FollowUp.escalated_at.is_not(None)
            if where.escalated
            else FollowUp.escalated_at.is_(None)
        )
    if where.peer_or_team is not None:
        query = query.where(
            or_(
                FollowUp.assignee_peer_id == where.peer_or_team, FollowUp.assignee_peer_id.is_(None)
            )
        )
    if where.assignee is not None:
        query = query.where(FollowUp.assignee_peer_id == where.assignee)
    if where.team_only:
        query = query.where(FollowUp.assignee_peer_id.is_(None))
    if where.person_id is not None:
        query = query.where(FollowUp.person_id == where.person_id)
    query = query.order_by(FollowUp.due_at, FollowUp.id).limit(limit)
    return (await session.scalars(query)).all()


async def open_scheduled(session: AsyncSession, person_id: uuid.UUID) -> Sequence[FollowUp]:
    return (
        await session.scalars(
            select(FollowUp)
            .where(
                FollowUp.person_id == person_id,
                FollowUp.state == "open",
                FollowUp.contact_id.is_not(None),
            )
            .with_for_update()
        )
    ).all()


async def open_of_person(session: AsyncSession, person_id: uuid.UUID) -> Sequence[FollowUp]:
    return (
        await session.scalars(
            select(FollowUp)
            .where(FollowUp.person_id == person_id, FollowUp.state == "open")
            .with_for_update()
        )
    ).all()


async def lock(session: AsyncSession, task_id: uuid.UUID) -> FollowUp | None:
    found: FollowUp | None = await session.get(FollowUp, task_id, with_for_update=True)
    return found


async def claim_overdue(session: AsyncSession, now: datetime, limit: int) -> Sequence[FollowUp]:
    """Open tasks past their overdue time not escalated yet, claimed (SKIP LOCKED: two
    workers never escalate one twice)."""
    return (
        await session.scalars(
            select(FollowUp)
            .where(
                FollowUp.state == "open",
                FollowUp.escalated_at.is_(None),
                FollowUp.overdue_at <= now,
            )
            .order_by(FollowUp.overdue_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def move_person(session: AsyncSession, duplicate: uuid.UUID, kept: uuid.UUID) -> None:
    await session.execute(
        update(FollowUp).where(FollowUp.person_id == duplicate).values(person_id=kept)
    )


async def change_stamp(
    session: AsyncSession, provider_id: str, peer_id: uuid.UUID | None = None
) -> tuple[object, ...]:
    """What changes when the provider's queue (or one peer's part of it) does, for a page's
    live updates: how many tasks are open and the latest of their changes."""
    query = select(
        func.count().filter(FollowUp.state == "open"),
        func.max(FollowUp.done_at),
        func.max(FollowUp.escalated_at),
        func.max(FollowUp.created_at),
        func.count().filter(FollowUp.assignee_peer_id.is_(None)),
    ).where(FollowUp.provider_id == provider_id)
    if peer_id is not None:
        query = query.where(
            or_(FollowUp.assignee_peer_id == peer_id, FollowUp.assignee_peer_id.is_(None))
        )
    return tuple((await session.execute(query)).one())


async def people_active_since(
    session: AsyncSession, person_ids: Sequence[uuid.UUID], since: datetime
) -> set[uuid.UUID]:
    if not person_ids:
        return set()
    query = select(FollowUp.person_id).where(
        FollowUp.person_id.in_(list(person_ids)),
        or_(FollowUp.due_at >= since, FollowUp.done_at >= since, FollowUp.created_at >= since),
    )
    return set((await session.scalars(query.distinct())).all())


async def people_with_team_visits(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> Sequence[uuid.UUID]:
    """People with an open visit by a team, by id, after ``after`` (keyset pages)."""
    query = (
        select(FollowUp.person_id)
        .where(FollowUp.state == "open", FollowUp.organization_id.is_not(None))
        .distinct()
        .order_by(FollowUp.person_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(FollowUp.person_id > after)
    return (await session.scalars(query)).all()
