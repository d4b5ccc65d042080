"""The program's follow-up schedule, read from one line of text, and the times it gives: a
pure function of the contact's time and the program's time zone.

A schedule is steps separated by commas: ``72h`` (hours that pass), ``1d`` and ``7d`` (days),
``2w`` (weeks), ``2m`` (months), and ``2m-12m`` (every month from the 2nd to the 12th).
Hours are elapsed time; days, weeks and months are steps on the program's clock: "the next
day" is the same time of day tomorrow whatever the clocks did overnight, so across a change
to or from daylight saving time a day is 23 or 25 hours. A month lands on the same day of
the month (the 31st of January's month is the last day of February). A time of day the clocks
skip in spring moves forward by the hour skipped; one they repeat in autumn is the first.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Unit = Literal["h", "d", "w", "m"]
DEFAULT_SCHEDULE = "1d,72h,7d,30d,2m-12m"
MAX_STEPS = 60
LONGEST = timedelta(days=800)  # a schedule that runs past two years is a typo

_STEP = re.compile(r"([1-9][0-9]{0,3})([hdwm])")
_RANGE = re.compile(r"([1-9][0-9]?)m-([1-9][0-9]?)m")
# An arbitrary moment, for checking that a schedule's steps come one after another.
_PROBE = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


class ScheduleError(ValueError):
    """A schedule that cannot be read, saying where."""


@dataclass(frozen=True)
class Step:
    amount: int
    unit: Unit

    @property
    def label(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_schedule(text: str) -> tuple[Step, ...]:
    """The steps of a schedule such as ``1d,72h,7d,30d,2m-12m``, each later than the one
    before; else ``ScheduleError`` naming the part it could not read."""
    steps: list[Step] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            raise ScheduleError(f"an empty step in {text!r}")
        ranged = _RANGE.fullmatch(part)
        if ranged:
            first, last = int(ranged[1]), int(ranged[2])
            if first > last:
                raise ScheduleError(f"{part!r}: a range of months runs forward (2m-12m)")
            steps.extend(Step(n, "m") for n in range(first, last + 1))
            continue
        single = _STEP.fullmatch(part)
        if single is None:
            raise ScheduleError(
                f"{part!r} is not a step: give hours, days, weeks or months as 72h, 1d, 2w, "
                "3m, or a range of months as 2m-12m"
            )
        steps.append(Step(int(single[1]), single[2]))  # type: ignore[arg-type]
    if not steps:
        raise ScheduleError("a schedule needs at least one step")
    if len(steps) > MAX_STEPS:
        raise ScheduleError(f"{len(steps)} steps: at most {MAX_STEPS}")
    zone = ZoneInfo("UTC")
    previous = _PROBE
    for step in steps:
        at = step_time(_PROBE, step, zone)
        if at <= previous:
            raise ScheduleError(f"{step.label!r} does not come after the step before it")
        if at - _PROBE > LONGEST:
            raise ScheduleError(f"{step.label!r} is more than two years after the contact")
        previous = at
    return tuple(steps)


def step_time(start: datetime, step: Step, zone: ZoneInfo) -> datetime:
    """When ``step`` falls after ``start`` (aware), in UTC."""
    if step.unit == "h":
        return start.astimezone(UTC) + timedelta(hours=step.amount)
    local = start.astimezone(zone)
    if step.unit in ("d", "w"):
        days = step.amount * (7 if step.unit == "w" else 1)
        day = local.date() + timedelta(days=days)
    else:
        months = local.month - 1 + step.amount
        year, month = local.year + months // 12, months % 12 + 1
        day = local.date().replace(
            year=year, month=month, day=min(local.day, calendar.monthrange(year, month)[1])
        )
    wall = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return wall_to_utc(wall)


def wall_to_utc(wall: datetime) -> datetime:
    """A wall-clock time in its zone to UTC: a time the clocks skip moves forward by the
    gap, a time they repeat is the first of the two (PEP 495's ``fold=0`` reads both with
    the offset in force before the change)."""
    return wall.replace(fold=0).astimezone(UTC)


def due_times(
    start: datetime, steps: Sequence[Step], zone: ZoneInfo
) -> list[tuple[Step, datetime]]:
    """Each step with its time after ``start``."""
    return [(step, step_time(start, step, zone)) for step in steps]
