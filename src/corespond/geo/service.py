"""Where a call is: its county from its point, else its place, else its agency's home."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from corespond.errors import InvalidParam, InvalidPayload
from corespond.geo.atlas import County, CountyAtlas, atlas_for
from corespond.geo.gazetteer import Gazetteer, OutOfArea, gazetteer_for

Method = Literal["point", "place", "agency", "outside", "unknown"]


@dataclass(frozen=True)
class Geography:
    """The service area: county polygons and the places in them."""

    atlas: CountyAtlas
    gazetteer: Gazetteer


@functools.cache
def geography_for(states: tuple[str, ...] = ("54",)) -> Geography:
    return Geography(atlas_for(states), gazetteer_for(states))


def require_county(atlas: CountyAtlas, name: str, field: str = "county") -> County:
    """The county a client named (name or 5-digit FIPS), else a 422 naming the field."""
    county = atlas.named(name)
    if county is None:
        raise InvalidPayload(
            f"unknown county {name!r}: give a county of the service area by name or, if the "
            "name is in several states, by its 5-digit FIPS code",
            [InvalidParam(name=field, reason=f"unknown county {name!r}")],
        )
    return county


@dataclass(frozen=True)
class CountyFinding:
    """A call's county and how it was found (``outside``: a point or address beyond the
    service area, reported as such and never snapped to the nearest county)."""

    fips: str | None
    name: str | None
    method: Method
    detail: str
    # The position the call is placed at: its own point, or its ZIP's or town's (else None).
    lat: float | None = None
    lon: float | None = None

    @property
    def needs_agency(self) -> bool:
        return self.method == "unknown"


def locate_call(
    geography: Geography,
    *,
    lat: float | None,
    lon: float | None,
    address: str | None,
    city: str | None,
    agency: str | None = None,
    agency_home: County | None = None,
) -> CountyFinding:
    """The county of a call, by the strongest evidence it carries.

    Coordinates of 0,0 are a CAD's "no fix", not a place, and are ignored (said in the
    detail); coordinates with latitude and longitude swapped are used swapped, also said.
    """
    note = ""
    if lat is not None and lon is not None:
        if lat == 0 and lon == 0:
            note = "coordinates 0,0 ignored; "
        else:
            county = geography.atlas.locate(lat, lon)
            if county is not None:
                return CountyFinding(
                    county.fips, county.name, "point", f"{lat:.5f},{lon:.5f}", lat, lon
                )
            swapped = geography.atlas.locate(lon, lat) if -90 <= lon <= 90 else None
            if swapped is not None:
                return CountyFinding(
                    swapped.fips,
                    swapped.name,
                    "point",
                    f"{lon:.5f},{lat:.5f} (latitude and longitude were swapped)",
                    lon,
                    lat,
                )
            return CountyFinding(
                None, None, "outside", f"{lat:.5f},{lon:.5f} is outside the service area"
            )
    place = geography.gazetteer.resolve(address, city)
    if isinstance(place, OutOfArea):
        return CountyFinding(None, None, "outside", note + place.reason)
    if place is not None and place.fips in geography.atlas.by_fips:
        county = geography.atlas.by_fips[place.fips]
        evidence = f"ZIP {place.matched}" if place.by == "zip" else f"city {place.matched}"
        return CountyFinding(
            county.fips, county.name, "place", note + evidence, place.lat, place.lon
        )
    if agency_home is not None:
        return CountyFinding(
            agency_home.fips, agency_home.name, "agency", f"{note}home county of {agency}"
        )
    return CountyFinding(None, None, "unknown", note + "no coordinates, known place or agency")
