"""Roster imports: shifts from CSV or iCalendar, checked row by row, applied all or nothing.

CSV (UTF-8, header required; see ``examples/rosters/shifts.csv``)::

    shift_id,peer,starts_at,ends_at,counties,kind
    wvsl-0215-night,Jordan Miller,2027-02-15 19:00,2027-02-16 07:00,Kanawha;Putnam,on_duty

* ``shift_id``: the scheduling tool's id for the shift; re-importing the same id updates
  that shift instead of adding another (optional: without it peer and start identify it);
* ``peer``: the peer's display name in the provider, or the peer's id;
* ``starts_at`` / ``ends_at``: ``YYYY-MM-DD HH:MM`` in the program's time zone, or RFC 3339
  with an offset; an overnight shift simply ends the next day;
* ``counties``: names or FIPS codes separated by ``;``; ``kind``: on_duty (default) or on_call.

iCalendar (RFC 5545, as calendars export it): each VEVENT is a shift; SUMMARY (or
``X-CORESPOND-PEER``) names the peer, LOCATION (or CATEGORIES) the counties,
``X-CORESPOND-KIND`` the kind; DTSTART/DTEND with their time zones; RRULE recurrences are
expanded over the import window, EXDATE exceptions honoured. An occurrence is identified by
its UID and start, so re-importing the same calendar changes nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.service import Principal
from corespond.errors import Conflict, NotFound, Problem
from corespond.geo.atlas import CountyAtlas
from corespond.roster import repository, service
from corespond.roster.models import Peer
from corespond.roster.times import to_utc

MAX_OCCURRENCES = 20_000
CSV_COLUMNS = ("shift_id", "peer", "starts_at", "ends_at", "counties", "kind")
REQUIRED_COLUMNS = ("peer", "starts_at", "ends_at", "counties")
Result = Literal["created", "updated", "unchanged", "error"]


@dataclass
class RowReport:
    """What happened to one row or calendar occurrence."""

    line: int
    key: str
    result: Result = "unchanged"
    reason: str | None = None
    shift_id: uuid.UUID | None = None


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    applied: bool = False
    rows: list[RowReport] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
        for row in self.rows:
            counts[row.result] += 1
        return counts

    @property
    def errors(self) -> list[RowReport]:
        return [r for r in self.rows if r.result == "error"]


@dataclass(frozen=True)
class ParsedRow:
    line: int
    key: str
    peer: str
    starts_at: Any
    ends_at: Any
    counties: tuple[str, ...]
    kind: str


class ImportFileError(Problem):
    status = 422
    slug = "invalid-roster-file"
    title = "Roster file cannot be read"


# --- parsing -------------------------------------------------------------------------------


def parse_csv(text: str) -> tuple[list[ParsedRow], list[RowReport]]:
    """Rows of a roster CSV, and a report for each row that cannot even be read."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            f"line 1: the header must name {', '.join(REQUIRED_COLUMNS)}; missing "
            f"{', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)})"
        )
    reader.fieldnames = header
    rows: list[ParsedRow] = []
    errors: list[RowReport] = []
    seen: dict[str, int] = {}
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from exc
    for record, line in zip(records, _record_lines(text, len(records)), strict=False):
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        counties = tuple(c.strip() for c in values.get("counties", "").split(";") if c.strip())
        blank = [c for c in REQUIRED_COLUMNS if not values.get(c)]
        # Without a shift id the key is made from the peer and the UTC start once both are known.
        key = values.get("shift_id") or ""
        if blank:
            errors.append(RowReport(line, key, "error", f"empty {', '.join(blank)}"))
            continue
        if key and key in seen:
            errors.append(
                RowReport(line, key, "error", f"shift_id repeats the one on line {seen[key]}")
            )
            continue
        if key:
            seen[key] = line
        rows.append(
            ParsedRow(
                line=line,
                key=key,
                peer=values["peer"],
                starts_at=values["starts_at"],
                ends_at=values["ends_at"],
                counties=counties,
                kind=values.get("kind") or "on_duty",
            )
        )
    return rows, errors


def _record_lines(text: str, count: int) -> list[int]:
    """The starting line of each CSV record after the header (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text))
    lines = []
    next(reader, None)
    start = reader.line_num + 1
    for _ in reader:
        lines.append(start)
        start = reader.line_num + 1
    return lines[:count]


def parse_ical(
    text: str, window_start: datetime, window_end: datetime
) -> tuple[list[ParsedRow], list[RowReport]]:
    """Occurrences of the calendar's events in the window (recurrences expanded)."""
    import icalendar
    import recurring_ical_events

    if re.search(r"FREQ=(SECONDLY|MINUTELY)", text, re.IGNORECASE):
        raise ImportFileError("recurrences more frequent than hourly are not shifts")
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ImportFileError(f"not an iCalendar file: {exc}") from exc
    uid_lines = {
        match.group(1).strip(): text.count("\n", 0, match.start()) + 1
        for match in re.finditer(r"^UID:(.*)$", text, re.MULTILINE)
    }
    # The library marks every occurrence with a RECURRENCE-ID; only events of a series
    # (RRULE / RDATE, or overridden occurrences) need it in their key.
    series = {
        str(component.get("UID", "")).strip()
        for component in calendar.walk("VEVENT")
        if component.get("RRULE") or component.get("RDATE") or component.get("RECURRENCE-ID")
    }
    rows: list[ParsedRow] = []
    errors: list[RowReport] = []
    try:
        occurrences = []
        for occurrence in recurring_ical_events.of(calendar).between(window_start, window_end):
            occurrences.append(occurrence)
            if len(occurrences) > MAX_OCCURRENCES:
                raise ImportFileError(
                    f"more than {MAX_OCCURRENCES} shifts in the window; import a shorter window"
                )
    except ImportFileError:
        raise
    except Exception as exc:  # the library raises several kinds on malformed rules
        raise ImportFileError(f"cannot expand the calendar's recurrences: {exc}") from exc
    for event in occurrences:
        uid = str(event.get("UID", "")).strip()
        line = uid_lines.get(uid, 0)
        start, end = event.get("DTSTART"), event.get("DTEND")
        peer = str(event.get("X-CORESPOND-PEER") or event.get("SUMMARY") or "").strip()
        location = str(event.get("LOCATION") or "")
        categories = event.get("CATEGORIES")
        if not location and categories is not None:
            cats = categories if isinstance(categories, list) else [categories]
            location = ";".join(str(c) for cat in cats for c in getattr(cat, "cats", [cat]))
        counties = tuple(c.strip() for c in re.split(r"[;,]", location) if c.strip())
        start_value = start.dt if start is not None else None
        # A one-off event is its UID; an occurrence of a recurring one, UID and RECURRENCE-ID
        # (its place in the series), so moving an event or an occurrence updates the shift.
        recurrence = event.get("RECURRENCE-ID")
        key = f"{uid}@{_instant(recurrence.dt)}" if uid in series and recurrence else uid
        if not uid or start is None or end is None or not peer or not counties:
            what = (
                "UID"
                if not uid
                else "DTSTART/DTEND"
                if start is None or end is None
                else ("SUMMARY (the peer)" if not peer else "LOCATION (the counties)")
            )
            errors.append(RowReport(line, key, "error", f"event needs {what}"))
            continue
        if isinstance(start_value, date) and not isinstance(start_value, datetime):
            errors.append(RowReport(line, key, "error", "all-day events are not shifts"))
            continue
        rows.append(
            ParsedRow(
                line=line,
                key=key,
                peer=peer,
                starts_at=start_value,
                ends_at=end.dt,
                counties=counties,
                kind=str(event.get("X-CORESPOND-KIND") or "on_duty").strip().lower(),
            )
        )
    rows.sort(key=lambda r: (r.line, r.key))
    return rows, errors


def _instant(value: Any) -> str:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return str(value)


# --- applying ------------------------------------------------------------------------------


async def apply_rows(
    session: AsyncSession,
    principal: Principal,
    atlas: CountyAtlas,
    provider_id: str,
    rows: Sequence[ParsedRow],
    report: ImportReport,
    timezone: str,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Create or update one shift per row, each in its own savepoint, reporting each."""
    service.require_provider_access(principal, provider_id)
    await service.get_provider(session, provider_id)
    # One import per provider at a time: two concurrent imports of one file would race on
    # the same shift ids.
    await repository.lock_provider_imports(session, provider_id)
    peers = {
        p.display_name.upper(): p for p in await repository.peers_of_provider(session, provider_id)
    }
    for done, row in enumerate(rows, start=1):
        entry = RowReport(row.line, row.key)
        try:
            async with session.begin_nested():
                await _apply_row(
                    session, principal, atlas, provider_id, peers, row, entry, timezone
                )
        except Problem as problem:
            entry.result, entry.reason = "error", problem.detail or problem.title
        report.rows.append(entry)
        if progress is not None:
            progress(done)
    report.rows.sort(key=lambda r: (r.line, r.key))


async def _apply_row(
    session: AsyncSession,
    principal: Principal,
    atlas: CountyAtlas,
    provider_id: str,
    peers: dict[str, Peer],
    row: ParsedRow,
    entry: RowReport,
    timezone: str,
) -> None:
    peer = peers.get(row.peer.upper()) or await _peer_by_id(session, provider_id, row.peer)
    if peer is None:
        raise NotFound(f"no peer {row.peer!r} in provider {provider_id!r}")
    starts_at = to_utc(row.starts_at, timezone, "starts_at")
    key = row.key or f"{peer.id}@{starts_at.isoformat()}"
    entry.key = key
    data = service.ShiftInput(
        peer_id=peer.id,
        starts_at=starts_at,
        ends_at=to_utc(row.ends_at, timezone, "ends_at"),
        counties=service.resolve_counties(atlas, row.counties),
        kind=row.kind,
        external_key=key,
    )
    existing = await repository.shift_by_key(session, provider_id, key)
    if existing is None:
        shift = await service.create_shift(session, principal, data)
        entry.result, entry.shift_id = "created", shift.id
        return
    entry.shift_id = existing.id
    if existing.cancelled_at is not None:
        entry.result, entry.reason = "unchanged", "cancelled since; not restored by an import"
        return
    if existing.peer_id != peer.id:
        raise Conflict("the shift id belongs to another peer's shift")
    changed = await service.update_shift(session, principal, existing, data)
    entry.result = "updated" if changed else "unchanged"


async def _peer_by_id(session: AsyncSession, provider_id: str, text: str) -> Peer | None:
    try:
        peer_id = uuid.UUID(text)
    except ValueError:
        return None
    peer = await session.get(Peer, peer_id)
    return peer if peer is not None and peer.provider_id == provider_id else None


async def run_import(
    session: AsyncSession,
    principal: Principal,
    atlas: CountyAtlas,
    *,
    provider_id: str,
    fmt: Literal["csv", "ics"],
    text: str,
    dry_run: bool,
    timezone: str,
    window: tuple[datetime, datetime] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Check every row; apply them all, or (dry run, or any error) none of them."""
    report = ImportReport(format=fmt, dry_run=dry_run)
    if fmt == "csv":
        rows, unreadable = parse_csv(text)
    else:
        # Expanding recurrences is CPU work; off the event loop, so requests keep flowing.
        rows, unreadable = await asyncio.to_thread(parse_ical, text, *(window or default_window()))
    report.rows.extend(unreadable)
    outer = await session.begin_nested()
    await apply_rows(
        session,
        principal,
        atlas,
        provider_id,
        rows,
        report,
        timezone,
        progress=(lambda done: progress(done, len(rows))) if progress else None,
    )
    if dry_run or report.errors:
        await outer.rollback()
    else:
        await outer.commit()
        report.applied = True
    return report


def default_window(now: datetime | None = None, days: int = 60) -> tuple[datetime, datetime]:
    """Recurrences are expanded from a day ago to ``days`` ahead."""
    now = now or datetime.now(UTC)
    return now - timedelta(days=1), now + timedelta(days=days)
