"""Every query of the resource directory."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.directory.models import DirectoryOrganization, DirectoryService


async def service_by_hsds_id(session: AsyncSession, hsds_id: str) -> DirectoryService | None:
    found: DirectoryService | None = await session.scalar(
        select(DirectoryService).where(DirectoryService.hsds_id == hsds_id)
    )
    return found


async def search(
    session: AsyncSession,
    *,
    county: str | None,
    kind: str | None,
    text: str | None,
    organization: str | None,
    active_only: bool,
    limit: int,
) -> Sequence[tuple[DirectoryService, DirectoryOrganization]]:
    query = select(DirectoryService, DirectoryOrganization).join(
        DirectoryOrganization, DirectoryOrganization.id == DirectoryService.organization_id
    )
    if county is not None:
        query = query.where(DirectoryService.counties.contains([county]))
    if kind is not None:
        query = query.where(DirectoryService.kinds.contains([kind]))
    if organization is not None:
        query = query.where(DirectoryService.organization_id == organization)
    if active_only:
        query = query.where(DirectoryService.status == "active")
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                DirectoryService.name.ilike(pattern, escape="\\"),
                DirectoryOrganization.name.ilike(pattern, escape="\\"),
                DirectoryService.city.ilike(pattern, escape="\\"),
            )
        )
    query = query.order_by(func.lower(DirectoryService.name), DirectoryService.id).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def services_by_id(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[DirectoryService, DirectoryOrganization]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(DirectoryService, DirectoryOrganization)
        .join(DirectoryOrganization, DirectoryOrganization.id == DirectoryService.organization_id)
        .where(DirectoryService.id.in_(ids))
    )
    return {row[0].id: (row[0], row[1]) for row in rows.all()}


async def lock_imports(session: AsyncSession) -> None:
    """Hold the directory's import lock until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('corespond-directory-import'))")
    )
