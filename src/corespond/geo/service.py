"""Where a call is: its county from its point, else its place, else its agency's home."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from corespond.geo.atlas import County, CountyAtlas, atlas_for
from corespond.geo.gazetteer import Gazetteer, gazetteer_for

Method = Literal["point", "place", "agency", "outside", "unknown"]


@dataclass(frozen=True)
class Geography:
    """The service area: county polygons and the places in them."""

    atlas: CountyAtlas
    gazetteer: Gazetteer


@functools.cache
def geography_for(states: tuple[str, ...] = ("54",)) -> Geography:
    return Geography(atlas_for(states), gazetteer_for(states))


@dataclass(frozen=True)
class CountyFinding:
    """A call's county and how it was found (``outside``: a point beyond the service area,
    reported as such and never snapped to the nearest county)."""

    fips: str | None
    name: str | None
    method: Method
    detail: str


def locate_call(
    geography: Geography,
    *,
    lat: float | None,
    lon: float | None,
    address: str | None,
    city: str | None,
    agency: str | None,
    agency_home: County | None,
) -> CountyFinding:
    """The county of a call, by the strongest evidence it carries."""
    if lat is not None and lon is not None:
        county = geography.atlas.locate(lat, lon)
        if county is None:
            return CountyFinding(
                None, None, "outside", f"{lat:.5f},{lon:.5f} is outside the service area"
            )
        return CountyFinding(county.fips, county.name, "point", f"{lat:.5f},{lon:.5f}")
    place = geography.gazetteer.resolve(address, city)
    if place is not None and place.fips in geography.atlas.by_fips:
        county = geography.atlas.by_fips[place.fips]
        evidence = f"ZIP {place.matched}" if place.by == "zip" else f"city {place.matched}"
        return CountyFinding(county.fips, county.name, "place", evidence)
    if agency_home is not None:
        return CountyFinding(
            agency_home.fips, agency_home.name, "agency", f"home county of {agency}"
        )
    return CountyFinding(None, None, "unknown", "no coordinates, known place or agency")
