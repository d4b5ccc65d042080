"""Places of the service area: ZIP codes and city names with their county and a point.

Built from the ``zipcodes`` package by ``tools/build_geo.py``. How an address is read:

1. a ZIP code ending the address ("…, WV 25301", "25301-1234", "253011234") is the strongest
   hint; a 5-digit number elsewhere (a house number, "PO BOX 25301") is not a ZIP;
2. a state other than the service area's, or a ZIP code from outside it, makes the address
   *out of area*: the call is reported as outside, never given a county of ours;
3. the city field;
4. a city named after the last comma of the address ("1 Capitol St, Charleston, WV");
   street names and intersections ("MAIN ST & JEFFERSON") are never read as towns.

A city name found in several counties resolves to the county with most ZIP codes that use it
as their main name, then most that accept it, then the lowest FIPS.
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

_TRAILING_ZIP = re.compile(r"(?<![#\d])(\d{5})(?:-?\d{4})?$")
_NOT_ZIP_BEFORE = re.compile(r"(?:\bBOX|\bAPT|\bUNIT|\bSTE|\bSUITE|#)\s*$")
_PUNCTUATION = re.compile(r"[^A-Z0-9 ]+")
_ONE_PUNCTUATION = re.compile(r"[^A-Z0-9 ]")
_PREFIXES = {"ST": "SAINT", "MT": "MOUNT", "FT": "FORT", "PT": "POINT"}
_DIRECTIONS = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
_COUNTRY = ("USA", "US", "UNITED STATES")
# Postal abbreviations and names of the states around the service area (and the rest, short).
_STATES = {
    "WV": "54", "WVA": "54", "W VA": "54", "WEST VIRGINIA": "54",
    "OH": "39", "OHIO": "39", "KY": "21", "KENTUCKY": "21", "VA": "51", "VIRGINIA": "51",
    "PA": "42", "PENNSYLVANIA": "42", "MD": "24", "MARYLAND": "24", "NC": "37", "TN": "47",
    "DC": "11", "NY": "36", "NJ": "34", "DE": "10", "IN": "18", "MI": "26", "GA": "13",
    "SC": "45", "FL": "12",
}  # fmt: skip


@dataclass(frozen=True)
class Place:
    """Where a place name or ZIP code puts a call."""

    fips: str
    lat: float
    lon: float
    matched: str
    by: Literal["zip", "city"]


@dataclass(frozen=True)
class OutOfArea:
    """An address that names a state or ZIP code outside the service area."""

    reason: str


def city_key(name: str) -> str:
    """One spelling of a city name: 'St. Albans', 'ST ALBANS', 'Saint Albans' alike."""
    words = _PUNCTUATION.sub(" ", name.upper()).split()
    if words and words[0] in _PREFIXES:
        words[0] = _PREFIXES[words[0]]
    if len(words) > 1 and words[0] in _DIRECTIONS:
        words[0] = _DIRECTIONS[words[0]]
    return " ".join(words)


class Gazetteer:
    def __init__(self, rows: Iterable[dict[str, Any]], states: Iterable[str] = ("54",)) -> None:
        self.states = frozenset(states)
        self._by_zip: dict[str, Place] = {}
        main: dict[str, Counter[str]] = {}
        accepted: dict[str, Counter[str]] = {}
        points: dict[tuple[str, str], tuple[float, float]] = {}
        for row in rows:
            self._by_zip[row["zip"]] = Place(row["fips"], row["lat"], row["lon"], row["zip"], "zip")
            key = city_key(row["city"])
            main.setdefault(key, Counter())[row["fips"]] += 1
            points.setdefault((key, row["fips"]), (row["lat"], row["lon"]))
            for name in row.get("also", ()):
                other = city_key(name)
                accepted.setdefault(other, Counter())[row["fips"]] += 1
                points.setdefault((other, row["fips"]), (row["lat"], row["lon"]))
        self._by_city: dict[str, Place] = {}
        for key in {*main, *accepted}:
            counts_main, counts_also = main.get(key, Counter()), accepted.get(key, Counter())
            fips = min(
                {*counts_main, *counts_also},
                key=lambda f: (-counts_main[f], -counts_also[f], f),
            )
            lat, lon = points[(key, fips)]
            self._by_city[key] = Place(fips, lat, lon, key, "city")

    def by_zip(self, code: str) -> Place | None:
        return self._by_zip.get(code)

    def by_city(self, name: str) -> Place | None:
        return self._by_city.get(city_key(name))

    def resolve(self, address: str | None, city: str | None) -> Place | OutOfArea | None:
        """The best place for an address and city (see the module docstring for the order)."""
        text, state, code = _split_tail(address or "")
        if state is not None and _STATES[state] not in self.states:
            return OutOfArea(f"address is in another state ({state})")
        if code is not None:
            place = self.by_zip(code)
            if place is not None:
                return place
            if not self._zip_of_ours(code):
                return OutOfArea(f"ZIP {code} is outside the service area")
        if city:
            place = self.by_city(city)
            if place is not None:
                return place
        return self._city_after_last_comma(text)

    def _zip_of_ours(self, code: str) -> bool:
        # ZIP codes are allocated by prefix; any of ours shares its first three digits.
        return any(z[:3] == code[:3] for z in self._by_zip)

    def _city_after_last_comma(self, text: str) -> Place | None:
        if "," not in text:
            return None
        last = text.rsplit(",", 1)[1]
        if "&" in last or "/" in last or " AND " in f" {last.upper()} ":
            return None
        return self._by_city.get(city_key(last))


def _split_tail(address: str) -> tuple[str, str | None, str | None]:
    """Strip country, ZIP and state from the end: (rest, state as written, ZIP)."""
    text = address.upper().strip().rstrip(".,; ")
    for country in _COUNTRY:
        if text.endswith(" " + country) or text.endswith("," + country):
            text = text[: -len(country)].rstrip(" ,.;")
    code = None
    match = _TRAILING_ZIP.search(text)
    if match and not _NOT_ZIP_BEFORE.search(text[: match.start()]) and match.start() > 0:
        code = match.group(1)
        text = text[: match.start()].rstrip(" ,.;")
    state = None
    # One space per character, so offsets in ``squashed`` are offsets in ``text``.
    squashed = _ONE_PUNCTUATION.sub(" ", text)
    for name in sorted(_STATES, key=len, reverse=True):
        if squashed.endswith(" " + name) or squashed == name:
            state = name
            cut = len(squashed) - len(name)
            text = text[:cut].rstrip(" ,.;")
            break
    return text, state, code


def load_rows(state: str) -> list[dict[str, Any]]:
    text = resources.files("corespond.geo").joinpath(f"data/places_{state}.json").read_text()
    rows: list[dict[str, Any]] = json.loads(text)["places"]
    return rows


@functools.cache
def gazetteer_for(states: tuple[str, ...]) -> Gazetteer:
    return Gazetteer((row for state in states for row in load_rows(state)), states)
