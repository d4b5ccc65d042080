"""The resource directory: services per county and kind, for peers to refer people to, and
the organizations behind them (whom a person's consent may name)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.directory import repository
from corespond.directory.models import KINDS, DirectoryOrganization, DirectoryService
from corespond.errors import InvalidParam, InvalidPayload, NotFound

KIND_LABELS = {
    "detox": "Detox",
    "inpatient": "Inpatient treatment",
    "mat": "MOUD / MAT prescriber",
    "outpatient": "Outpatient",
    "recovery_housing": "Recovery housing",
    "start": "START (Sobriety Treatment and Recovery Teams)",
    "qrt": "Quick Response Team",
    "va": "VA (veterans)",
    "harm_reduction": "Harm reduction (naloxone, syringe services)",
}


def require_kind(kind: str, field: str = "kind") -> str:
    if kind not in KINDS:
        raise InvalidPayload(
            f"{field}: {kind!r} is not a kind of service; one of {', '.join(KINDS)}",
            [InvalidParam(name=field, reason=f"one of {', '.join(KINDS)}")],
        )
    return kind


async def organization(session: AsyncSession, organization_id: str) -> DirectoryOrganization | None:
    """A directory organization by its HSDS id, if imported."""
    return await session.get(DirectoryOrganization, organization_id)


async def get_service(
    session: AsyncSession, service_id: uuid.UUID
) -> tuple[DirectoryService, DirectoryOrganization]:
    """A directory service and its organization, else ``NotFound``."""
    found = await repository.services_by_id(session, [service_id])
    if service_id not in found:
        raise NotFound(f"directory service {service_id} not found")
    return found[service_id]


async def services_by_id(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[DirectoryService, DirectoryOrganization]]:
    return await repository.services_by_id(session, ids)


async def search(
    session: AsyncSession,
    *,
    county: str | None = None,
    kind: str | None = None,
    text: str | None = None,
    organization_id: str | None = None,
    include_inactive: bool = False,
    limit: int = 50,
) -> Sequence[tuple[DirectoryService, DirectoryOrganization]]:
    """Services serving ``county`` (FIPS) of ``kind``, whose name, organization or town holds
    ``text``; active ones only unless asked; by name."""
    return await repository.search(
        session,
        county=county,
        kind=kind,
        text=text,
        organization=organization_id,
        active_only=not include_inactive,
        limit=limit,
    )
