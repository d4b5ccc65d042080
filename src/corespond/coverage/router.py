"""Coverage for supervisors: ``/v1/coverage``, ``/v1/coverage/gaps``, ``/v1/coverage/summary``."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from corespond.assignments import scene
from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.coverage import service
from corespond.coverage.service import SUMMARY_COLUMNS, SummaryRow, scoped_counties
from corespond.db import SessionDep
from corespond.errors import Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.geo.service import require_county
from corespond.roster.times import to_utc

router = APIRouter(tags=["coverage"])

TimeParam = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=r"^[^\x00]*$",
        description="RFC 3339, or a wall-clock time in the program's time zone.",
    ),
]
MAX_WINDOW = timedelta(days=92)
ProviderRole = Literal["primary", "backup"]


class PeerOnShiftOut(BaseModel):
    peer_id: str
    display_name: str
    provider_id: str
    status: Literal["available", "busy", "off_duty", "scheduled"] = Field(
        description="Now: available, busy (on an assignment, or so set) or off_duty; "
        "scheduled when `basis` is `scheduled` (a peer's status ahead cannot be known)."
    )
    shift_ends_at: datetime
    free: bool = Field(description="Could be offered a call now.")
    why_not: str | None


class CountyCoverageOut(BaseModel):
    fips: str
    name: str
    provider_id: str | None = Field(
        description="The county's primary provider; with none, a backup provider serving it."
    )
    provider_role: ProviderRole | None = Field(
        description="primary, or backup: the county has no primary provider and this backup "
        "serves it; null with no provider."
    )
    state: Literal["available", "busy", "none"] = Field(
        description="available: a peer free now; busy: on shift but none free; none: no one."
    )
    covered: bool
    available: int
    peers_on_shift: list[PeerOnShiftOut]
    active_assignments: int
    unfilled_24h: int = Field(description="Requests that went unfilled in the last 24 hours.")


class CoverageOut(BaseModel):
    at: datetime
    basis: Literal["now", "scheduled"] = Field(
        description="now: peer status and assignments count; scheduled (an `at` more than 5 "
        "minutes from now): what the roster schedules, status unknown."
    )
    counties: list[CountyCoverageOut]


class GapOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    hours: float


class CountyGapsOut(BaseModel):
    fips: str
    name: str
    provider_id: str | None = Field(
        description="The county's primary provider; with none, a backup provider serving it."
    )
    provider_role: ProviderRole | None
    uncovered_hours: float
    gaps: list[GapOut]


class GapsOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    counties: list[CountyGapsOut]


class SummaryRowOut(BaseModel):
    county_fips: str | None
    county: str | None
    provider: str | None
    eligible_calls: int
    requests: int
    filled: int
    unfilled: int
    cancelled: int
    open: int
    median_minutes_to_accept: float | None
    outcomes: dict[str, int]
    referrals: dict[str, int]


class SummaryOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    rows: list[SummaryRowOut]


class DrillAssignmentOut(BaseModel):
    id: uuid.UUID
    status: str
    peer_id: uuid.UUID | None
    peer_display_name: str | None
    expires_at: datetime | None
    staged: bool = Field(description="Accepted, waiting for police to report the scene secure.")
    scene_secured_at: datetime | None
    cancel_reason: str | None
    next_available_at: datetime | None


class DrillCallOut(BaseModel):
    id: uuid.UUID
    source: str
    incident_number: str
    agency: str | None
    call_type: str | None
    opened_at: datetime
    status: str | None
    ended: bool
    decision: Literal["eligible", "review", "ineligible"] | None
    decision_summary: str | None
    turned_dangerous_at: datetime | None = Field(
        description="Set: the call turned dangerous (a supervisor may override it once police "
        "report it unfounded)."
    )
    assignment: DrillAssignmentOut | None


class DrillShiftOut(BaseModel):
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    kind: str
    counties: list[str]


class DrillCredentialOut(BaseModel):
    kind: str
    expires_at: datetime


class DrillPeerAssignmentOut(BaseModel):
    id: uuid.UUID
    status: str
    call_id: uuid.UUID
    incident_number: str
    county_fips: str | None


class DrillPeerOut(BaseModel):
    peer_id: uuid.UUID
    display_name: str
    provider_id: str
    status: Literal["available", "busy", "off_duty"]
    on_shift_now: bool
    free: bool = Field(description="Could be offered a call in this county now.")
    why_not: str | None
    credential_problems: list[str]
    credentials_expiring: list[DrillCredentialOut] = Field(
        description="Credentials expiring within 30 days."
    )
    assignment: DrillPeerAssignmentOut | None = Field(description="The peer's live one.")
    shifts: list[DrillShiftOut] = Field(
        description="Shifts in this county from now to 7 days ahead, in order."
    )


class CountyDetailOut(BaseModel):
    """One county drilled into: coverage now, its calls of the last 12 hours (newest first)
    with their peers, the peers who serve it and their shifts."""

    at: datetime
    fips: str
    name: str
    provider_id: str | None
    provider_role: ProviderRole | None
    state: Literal["available", "busy", "none"]
    available: int
    on_shift: int
    calls: list[DrillCallOut]
    peers: list[DrillPeerOut]


def county_detail_out(
    detail: service.CountyDetail, at: datetime, zone: ZoneInfo
) -> CountyDetailOut:
    """The drill-down as the API and the supervisor page show it."""
    c = detail.coverage

    def local(value: datetime) -> datetime:
        return value.astimezone(zone)

    def maybe(value: datetime | None) -> datetime | None:
        return value.astimezone(zone) if value is not None else None

    return CountyDetailOut(
        at=local(at),
        fips=c.fips,
        name=c.name,
        provider_id=c.provider_id,
        provider_role=c.provider_role,  # type: ignore[arg-type]
        state=c.state,  # type: ignore[arg-type]
        available=c.available,
        on_shift=len(c.peers),
        calls=[
            DrillCallOut(
                id=row.call.id,
                source=row.call.source_id,
                incident_number=row.call.incident_number,
                agency=row.call.agency,
                call_type=row.call.call_type,
                opened_at=local(row.call.opened_at or row.call.created_at),
                status=row.call.status,
                ended=row.call.ended_at is not None,
                decision=row.call.decision,  # type: ignore[arg-type]
                decision_summary=row.call.decision_summary,
                turned_dangerous_at=maybe(row.call.turned_dangerous_at),
                assignment=(
                    DrillAssignmentOut(
                        id=row.assignment.id,
                        status=row.assignment.status,
                        peer_id=row.assignment.peer_id,
                        peer_display_name=row.peer.display_name if row.peer else None,
                        expires_at=maybe(row.assignment.expires_at),
                        staged=scene.staged(row.assignment),
                        scene_secured_at=maybe(row.assignment.scene_secured_at),
                        cancel_reason=row.assignment.cancel_reason,
                        next_available_at=maybe(row.assignment.next_available_at),
                    )
                    if row.assignment is not None
                    else None
                ),
            )
            for row in detail.calls
        ],
        peers=[
            DrillPeerOut(
                peer_id=p.peer.id,
                display_name=p.peer.display_name,
                provider_id=p.peer.provider_id,
                status=p.peer.status,  # type: ignore[arg-type]
                on_shift_now=p.on_shift_now,
                free=p.free,
                why_not=p.why_not,
                credential_problems=p.credential_problems,
                credentials_expiring=[
                    DrillCredentialOut(kind=kind, expires_at=local(at)) for kind, at in p.expiring
                ],
                assignment=(
                    DrillPeerAssignmentOut(
                        id=p.assignment[0].id,
                        status=p.assignment[0].status,
                        call_id=p.assignment[1].id,
                        incident_number=p.assignment[1].incident_number,
                        county_fips=p.assignment[1].county_fips,
                    )
                    if p.assignment is not None
                    else None
                ),
                shifts=[
                    DrillShiftOut(
                        id=s.id,
                        starts_at=local(s.starts_at),
                        ends_at=local(s.ends_at),
                        kind=s.kind,
                        counties=list(s.counties),
                    )
                    for s in p.shifts
                ],
            )
            for p in detail.peers
        ],
    )


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.program_timezone)


def _when(request: Request, value: str | None, field: str, default: datetime) -> datetime:
    if value is None:
        return default
    return to_utc(value, request.app.state.settings.program_timezone, field)


def _window(
    request: Request, start: str | None, end: str | None, default: timedelta
) -> tuple[datetime, datetime]:
    now = request.app.state.clock()
    begins = _when(request, start, "from", now)
    ends = _when(request, end, "to", begins + default)
    if ends <= begins:
        raise InvalidPayload("'to' must be after 'from'")
    if ends - begins > MAX_WINDOW:
        raise InvalidPayload(f"the window may be at most {MAX_WINDOW.days} days")
    return begins, ends


@router.get(
    "/v1/coverage",
    response_model=CoverageOut,
    responses=problems(Unauthorized, Forbidden, InvalidPayload),
)
async def coverage(
    request: Request, session: SessionDep, principal: Authorized, at: TimeParam = None
) -> CoverageOut:
    """Every county of the service area at `at` (default now): its provider (primary, or a
    backup where none is primary: `provider_role`), peers on shift (status, shift end, free
    or why not), how many are free, live assignments, and requests that went unfilled in the
    24 hours before."""
    now = request.app.state.clock()
    when = _when(request, at, "at", now)
    zone = _zone(request)
    basis, rows = await service.coverage_at(
        session,
        request.app.state.geography.atlas,
        when,
        request.app.state.settings.required_credentials,
        now,
        scoped_counties(principal),
    )
    return CoverageOut(
        at=when.astimezone(zone),
        basis=basis,  # type: ignore[arg-type]
        counties=[
            CountyCoverageOut(
                fips=r.fips,
                name=r.name,
                provider_id=r.provider_id,
                provider_role=r.provider_role,  # type: ignore[arg-type]
                state=r.state,  # type: ignore[arg-type]
                covered=r.covered,
                available=r.available,
                peers_on_shift=[
                    PeerOnShiftOut(
                        peer_id=p.peer_id,
                        display_name=p.display_name,
                        provider_id=p.provider_id,
                        status=p.status,  # type: ignore[arg-type]
                        shift_ends_at=p.shift_ends_at.astimezone(zone),
                        free=p.free,
                        why_not=p.why_not,
                    )
                    for p in r.peers
                ],
                active_assignments=r.active_assignments,
                unfilled_24h=r.unfilled_24h,
            )
            for r in rows
        ],
    )


@router.get(
    "/v1/coverage/gaps",
    response_model=GapsOut,
    responses=problems(Unauthorized, Forbidden, InvalidPayload),
)
async def coverage_gaps(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    start: Annotated[TimeParam, Query(alias="from")] = None,
    end: Annotated[TimeParam, Query(alias="to")] = None,
    county: Annotated[
        list[str] | None, Query(max_length=60, description="FIPS or name; repeatable")
    ] = None,
    provided_only: Annotated[
        bool, Query(description="Only counties some provider serves.")
    ] = False,
) -> GapsOut:
    """Per county, the stretches no peer covers between `from` (default now) and `to`
    (default 7 days later): on shift there, for a provider serving it, every required
    credential valid (as `/v1/coverage` counts a peer ahead; status cannot be known ahead).
    Overlapping shifts merged, clipped to the window, in the program's time zone; and the
    total uncovered hours (real hours, across DST changes)."""
    begins, ends = _window(request, start, end, timedelta(days=7))
    atlas = request.app.state.geography.atlas
    wanted = list(dict.fromkeys(require_county(atlas, c).fips for c in county)) if county else None
    allowed = scoped_counties(principal)
    if allowed is not None:
        wanted = [f for f in (wanted or allowed) if f in allowed]
    required = request.app.state.settings.required_credentials
    rows = await service.gaps_between(session, atlas, begins, ends, required, wanted)
    if provided_only:
        rows = [r for r in rows if r.provider_id is not None]
    zone = _zone(request)
    return GapsOut(
        starts_at=begins.astimezone(zone),
        ends_at=ends.astimezone(zone),
        counties=[
            CountyGapsOut(
                fips=r.fips,
                name=r.name,
                provider_id=r.provider_id,
                provider_role=r.provider_role,  # type: ignore[arg-type]
                uncovered_hours=round(r.uncovered_hours, 2),
                gaps=[
                    GapOut(
                        starts_at=s.astimezone(zone),
                        ends_at=e.astimezone(zone),
                        hours=round((e - s).total_seconds() / 3600, 2),
                    )
                    for s, e in r.gaps
                ],
            )
            for r in rows
        ],
    )


@router.get(
    "/v1/coverage/counties/{county}",
    response_model=CountyDetailOut,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def county_detail(
    county: Annotated[str, Path(max_length=40, pattern=r"^[^\x00]*$", description="FIPS or name")],
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> CountyDetailOut:
    """One county drilled into: coverage now; the calls opened there in the last 12 hours,
    newest first, each with its triage decision and its peer (the supervisor acts on them:
    reassign, cancel, override a danger); the peers who serve it (of its providers, or on
    shift there) with status, free or why not, credential problems and expiries, live
    assignment, and their shifts in the county for the next 7 days. A county-scoped key sees
    its own county (another: `404`); agency- and provider-scoped keys are refused."""
    now = request.app.state.clock()
    atlas = request.app.state.geography.atlas
    fips = require_county(atlas, county).fips
    detail = await service.county_detail(
        session, atlas, principal, fips, request.app.state.settings.required_credentials, now
    )
    await audit.record(
        session,
        principal,
        "coverage.county_read",
        "coverage",
        None,
        {"county": fips, "calls": [str(c.call.id) for c in detail.calls]},
    )
    return county_detail_out(detail, now, _zone(request))


def _summary_out(row: SummaryRow) -> SummaryRowOut:
    return SummaryRowOut(
        county_fips=row.county_fips,
        county=row.county,
        provider=row.provider_id,
        eligible_calls=row.eligible_calls,
        requests=row.requests,
        filled=row.filled,
        unfilled=row.unfilled,
        cancelled=row.cancelled,
        open=row.open,
        median_minutes_to_accept=row.median_minutes_to_accept,
        outcomes=dict(row.outcomes),
        referrals=dict(row.referrals),
    )


@router.get(
    "/v1/coverage/summary",
    response_model=SummaryOut,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with Accept: text/csv"},
        **problems(Unauthorized, Forbidden, InvalidPayload),
    },
)
async def coverage_summary(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    start: Annotated[TimeParam, Query(alias="from")] = None,
    end: Annotated[TimeParam, Query(alias="to")] = None,
) -> SummaryOut | Response:
    """For program evaluation, per county and provider between `from` (default 30 days
    ago) and `to` (default now): calls triaged eligible, requests, filled, unfilled, median
    minutes from request to acceptance, outcomes and referrals. `Accept: text/csv` for a
    spreadsheet."""
    now = request.app.state.clock()
    default_start = now - timedelta(days=30)
    begins = _when(request, start, "from", default_start)
    ends = _when(request, end, "to", now if start is None else begins + timedelta(days=30))
    if ends <= begins:
        raise InvalidPayload("'to' must be after 'from'")
    if ends - begins > timedelta(days=366):
        raise InvalidPayload("the window may be at most 366 days")
    rows = await service.summary(session, request.app.state.geography.atlas, begins, ends)
    await audit.record(
        session,
        principal,
        "outcome.summary",
        "summary",
        None,
        {"from": begins.isoformat(), "to": ends.isoformat()},
    )
    allowed = scoped_counties(principal)
    if allowed is not None:
        rows = [r for r in rows if r.county_fips in allowed]
    if _wants_csv(request.headers.get("accept", "")):
        stamp = f"{begins:%Y%m%dT%H%M}Z-{ends:%Y%m%dT%H%M}Z"
        return Response(
            _csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="corespond-summary-{stamp}.csv"'
            },
        )
    zone = _zone(request)
    return SummaryOut(
        starts_at=begins.astimezone(zone),
        ends_at=ends.astimezone(zone),
        rows=[_summary_out(r) for r in rows],
    )


def _wants_csv(accept: str) -> bool:
    """``text/csv`` is acceptable (and not refused with ``q=0``)."""
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        if kind.lower() == "text/csv":
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00") for p in params)
    return False


def _csv(rows: list[SummaryRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SUMMARY_COLUMNS)
    for r in rows:
        base = [
            r.county_fips or "",
            r.county or "",
            r.provider_id or "",
            r.eligible_calls,
            r.requests,
            r.filled,
            r.unfilled,
            r.cancelled,
            r.open,
            "" if r.median_minutes_to_accept is None else r.median_minutes_to_accept,
        ]
        outcomes = [
            r.outcomes.get(c.removeprefix("outcome_"), 0)
            for c in SUMMARY_COLUMNS
            if c.startswith("outcome_")
        ]
        referrals = [
            r.referrals.get(c.removeprefix("referral_"), 0)
            for c in SUMMARY_COLUMNS
            if c.startswith("referral_")
        ]
        writer.writerow([*base, *outcomes, *referrals])
    return out.getvalue()
