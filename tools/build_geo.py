"""Build the geography shipped with corespond: a state's county polygons and its places.

    .venv/bin/pip install -e '.[geo-build]'
    .venv/bin/python tools/build_geo.py --state 54            # West Virginia (the default)
    .venv/bin/python tools/build_geo.py --state 39 --state 21  # add Ohio and Kentucky

For each state FIPS code this writes, under src/corespond/geo/data/:

* counties_<FIPS>.geojson: every county of the state from the US Census cartographic
  boundary file (cb_2016_us_county_500k, public domain) that the plotly-geo package ships,
  read with pyshp; properties fips (5 digits), name, state; coordinates rounded to 1e-5
  degrees (about 1 m).
* places_<FIPS>.json: the state's ZIP codes from the zipcodes package, each with its city,
  the other city names accepted for it, its county FIPS and a point.

The service reads only these files; plotly-geo, pyshp and zipcodes are build-time tools.
Set CORESPOND_GEO_STATES to the FIPS codes the service should load.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src" / "corespond" / "geo" / "data"
STATE_ABBREVIATIONS = {
    "21": "KY", "24": "MD", "39": "OH", "42": "PA", "51": "VA", "54": "WV",
}  # fmt: skip


def _round(coords: Any) -> Any:
    if isinstance(coords[0], (int, float)):
        return [round(coords[0], 5), round(coords[1], 5)]
    return [_round(c) for c in coords]


def build_counties(state: str) -> dict[str, str]:
    """Write counties_<state>.geojson; returns county name -> FIPS."""
    import _plotly_geo
    import shapefile

    source = Path(_plotly_geo.__file__).parent / "package_data" / "cb_2016_us_county_500k"
    reader = shapefile.Reader(str(source))
    features = []
    for shape_record in reader.iterShapeRecords():
        record = shape_record.record.as_dict()
        if record["STATEFP"] != state:
            continue
        geometry = shape_record.shape.__geo_interface__
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "fips": record["GEOID"],
                    "name": record["NAME"],
                    "state": state,
                },
                "geometry": {
                    "type": geometry["type"],
                    "coordinates": _round(geometry["coordinates"]),
                },
            }
        )
    features.sort(key=lambda f: f["properties"]["fips"])
    if not features:
        sys.exit(f"no counties for state FIPS {state!r}")
    document = {
        "type": "FeatureCollection",
        "source": "US Census Bureau cartographic boundary file cb_2016_us_county_500k "
        "(public domain), via the plotly-geo package",
        "features": features,
    }
    path = OUT / f"counties_{state}.geojson"
    path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"{path.name}: {len(features)} counties, {path.stat().st_size // 1024} KiB")
    return {f["properties"]["name"].upper(): f["properties"]["fips"] for f in features}


def build_places(state: str, counties: dict[str, str]) -> None:
    """Write places_<state>.json. A ZIP's county is the polygon its point falls in (labels
    in the source are sometimes blank or another state's); the label is used only when the
    point is outside the state. Every dropped or corrected row is reported."""
    import zipcodes

    from corespond.geo.atlas import CountyAtlas

    abbreviation = STATE_ABBREVIATIONS.get(state)
    if abbreviation is None:
        sys.exit(f"add the postal abbreviation of state {state} to STATE_ABBREVIATIONS")
    geojson = json.loads((OUT / f"counties_{state}.geojson").read_text())
    atlas = CountyAtlas.from_features(geojson["features"])
    places = []
    for row in zipcodes.filter_by(state=abbreviation):
        label = row["county"].upper().removesuffix(" COUNTY").removesuffix(" CITY")
        if not row["lat"] or not row["long"]:
            print(f"  dropped {row['zip_code']} {row['city']}: no point")
            continue
        inside = atlas.locate(float(row["lat"]), float(row["long"]))
        fips = inside.fips if inside is not None else counties.get(label)
        if fips is None:
            print(f"  dropped {row['zip_code']} {row['city']}: county {label!r} unknown")
            continue
        if counties.get(label) != fips:
            moved_to = inside.name if inside is not None else "?"
            print(f"  {row['zip_code']} {row['city']}: county {label or '(blank)'} -> {moved_to}")
        places.append(
            {
                "zip": row["zip_code"],
                "city": row["city"].upper(),
                "also": sorted({c.upper() for c in row.get("acceptable_cities") or []}),
                "fips": fips,
                "lat": round(float(row["lat"]), 4),
                "lon": round(float(row["long"]), 4),
                "active": bool(row.get("active", True)),
            }
        )
    places.sort(key=lambda p: p["zip"])
    document = {
        "source": "zipcodes package (US ZIP codes with city, county and coordinates)",
        "state": state,
        "places": places,
    }
    path = OUT / f"places_{state}.json"
    path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"{path.name}: {len(places)} ZIP codes")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--state", action="append", help="state FIPS code (repeatable); default 54")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for state in args.state or ["54"]:
        build_places(state, build_counties(state))


if __name__ == "__main__":
    main()
