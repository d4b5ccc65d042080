"""Shift times: entered in the program's time zone, stored in UTC, correct across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from corespond.errors import InvalidPayload

LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def to_utc(value: datetime | str, zone: str, field: str = "time") -> datetime:
    """A shift time in UTC. With an offset it is taken as given; without, it is a wall-clock
    time in ``zone``. A wall time that does not exist (the hour skipped in spring) is refused;
    one that happens twice (the hour repeated in autumn) means its first occurrence."""
    if isinstance(value, str):
        value = parse_time(value, field)
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    tz = ZoneInfo(zone)
    local = value.replace(tzinfo=tz, fold=0)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != value:
        raise InvalidPayload(
            f"{field} {value:%Y-%m-%d %H:%M} does not exist in {zone} (clocks skip that hour)"
        )
    return utc


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
