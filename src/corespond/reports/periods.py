"""The period a report covers (a month, a quarter, a year, or two dates, all days whole in the
program's time zone) and its weeks: Monday to Sunday, the first and last cut at the period's
ends. Pure: the query's words in, dates out, or a 422 naming the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from corespond.errors import InvalidParam, InvalidPayload

Kind = Literal["month", "quarter", "year", "dates"]
KINDS: tuple[Kind, ...] = ("month", "quarter", "year", "dates")
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
MAX_DAYS = 366

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_QUARTER = re.compile(r"([0-9]{4})-?[Qq]([1-4])")
_YEAR = re.compile(r"[0-9]{4}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DASH = "\u2013"  # an en dash: a span of days or months


@dataclass(frozen=True)
class Week:
    """The days of one Monday-to-Sunday week that fall in the period."""

    first: date
    last: date

    @property
    def iso_week(self) -> str:
        year, week, _ = self.first.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def label(self) -> str:
        if self.first == self.last:
            return f"{self.first:%b} {self.first.day}"
        if self.first.month == self.last.month:
            return f"{self.first:%b} {self.first.day}{DASH}{self.last.day}"
        return f"{self.first:%b} {self.first.day} {DASH} {self.last:%b} {self.last.day}"


@dataclass(frozen=True)
class Period:
    """Whole days from ``first`` to ``last`` (both included), in the program's time zone."""

    kind: Kind
    first: date
    last: date
    label: str

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """``[start, end)`` in UTC: midnight starting the first day to midnight ending the
        last, as the program's clocks show them (so a week across a DST change is 167 or
        169 hours)."""
        return midnight(self.first, zone), midnight(self.last + timedelta(days=1), zone)

    def week_of(self, day: date) -> date:
        """The first day (in the period) of the week ``day`` falls in."""
        return max(self.first, day - timedelta(days=day.weekday()))

    def weeks(self) -> list[Week]:
        out = []
        first = self.first
        while first <= self.last:
            sunday = first + timedelta(days=6 - first.weekday())
            out.append(Week(first, min(sunday, self.last)))
            first = sunday + timedelta(days=1)
        return out

    def form(self) -> dict[str, str]:
        """The chooser's fields as this period fills them (for every kind, so switching kind
        starts from here)."""
        return {
            "period": self.kind,
            "month": f"{self.first:%Y-%m}",
            "quarter": f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}",
            "year": str(self.first.year),
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
        }

    def query(self) -> dict[str, str]:
        """The query parameters that name this period."""
        fields = self.form()
        if self.kind == "dates":
            return {"period": "dates", "from": fields["from"], "to": fields["to"]}
        return {"period": self.kind, self.kind: fields[self.kind]}


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _invalid(field: str, reason: str) -> InvalidPayload:
    return InvalidPayload(
        f"{field}: {reason}", [InvalidParam(name=f"query.{field}", reason=reason)]
    )


def _year_in_range(year: int, field: str) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise _invalid(field, f"the year must be between {EARLIEST_YEAR} and {LATEST_YEAR}")


def _blank(text: str, field: str, example: str) -> None:
    if not text.strip():
        raise _invalid(field, f"give the {field} as {example}")


def month_period(text: str) -> Period:
    _blank(text, "month", "YYYY-MM (2026-03)")
    found = _MONTH.fullmatch(text.strip())
    if found is None:
        raise _invalid("month", f"{text!r} is not a month: give it as YYYY-MM (2026-03)")
    year, month = int(found[1]), int(found[2])
    _year_in_range(year, "month")
    if not 1 <= month <= 12:
        raise _invalid("month", f"{text!r}: there is no month {month}")
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period("month", first, following - timedelta(days=1), f"{first:%B %Y}")


def quarter_period(text: str) -> Period:
    _blank(text, "quarter", "YYYY-Qn (2026-Q1)")
    found = _QUARTER.fullmatch(text.strip())
    if found is None:
        raise _invalid("quarter", f"{text!r} is not a quarter: give it as YYYY-Qn (2026-Q1)")
    year, quarter = int(found[1]), int(found[2])
    _year_in_range(year, "quarter")
    first = date(year, 3 * quarter - 2, 1)
    last_month = date(year, 3 * quarter, 1)
    following = date(year + (3 * quarter) // 12, (3 * quarter) % 12 + 1, 1)
    label = f"{year} Q{quarter} ({first:%B}{DASH}{last_month:%B})"
    return Period("quarter", first, following - timedelta(days=1), label)


def year_period(text: str) -> Period:
    _blank(text, "year", "YYYY (2026)")
    if _YEAR.fullmatch(text.strip()) is None:
        raise _invalid("year", f"{text!r} is not a year: give it as YYYY (2026)")
    year = int(text)
    _year_in_range(year, "year")
    return Period("year", date(year, 1, 1), date(year, 12, 31), str(year))


def _day(text: str | None, field: str) -> date:
    if text is None or not text.strip():
        raise _invalid(field, "give a date as YYYY-MM-DD (from and to go together)")
    value = text.strip()
    if _DATE.fullmatch(value) is None:
        raise _invalid(field, f"{text!r} is not a date: give it as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _invalid(field, f"{text!r}: there is no such day") from None
    _year_in_range(day.year, field)
    return day


def dates_period(start: str | None, end: str | None) -> Period:
    first, last = _day(start, "from"), _day(end, "to")
    if first > last:
        raise InvalidPayload(
            f"'from' ({first}) is after 'to' ({last}): a period runs forward",
            [InvalidParam(name="query.from", reason=f"after 'to' ({last})")],
        )
    period = Period("dates", first, last, f"{first:%Y-%m-%d} to {last:%Y-%m-%d}")
    if period.days > MAX_DAYS:
        raise InvalidPayload(
            f"from {first} to {last} is {period.days} days; a report covers at most "
            f"{MAX_DAYS} days (a year)",
            [InvalidParam(name="query.to", reason=f"more than {MAX_DAYS} days after 'from'")],
        )
    return period


def choose(
    *,
    period: str | None,
    month: str | None,
    quarter: str | None,
    year: str | None,
    start: str | None,
    end: str | None,
    today: date,
) -> Period:
    """The period a query names. With ``period`` (the page's chooser sends it), the fields
    of that kind are read and the others ignored; without it, at most one kind may be given
    (``from`` and ``to`` together). Nothing given: the current month."""
    fields = {"month": month, "quarter": quarter, "year": year, "from": start, "to": end}
    given = [name for name, value in fields.items() if value is not None and value.strip()]
    if period is None or not period.strip():
        kinds = list(dict.fromkeys("dates" if n in ("from", "to") else n for n in given))
        if len(kinds) > 1:
            raise InvalidPayload(
                f"give one period, not {' and '.join(kinds)}: month, quarter, year, or from and to",
                [InvalidParam(name=f"query.{n}", reason="one period at a time") for n in given],
            )
        if not kinds:
            return month_period(f"{today:%Y-%m}")
        kind = kinds[0]
    else:
        kind = period.strip()
    if kind == "month":
        return month_period(month or "")
    if kind == "quarter":
        return quarter_period(quarter or "")
    if kind == "year":
        return year_period(year or "")
    if kind == "dates":
        return dates_period(start, end)
    raise _invalid("period", f"{period!r} is not a kind of period: one of {', '.join(KINDS)}")
