"""The program's report: its figures for a period, in total, per week and per county, within
the counties a key may see (as coverage decides: an unscoped key every county, a
county-scoped key its own; other scopes are refused)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import OUTCOMES, REFERRALS
from corespond.auth.service import Principal
from corespond.coverage.service import scoped_counties
from corespond.errors import Forbidden
from corespond.followups.models import REACHED
from corespond.geo.atlas import CountyAtlas
from corespond.geo.service import require_county
from corespond.reports import repository
from corespond.reports.aftercall import (
    AfterFigures,
    AfterTally,
    ConsentEvent,
    ContactEvent,
    FollowUpEvent,
    PersonEvent,
    ReferralEvent,
    tally_after,
)
from corespond.reports.figures import CallRecord, Figures, Offer, tally
from corespond.reports.periods import Period, Week
from corespond.roster import service as roster

NO_COUNTY = "no county found"
NO_AGENCY = "no agency named"


@dataclass(frozen=True)
class WeekRow:
    week: Week
    figures: Figures


@dataclass(frozen=True)
class CountyRow:
    fips: str | None  # None: calls that could not be placed in a county
    name: str
    figures: Figures


@dataclass(frozen=True)
class AgencyRow:
    name: str  # as CAD names it; NO_AGENCY for calls that named none
    figures: Figures


@dataclass(frozen=True)
class AfterWeekRow:
    week: Week
    figures: AfterFigures


@dataclass(frozen=True)
class AfterCountyRow:
    fips: str | None
    name: str
    figures: AfterFigures


@dataclass(frozen=True)
class After:
    """The period's figures after the call, in total, per week and per county."""

    total: AfterFigures
    weeks: list[AfterWeekRow]
    by_county: list[AfterCountyRow]


@dataclass(frozen=True)
class Report:
    period: Period
    timezone: str
    starts_at: datetime
    ends_at: datetime
    counties: list[tuple[str, str]] | None  # the counties asked for; None: all the key sees
    total: Figures
    weeks: list[WeekRow]
    by_county: list[CountyRow]
    outcome_kinds: tuple[str, ...]
    referral_kinds: tuple[str, ...]
    generated_at: datetime
    by_agency: list[AgencyRow]
    after: After

    @property
    def county_label(self) -> str:
        if self.counties is None:
            return "all counties"
        return ", ".join(name for _, name in self.counties)


def visible_counties(principal: Principal) -> list[str] | None:
    """The counties a key may see reports of (None: every county, and calls in none)."""
    try:
        return scoped_counties(principal)
    except Forbidden:
        kind = principal.scope.kind if principal.scope else "?"
        raise Forbidden(
            f"reports are by county, as coverage is; a key scoped to a {kind} cannot read "
            "them (use an unscoped or county-scoped supervisor key)"
        ) from None


def counties_for(
    principal: Principal, atlas: CountyAtlas, names: Sequence[str]
) -> list[str] | None:
    """The counties a report covers: those named (by name or FIPS; blank names are no
    filter), else every county the key may see. An unknown county is a 422; a county
    outside the key's scope a 403."""
    allowed = visible_counties(principal)
    wanted = list(
        dict.fromkeys(require_county(atlas, n, "query.county").fips for n in names if n.strip())
    )
    if not wanted:
        return allowed
    if allowed is not None:
        outside = [f for f in wanted if f not in allowed]
        if outside:
            seen = ", ".join(atlas.by_fips[f].name for f in allowed) or "no county"
            raise Forbidden(
                f"{', '.join(atlas.by_fips[f].name for f in outside)} is outside this key's "
                f"scope (it sees {seen})"
            )
    return wanted


async def county_choices(
    session: AsyncSession, atlas: CountyAtlas, principal: Principal
) -> list[tuple[str, str]]:
    """The counties a key may pick from: its own, or (unscoped) those a provider serves."""
    allowed = visible_counties(principal)
    fips = allowed if allowed is not None else list(await roster.serving_by_county(session))
    return sorted(((f, atlas.by_fips[f].name) for f in fips if f in atlas.by_fips), key=_by_name)


def _by_name(item: tuple[str, str]) -> str:
    return item[1]


def _kinds(known: Sequence[str], found: Sequence[str]) -> tuple[str, ...]:
    """The kinds the assignment model knows, in its order, then any older data holds."""
    return (*known, *sorted(set(found) - set(known)))


async def program_report(
    session: AsyncSession,
    atlas: CountyAtlas,
    period: Period,
    timezone: str,
    counties: Sequence[str] | None,
    now: datetime,
) -> Report:
    """The figures of the calls that opened in ``period`` in ``counties`` (None: every
    county, and calls placed in none), in total, per week and per county (``counties``, or
    every county a provider serves or a call opened in)."""
    zone = ZoneInfo(timezone)
    start, end = period.bounds(zone)
    offers: dict[uuid.UUID, list[Offer]] = defaultdict(list)
    for row in await repository.offers_on_calls_opened(session, start, end, counties):
        offers[row.call_id].append(
            Offer(
                status=row.status,
                offered_at=row.offered_at,
                accepted_at=row.accepted_at,
                en_route_at=row.en_route_at,
                outcome=row.outcome,
                referrals=tuple(row.referrals or ()),
            )
        )
    calls = [
        CallRecord(
            opened_at=row.opened_at,
            county_fips=row.county_fips,
            eligible=row.decision == "eligible",
            offers=tuple(offers.get(row.id, ())),
            agency=row.agency,
        )
        for row in await repository.calls_opened(session, start, end, counties)
    ]
    shown: list[str | None] = (
        list(counties) if counties is not None else list(await roster.serving_by_county(session))
    )
    counted = tally(calls, period, zone, shown)
    after = await _after(session, period, zone, start, end, counties, shown, now)

    def name(fips: str | None) -> str:
        if fips is None:
            return NO_COUNTY
        county = atlas.by_fips.get(fips)
        return county.name if county else fips

    by_county = sorted(
        (CountyRow(fips, name(fips), figures) for fips, figures in counted.counties.items()),
        key=lambda row: (row.fips is None, row.name),
    )
    return Report(
        period=period,
        timezone=timezone,
        starts_at=start,
        ends_at=end,
        counties=[(f, name(f)) for f in counties] if counties is not None else None,
        total=counted.total,
        weeks=[WeekRow(week, counted.weeks[week.first]) for week in period.weeks()],
        by_county=by_county,
        outcome_kinds=_kinds(OUTCOMES, list(counted.total.outcomes)),
        referral_kinds=_kinds(REFERRALS, list(counted.total.referrals)),
        generated_at=now,
        by_agency=sorted(
            (AgencyRow(a or NO_AGENCY, f) for a, f in counted.agencies.items()),
            key=lambda row: (row.name == NO_AGENCY, row.name),
        ),
        after=After(
            total=after.total,
            weeks=[AfterWeekRow(week, after.weeks[week.first]) for week in period.weeks()],
            by_county=sorted(
                (AfterCountyRow(f, name(f), figures) for f, figures in after.counties.items()),
                key=lambda row: (row.fips is None, row.name),
            ),
        ),
    )


async def _after(
    session: AsyncSession,
    period: Period,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    counties: Sequence[str] | None,
    shown: Sequence[str | None],
    now: datetime,
) -> AfterTally:
    """The figures after the call, from de-identified rows (times, counties, kinds)."""
    first_met = await repository.people_first_met(session, start, end, counties)
    reached: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for person_id, done_at in await repository.reached_times(
        session, [row.id for row in first_met], REACHED
    ):
        reached[person_id].append(done_at)
    return tally_after(
        contacts=[
            ContactEvent(at, county, bool(identified))
            for at, county, identified in await repository.contacts_met(
                session, start, end, counties
            )
        ],
        consents=[
            ConsentEvent(at, county, bool(revoked))
            for at, county, revoked in await repository.consents_signed(
                session, start, end, counties
            )
        ],
        referrals=[
            ReferralEvent(at, county, kind, arrival)
            for at, county, kind, arrival in await repository.service_referrals(
                session, start, end, counties
            )
        ],
        followups=[
            FollowUpEvent(due, county, overdue, done)
            for due, county, overdue, done in await repository.followups_due(
                session, start, end, counties
            )
        ],
        people=[
            PersonEvent(row.first_met_at, row.county_fips, tuple(reached[row.id]))
            for row in first_met
        ],
        period=period,
        zone=zone,
        counties=shown,
        now=now,
    )
