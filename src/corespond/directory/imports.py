"""Importing the resource directory from Open Referral HSDS files: every service checked and
placed (its kinds from its taxonomy terms, its counties from its location and service areas),
then all applied or none, with a report per row, as roster imports are.

A service is known by its HSDS id: importing the same file again changes nothing, and a file
with an updated service updates it. A service missing from a file is not removed (mark it
``inactive`` in the file to stop offering it).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.directory import hsds, repository
from corespond.directory.hsds import HsdsService
from corespond.directory.models import KINDS, STATUSES, DirectoryOrganization, DirectoryService
from corespond.errors import Problem
from corespond.geo.service import Geography

Result = Literal["created", "updated", "unchanged", "error"]
# A service area naming a whole state of the service area (a statewide hotline).
STATE_NAMES = {"west virginia": "54", "wv": "54", "statewide": "*"}


@dataclass
class RowReport:
    file: str
    line: int
    key: str
    result: Result = "unchanged"
    reason: str | None = None
    service_id: uuid.UUID | None = None
    # The service now belongs to another organization (what was shared with the old one
    # through referrals to it ends).
    moved: bool = False


@dataclass
class ImportReport:
    format: Literal["json", "csv"]
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


class DirectoryFileError(Problem):
    status = 422
    slug = "invalid-directory-file"
    title = "Directory file cannot be read"


@dataclass(frozen=True)
class Placed:
    """A service ready to store: what the file said, with its kinds and counties."""

    source: HsdsService
    kinds: tuple[str, ...]
    counties: tuple[str, ...]


def place(service: HsdsService, geography: Geography) -> Placed | str:
    """The service with its kinds and counties, or why it cannot be stored."""
    problems = list(service.problems)
    if not service.key:
        problems.append("no id: every HSDS service has one")
    if not service.name:
        problems.append("no name")
    if not service.organization_id:
        problems.append("no organization (organization.id or organization_id)")
    elif not service.organization_name:
        problems.append(f"organization {service.organization_id!r} has no name")
    status = service.status.strip().lower()
    if status not in STATUSES:
        problems.append(f"status {service.status!r} is not one of {', '.join(STATUSES)}")
    kinds = hsds.kinds_of(service.terms)
    if not kinds:
        shown = ", ".join(repr(t) for t in service.terms[:5]) or "none"
        problems.append(
            f"no kind of service corespond refers to among its taxonomy terms ({shown}): "
            f"name one of {', '.join(KINDS)} (or detoxification, MOUD, sober living, "
            "naloxone …) in a term's code or name"
        )
    counties, where = _counties(service, geography)
    problems += where
    if not counties and not where:
        problems.append(
            "no county of the service area: give the location's coordinates, a ZIP code or "
            "town of the service area, or service areas naming counties"
        )
    if problems:
        return "; ".join(problems)
    service.status = status
    return Placed(service, kinds, counties)


def _counties(service: HsdsService, geography: Geography) -> tuple[tuple[str, ...], list[str]]:
    found: list[str] = []
    problems: list[str] = []
    atlas, gazetteer = geography.atlas, geography.gazetteer
    if service.lat is not None and service.lon is not None:
        county = atlas.locate(service.lat, service.lon)
        if county is not None:
            found.append(county.fips)
    if not found and service.postal_code:
        place = gazetteer.by_zip(service.postal_code.strip()[:5])
        if place is not None:
            found.append(place.fips)
    if (
        not found
        and service.city
        and (service.state or "WV").strip().upper() in ("WV", "WEST VIRGINIA")
    ):
        place = gazetteer.by_city(service.city)
        if place is not None:
            found.append(place.fips)
    for area in service.service_areas:
        name = area.strip()
        for suffix in (", WV", " WV", ", West Virginia"):
            if name.upper().endswith(suffix.upper()):
                name = name[: -len(suffix)]
        state = STATE_NAMES.get(name.strip().lower())
        if state is not None:
            found += [c.fips for c in atlas.counties if state == "*" or c.fips.startswith(state)]
            continue
        county = atlas.named(name)
        if county is None:
            problems.append(f"service area {area!r} is not a county of the service area")
        else:
            found.append(county.fips)
    return tuple(dict.fromkeys(found)), problems


def read(fmt: Literal["json", "csv"], data: bytes) -> hsds.HsdsFile:
    """The file's services, else ``DirectoryFileError`` saying why it cannot be read."""
    try:
        if fmt == "json":
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise hsds.HsdsFileError("the file is not UTF-8 text") from None
            return hsds.read_json(text)
        return hsds.read_package(data)
    except hsds.HsdsFileError as exc:
        raise DirectoryFileError(str(exc)) from None


def _values(placed: Placed) -> dict[str, Any]:
    source = placed.source
    return {
        "organization_id": source.organization_id,
        "name": source.name,
        "kinds": list(placed.kinds),
        "counties": list(placed.counties),
        "status": source.status,
        "address": source.address,
        "city": source.city,
        "postal_code": source.postal_code,
        "lat": source.lat,
        "lon": source.lon,
        "phone": source.phone,
        "url": source.url,
        "description": source.description,
    }


async def _store(session: AsyncSession, placed: Placed, entry: RowReport, now: datetime) -> None:
    source = placed.source
    organization = await session.get(DirectoryOrganization, source.organization_id)
    if organization is None:
        session.add(
            DirectoryOrganization(
                id=source.organization_id,
                name=source.organization_name,
                website=source.organization_website,
                updated_at=now,
            )
        )
    elif (organization.name, organization.website) != (
        source.organization_name,
        source.organization_website,
    ):
        organization.name = source.organization_name
        organization.website = source.organization_website
        organization.updated_at = now
    await session.flush()
    values = _values(placed)
    existing = await repository.service_by_hsds_id(session, source.key)
    if existing is None:
        row = DirectoryService(hsds_id=source.key, created_at=now, updated_at=now, **values)
        session.add(row)
        await session.flush()
        entry.result, entry.service_id = "created", row.id
        return
    entry.service_id = existing.id
    changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
    if not changed:
        entry.result = "unchanged"
        return
    for name, value in changed.items():
        setattr(existing, name, value)
    existing.updated_at = now
    await session.flush()
    entry.result = "updated"
    entry.reason = "changed: " + ", ".join(sorted(changed))
    entry.moved = "organization_id" in changed


async def run_import(
    session: AsyncSession,
    geography: Geography,
    *,
    fmt: Literal["json", "csv"],
    data: bytes,
    dry_run: bool,
    now: datetime,
) -> ImportReport:
    """Check every service; store them all, or (a dry run, or any error) none. A dry run
    reports exactly what the import would, without storing anything."""
    parsed = await asyncio.to_thread(read, fmt, data)
    report = ImportReport(format=fmt, dry_run=dry_run)
    # One import at a time: two imports of one file would race on the same HSDS ids.
    await repository.lock_imports(session)
    seen: dict[str, int] = {}
    outer = await session.begin_nested()
    for service in parsed.services:
        entry = RowReport(service.file, service.line, service.key)
        report.rows.append(entry)
        if service.key and service.key in seen:
            entry.result = "error"
            entry.reason = f"id {service.key!r} repeats the service on line {seen[service.key]}"
            continue
        if service.key:
            seen[service.key] = service.line
        placed = place(service, geography)
        if isinstance(placed, str):
            entry.result, entry.reason = "error", placed
            continue
        try:
            async with session.begin_nested():
                await _store(session, placed, entry, now)
        except Problem as problem:
            entry.result, entry.reason = "error", problem.detail or problem.title
    for stray in parsed.strays:
        report.rows.append(RowReport(stray.file, stray.line, stray.key, "error", stray.reason))
    report.rows.sort(key=lambda r: (r.file != "service.csv" and r.file != "json", r.file, r.line))
    if dry_run or report.errors:
        await outer.rollback()
        for row in report.rows:
            if row.result == "created":
                row.service_id = None
    else:
        await outer.commit()
        report.applied = True
    return report
