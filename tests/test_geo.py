"""Geography: real county boundaries, places, agencies, and the county of each call."""

from __future__ import annotations

import math

import httpx
import pytest
from shapely.geometry import Point

from corespond.db import Database
from corespond.geo.atlas import haversine_km
from corespond.geo.service import geography_for, locate_call
from tests.conftest import Source, make_key, serve_agency
from tests.helpers import cad_event, encode, signed_headers
from tests.test_ingest_api import assert_problem, fold

GEO = geography_for(("54",))
ATLAS = GEO.atlas

TOWNS = [
    ("Huntington", 38.4192, -82.4452, "54011", "Cabell"),
    ("Charleston", 38.3498, -81.6326, "54039", "Kanawha"),
    ("Logan", 37.8487, -81.9935, "54045", "Logan"),
    ("Bluefield", 37.2698, -81.2223, "54055", "Mercer"),
    ("Princeton", 37.3662, -81.1026, "54055", "Mercer"),
    ("Morgantown", 39.6295, -79.9559, "54061", "Monongalia"),
    ("Beckley", 37.7782, -81.1882, "54081", "Raleigh"),
    ("Parkersburg", 39.2667, -81.5615, "54107", "Wood"),
    ("Fayetteville", 38.0529, -81.1040, "54019", "Fayette"),
    ("Point Pleasant", 38.8445, -82.1371, "54053", "Mason"),
    ("Wheeling", 40.0640, -80.7209, "54069", "Ohio"),
]
ACROSS_THE_LINE = [
    ("Gallipolis, Ohio", 38.8098, -82.2024),
    ("Ashland, Kentucky", 38.4784, -82.6379),
    ("Bluefield, Virginia", 37.2526, -81.2712),
    ("Waynesburg, Pennsylvania", 39.8965, -80.1792),
    ("Cumberland, Maryland", 39.6529, -78.7625),
    ("Atlantic Ocean", 37.0, -70.0),
]


@pytest.mark.parametrize(("town", "lat", "lon", "fips", "name"), TOWNS)
def test_towns_fall_in_their_county(
    town: str, lat: float, lon: float, fips: str, name: str
) -> None:
    county = ATLAS.locate(lat, lon)
    assert county is not None, town
    assert (county.fips, county.name) == (fips, name)


@pytest.mark.parametrize(("place", "lat", "lon"), ACROSS_THE_LINE)
def test_points_across_the_state_line_are_outside(place: str, lat: float, lon: float) -> None:
    assert ATLAS.locate(lat, lon) is None, place


def test_all_55_counties_are_present_and_valid() -> None:
    assert len(ATLAS.counties) == 55
    assert len({c.fips for c in ATLAS.counties}) == 55
    assert all(c.fips.startswith("54") and c.geometry.is_valid for c in ATLAS.counties)
    assert all(c.geometry.area > 0 for c in ATLAS.counties)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Cabell", "Wayne"), ("Kanawha", "Putnam"), ("Mercer", "Raleigh"), ("Wood", "Jackson")],
)
def test_known_neighbours_are_adjacent(a: str, b: str) -> None:
    first, second = ATLAS.named(a), ATLAS.named(b)
    assert first is not None
    assert second is not None
    assert second.fips in ATLAS.adjacency[first.fips]
    assert first.fips in ATLAS.adjacency[second.fips]


def test_counties_that_only_meet_at_a_corner_or_not_at_all_are_not_adjacent() -> None:
    kanawha, nicholas, cabell, mercer = (
        ATLAS.named(n) for n in ("Kanawha", "Nicholas", "Cabell", "Mercer")
    )
    assert kanawha
    assert nicholas
    assert cabell
    assert mercer
    assert nicholas.fips not in ATLAS.adjacency[kanawha.fips]
    assert mercer.fips not in ATLAS.adjacency[cabell.fips]


def test_a_point_on_a_shared_border_resolves_to_the_lower_fips() -> None:
    cabell, wayne = ATLAS.named("Cabell"), ATLAS.named("Wayne")
    assert cabell
    assert wayne
    border = cabell.geometry.boundary.intersection(wayne.geometry.boundary)
    point = border.interpolate(0.5, normalized=True)
    assert isinstance(point, Point)
    found = [ATLAS.locate(point.y, point.x) for _ in range(3)]
    assert {c.fips for c in found if c} == {min(cabell.fips, wayne.fips)}


def test_haversine_distance_is_about_right() -> None:
    # Huntington to Charleston: about 71 km in a straight line.
    assert math.isclose(haversine_km(38.4192, -82.4452, 38.3498, -81.6326), 71.2, abs_tol=1.0)
    assert haversine_km(38.0, -81.0, 38.0, -81.0) == 0


@pytest.mark.parametrize(
    ("address", "city", "fips", "by"),
    [
        ("400 Main St, Logan, WV 25601", None, "54045", "zip"),
        ("1 Capitol St", "Charleston", "54039", "city"),
        ("5 Elk River Rd", "Elkview", "54039", "city"),
        ("200 Mercer St, Princeton WV", None, "54055", "city"),
        ("100 Main St 26505", "Charleston", "54061", "zip"),  # the ZIP beats the city
    ],
)
def test_places_resolve_by_zip_then_city(
    address: str, city: str | None, fips: str, by: str
) -> None:
    place = GEO.gazetteer.resolve(address, city)
    assert place is not None
    assert (place.fips, place.by) == (fips, by)


def test_unknown_places_resolve_to_nothing() -> None:
    assert GEO.gazetteer.resolve("12 Main St", "Atlantis") is None
    assert GEO.gazetteer.resolve(None, None) is None


def test_call_county_uses_point_then_place_then_agency_and_never_snaps() -> None:
    logan = ATLAS.named("Logan")
    by_point = locate_call(
        GEO, lat=38.3498, lon=-81.6326, address=None, city="Logan", agency=None, agency_home=logan
    )
    assert (by_point.fips, by_point.method) == ("54039", "point")
    by_place = locate_call(
        GEO, lat=None, lon=None, address="1 Main St", city="Beckley", agency="X", agency_home=logan
    )
    assert (by_place.fips, by_place.method) == ("54081", "place")
    by_agency = locate_call(
        GEO, lat=None, lon=None, address="RT 10", city=None, agency="LOGAN SO", agency_home=logan
    )
    assert (by_agency.fips, by_agency.method) == ("54045", "agency")
    outside = locate_call(
        GEO,
        lat=38.8098,
        lon=-82.2024,
        address=None,
        city="Huntington",
        agency=None,
        agency_home=logan,
    )
    assert (outside.fips, outside.method) == (None, "outside")
    assert "outside the service area" in outside.detail
    unknown = locate_call(
        GEO, lat=None, lon=None, address=None, city=None, agency=None, agency_home=None
    )
    assert unknown.method == "unknown"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_counties_api_lists_counties_with_neighbours(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "peer")
    counties = (await client.get("/v1/counties", headers=bearer(key))).json()
    assert len(counties) == 55
    cabell = next(c for c in counties if c["fips"] == "54011")
    assert cabell["name"] == "Cabell"
    assert "54099" in [n["fips"] for n in cabell["adjacent"]]
    assert cabell["provider"] is None  # no provider serves it yet
    from tests.test_roster import seed

    await seed(db, "recovery-point", county="Cabell")
    counties = (await client.get("/v1/counties", headers=bearer(key))).json()
    assert next(c for c in counties if c["fips"] == "54011")["provider"] == "recovery-point"
    detail = (await client.get("/v1/counties/54039", headers=bearer(key))).json()
    assert detail["geojson"]["type"] == "Feature"
    assert detail["geojson"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert_problem(await client.get("/v1/counties/39001", headers=bearer(key)), 404)
    assert_problem(await client.get("/v1/counties/kanawha", headers=bearer(key)), 422)
    assert_problem(await client.get("/v1/counties"), 401)


async def test_point_less_call_gets_its_county_from_its_city_then_its_agency(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    from corespond.agencies.service import add_agency

    async with db.sessionmaker() as session, session.begin():
        await add_agency(session, ATLAS, name="Logan County Sheriff", county="Logan")
    await serve_agency(db, source.id, "LOGAN COUNTY SHERIFF", "54045")
    by_city = cad_event(
        "g1", incident_number="G-1", location={"address": "10 Main St", "city": "Beckley"}
    )
    by_agency = cad_event(
        "g2",
        incident_number="G-2",
        agency="LOGAN COUNTY SHERIFF",
        location={"address": "RT 10 NEAR MILE MARKER 12"},
    )
    outside = cad_event(
        "g3",
        incident_number="G-3",
        location={"address": "1 River Rd", "city": "Huntington", "lat": 38.8098, "lon": -82.2024},
    )
    for document in (by_city, by_agency, outside):
        body = encode(document)
        url = "/v1/cad/kanawha-911/events"
        await client.post(url, content=body, headers=signed_headers(source.secret, body))
    await fold(db)
    key = await make_key(db, "supervisor")
    calls = {
        c["incident_number"]: c["county"]
        for c in (await client.get("/v1/calls", headers=bearer(key))).json()["items"]
    }
    assert calls["G-1"] == {
        "fips": "54081",
        "name": "Raleigh",
        "method": "place",
        "detail": "city BECKLEY",
    }
    assert calls["G-2"]["fips"] == "54045"
    assert calls["G-2"]["method"] == "agency"
    assert calls["G-3"]["fips"] is None
    assert calls["G-3"]["method"] == "outside"


async def test_agencies_api_lists_home_counties(client: httpx.AsyncClient, db: Database) -> None:
    from corespond.agencies.service import add_agency

    async with db.sessionmaker() as session, session.begin():
        await add_agency(session, ATLAS, name="bluefield pd", county="54055", ori="wv0270100")
    key = await make_key(db, "dispatcher")
    [agency] = (await client.get("/v1/agencies", headers=bearer(key))).json()
    assert agency == {
        "name": "BLUEFIELD PD",
        "ori": "WV0270100",
        "home_county": {"fips": "54055", "name": "Mercer"},
        "auto_request": False,
        "scene_gate": True,
    }


async def test_agency_with_unknown_county_or_twice_is_refused(db: Database) -> None:
    from corespond.agencies.service import add_agency
    from corespond.errors import Conflict, InvalidPayload

    async with db.sessionmaker() as session, session.begin():
        with pytest.raises(InvalidPayload):
            await add_agency(session, ATLAS, name="X PD", county="Atlantis")
        await add_agency(session, ATLAS, name="Y PD", county="Wood")
        with pytest.raises(Conflict):
            await add_agency(session, ATLAS, name="y pd", county="Wood")


@pytest.mark.parametrize(
    ("address", "city"),
    [
        ("1 Main St, Ashland, KY 41101", "ASHLAND"),
        ("1 Main St, Bluefield, VA 24605", "BLUEFIELD"),
        ("1 Main St, Cincinnati, OH", None),
        ("1 Main St 45631", "Gallipolis"),
    ],
)
def test_an_address_in_another_state_is_outside_not_a_county_of_ours(
    address: str, city: str | None
) -> None:
    finding = locate_call(GEO, lat=None, lon=None, address=address, city=city)
    assert (finding.fips, finding.method) == (None, "outside")


@pytest.mark.parametrize(
    ("address", "city", "fips"),
    [
        ("PO BOX 25301", "LOGAN", "54045"),  # a box number is not a ZIP code
        ("25601 RT 10", "CHARLESTON", "54039"),  # nor is a house number
        ("1 Main St 257011234", None, "54011"),  # ZIP+4 without the hyphen
        ("1 Capitol St, Charleston, W.Va.", None, "54039"),
        ("1 Capitol St, Charleston, WV, USA", None, "54039"),
        ("1 Main St", "ST. ALBANS", "54039"),
        ("1 Main St", "Mt Hope", "54019"),
        ("1 Main St", "FT GAY", "54099"),
    ],
)
def test_addresses_read_the_way_dispatch_writes_them(
    address: str, city: str | None, fips: str
) -> None:
    finding = locate_call(GEO, lat=None, lon=None, address=address, city=city)
    assert (finding.fips, finding.method) == (fips, "place")


@pytest.mark.parametrize(
    "address", ["MAIN ST & JEFFERSON", "100 N WASHINGTON", "KANAWHA BLVD / BROOKS"]
)
def test_street_names_are_not_read_as_towns(address: str) -> None:
    logan = ATLAS.named("Logan")
    finding = locate_call(
        GEO, lat=None, lon=None, address=address, city="CHAS", agency="LCSO", agency_home=logan
    )
    assert finding.method == "agency"


def test_no_fix_and_swapped_coordinates_are_said_not_silently_used() -> None:
    no_fix = locate_call(GEO, lat=0, lon=0, address="1 Main St, Logan, WV 25601", city=None)
    assert (no_fix.fips, no_fix.method) == ("54045", "place")
    assert "0,0 ignored" in no_fix.detail
    swapped = locate_call(GEO, lat=-81.9935, lon=37.8487, address=None, city=None)
    assert (swapped.fips, swapped.method) == ("54045", "point")
    assert "swapped" in swapped.detail


async def test_agency_found_despite_punctuation_or_by_ori(db: Database) -> None:
    from corespond.agencies.service import add_agency, find

    async with db.sessionmaker() as session, session.begin():
        await add_agency(session, ATLAS, name="Bluefield PD", county="Mercer", ori="WV0270100")
        for written in ("BLUEFIELD P.D.", "bluefield pd", "WV0270100"):
            found = await find(session, written)
            assert found is not None, written
            assert found.name == "BLUEFIELD PD"


@pytest.mark.parametrize(
    ("address", "city", "fips"),
    [
        ("1 Capitol St., Charleston, W.Va.", None, "54039"),  # runs of punctuation
        ("1 Capitol St,, Charleston,, WV.", None, "54039"),
    ],
)
def test_punctuation_runs_do_not_shift_the_state_cut(
    address: str, city: str | None, fips: str
) -> None:
    finding = locate_call(GEO, lat=None, lon=None, address=address, city=city)
    assert (finding.fips, finding.method) == (fips, "place")
