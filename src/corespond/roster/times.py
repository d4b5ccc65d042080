"""Shift times: entered in the program's time zone, stored in UTC, correct across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from corespond.errors import InvalidPayload

EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def to_utc(value: datetime | str, zone: str, field: str = "time") -> datetime:
    """A shift time in UTC. With an offset it is taken as given; without, it is a wall-clock
    time in ``zone``. A wall time that does not exist (the hour skipped in spring) or that
    happens twice (the hour repeated in autumn) is refused: only an offset can say which."""
    if isinstance(value, str):
        value = parse_time(value, field)
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise InvalidPayload(f"{field} must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    try:
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        tz = ZoneInfo(zone)
        first = value.replace(tzinfo=tz, fold=0).astimezone(UTC)
        second = value.replace(tzinfo=tz, fold=1).astimezone(UTC)
    except OverflowError as exc:
        raise InvalidPayload(f"{field} is out of range") from exc
    if first.astimezone(tz).replace(tzinfo=None) != value:
        raise InvalidPayload(
            f"{field} {value:%Y-%m-%d %H:%M} does not exist in {zone} (clocks skip that hour)"
        )
    if first != second:
        raise InvalidPayload(
            f"{field} {value:%Y-%m-%d %H:%M} happens twice in {zone} (clocks repeat that hour); "
            "give it with its UTC offset"
        )
    return first


def parse_time(text: str, field: str = "time") -> datetime:
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in LOCAL_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise InvalidPayload(f"{field} {text!r} is not a date and time (YYYY-MM-DD HH:MM)")
