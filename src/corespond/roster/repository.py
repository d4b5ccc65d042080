"""Every query of the roster domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.roster.models import Credential, Peer, Provider, ProviderCounty, Shift, ShiftChange

_LIVE_AT = text("tstzrange(shift.starts_at, shift.ends_at, '[)') @> CAST(:at AS timestamptz)")


@dataclass(frozen=True)
class ShiftFilter:
    peer_id: uuid.UUID | None = None
    provider_id: str | None = None
    county_fips: str | None = None
    starts_from: datetime | None = None
    starts_to: datetime | None = None
    include_cancelled: bool = False


async def list_providers(session: AsyncSession) -> Sequence[Provider]:
    return (await session.scalars(select(Provider).order_by(Provider.id))).all()


async def provider_counties(
    session: AsyncSession, provider_id: str | None = None
) -> Sequence[ProviderCounty]:
    query = select(ProviderCounty).order_by(ProviderCounty.county_fips)
    if provider_id is not None:
        query = query.where(ProviderCounty.provider_id == provider_id)
    return (await session.scalars(query)).all()


async def county_provider_rows(session: AsyncSession, county_fips: str) -> Sequence[ProviderCounty]:
    return (
        await session.scalars(
            select(ProviderCounty).where(ProviderCounty.county_fips == county_fips)
        )
    ).all()


async def set_status_if(
    session: AsyncSession, peer_id: uuid.UUID, expected: str, status: str, at: datetime
) -> bool:
    changed = await session.scalar(
        update(Peer)
        .where(Peer.id == peer_id, Peer.status == expected)
        .values(status=status, status_changed_at=at)
        .returning(Peer.id)
        .execution_options(synchronize_session=False)
    )
    return changed is not None


async def primary_providers(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(
        select(ProviderCounty.county_fips, ProviderCounty.provider_id).where(
            ProviderCounty.role == "primary"
        )
    )
    return {str(fips): str(provider) for fips, provider in rows.all()}


async def peer_ids_named(
    session: AsyncSession, names: Sequence[str], providers: Sequence[str]
) -> dict[str, uuid.UUID]:
    rows = await session.execute(
        select(Peer.display_name, Peer.id)
        .where(Peer.display_name.in_(names), Peer.provider_id.in_(providers))
        .order_by(Peer.created_at.desc())
    )
    return {str(name): peer_id for name, peer_id in rows.all()}


async def peers_of_provider(session: AsyncSession, provider_id: str) -> Sequence[Peer]:
    return (await session.scalars(select(Peer).where(Peer.provider_id == provider_id))).all()


async def list_peers(
    session: AsyncSession,
    *,
    allowed: Collection[str] | None,
    provider_id: str | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Peer]:
    query = select(Peer)
    if allowed is not None:
        query = query.where(Peer.provider_id.in_(list(allowed)))
    if provider_id is not None:
        query = query.where(Peer.provider_id == provider_id)
    if status is not None:
        query = query.where(Peer.status == status)
    if after is not None:
        query = query.where(tuple_(Peer.created_at, Peer.id) > tuple_(*after))
    return (await session.scalars(query.order_by(Peer.created_at, Peer.id).limit(limit))).all()


async def credentials_of(
    session: AsyncSession, peer_ids: Sequence[uuid.UUID]
) -> Sequence[Credential]:
    if not peer_ids:
        return []
    return (
        await session.scalars(
            select(Credential).where(Credential.peer_id.in_(peer_ids)).order_by(Credential.kind)
        )
    ).all()


async def credential(session: AsyncSession, peer_id: uuid.UUID, kind: str) -> Credential | None:
    return await session.scalar(
        select(Credential).where(Credential.peer_id == peer_id, Credential.kind == kind)
    )


async def credentials_expiring_before(
    session: AsyncSession, before: datetime, allowed: Collection[str] | None
) -> Sequence[tuple[Credential, Peer]]:
    query = (
        select(Credential, Peer)
        .join(Peer, Peer.id == Credential.peer_id)
        .where(Credential.expires_at.is_not(None), Credential.expires_at <= before)
        .order_by(Credential.expires_at)
    )
    if allowed is not None:
        query = query.where(Peer.provider_id.in_(list(allowed)))
    return [(c, p) for c, p in (await session.execute(query)).all()]


async def overlapping_shift(
    session: AsyncSession,
    shift_id: uuid.UUID,
    peer_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime,
) -> Shift | None:
    return await session.scalar(
        select(Shift)
        .where(
            Shift.peer_id == peer_id,
            Shift.cancelled_at.is_(None),
            Shift.id != shift_id,
            Shift.starts_at < ends_at,
            Shift.ends_at > starts_at,
        )
        .limit(1)
    )


async def shift_by_key(session: AsyncSession, provider_id: str, key: str) -> Shift | None:
    return await session.scalar(
        select(Shift).where(Shift.provider_id == provider_id, Shift.external_key == key)
    )


async def shift_changes(session: AsyncSession, shift_id: uuid.UUID) -> Sequence[ShiftChange]:
    return (
        await session.scalars(
            select(ShiftChange).where(ShiftChange.shift_id == shift_id).order_by(ShiftChange.id)
        )
    ).all()


def _shift_query(where: ShiftFilter, provider_scope: str | None) -> Select[Shift]:
    query = select(Shift)
    if provider_scope is not None:
        query = query.where(Shift.provider_id == provider_scope)
    if where.peer_id is not None:
        query = query.where(Shift.peer_id == where.peer_id)
    if where.provider_id is not None:
        query = query.where(Shift.provider_id == where.provider_id)
    if where.county_fips is not None:
        query = query.where(Shift.counties.contains([where.county_fips]))
    if where.starts_from is not None:
        query = query.where(Shift.ends_at > where.starts_from)
    if where.starts_to is not None:
        query = query.where(Shift.starts_at < where.starts_to)
    if not where.include_cancelled:
        query = query.where(Shift.cancelled_at.is_(None))
    return query


async def list_shifts(
    session: AsyncSession,
    where: ShiftFilter,
    *,
    provider_scope: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Shift]:
    query = _shift_query(where, provider_scope)
    if after is not None:
        query = query.where(tuple_(Shift.starts_at, Shift.id) > tuple_(*after))
    return (await session.scalars(query.order_by(Shift.starts_at, Shift.id).limit(limit))).all()


async def live_shifts_at(
    session: AsyncSession, county_fips: str, at: datetime
) -> Sequence[tuple[Shift, Peer]]:
    """Uses the GiST range index and the GIN index on counties."""
    rows = await session.execute(
        select(Shift, Peer)
        .join(Peer, Peer.id == Shift.peer_id)
        .where(
            Shift.cancelled_at.is_(None),
            Shift.counties.contains([county_fips]),
            _LIVE_AT.bindparams(at=at),
        )
        .order_by(Peer.display_name)
    )
    return [(shift, peer) for shift, peer in rows.all()]


def _live_starting_after(county_fips: str, after: datetime) -> ColumnElement[bool]:
    return and_(
        Shift.cancelled_at.is_(None),
        Shift.counties.contains([county_fips]),
        Shift.starts_at > after,
    )


async def shifts_starting_after(
    session: AsyncSession, county_fips: str, after: datetime, limit: int
) -> Sequence[tuple[Shift, Peer]]:
    rows = await session.execute(
        select(Shift, Peer)
        .join(Peer, Peer.id == Shift.peer_id)
        .where(_live_starting_after(county_fips, after))
        .order_by(Shift.starts_at)
        .limit(limit)
    )
    return [(shift, peer) for shift, peer in rows.all()]


async def first_start_after(
    session: AsyncSession, county_fips: str, after: datetime
) -> datetime | None:
    found: datetime | None = await session.scalar(
        select(func.min(Shift.starts_at)).where(_live_starting_after(county_fips, after))
    )
    return found


async def lock_provider_imports(session: AsyncSession, provider_id: str) -> None:
    """One import per provider at a time (a transaction-scoped advisory lock)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"roster-import:{provider_id}"},
    )


async def live_shifts_keyed(
    session: AsyncSession, provider_id: str, prefix: str, start: datetime, end: datetime
) -> Sequence[Shift]:
    """A provider's live shifts whose key starts with ``prefix`` and that start in
    ``[start, end)`` (the occurrences of one recurring calendar event)."""
    return (
        await session.scalars(
            select(Shift)
            .where(
                Shift.provider_id == provider_id,
                Shift.cancelled_at.is_(None),
                Shift.external_key.startswith(prefix, autoescape=True),
                Shift.starts_at >= start,
                Shift.starts_at < end,
            )
            .order_by(Shift.starts_at)
        )
    ).all()
