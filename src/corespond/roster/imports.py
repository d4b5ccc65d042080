"""Roster imports: shifts from CSV or iCalendar, checked row by row, applied all or nothing.

CSV (UTF-8, RFC 4180, header required; see ``examples/rosters/shifts.csv``); every row has
one cell per header column (empty or not), or it is an error on its line::

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
expanded over the import window, EXDATE exceptions honoured. A one-off event is identified by
its UID; an occurrence of a recurring event by its UID and the date it falls on (``#2`` for
the second that day), so re-importing the same calendar changes nothing and moving a whole
series (08:00 to 09:00) updates its shifts. Occurrences the series no longer has within the
window are cancelled (a shortened series, an added EXDATE); an event missing from the file
cancels nothing.

Every row is tried in its own savepoint; a row refused only because it overlaps a shift that
another row of the file moves is tried again after that row, so a file may reorder shifts.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

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
Result = Literal["created", "updated", "unchanged", "cancelled", "error"]
# What follows ``UID@`` in the key of a recurring event's occurrence: its date (and ordinal
# that day), or, as imports before date keys wrote it, its start.
OCCURRENCE_SUFFIX = re.compile(r"\d{4}-\d{2}-\d{2}(#\d+)?|\d{4}-\d{2}-\d{2}T[0-9:.+-]+")


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
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "cancelled": 0, "error": 0}
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
    # The key an import before date keys gave this occurrence: its shift is adopted.
    legacy_key: str | None = None


@dataclass
class ParsedFile:
    """A file's rows, the rows that cannot even be read, and (iCalendar) the recurring
    events it holds, by UID, with their lines."""

    rows: list[ParsedRow]
    unreadable: list[RowReport]
    series: dict[str, int] = field(default_factory=dict)


class ImportFileError(Problem):
    status = 422
    slug = "invalid-roster-file"
    title = "Roster file cannot be read"


# --- parsing -------------------------------------------------------------------------------


def parse_csv(text: str) -> ParsedFile:
    """Rows of a roster CSV, and a report for each row that cannot even be read. Every row
    has as many cells as the header (RFC 4180); blank lines are skipped."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            f"line 1: the header must name {', '.join(REQUIRED_COLUMNS)}; missing "
            f"{', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)})"
        )
    parsed = ParsedFile([], [])
    seen: dict[str, int] = {}
    line = reader.line_num + 1
    while True:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise ImportFileError(f"line {reader.line_num}: {exc}") from exc
        if record is None:
            return parsed
        if record:
            _read_record(parsed, header, record, line, seen)
        # A quoted cell may span lines: the next record starts after this one's last line.
        line = reader.line_num + 1


def _read_record(
    parsed: ParsedFile, header: list[str], record: list[str], line: int, seen: dict[str, int]
) -> None:
    values = {name: cell.strip() for name, cell in zip(header, record, strict=False)}
    # Without a shift id the key is made from the peer and the UTC start once both are known.
    key = values.get("shift_id") or ""
    if len(record) != len(header):
        parsed.unreadable.append(
            RowReport(
                line,
                key,
                "error",
                f"{len(record)} cells where the header has {len(header)}: every row needs "
                "one cell per column, empty or not (RFC 4180); quote a cell holding a comma",
            )
        )
        return
    blank = [c for c in REQUIRED_COLUMNS if not values.get(c)]
    if blank:
        parsed.unreadable.append(RowReport(line, key, "error", f"empty {', '.join(blank)}"))
        return
    if key and key in seen:
        parsed.unreadable.append(
            RowReport(line, key, "error", f"shift_id repeats the one on line {seen[key]}")
        )
        return
    if key:
        seen[key] = line
    parsed.rows.append(
        ParsedRow(
            line=line,
            key=key,
            peer=values["peer"],
            starts_at=values["starts_at"],
            ends_at=values["ends_at"],
            counties=tuple(c.strip() for c in values["counties"].split(";") if c.strip()),
            kind=values.get("kind") or "on_duty",
        )
    )


def parse_ical(
    text: str, window_start: datetime, window_end: datetime, zone: str = "UTC"
) -> ParsedFile:
    """Occurrences of the calendar's events in the window (recurrences expanded); the date
    of an occurrence is taken in ``zone`` (the program's time zone) when it has an offset."""
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
    series.discard("")
    parsed = ParsedFile([], [], {uid: uid_lines.get(uid, 0) for uid in sorted(series)})
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
    keys = _occurrence_keys(occurrences, series, ZoneInfo(zone))
    for event, (key, legacy_key) in zip(occurrences, keys, strict=True):
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
        if not uid or start is None or end is None or not peer or not counties:
            what = (
                "UID"
                if not uid
                else "DTSTART/DTEND"
                if start is None or end is None
                else ("SUMMARY (the peer)" if not peer else "LOCATION (the counties)")
            )
            parsed.unreadable.append(RowReport(line, key, "error", f"event needs {what}"))
            continue
        if isinstance(start_value, date) and not isinstance(start_value, datetime):
            parsed.unreadable.append(RowReport(line, key, "error", "all-day events are not shifts"))
            continue
        parsed.rows.append(
            ParsedRow(
                line=line,
                key=key,
                peer=peer,
                starts_at=start_value,
                ends_at=end.dt,
                counties=counties,
                kind=str(event.get("X-CORESPOND-KIND") or "on_duty").strip().lower(),
                legacy_key=legacy_key,
            )
        )
    parsed.rows.sort(key=lambda r: (r.line, r.key))
    return parsed


def _occurrence_keys(
    occurrences: Sequence[Any], series: set[str], zone: ZoneInfo
) -> list[tuple[str, str | None]]:
    """Each occurrence's key, and the key imports gave it before date keys.

    A one-off event is its UID. An occurrence of a recurring event is its UID and the date
    of its RECURRENCE-ID (its place in the series), with ``#n`` for the n-th that day: moving
    the whole series to another hour keeps every key, so its shifts are updated, not added
    beside the old ones (where they would overlap them)."""
    places: list[tuple[str, date, Any] | None] = []
    for event in occurrences:
        uid = str(event.get("UID", "")).strip()
        recurrence = event.get("RECURRENCE-ID")
        if uid in series and recurrence is not None:
            places.append((uid, _local_date(recurrence.dt, zone), recurrence.dt))
        else:
            places.append(None)
    ordinal: dict[int, int] = {}
    that_day: Counter[tuple[str, date]] = Counter()
    for uid, day, _, index in sorted(
        (place[0], place[1], _instant(place[2]), index)
        for index, place in enumerate(places)
        if place is not None
    ):
        that_day[uid, day] += 1
        ordinal[index] = that_day[uid, day]
    keys: list[tuple[str, str | None]] = []
    for index, (event, place) in enumerate(zip(occurrences, places, strict=True)):
        if place is None:
            keys.append((str(event.get("UID", "")).strip(), None))
            continue
        uid, day, recurrence = place
        suffix = f"#{ordinal[index]}" if ordinal[index] > 1 else ""
        keys.append((f"{uid}@{day.isoformat()}{suffix}", f"{uid}@{_instant(recurrence)}"))
    return keys


def _local_date(value: Any, zone: ZoneInfo) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(zone) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    raise ImportFileError(f"RECURRENCE-ID is not a date: {value!r}")


def _instant(value: Any) -> str:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    return str(value)


# --- applying ------------------------------------------------------------------------------


@dataclass
class _Target:
    """Where an import's rows go, and the peers its rows named."""

    session: AsyncSession
    principal: Principal
    atlas: CountyAtlas
    provider_id: str
    timezone: str
    peers: dict[str, Peer]
    now: datetime
    used: dict[uuid.UUID, Peer] = field(default_factory=dict)


async def apply_rows(
    session: AsyncSession,
    principal: Principal,
    atlas: CountyAtlas,
    provider_id: str,
    parsed: ParsedFile,
    report: ImportReport,
    timezone: str,
    *,
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Cancel the occurrences the file's recurring events no longer have in ``window``,
    then create or update one shift per row, each in its own savepoint, reporting each."""
    service.require_provider_access(principal, provider_id)
    await service.get_provider(session, provider_id)
    # One import per provider at a time: two concurrent imports of one file would race on
    # the same shift ids.
    await repository.lock_provider_imports(session, provider_id)
    peers = {
        p.display_name.upper(): p for p in await repository.peers_of_provider(session, provider_id)
    }
    target = _Target(session, principal, atlas, provider_id, timezone, peers, now)
    if parsed.series and window is not None:
        await _cancel_dropped_occurrences(target, parsed, report, window)
    entries: list[RowReport] = []
    overlapping: list[tuple[int, ParsedRow]] = []
    for done, row in enumerate(parsed.rows, start=1):
        entry, overlaps = await _attempt(target, row)
        if overlaps:
            overlapping.append((len(entries), row))
        entries.append(entry)
        if progress is not None:
            progress(done)
    # A row refused for overlapping a shift that a later row moves away (a series moved an
    # hour later, its first occurrence into the old place of its second) is tried again,
    # round after round while each round places at least one more.
    while overlapping:
        still = []
        for index, row in overlapping:
            entries[index], overlaps = await _attempt(target, row)
            if overlaps:
                still.append((index, row))
        if len(still) == len(overlapping):
            break
        overlapping = still
    report.rows.extend(entries)
    report.rows.sort(key=lambda r: (r.line, r.key))
    report.notes.extend(_status_notes(target.used.values()))


async def _attempt(target: _Target, row: ParsedRow) -> tuple[RowReport, bool]:
    """One row in its own savepoint: its report, and whether only an overlap refused it."""
    entry = RowReport(row.line, row.key)
    try:
        async with target.session.begin_nested():
            peer = await _apply_row(target, row, entry)
    except service.ShiftOverlap as overlap:
        entry.result, entry.reason = "error", overlap.detail or overlap.title
        return entry, True
    except Problem as problem:
        entry.result, entry.reason = "error", problem.detail or problem.title
    else:
        target.used[peer.id] = peer
    return entry, False


async def _apply_row(target: _Target, row: ParsedRow, entry: RowReport) -> Peer:
    session, provider_id = target.session, target.provider_id
    peer = target.peers.get(row.peer.upper()) or await _peer_by_id(session, provider_id, row.peer)
    if peer is None:
        raise NotFound(f"no peer {row.peer!r} in provider {provider_id!r}")
    starts_at = to_utc(row.starts_at, target.timezone, "starts_at")
    key = row.key or f"{peer.id}@{starts_at.isoformat()}"
    entry.key = key
    data = service.ShiftInput(
        peer_id=peer.id,
        starts_at=starts_at,
        ends_at=to_utc(row.ends_at, target.timezone, "ends_at"),
        counties=service.resolve_counties(target.atlas, row.counties),
        kind=row.kind,
        external_key=key,
    )
    existing = await repository.shift_by_key(session, provider_id, key)
    if existing is None and row.legacy_key:
        existing = await repository.shift_by_key(session, provider_id, row.legacy_key)
        if existing is not None:
            existing.external_key = key  # known by its date from now on
            await session.flush()
    if existing is None:
        shift = await service.create_shift(session, target.principal, data)
        entry.result, entry.shift_id = "created", shift.id
        return peer
    entry.shift_id = existing.id
    if existing.cancelled_at is not None:
        entry.result, entry.reason = "unchanged", "cancelled since; not restored by an import"
        return peer
    if existing.peer_id != peer.id:
        raise Conflict("the shift id belongs to another peer's shift")
    changed = await service.update_shift(session, target.principal, existing, data)
    entry.result = "updated" if changed else "unchanged"
    return peer


async def _cancel_dropped_occurrences(
    target: _Target, parsed: ParsedFile, report: ImportReport, window: tuple[datetime, datetime]
) -> None:
    """Shifts of a recurring event in the file, starting in the window, that the event no
    longer has (shortened, moved to other days, given an exception): cancelled, before the
    rows are applied so that an occurrence may move into the time one of them held."""
    claimed = {row.key for row in parsed.rows} | {row.key for row in parsed.unreadable}
    claimed |= {row.legacy_key for row in parsed.rows if row.legacy_key}
    for uid, line in parsed.series.items():
        prefix = f"{uid}@"
        shifts = await repository.live_shifts_keyed(
            target.session, target.provider_id, prefix, *window
        )
        for shift in shifts:
            key = shift.external_key or ""
            if key in claimed or not OCCURRENCE_SUFFIX.fullmatch(key.removeprefix(prefix)):
                continue
            await service.cancel_shift(target.session, target.principal, shift, target.now)
            report.rows.append(
                RowReport(line, key, "cancelled", "no longer an occurrence of the event", shift.id)
            )


def _status_notes(peers: Iterable[Peer]) -> list[str]:
    """Peers of the import whose status keeps them from calls (new peers start off duty)."""
    off = sorted(p.display_name for p in peers if p.status == "off_duty")
    if not off:
        return []
    who = "1 peer is" if len(off) == 1 else f"{len(off)} peers are"
    return [
        f"{who} off duty and will not be offered calls until their status is set to "
        f"available (POST /v1/peers/{{id}}/status): {', '.join(off)}"
    ]


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
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Check every row; apply them all, or (dry run, or any error) none of them. A dry run
    reports exactly what the import would, without storing it."""
    report = ImportReport(format=fmt, dry_run=dry_run)
    window = window or default_window(now)
    if fmt == "csv":
        parsed = parse_csv(text)
    else:
        # Expanding recurrences is CPU work; off the event loop, so requests keep flowing.
        parsed = await asyncio.to_thread(parse_ical, text, *window, timezone)
    report.rows.extend(parsed.unreadable)
    total = len(parsed.rows)
    outer = await session.begin_nested()
    await apply_rows(
        session,
        principal,
        atlas,
        provider_id,
        parsed,
        report,
        timezone,
        now=now,
        window=window,
        progress=(lambda done: progress(done, total)) if progress else None,
    )
    if dry_run or report.errors:
        await outer.rollback()
        # Nothing was stored: a shift the rows would have created has no id.
        for row in report.rows:
            if row.result == "created":
                row.shift_id = None
    else:
        await outer.commit()
        report.applied = True
    return report


def default_window(now: datetime, days: int = 60) -> tuple[datetime, datetime]:
    """Recurrences are expanded from a day ago to ``days`` ahead."""
    return now - timedelta(days=1), now + timedelta(days=days)
