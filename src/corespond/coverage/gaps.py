"""Gaps in coverage: the stretches of a window with no shift at all. Pure.

All arithmetic is on aware datetimes (UTC in practice), so a night across a DST change is
its real length; shifts overlapping each other or the window's edges are merged and clipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

Interval = tuple[datetime, datetime]


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined, in order."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def uncovered(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """The parts of ``[start, end)`` that no interval covers."""
    if end <= start:
        return []
    gaps: list[Interval] = []
    cursor = start
    for begin, finish in merged(intervals):
        if finish <= cursor:
            continue
        if begin >= end:
            break
        if begin > cursor:
            gaps.append((cursor, begin))
        cursor = max(cursor, finish)
        if cursor >= end:
            return gaps
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def hours(intervals: Iterable[Interval]) -> float:
    return sum(((e - s) for s, e in intervals), timedelta()).total_seconds() / 3600
