"""Places of the service area: ZIP codes and city names with their county and a point.

Built from the ``zipcodes`` package by ``tools/build_geo.py``. A ZIP code in the address is
the strongest hint; otherwise the city field, then a city name that ends the address text
("1 Capitol St, Charleston, WV"). A city name found in several counties resolves to the
county with most of its ZIP codes (ties: lowest FIPS).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

_ZIP = re.compile(r"\b(\d{5})(?:-\d{4})?\b")
_SPACES = re.compile(r"[^A-Z0-9 ]+")


@dataclass(frozen=True)
class Place:
    """Where a place name or ZIP code puts a call."""

    fips: str
    lat: float
    lon: float
    matched: str
    by: Literal["zip", "city"]


def _key(name: str) -> str:
    return " ".join(_SPACES.sub(" ", name.upper()).split())


class Gazetteer:
    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self._by_zip: dict[str, Place] = {}
        counts: dict[str, Counter[str]] = {}
        points: dict[tuple[str, str], tuple[float, float]] = {}
        for row in rows:
            self._by_zip[row["zip"]] = Place(row["fips"], row["lat"], row["lon"], row["zip"], "zip")
            for name in (row["city"], *row.get("also", ())):
                key = _key(name)
                counts.setdefault(key, Counter())[row["fips"]] += 1
                points.setdefault((key, row["fips"]), (row["lat"], row["lon"]))
        self._by_city: dict[str, Place] = {}
        for key, per_county in counts.items():
            fips = min(per_county, key=lambda f: (-per_county[f], f))
            lat, lon = points[(key, fips)]
            self._by_city[key] = Place(fips, lat, lon, key, "city")
        self._longest_city = max((len(k.split()) for k in self._by_city), default=1)

    def by_zip(self, code: str) -> Place | None:
        return self._by_zip.get(code)

    def by_city(self, name: str) -> Place | None:
        return self._by_city.get(_key(name))

    def resolve(self, address: str | None, city: str | None) -> Place | None:
        """The best place for an address and city: ZIP, then city, then the address's end."""
        for code in reversed(_ZIP.findall(address or "")):
            place = self.by_zip(code)
            if place is not None:
                return place
        if city:
            place = self.by_city(city)
            if place is not None:
                return place
        return self._city_in_address(address or "")

    def _city_in_address(self, address: str) -> Place | None:
        # "..., Charleston, WV 25301" / "400 Main St Logan": try the last few words.
        words = _key(_ZIP.sub(" ", address)).split()
        if words and words[-1] in ("WV", "WEST", "VIRGINIA"):
            words = words[:-2] if words[-2:] == ["WEST", "VIRGINIA"] else words[:-1]
        for size in range(min(self._longest_city, len(words)), 0, -1):
            place = self._by_city.get(" ".join(words[-size:]))
            if place is not None:
                return place
        return None


def load_rows(state: str) -> list[dict[str, Any]]:
    text = resources.files("corespond.geo").joinpath(f"data/places_{state}.json").read_text()
    rows: list[dict[str, Any]] = json.loads(text)["places"]
    return rows


@functools.cache
def gazetteer_for(states: tuple[str, ...]) -> Gazetteer:
    return Gazetteer(row for state in states for row in load_rows(state))
