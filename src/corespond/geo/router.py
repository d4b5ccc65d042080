"""Counties and agencies: ``GET /v1/counties``, ``/v1/counties/{fips}``, ``/v1/agencies``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from corespond.agencies import service as agencies
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.errors import Forbidden, InvalidPayload, NotFound, Unauthorized, problem_responses
from corespond.geo.atlas import County
from corespond.geo.service import Geography
from corespond.roster import service as roster

router = APIRouter(tags=["geography"])


class CountyRef(BaseModel):
    fips: str
    name: str


class CountyOut(BaseModel):
    """A county of the service area."""

    fips: str = Field(description="5-digit FIPS code, e.g. 54039.")
    name: str
    state: str = Field(description="State FIPS code, e.g. 54.")
    adjacent: list[CountyRef] = Field(description="Counties sharing a boundary line.")
    provider: str | None = Field(
        default=None, description="Id of the county's primary provider (null: none yet)."
    )


class CountyDetail(CountyOut):
    geojson: dict[str, Any] = Field(description="The county as a GeoJSON Feature (WGS 84).")


class AgencyOut(BaseModel):
    name: str
    ori: str | None
    home_county: CountyRef
    auto_request: bool = Field(
        description="Eligible calls are offered a peer as soon as they are triaged."
    )
    scene_gate: bool = Field(
        description="Peers wait for the scene to be reported secure before going en route "
        "(off for agencies whose peers ride in the officer's unit)."
    )


def _geography(request: Request) -> Geography:
    geography: Geography = request.app.state.geography
    return geography


def _county_out(geography: Geography, county: County, providers: dict[str, str]) -> CountyOut:
    return CountyOut(
        fips=county.fips,
        name=county.name,
        state=county.state,
        adjacent=[
            CountyRef(fips=c.fips, name=c.name) for c in geography.atlas.neighbours(county.fips)
        ],
        provider=providers.get(county.fips),
    )


@router.get(
    "/v1/counties",
    response_model=list[CountyOut],
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_counties(request: Request, session: SessionDep, _: Authorized) -> list[CountyOut]:
    """Every county of the service area with its neighbours and primary provider."""
    geography = _geography(request)
    providers = await roster.county_providers(session)
    return [_county_out(geography, c, providers) for c in geography.atlas.counties]


@router.get(
    "/v1/counties/{fips}",
    response_model=CountyDetail,
    responses=problem_responses(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def get_county(
    request: Request,
    session: SessionDep,
    _: Authorized,
    fips: Annotated[str, Path(pattern=r"^[0-9]{5}$", description="5-digit FIPS code")],
) -> CountyDetail:
    """One county with its boundary as GeoJSON."""
    geography = _geography(request)
    county = geography.atlas.by_fips.get(fips)
    if county is None:
        raise NotFound(f"county {fips} is not in the service area")
    providers = await roster.county_providers(session)
    detail = _county_out(geography, county, providers).model_dump()
    return CountyDetail(**detail, geojson=county.geojson)


@router.get(
    "/v1/agencies",
    response_model=list[AgencyOut],
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_agencies(request: Request, session: SessionDep, _: Authorized) -> list[AgencyOut]:
    """Registered agencies with their home counties (the fallback for calls with no place)."""
    atlas = _geography(request).atlas
    out = []
    for agency in await agencies.list_agencies(session):
        home = atlas.by_fips.get(agency.home_county_fips)
        name = home.name if home is not None else agency.home_county_fips
        out.append(
            AgencyOut(
                name=agency.name,
                ori=agency.ori,
                home_county=CountyRef(fips=agency.home_county_fips, name=name),
                auto_request=agency.auto_request,
                scene_gate=agency.scene_gate,
            )
        )
    return out
