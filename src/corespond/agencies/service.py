"""Agencies: registering them and finding an agency's home county."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import repository
from corespond.agencies.models import Agency
from corespond.agencies.names import agency_key
from corespond.errors import Conflict, InvalidPayload, NotFound
from corespond.geo.atlas import County, CountyAtlas
from corespond.geo.service import require_county


async def add_agency(
    session: AsyncSession, atlas: CountyAtlas, *, name: str, county: str, ori: str | None = None
) -> tuple[Agency, County]:
    """Register an agency with its home county (a name like 'Kanawha' or a FIPS code)."""
    home = require_county(atlas, county)
    clean = agency_key(name)
    if not clean or len(clean) > 100:
        raise InvalidPayload("agency name must be 1-100 characters")
    if await find(session, clean) is not None:
        raise Conflict(f"agency {clean!r} already exists")
    agency = Agency(name=clean, ori=ori.upper() if ori else None, home_county_fips=home.fips)
    session.add(agency)
    await session.flush()
    return agency, home


async def find(session: AsyncSession, name: str) -> Agency | None:
    """An agency by the name CAD used (punctuation and case ignored) or by its ORI."""
    key = agency_key(name)
    return await repository.by_name_or_ori(session, key, key.replace(" ", ""))


async def home_county(session: AsyncSession, atlas: CountyAtlas, name: str | None) -> County | None:
    """The home county of the agency CAD named, if the agency is registered."""
    if not name:
        return None
    agency = await find(session, name)
    return atlas.by_fips.get(agency.home_county_fips) if agency is not None else None


async def list_agencies(session: AsyncSession) -> Sequence[Agency]:
    return await repository.list_agencies(session)


async def auto_request_keys(session: AsyncSession) -> tuple[list[str], list[str]]:
    """The name keys and ORIs of the agencies that opted in to automatic requests."""
    agencies = await repository.auto_requesting(session)
    return [a.name for a in agencies], [a.ori for a in agencies if a.ori]


async def configure(
    session: AsyncSession,
    name: str,
    *,
    auto_request: bool | None = None,
    scene_gate: bool | None = None,
) -> Agency:
    """Change how matching treats an agency's calls."""
    agency = await find(session, name)
    if agency is None:
        raise NotFound(f"agency {agency_key(name)!r} is not registered")
    if auto_request is not None:
        agency.auto_request = auto_request
    if scene_gate is not None:
        agency.scene_gate = scene_gate
    await session.flush()
    return agency
