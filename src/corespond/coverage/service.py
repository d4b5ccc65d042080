"""Coverage for supervisors: who is on now, where the gaps are, how requests went."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import OUTCOMES, REFERRALS, Assignment, PeerRequest
from corespond.assignments.repository import busy_peers
from corespond.calls.models import Call
from corespond.coverage import repository
from corespond.coverage.gaps import Interval, hours, uncovered
from corespond.geo.atlas import CountyAtlas
from corespond.roster import service as roster

STATES = ("available", "busy", "none")


@dataclass(frozen=True)
class PeerOnShift:
    peer_id: str
    display_name: str
    provider_id: str
    status: str
    shift_ends_at: datetime
    free: bool
    why_not: str | None


@dataclass(frozen=True)
class CountyCoverage:
    fips: str
    name: str
    provider_id: str | None
    peers: list[PeerOnShift]
    available: int
    active_assignments: int
    unfilled_24h: int

    @property
    def covered(self) -> bool:
        return self.available > 0

    @property
    def state(self) -> str:
        """available: someone free now; busy: on shift but none free; none: no one on."""
        if self.available:
            return "available"
        return "busy" if self.peers else "none"


async def coverage_at(
    session: AsyncSession, atlas: CountyAtlas, at: datetime, required: Sequence[str]
) -> list[CountyCoverage]:
    """Every county of the service area at ``at``."""
    primary = await roster.county_providers(session)
    rows = await repository.shifts_overlapping(session, at, at + timedelta(microseconds=1))
    peer_ids = list({peer.id for _, peer in rows})
    credentials = await roster.credentials_of(session, peer_ids)
    busy = await busy_peers(session, peer_ids)
    active = await repository.live_assignments_by_county(session)
    unfilled = Counter(
        call.county_fips
        for _, call in await repository.unfilled_since(session, at - timedelta(hours=24))
    )
    by_county: dict[str, list[PeerOnShift]] = defaultdict(list)
    for shift, peer in rows:
        problems = roster.credential_problems(credentials[peer.id], required, at)
        why = (
            "on an assignment"
            if peer.id in busy
            else f"status {peer.status}"
            if peer.status != "available"
            else "; ".join(problems)
            if problems
            else None
        )
        for fips in shift.counties:
            by_county[fips].append(
                PeerOnShift(
                    peer_id=str(peer.id),
                    display_name=peer.display_name,
                    provider_id=peer.provider_id,
                    status="busy" if peer.id in busy else peer.status,
                    shift_ends_at=shift.ends_at,
                    free=why is None,
                    why_not=why,
                )
            )
    return [
        CountyCoverage(
            fips=county.fips,
            name=county.name,
            provider_id=primary.get(county.fips),
            peers=sorted(by_county[county.fips], key=lambda p: p.display_name),
            available=sum(p.free for p in by_county[county.fips]),
            active_assignments=active.get(county.fips, 0),
            unfilled_24h=unfilled.get(county.fips, 0),
        )
        for county in atlas.counties
    ]


@dataclass(frozen=True)
class CountyGaps:
    fips: str
    name: str
    provider_id: str | None
    gaps: list[Interval]

    @property
    def uncovered_hours(self) -> float:
        return hours(self.gaps)


async def gaps_between(
    session: AsyncSession,
    atlas: CountyAtlas,
    start: datetime,
    end: datetime,
    counties: Sequence[str] | None = None,
) -> list[CountyGaps]:
    """Per county, the stretches of ``[start, end)`` with no peer on shift."""
    primary = await roster.county_providers(session)
    intervals: dict[str, list[Interval]] = defaultdict(list)
    for shift, _ in await repository.shifts_overlapping(session, start, end):
        for fips in shift.counties:
            intervals[fips].append((shift.starts_at, shift.ends_at))
    wanted = counties or [c.fips for c in atlas.counties]
    return [
        CountyGaps(
            fips=fips,
            name=atlas.by_fips[fips].name,
            provider_id=primary.get(fips),
            gaps=uncovered(intervals[fips], start, end),
        )
        for fips in wanted
    ]


@dataclass
class SummaryRow:
    county_fips: str | None
    county: str | None
    provider_id: str | None
    eligible_calls: int = 0
    requests: int = 0
    filled: int = 0
    unfilled: int = 0
    accept_minutes: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    referrals: Counter[str] = field(default_factory=Counter)

    @property
    def median_minutes_to_accept(self) -> float | None:
        return round(statistics.median(self.accept_minutes), 2) if self.accept_minutes else None


async def summary(
    session: AsyncSession, atlas: CountyAtlas, start: datetime, end: datetime
) -> list[SummaryRow]:
    """Per county and provider, for program evaluation: eligible calls, requests, filled,
    unfilled, median minutes from request to acceptance, outcomes and referrals. A request
    counts for the provider whose peer accepted it, else the county's primary provider."""
    primary = await roster.county_providers(session)
    rows: dict[tuple[str | None, str | None], SummaryRow] = {}

    def row(fips: str | None, provider: str | None) -> SummaryRow:
        key = (fips, provider)
        if key not in rows:
            county = atlas.by_fips.get(fips) if fips else None
            rows[key] = SummaryRow(fips, county.name if county else None, provider)
        return rows[key]

    for fips, count in await repository.eligible_calls(session, start, end):
        row(fips, primary.get(fips) if fips else None).eligible_calls += count

    by_request: dict[uuid.UUID, list[tuple[PeerRequest, Call, Assignment]]] = defaultdict(list)
    for request, call, assignment in await repository.requests_with_assignments(
        session, start, end
    ):
        by_request[request.id].append((request, call, assignment))
    for items in by_request.values():
        request, call, _ = items[0]
        assignments = [a for _, _, a in items]
        accepted = next((a for a in assignments if a.accepted_at is not None), None)
        fips = call.county_fips
        if accepted is not None:
            provider = accepted.provider_id
        else:
            provider = primary.get(fips) if fips else None
        target = row(fips, provider)
        target.requests += 1
        if accepted is not None and accepted.accepted_at is not None:
            target.filled += 1
            waited = accepted.accepted_at - request.created_at
            target.accept_minutes.append(waited.total_seconds() / 60)
            if accepted.outcome:
                target.outcomes[accepted.outcome] += 1
                target.referrals.update(accepted.referrals or [])
        elif assignments[-1].status == "unfilled":
            target.unfilled += 1
    return sorted(rows.values(), key=lambda r: (r.county or "~", r.provider_id or "~"))


SUMMARY_COLUMNS = (
    "county_fips",
    "county",
    "provider",
    "eligible_calls",
    "requests",
    "filled",
    "unfilled",
    "median_minutes_to_accept",
    *(f"outcome_{o}" for o in OUTCOMES),
    *(f"referral_{r}" for r in REFERRALS),
)


async def unfilled_recent(session: AsyncSession, since: datetime) -> list[dict[str, str | None]]:
    """Unfilled requests since ``since``, newest first, as the supervisor page lists them."""
    return [
        {
            "at": assignment.created_at.isoformat(),
            "call": f"{call.source_id}/{call.incident_number}",
            "county": call.county_name,
            "next_available_at": (
                assignment.next_available_at.isoformat() if assignment.next_available_at else None
            ),
            "why": (assignment.ranking or {}).get("summary"),
        }
        for assignment, call in await repository.unfilled_since(session, since)
    ]
