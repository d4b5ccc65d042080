"""Gap computation as a pure function: overlaps, overnight shifts, DST, window edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from corespond.coverage.gaps import hours, merged, uncovered

NY = ZoneInfo("America/New_York")


def t(day: int, hour: float, month: int = 11) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


CASES = [
    ("no shifts: the whole window", [], (t(1, 0), t(2, 0)), [(t(1, 0), t(2, 0))]),
    ("covered throughout", [(t(1, 0), t(2, 0))], (t(1, 0), t(2, 0)), []),
    (
        "overlapping shifts merge",
        [(t(1, 8), t(1, 16)), (t(1, 12), t(1, 20))],
        (t(1, 0), t(2, 0)),
        [(t(1, 0), t(1, 8)), (t(1, 20), t(2, 0))],
    ),
    (
        "back to back is no gap",
        [(t(1, 0), t(1, 12)), (t(1, 12), t(2, 0))],
        (t(1, 0), t(2, 0)),
        [],
    ),
    (
        "overnight shift across midnight",
        [(t(1, 19), t(2, 7))],
        (t(1, 12), t(2, 12)),
        [(t(1, 12), t(1, 19)), (t(2, 7), t(2, 12))],
    ),
    (
        "shifts beyond the window are clipped",
        [(t(1, -5), t(1, 3)), (t(1, 22), t(2, 6))],
        (t(1, 0), t(2, 0)),
        [(t(1, 3), t(1, 22))],
    ),
    (
        "a shift wholly outside changes nothing",
        [(t(3, 0), t(3, 5))],
        (t(1, 0), t(1, 6)),
        [(t(1, 0), t(1, 6))],
    ),
    ("contained shift", [(t(1, 0), t(1, 24)), (t(1, 3), t(1, 4))], (t(1, 1), t(1, 23)), []),
    ("an empty window has no gaps", [], (t(1, 5), t(1, 5)), []),
]


@pytest.mark.parametrize(("what", "shifts", "window", "expected"), CASES, ids=[c[0] for c in CASES])
def test_uncovered(what: str, shifts: list, window: tuple, expected: list) -> None:
    assert uncovered(shifts, *window) == expected


def test_merged_ignores_empty_and_reversed_intervals() -> None:
    assert merged([(t(1, 5), t(1, 5)), (t(1, 6), t(1, 4)), (t(1, 1), t(1, 2))]) == [
        (t(1, 1), t(1, 2))
    ]


def test_a_night_across_the_autumn_change_is_thirteen_hours() -> None:
    # 2026-11-01: clocks go back at 02:00 in New York. 19:00 to 07:00 local is 13 real hours.
    night = (
        datetime(2026, 10, 31, 19, tzinfo=NY).astimezone(UTC),
        datetime(2026, 11, 1, 7, tzinfo=NY).astimezone(UTC),
    )
    window = (
        datetime(2026, 10, 31, 12, tzinfo=NY).astimezone(UTC),
        datetime(2026, 11, 1, 12, tzinfo=NY).astimezone(UTC),
    )
    gaps = uncovered([night], *window)
    assert [round(hours([g]), 2) for g in gaps] == [7.0, 5.0]
    assert hours([night]) == 13.0
    assert round(hours(gaps) + hours([night]), 2) == 25.0  # that day has 25 hours


def test_a_night_across_the_spring_change_is_eleven_hours() -> None:
    night = (
        datetime(2026, 3, 7, 19, tzinfo=NY).astimezone(UTC),
        datetime(2026, 3, 8, 7, tzinfo=NY).astimezone(UTC),
    )
    assert hours([night]) == 11.0
