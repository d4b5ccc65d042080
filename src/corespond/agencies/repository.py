"""Every query of the agencies domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies.models import Agency


async def by_name_or_ori(session: AsyncSession, name: str, ori: str) -> Agency | None:
    return await session.scalar(
        select(Agency).where(or_(Agency.name == name, Agency.ori == ori)).limit(1)
    )


async def list_agencies(session: AsyncSession) -> Sequence[Agency]:
    return (await session.scalars(select(Agency).order_by(Agency.name))).all()


async def auto_requesting(session: AsyncSession) -> Sequence[Agency]:
    return (await session.scalars(select(Agency).where(Agency.auto_request))).all()
