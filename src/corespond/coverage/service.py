"""Coverage for supervisors: who is on now, where the gaps are, how requests went."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts import service as alerts
from corespond.assignments import views as assignments
from corespond.assignments.models import (
    LIVE_STATUSES,
    OUTCOMES,
    REFERRALS,
    Assignment,
    PeerRequest,
)
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.filters import CallFilter
from corespond.calls.models import Call
from corespond.coverage import repository
from corespond.coverage.gaps import Interval, hours, uncovered
from corespond.errors import Forbidden, NotFound
from corespond.geo.atlas import CountyAtlas
from corespond.notify import service as notify
from corespond.roster import service as roster
from corespond.roster.models import Peer, Shift

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
    provider_role: str | None  # primary, or backup when no provider is the county's primary
    peers: list[PeerOnShift]
    available: int
    active_assignments: int
    unfilled_24h: int

    @property
    def covered(self) -> bool:
        return self.available > 0

    @property
    def state(self) -> str:
        """available: someone could be sent; busy: on shift but none free; none: no one."""
        if self.available:
            return "available"
        return "busy" if self.peers else "none"


# An instant this close to now is "now": statuses and assignments count. Further away, the
# coverage is what the roster schedules (status then cannot be known).
NOW_TOLERANCE = timedelta(minutes=5)


async def coverage_at(
    session: AsyncSession,
    atlas: CountyAtlas,
    at: datetime,
    required: Sequence[str],
    now: datetime,
    counties: Sequence[str] | None = None,
) -> tuple[str, list[CountyCoverage]]:
    """Every county of the service area (or ``counties``) at ``at``, and the basis: ``now``
    (peer status and assignments count) or ``scheduled`` (shifts, providers, credentials).
    A peer counts as free only where matching could send them: on shift, of a provider
    serving the county, credentials valid (and, now, available and not on a call)."""
    current = abs(at - now) <= NOW_TOLERANCE
    serving = await roster.serving_by_county(session)
    rows = await repository.shifts_overlapping(session, at, at + timedelta(microseconds=1))
    peer_ids = list({peer.id for _, peer in rows})
    credentials = await roster.credentials_of(session, peer_ids)
    busy = await assignments.busy_peers(session, peer_ids) if current else set()
    active = await repository.live_assignments_by_county(session) if current else {}
    unfilled = Counter(
        fips for fips in await repository.unfilled_counties(session, at - timedelta(hours=24), at)
    )
    by_county: dict[str, list[PeerOnShift]] = defaultdict(list)
    for shift, peer in rows:
        problems = roster.credential_problems(credentials[peer.id], required, at)
        for fips in shift.counties:
            why = None
            if peer.provider_id not in serving.get(fips, {}):
                why = f"provider {peer.provider_id} does not serve this county"
            elif current and peer.id in busy:
                why = "on an assignment"
            elif current and peer.status != "available":
                why = f"status {peer.status}"
            elif problems:
                why = "; ".join(problems)
            by_county[fips].append(
                PeerOnShift(
                    peer_id=str(peer.id),
                    display_name=peer.display_name,
                    provider_id=peer.provider_id,
                    status=("busy" if peer.id in busy else peer.status) if current else "scheduled",
                    shift_ends_at=shift.ends_at,
                    free=why is None,
                    why_not=why,
                )
            )
    wanted = set(counties) if counties is not None else None
    return ("now" if current else "scheduled"), [
        CountyCoverage(
            fips=county.fips,
            name=county.name,
            provider_id=roster.lead_provider(serving.get(county.fips, {})),
            provider_role=_lead_role(serving.get(county.fips, {})),
            peers=sorted(by_county[county.fips], key=lambda p: p.display_name),
            available=sum(p.free for p in by_county[county.fips]),
            active_assignments=active.get(county.fips, 0),
            unfilled_24h=unfilled.get(county.fips, 0),
        )
        for county in atlas.counties
        if wanted is None or county.fips in wanted
    ]


def _lead_role(serving: dict[str, str]) -> str | None:
    """Whether the provider shown for a county is its primary or (none being) a backup."""
    lead = roster.lead_provider(serving)
    return serving[lead] if lead is not None else None


@dataclass(frozen=True)
class CountyGaps:
    fips: str
    name: str
    provider_id: str | None
    provider_role: str | None
    gaps: list[Interval]

    @property
    def uncovered_hours(self) -> float:
        return hours(self.gaps)


async def gaps_between(
    session: AsyncSession,
    atlas: CountyAtlas,
    start: datetime,
    end: datetime,
    required: Sequence[str],
    counties: Sequence[str] | None = None,
) -> list[CountyGaps]:
    """Per county, the stretches of ``[start, end)`` that no peer covers as the schedule
    can know it, which is how ``coverage_at`` counts a peer ahead of now: on shift there,
    for a provider serving it, every required credential valid (a shift outlives an expiring
    credential only up to the expiry). Status and calls cannot be known ahead."""
    serving = await roster.serving_by_county(session)
    rows = await repository.shifts_overlapping(session, start, end)
    credentials = await roster.credentials_of(session, list({peer.id for _, peer in rows}))
    intervals: dict[str, list[Interval]] = defaultdict(list)
    for shift, peer in rows:
        span = roster.offerable_span(credentials[peer.id], required, shift.starts_at, shift.ends_at)
        if span is None:
            continue
        for fips in shift.counties:
            if peer.provider_id in serving.get(fips, {}):
                intervals[fips].append(span)
    wanted = (
        list(dict.fromkeys(counties)) if counties is not None else [c.fips for c in atlas.counties]
    )
    return [
        CountyGaps(
            fips=fips,
            name=atlas.by_fips[fips].name,
            provider_id=roster.lead_provider(serving.get(fips, {})),
            provider_role=_lead_role(serving.get(fips, {})),
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
    cancelled: int = 0  # ended before anyone accepted: call ended, danger, dispatcher
    open: int = 0  # still being offered
    accept_minutes: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    referrals: Counter[str] = field(default_factory=Counter)

    @property
    def median_minutes_to_accept(self) -> float | None:
        if not self.accept_minutes:
            return None
        # Adding 0.0 turns a median that rounds to -0.0 into 0.0.
        return round(statistics.median(self.accept_minutes), 2) + 0.0


async def summary(
    session: AsyncSession, atlas: CountyAtlas, start: datetime, end: datetime
) -> list[SummaryRow]:
    """Per county and provider, for program evaluation: eligible calls, requests (filled:
    a peer accepted; unfilled: no one could be offered it; cancelled before anyone accepted;
    still open), median minutes from request to acceptance, outcomes and referrals. A
    request counts for the provider whose peer accepted it, else the county's lead provider
    (its primary, else a backup), as do its eligible calls."""
    serving = await roster.serving_by_county(session)
    primary = {fips: roster.lead_provider(providers) for fips, providers in serving.items()}
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
            # The request is timed by the database's clock, the acceptance by the
            # application's: a moment's skew between them is no negative wait.
            waited = max(timedelta(0), accepted.accepted_at - request.created_at)
            target.accept_minutes.append(waited.total_seconds() / 60)
            if accepted.outcome:
                target.outcomes[accepted.outcome] += 1
                target.referrals.update(accepted.referrals or [])
        elif assignments[-1].status == "unfilled":
            target.unfilled += 1
        elif assignments[-1].status in LIVE_STATUSES:
            target.open += 1
        else:
            target.cancelled += 1
    return sorted(rows.values(), key=lambda r: (r.county or "~", r.provider_id or "~"))


SUMMARY_COLUMNS = (
    "county_fips",
    "county",
    "provider",
    "eligible_calls",
    "requests",
    "filled",
    "unfilled",
    "cancelled",
    "open",
    "median_minutes_to_accept",
    *(f"outcome_{o}" for o in OUTCOMES),
    *(f"referral_{r}" for r in REFERRALS),
)


async def unfilled_recent(
    session: AsyncSession, since: datetime, counties: Sequence[str] | None = None
) -> list[dict[str, str | None]]:
    """Unfilled requests since ``since``, newest first, as the supervisor page lists them,
    each with what became of the supervisors' notices of it."""
    rows = [
        row
        for row in await repository.unfilled_since(session, since)
        if counties is None or row.county_fips in counties
    ]
    told: dict[uuid.UUID, list[str]] = {}
    for notice in await notify.unfilled_notices(session, [row.id for row in rows]):
        if notice.assignment_id is None:
            continue
        channel = "push" if notice.channel == "webpush" else "SMS"
        told.setdefault(notice.assignment_id, []).append(
            f"{channel} {notice.delivery_status or notice.state}"
        )
    # A request of a call whose alert was raised by an earlier request raised none of its
    # own: its supervisors were told (and reminded) through that alert.
    call_alerts = await alerts.latest_for_calls(session, [row.call_id for row in rows])
    for row in rows:
        alert = call_alerts.get(row.call_id)
        if row.id not in told and alert is not None and alert.assignment_id != row.id:
            told[row.id] = [f"with the call's alert ({alerts.state_of(alert)})"]
    return [
        {
            "at": row.created_at.isoformat(),
            "call": f"{row.source_id}/{row.incident_number}",
            "county": row.county_name,
            "next_available_at": row.next_available_at.isoformat()
            if row.next_available_at
            else None,
            "why": row.summary,
            "supervisors_told": ", ".join(sorted(told.get(row.id, []))) or None,
        }
        for row in rows
    ]


def scoped_counties(principal: Principal) -> list[str] | None:
    """The counties a key may see coverage of: a county-scoped key its county; unscoped all.
    Other scopes (agency, provider, peer) do not describe a part of the map: refused."""
    if principal.scope is None:
        return None
    if principal.scope.kind == "county":
        return [principal.scope.value]
    raise Forbidden(
        f"coverage is by county; a key scoped to a {principal.scope.kind} cannot read it "
        "(use an unscoped or county-scoped supervisor key)"
    )


# --- one county, drilled into: its calls, its peers and their shifts -----------------------

# The calls a drill-down shows: opened this recently (as the dispatch console).
DETAIL_CALL_HOURS = 12
# The shifts it shows: those overlapping now to this far ahead.
DETAIL_SHIFT_DAYS = 7
# A credential expiring this soon is shown beside the peer.
DETAIL_EXPIRY_DAYS = 30


@dataclass(frozen=True)
class CountyPeer:
    peer: Peer
    on_shift_now: bool
    free: bool
    why_not: str | None
    credential_problems: list[str]
    expiring: list[tuple[str, datetime]]
    assignment: tuple[Assignment, Call] | None
    shifts: list[Shift]


@dataclass(frozen=True)
class CountyCall:
    call: Call
    assignment: Assignment | None
    peer: Peer | None


@dataclass(frozen=True)
class CountyDetail:
    coverage: CountyCoverage
    calls: list[CountyCall]
    peers: list[CountyPeer]


async def county_detail(
    session: AsyncSession,
    atlas: CountyAtlas,
    principal: Principal,
    fips: str,
    required: Sequence[str],
    now: datetime,
) -> CountyDetail:
    """A county drilled into: coverage now, the calls opened there in the last 12 hours
    (newest first, with each one's peer), and the peers who serve it (of its providers, or
    on shift there) with status, whether free now (or why not), credentials, live
    assignment and shifts in the county over the next 7 days. A county-scoped key sees its
    own county only (another: ``NotFound``)."""
    allowed = scoped_counties(principal)
    if allowed is not None and fips not in allowed:
        raise NotFound(f"county {fips} not found")
    _, [coverage] = await coverage_at(session, atlas, now, required, now, [fips])
    rows, _ = await calls.list_calls(
        session,
        CallFilter(county_fips=fips, opened_from=now - timedelta(hours=DETAIL_CALL_HOURS)),
        principal,
        cursor=None,
        limit=200,
    )
    found = await assignments.latest_for_calls(session, [c.id for c in rows])
    call_rows = [
        CountyCall(call, *found.get(call.id, (None, None)))
        for call in sorted(rows, key=lambda c: c.opened_at or c.created_at, reverse=True)
    ]
    shifts = [
        (shift, peer)
        for shift, peer in await repository.shifts_overlapping(
            session, now, now + timedelta(days=DETAIL_SHIFT_DAYS)
        )
        if fips in shift.counties
    ]
    serving = await roster.providers_serving(session, fips)
    peers: dict[uuid.UUID, Peer] = {}
    for provider_id in sorted(serving):
        for peer in await roster.list_peers(
            session, principal, provider_id=provider_id, status=None, after=None, limit=500
        ):
            peers[peer.id] = peer
    for _, peer in shifts:
        peers.setdefault(peer.id, peer)
    credentials = await roster.credentials_of(session, list(peers))
    live = await assignments.live_by_peer(session, list(peers))
    now_by_peer = {p.peer_id: p for p in coverage.peers}
    details = []
    for peer in peers.values():
        here = now_by_peer.get(str(peer.id))
        soon = now + timedelta(days=DETAIL_EXPIRY_DAYS)
        details.append(
            CountyPeer(
                peer=peer,
                on_shift_now=here is not None,
                free=here is not None and here.free,
                why_not=here.why_not if here is not None else "not on shift here now",
                credential_problems=roster.credential_problems(credentials[peer.id], required, now),
                expiring=sorted(
                    (c.kind, c.expires_at)
                    for c in credentials[peer.id]
                    if c.expires_at is not None and now < c.expires_at <= soon
                ),
                # A peer's call in another county is not this key's to see (only "busy").
                assignment=(
                    live[peer.id]
                    if peer.id in live and calls.visible(live[peer.id][1], principal)
                    else None
                ),
                shifts=[s for s, p in shifts if p.id == peer.id],
            )
        )
    details.sort(key=lambda d: (not d.on_shift_now, d.peer.display_name.lower()))
    return CountyDetail(coverage, call_rows, details)


async def change_stamp(session: AsyncSession) -> object:
    """What the supervisor page's live stream watches: changes to calls, assignments, the
    roster, CAD deliveries and alerts."""
    return (await repository.change_stamp(session), await alerts.change_stamp(session))
