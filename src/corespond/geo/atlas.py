"""Counties from real boundaries: point -> county, adjacency, distances. Pure, no I/O
beyond reading the packaged GeoJSON once.

Polygons are the US Census cartographic boundaries (1:500k) built by ``tools/build_geo.py``.
Lookups use a shapely STRtree over prepared polygons; a point on a shared border is covered
by both counties and resolves to the lower FIPS code, so the answer is deterministic.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

EARTH_RADIUS_KM = 6371.0088
# Two counties are neighbours when their boundaries share a line, not a corner point or
# a sliver where the simplified outlines of four-county corners overlap.
MIN_SHARED_BORDER_DEGREES = 0.005  # about 500 m; generalised outlines meet in slivers


@dataclass(frozen=True)
class County:
    fips: str
    name: str
    state: str
    geometry: BaseGeometry = field(repr=False, compare=False)
    geojson: dict[str, Any] = field(repr=False, compare=False)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on a sphere of the Earth's mean radius.

    An approximation: ignores the Earth's flattening (error under 0.5 %) and roads, which is
    enough to rank peers by distance within a county and its neighbours.
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


class CountyAtlas:
    """The counties of the service area, with a spatial index and their adjacency."""

    def __init__(self, counties: Sequence[County]) -> None:
        self.counties = sorted(counties, key=lambda c: c.fips)
        self.by_fips = {c.fips: c for c in self.counties}
        names: dict[str, list[County]] = {}
        for county in self.counties:
            names.setdefault(county.name.upper(), []).append(county)
        # A name shared across states (Wayne, Jackson …) must be asked for by FIPS code.
        self._by_name = {name: found[0] for name, found in names.items() if len(found) == 1}
        geometries = [c.geometry for c in self.counties]
        for geometry in geometries:
            shapely.prepare(geometry)
        self._tree = STRtree(geometries)
        self.adjacency = self._adjacency()
        self.centres = {
            c.fips: (c.geometry.centroid.y, c.geometry.centroid.x) for c in self.counties
        }

    @classmethod
    def from_features(cls, features: Iterable[dict[str, Any]]) -> CountyAtlas:
        counties = []
        for feature in features:
            properties = feature["properties"]
            geometry = shape(feature["geometry"])
            if not geometry.is_valid:
                geometry = shapely.make_valid(geometry)
            counties.append(
                County(
                    fips=properties["fips"],
                    name=properties["name"],
                    state=properties["state"],
                    geometry=geometry,
                    geojson=feature,
                )
            )
        return cls(counties)

    def locate(self, lat: float, lon: float) -> County | None:
        """The county containing the point (border points: the lowest FIPS), else None."""
        point = Point(lon, lat)
        candidates = self._tree.query(point, predicate="covered_by")
        if len(candidates) == 0:
            return None
        return self.counties[int(min(candidates))]

    def named(self, name: str) -> County | None:
        """A county by name ('Kanawha', 'KANAWHA COUNTY') or 5-digit FIPS code."""
        key = name.strip().upper().removesuffix(" COUNTY").strip()
        return self.by_fips.get(key) or self._by_name.get(key)

    def neighbours(self, fips: str) -> list[County]:
        return [self.by_fips[f] for f in self.adjacency.get(fips, ())]

    def _adjacency(self) -> dict[str, tuple[str, ...]]:
        neighbours: dict[str, set[str]] = {c.fips: set() for c in self.counties}
        for index, county in enumerate(self.counties):
            for other_index in self._tree.query(county.geometry, predicate="intersects"):
                other = self.counties[int(other_index)]
                if other_index <= index:
                    continue
                shared = county.geometry.boundary.intersection(other.geometry.boundary)
                if shared.length >= MIN_SHARED_BORDER_DEGREES:
                    neighbours[county.fips].add(other.fips)
                    neighbours[other.fips].add(county.fips)
        return {fips: tuple(sorted(found)) for fips, found in neighbours.items()}


def load_features(state: str) -> list[dict[str, Any]]:
    text = resources.files("corespond.geo").joinpath(f"data/counties_{state}.geojson").read_text()
    features: list[dict[str, Any]] = json.loads(text)["features"]
    return features


@functools.cache
def atlas_for(states: tuple[str, ...]) -> CountyAtlas:
    """The atlas of these states (cached: polygons are read and indexed once per process)."""
    features = [f for state in states for f in load_features(state)]
    return CountyAtlas.from_features(features)
