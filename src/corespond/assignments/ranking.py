"""Ranking the peers who could take a call: pure, so every rule is a table-driven test.

Order of preference, each breaking the ties of the one before:

1. from the call's own county (a neighbouring county's peer is asked only when no one in the
   county is free, and never offered ahead of one);
2. embedded with the responding agency;
3. nearest to the call, by straight-line distance to the kilometre (distances within the same
   kilometre count as equal: the estimate ignores roads);
4. least recently assigned (never assigned first);
5. the peer id, so the same inputs always give the same order.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from corespond.agencies.names import agency_key
from corespond.geo.atlas import haversine_km


@dataclass(frozen=True)
class Point:
    """A position and what it is (``home base``, ``last known point``, ``the call`` …)."""

    lat: float
    lon: float
    what: str


@dataclass(frozen=True)
class Candidate:
    """A peer who could be offered the call, as ranking sees them."""

    peer_id: uuid.UUID
    display_name: str
    provider_id: str
    county_fips: str
    county_name: str
    in_call_county: bool
    embedded_agency: str | None
    point: Point | None
    last_assigned_at: datetime | None
    # Where to measure from when the peer's own position is unknown (neighbouring counties).
    area_centre: Point | None = None
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallSite:
    """What ranking needs of the call: the responding agency and where it is."""

    agency: str | None
    point: Point | None
    language: str | None = None  # a language the person speaks (BCP 47), if asked for


@dataclass(frozen=True)
class Ranked:
    """A candidate's place (1 = first offered), distance and the reasons for the place."""

    place: int
    candidate: Candidate
    distance_km: float | None
    reasons: tuple[str, ...]


def distance_km(candidate: Candidate, site: CallSite) -> float | None:
    """Straight-line distance from the candidate to the call, if both positions are known."""
    if candidate.point is None or site.point is None:
        return None
    a, b = candidate.point, site.point
    return haversine_km(a.lat, a.lon, b.lat, b.lon)


def embedded_with(candidate: Candidate, agency: str | None) -> bool:
    if not candidate.embedded_agency or not agency:
        return False
    return agency_key(candidate.embedded_agency) == agency_key(agency)


def rank(candidates: Iterable[Candidate], site: CallSite) -> list[Ranked]:
    """The candidates best first, each with the reasons for its place."""
    scored = []
    for candidate in candidates:
        distance = distance_km(candidate, site)
        embedded = embedded_with(candidate, site.agency)
        key = (
            0 if candidate.in_call_county else 1,
            0 if speaks(candidate, site.language) else 1,
            0 if embedded else 1,
            math.inf if distance is None else round(distance),
            candidate.last_assigned_at.timestamp() if candidate.last_assigned_at else -math.inf,
            str(candidate.peer_id),
        )
        scored.append((key, candidate, distance, embedded))
    scored.sort(key=lambda item: item[0])
    return [
        Ranked(
            place=index,
            candidate=candidate,
            distance_km=distance,
            reasons=_reasons(candidate, site, distance, embedded),
        )
        for index, (_, candidate, distance, embedded) in enumerate(scored, start=1)
    ]


def speaks(candidate: Candidate, language: str | None) -> bool:
    """Whether the peer speaks the language asked for (``es`` matches ``es-MX`` and back);
    True when none was asked for."""
    if not language:
        return True
    wanted = language.lower().split("-")[0]
    return any(spoken.lower().split("-")[0] == wanted for spoken in candidate.languages)


def _reasons(
    candidate: Candidate, site: CallSite, distance: float | None, embedded: bool
) -> tuple[str, ...]:
    reasons = []
    if candidate.in_call_county:
        reasons.append(f"on shift in {candidate.county_name} County, the call's county")
    else:
        reasons.append(
            f"on shift in neighbouring {candidate.county_name} County "
            "(no one free in the call's county)"
        )
    if site.language:
        reasons.append(
            f"speaks {site.language}"
            if speaks(candidate, site.language)
            else f"does not speak {site.language}"
        )
    if embedded:
        reasons.append(f"embedded with {site.agency}")
    if distance is not None and candidate.point is not None and site.point is not None:
        reasons.append(f"{distance:.1f} km from {site.point.what} (from {candidate.point.what})")
    elif candidate.point is None:
        reasons.append("distance unknown: no home base or recent position")
    else:
        reasons.append("distance unknown: the call has no position")
    if candidate.last_assigned_at is None:
        reasons.append("never assigned before")
    else:
        reasons.append(f"last assigned {candidate.last_assigned_at.isoformat(timespec='minutes')}")
    return tuple(reasons)


@dataclass(frozen=True)
class Left:
    """A peer on shift who is not in the ranking, and why."""

    peer_id: uuid.UUID
    display_name: str
    why: str


def neighbours_within(
    candidates: Iterable[Candidate], site: CallSite, max_km: float
) -> tuple[list[Candidate], list[Left]]:
    """Neighbouring-county candidates within the travel limit, and those beyond it.

    A peer with no known position is measured from the centre of the county of their shift
    (``area_centre``); with neither, or a call with no position, the limit cannot be checked
    and the peer is left out.
    """
    near: list[Candidate] = []
    left: list[Left] = []
    for candidate in candidates:
        measured = candidate if candidate.point is not None else _at_centre(candidate)
        distance = distance_km(measured, site)
        if distance is None:
            left.append(
                Left(
                    candidate.peer_id,
                    candidate.display_name,
                    "neighbouring county, distance to the call unknown",
                )
            )
        elif distance > max_km:
            left.append(
                Left(
                    candidate.peer_id,
                    candidate.display_name,
                    f"neighbouring county, {distance:.0f} km away, beyond the "
                    f"{max_km:.0f} km travel limit",
                )
            )
        else:
            near.append(measured)
    return near, left


def _at_centre(candidate: Candidate) -> Candidate:
    if candidate.area_centre is None:
        return candidate
    return replace(candidate, point=candidate.area_centre)
