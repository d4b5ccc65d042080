"""Every query of the alerts domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts.models import Alert

OPEN = text("resolved_at IS NULL")


async def insert_unless_open(session: AsyncSession, values: dict[str, Any]) -> Alert | None:
    """Insert an alert unless one of its kind and subject is unresolved; the database
    decides (two sweeps cannot raise it twice)."""
    inserted: uuid.UUID | None = await session.scalar(
        insert(Alert)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["kind", "subject"], index_where=OPEN)
        .returning(Alert.id)
    )
    return await session.get(Alert, inserted) if inserted is not None else None


async def unresolved(
    session: AsyncSession, kind: str, subjects: Sequence[str] | None = None
) -> Sequence[Alert]:
    query = select(Alert).where(Alert.kind == kind, Alert.resolved_at.is_(None))
    if subjects is not None:
        query = query.where(Alert.subject.in_(list(subjects)))
    return (await session.scalars(query.order_by(Alert.raised_at))).all()


async def lock(session: AsyncSession, alert_id: uuid.UUID) -> Alert | None:
    return await session.scalar(
        select(Alert)
        .where(Alert.id == alert_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def due_notices(session: AsyncSession, now: datetime, limit: int) -> Sequence[Alert]:
    """Unacknowledged, unresolved alerts whose next notice is due, locked; one another
    sweep holds is skipped."""
    return (
        await session.scalars(
            select(Alert)
            .where(
                Alert.resolved_at.is_(None),
                Alert.acknowledged_at.is_(None),
                Alert.next_notice_at <= now,
            )
            .order_by(Alert.next_notice_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def acknowledge_if_not(
    session: AsyncSession, alert_id: uuid.UUID, values: dict[str, Any]
) -> Alert | None:
    """Acknowledge in one statement unless someone already has; None if they had."""
    return await session.scalar(
        update(Alert)
        .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
        .values(**values)
        .returning(Alert)
        .execution_options(populate_existing=True, synchronize_session=False)
    )


async def is_open(session: AsyncSession, alert_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Alert.id).where(
            Alert.id == alert_id, Alert.resolved_at.is_(None), Alert.acknowledged_at.is_(None)
        )
    )
    return found is not None


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None  # open, acknowledged, resolved, unresolved
    kind: str | None = None
    county_fips: str | None = None
    call_id: uuid.UUID | None = None


def _state(query: Any, state: str | None) -> Any:
    if state == "open":
        return query.where(Alert.resolved_at.is_(None), Alert.acknowledged_at.is_(None))
    if state == "acknowledged":
        return query.where(Alert.resolved_at.is_(None), Alert.acknowledged_at.is_not(None))
    if state == "resolved":
        return query.where(Alert.resolved_at.is_not(None))
    if state == "unresolved":
        return query.where(Alert.resolved_at.is_(None))
    return query


async def list_alerts(
    session: AsyncSession,
    where: AlertFilter,
    *,
    counties: Sequence[str] | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Alert]:
    """Alerts newest first. ``counties``: only alerts of those counties (a county-scoped
    key; statewide alerts are not theirs); None: every alert."""
    query = _state(select(Alert), where.state)
    if where.kind is not None:
        query = query.where(Alert.kind == where.kind)
    if where.county_fips is not None:
        query = query.where(Alert.counties.contains([where.county_fips]))
    if where.call_id is not None:
        query = query.where(Alert.call_id == where.call_id)
    if counties is not None:
        query = query.where(Alert.counties.overlap(list(counties)))
    if after is not None:
        query = query.where(tuple_(Alert.raised_at, Alert.id) < tuple_(*after))
    query = query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def latest_for_calls(session: AsyncSession, call_ids: Sequence[uuid.UUID]) -> Sequence[Alert]:
    if not call_ids:
        return []
    query = select(Alert).where(Alert.kind == "unfilled", Alert.call_id.in_(list(call_ids)))
    return (await session.scalars(query.order_by(Alert.raised_at))).all()


async def change_stamp(session: AsyncSession) -> object:
    """Changes whenever an alert is raised, told again, acknowledged or resolved."""
    row = (
        await session.execute(
            select(
                text("count(*)"),
                text("max(greatest(raised_at, last_notice_at, acknowledged_at, resolved_at))"),
            ).select_from(Alert)
        )
    ).first()
    return tuple(row) if row is not None else None
