"""Ranking as a pure function: each preference, each tie-break, the fallback travel limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from corespond.assignments.ranking import (
    CallSite,
    Candidate,
    Point,
    neighbours_within,
    rank,
)

CALL = Point(38.3498, -81.6326, "the call")
T1 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def cand(
    name: str,
    *,
    km: float | None = 5.0,
    embedded: str | None = None,
    last: datetime | None = None,
    here: bool = True,
    peer_id: str | None = None,
    centre_km: float | None = None,
) -> Candidate:
    """A candidate about ``km`` kilometres due north of the call."""

    def north(distance: float | None, what: str) -> Point | None:
        return None if distance is None else Point(CALL.lat + distance / 111.2, CALL.lon, what)

    return Candidate(
        peer_id=uuid.UUID(peer_id) if peer_id else uuid.uuid5(uuid.NAMESPACE_OID, name),
        display_name=name,
        provider_id="wvsl",
        county_fips="54039" if here else "54079",
        county_name="Kanawha" if here else "Putnam",
        in_call_county=here,
        embedded_agency=embedded,
        point=north(km, "home base"),
        last_assigned_at=last,
        area_centre=north(centre_km, "the centre of Putnam County"),
    )


SITE = CallSite(agency="CHARLESTON PD", point=CALL)

CASES = [
    # (description, candidates, expected order)
    ("nearest first", [cand("far", km=20), cand("near", km=3)], ["near", "far"]),
    (
        "embedded with the agency beats nearer",
        [cand("near", km=1), cand("embedded", km=30, embedded="Charleston P.D.")],
        ["embedded", "near"],
    ),
    (
        "embedded with another agency counts for nothing",
        [cand("near", km=1), cand("other", km=30, embedded="BLUEFIELD PD")],
        ["near", "other"],
    ),
    (
        "same kilometre: least recently assigned first",
        [cand("recent", km=5.2, last=T2), cand("earlier", km=4.9, last=T1)],
        ["earlier", "recent"],
    ),
    (
        "never assigned before any assigned",
        [cand("assigned", km=5, last=T1), cand("fresh", km=5, last=None)],
        ["fresh", "assigned"],
    ),
    (
        "a known distance before an unknown one",
        [cand("unknown", km=None), cand("known", km=40)],
        ["known", "unknown"],
    ),
    (
        "the call's county before a neighbouring county, however near",
        [cand("neighbour", km=1, here=False), cand("county", km=25)],
        ["county", "neighbour"],
    ),
    (
        "full tie: by peer id, stably",
        [
            cand("b", km=5, peer_id="00000000-0000-0000-0000-000000000002"),
            cand("a", km=5, peer_id="00000000-0000-0000-0000-000000000001"),
        ],
        ["a", "b"],
    ),
]


@pytest.mark.parametrize(("what", "candidates", "expected"), CASES, ids=[c[0] for c in CASES])
def test_ranking_order(what: str, candidates: list[Candidate], expected: list[str]) -> None:
    ranked = rank(candidates, SITE)
    assert [r.candidate.display_name for r in ranked] == expected
    assert [r.place for r in ranked] == list(range(1, len(expected) + 1))
    # The same inputs in any order give the same ranking.
    assert [r.candidate.display_name for r in rank(list(reversed(candidates)), SITE)] == expected


def test_reasons_say_why() -> None:
    ranked = rank([cand("Ana", km=3.0, embedded="CHARLESTON PD", last=T1)], SITE)
    reasons = " | ".join(ranked[0].reasons)
    assert "Kanawha County, the call's county" in reasons
    assert "embedded with CHARLESTON PD" in reasons
    assert "3.0 km from the call (from home base)" in reasons
    assert "last assigned 2026-11-20T03:00+00:00" in reasons


def test_call_without_position_ranks_by_the_rest() -> None:
    site = CallSite(agency="CHARLESTON PD", point=None)
    ranked = rank([cand("recent", km=1, last=T2), cand("earlier", km=50, last=T1)], site)
    assert [r.candidate.display_name for r in ranked] == ["earlier", "recent"]
    assert ranked[0].distance_km is None
    assert "the call has no position" in " ".join(ranked[0].reasons)


def test_neighbours_within_the_travel_limit() -> None:
    near, left = neighbours_within(
        [
            cand("close", km=20, here=False),
            cand("far", km=80, here=False),
            cand("centre", km=None, centre_km=30, here=False),
            cand("nowhere", km=None, here=False),
        ],
        SITE,
        max_km=60,
    )
    assert [c.display_name for c in near] == ["close", "centre"]
    # Measured from the county centre when the peer's own position is unknown.
    assert near[1].point is not None
    assert "centre of Putnam" in near[1].point.what
    whys = {x.display_name: x.why for x in left}
    assert "80 km away, beyond the 60 km travel limit" in whys["far"]
    assert "distance to the call unknown" in whys["nowhere"]


def test_no_candidates_no_ranking() -> None:
    assert rank([], SITE) == []
