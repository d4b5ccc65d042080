"""Matching a call to a peer: the candidates, their ranking, and the offers.

Which peer wins is left to the database: an offer is an ``INSERT … ON CONFLICT DO NOTHING``
against the unique index of active assignments per peer, so two calls racing for the last
free peer end with one offer and one next-best candidate (or ``unfilled``). Everything here
runs under the call's row lock (see ``lifecycle``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.alerts import service as alerts
from corespond.assignments import changes, repository, scene, views
from corespond.assignments.errors import NoCoverage
from corespond.assignments.models import Assignment, PeerRequest
from corespond.assignments.policy import Context, cancel_reason, refuse_unrequestable
from corespond.assignments.ranking import (
    CallSite,
    Candidate,
    Left,
    Point,
    Ranked,
    neighbours_within,
    rank,
)
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.models import Call
from corespond.errors import Forbidden
from corespond.geo.service import Geography
from corespond.metrics import MATCH_SECONDS, SUPERVISOR_ALERTS
from corespond.roster import service as roster
from corespond.roster.models import Peer, Shift

log = structlog.get_logger(__name__)


# Calls decided longer ago than this are not matched automatically by the sweep (a call
# that sat unrequested for half a day is history, not a dispatch).
AUTO_REQUEST_WINDOW = timedelta(hours=12)
# How far ahead of ours a CAD's clock may be and its event still count as just happened; an
# event dated later (a wrong clock, a test file) waits for a person like an old one.
CLOCK_SKEW = timedelta(minutes=1)
# A request repeated this soon after one went unfilled gets that answer again.
REPEAT_UNFILLED_WINDOW = timedelta(seconds=15)


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    """The assignment a request ended in, and whether it was made now (else it was live)."""

    assignment: Assignment
    created: bool


async def request_peer(
    session: AsyncSession,
    principal: Principal,
    call_id: uuid.UUID,
    ctx: Context,
    *,
    note: str | None = None,
    language: str | None = None,
    neighbouring_providers: bool = False,
) -> RequestOutcome:
    """A dispatcher's request: the call's live assignment if it has one (its note for the
    peer replaced if one is given), else a new offer, to a peer who speaks ``language``
    first. ``neighbouring_providers``: ask the providers of neighbouring counties too (only
    where the program allows it). No one to offer: the request is recorded unfilled and
    ``NoCoverage`` raised."""
    await calls.get_call(session, call_id, principal)
    if neighbouring_providers and not ctx.policy.neighbour_providers:
        raise Forbidden(
            "this program does not send peers of neighbouring counties' providers "
            "(CORESPOND_NEIGHBOUR_PROVIDERS)"
        )
    result = await _request(
        session,
        call_id,
        "dispatcher",
        changes.actor(principal),
        ctx,
        note=note,
        language=language,
        neighbouring_providers=neighbouring_providers,
    )
    if result.assignment.status == "unfilled":
        raise NoCoverage(
            result.assignment.ranking.get("summary", "no peer is free for this call"),
            extra={
                "assignment_id": str(result.assignment.id),
                "next_available_at": (
                    result.assignment.next_available_at.isoformat()
                    if result.assignment.next_available_at
                    else None
                ),
            },
        )
    return result


async def _request(
    session: AsyncSession,
    call_id: uuid.UUID,
    trigger: str,
    by: str,
    ctx: Context,
    *,
    note: str | None = None,
    language: str | None = None,
    neighbouring_providers: bool = False,
) -> RequestOutcome:
    """A request, by whoever made it (``trigger``, ``by``), under the call's lock: its live
    assignment, else a new request and its first offer (or ``unfilled``)."""
    call = await calls.lock(session, call_id)
    live = await repository.live_for_call(session, call.id)
    if live is not None and cancel_reason(call, live) is None:
        if note is not None:
            request = await session.get(PeerRequest, live.request_id)
            if request is not None:
                request.note = note
        return RequestOutcome(live, created=False)
    refuse_unrequestable(call)  # a live assignment here is about to be cancelled
    recent = await repository.latest_unfilled_since(
        session, call.id, ctx.now - REPEAT_UNFILLED_WINDOW
    )
    if recent is not None and not neighbouring_providers:
        # A dispatcher pressing retry gets the same answer, not another alert for everyone
        # (asking wider, of neighbouring counties' providers, is a new question).
        return RequestOutcome(recent, created=False)
    started = time.perf_counter()
    request = PeerRequest(
        id=uuid.uuid4(),
        call_id=call.id,
        trigger=trigger,
        requested_by=by,
        note=note,
        language=language,
        neighbouring_providers=neighbouring_providers,
    )
    session.add(request)
    await session.flush()
    assignment = await offer_next(session, call, request.id, by, ctx)
    MATCH_SECONDS.labels(trigger).observe(time.perf_counter() - started)
    return RequestOutcome(assignment, created=True)


async def request_automatically(
    session: AsyncSession, call_id: uuid.UUID, ctx: Context
) -> RequestOutcome:
    """A request made by corespond for an agency that opted in to automatic requests."""
    return await _request(session, call_id, "auto", "corespond (agency opted in)", ctx)


async def awaiting_automatic_request(
    session: AsyncSession,
    ctx: Context,
    call_ids: Sequence[uuid.UUID] | None = None,
    limit: int = 500,
) -> Sequence[uuid.UUID]:
    """Eligible, open calls of an agency that opted in to automatic requests, recent enough
    to be matched without a person (see ``_auto_window``), that no one requested yet."""
    names, oris = await agencies.auto_request_keys(session)
    if not names and not oris:
        return []
    return await repository.unrequested_eligible(
        session, _auto_window(ctx), limit, names, oris, call_ids
    )


def _auto_window(ctx: Context) -> repository.AutoWindow:
    """Which calls are recent enough to be matched without a person: decided in the last
    12 hours, and their latest CAD event younger than the policy's maximum age (and not
    dated more than a minute ahead)."""
    return repository.AutoWindow(
        decided_since=ctx.now - AUTO_REQUEST_WINDOW,
        occurred_since=ctx.now - ctx.policy.auto_request_max_age,
        occurred_until=ctx.now + CLOCK_SKEW,
    )


# --- candidates ---------------------------------------------------------------------------


def call_site(call: Call, geography: Geography, language: str | None = None) -> CallSite:
    """The call's agency and the point it was placed at when located (its own, else its
    place's), and the language a request asked for."""
    where = calls.position(call, geography)
    point = Point(where.lat, where.lon, where.what) if where is not None else None
    return CallSite(agency=call.agency, point=point, language=language)


def peer_point(peer: Peer, shift: Shift) -> Point | None:
    """Where a peer is: last reported during this shift, else their home base."""
    if (
        peer.last_located_at is not None
        and peer.last_lat is not None
        and peer.last_lon is not None
        and peer.last_located_at >= shift.starts_at
    ):
        stamp = peer.last_located_at.isoformat(timespec="minutes")
        return Point(peer.last_lat, peer.last_lon, f"last known point at {stamp}")
    if peer.home_lat is not None and peer.home_lon is not None:
        where = f"home base {peer.home_place}" if peer.home_place else "home base"
        return Point(peer.home_lat, peer.home_lon, where)
    return None


async def _candidates(
    session: AsyncSession,
    county_fips: str,
    ctx: Context,
    *,
    in_call_county: bool,
    tried: dict[uuid.UUID, str],
    seen: set[uuid.UUID],
    providers: set[str] | None,
) -> tuple[list[Candidate], list[Left]]:
    """Peers on shift in a county now who could be offered the call, and those who cannot
    (with why). ``providers``: the providers whose peers may come (those serving the call's
    county, which must also serve this one)."""
    county = ctx.geography.atlas.by_fips[county_fips]
    serving = (
        providers
        if in_call_county and providers is not None
        else await roster.providers_serving(session, county_fips)
    )
    rows = [
        r
        for r in await roster.on_shift(
            session, county_fips, ctx.now, ctx.policy.required_credentials
        )
        if r.peer.id not in seen
    ]
    ids = [r.peer.id for r in rows]
    seen.update(ids)
    busy = await repository.busy_peers(session, ids)
    last = await repository.last_accepted(session, ids)
    centre = ctx.geography.atlas.centres[county_fips]
    candidates: list[Candidate] = []
    left: list[Left] = []
    for row in rows:
        peer = row.peer
        why = None
        if peer.provider_id not in serving or (
            providers is not None and peer.provider_id not in providers
        ):
            why = f"provider {peer.provider_id} does not serve the call's county"
        elif peer.id in tried:
            why = f"already offered this request ({tried[peer.id]})"
        elif peer.id in busy:
            why = "on another assignment"
        elif peer.status != "available":
            why = f"status {peer.status}"
        elif row.credential_problems:
            why = "credentials: " + "; ".join(row.credential_problems)
        if why is not None:
            left.append(Left(peer.id, peer.display_name, why))
            continue
        candidates.append(
            Candidate(
                peer_id=peer.id,
                display_name=peer.display_name,
                provider_id=peer.provider_id,
                county_fips=county_fips,
                county_name=county.name,
                in_call_county=in_call_county,
                embedded_agency=peer.embedded_agency,
                point=peer_point(peer, row.shift),
                last_assigned_at=last.get(peer.id),
                area_centre=Point(centre[0], centre[1], f"the centre of {county.name} County"),
                languages=tuple(peer.languages or ()),
            )
        )
    return candidates, left


# --- offers -------------------------------------------------------------------------------


async def offer_next(
    session: AsyncSession, call: Call, request_id: uuid.UUID, by: str, ctx: Context
) -> Assignment:
    """Offer the call (locked) to the best candidate not yet tried by this request: first
    in its county, then in neighbouring counties of the same providers within the travel
    limit; no one left: an ``unfilled`` assignment saying when the next shift starts."""
    if call.county_fips is None or call.county_fips not in ctx.geography.atlas.by_fips:
        return await _unfilled(
            session,
            call,
            request_id,
            by,
            ctx,
            [],
            [],
            f"the call's county is unknown ({call.county_method})",
        )
    tried = await repository.tried_peers(session, request_id)
    request = await session.get(PeerRequest, request_id)
    site = call_site(call, ctx.geography, request.language if request else None)
    wider = request is not None and request.neighbouring_providers
    seen: set[uuid.UUID] = set()
    serving = await roster.providers_serving(session, call.county_fips)
    found, left = await _candidates(
        session,
        call.county_fips,
        ctx,
        in_call_county=True,
        tried=tried,
        seen=seen,
        providers=serving,
    )
    ranked = rank(found, site)
    offered = await offer_first_free(session, call, request_id, ranked, left, by, ctx, site)
    if offered is not None:
        return offered

    nearby: list[Candidate] = []
    for neighbour in ctx.geography.atlas.neighbours(call.county_fips):
        more, more_left = await _candidates(
            session,
            neighbour.fips,
            ctx,
            in_call_county=False,
            tried=tried,
            seen=seen,
            providers=None if wider else serving,
        )
        nearby.extend(more)
        left.extend(more_left)
    near, far = neighbours_within(nearby, site, ctx.policy.fallback_max_km)
    left.extend(far)
    fallback = rank(near, site)
    offered = await offer_first_free(session, call, request_id, fallback, left, by, ctx, site)
    if offered is not None:
        return offered
    whose = "any provider's" if wider else "its providers'"
    summary = (
        f"no peer free in {call.county_name} County or within "
        f"{ctx.policy.fallback_max_km:.0f} km in a neighbouring county ({whose} peers)"
    )
    if left:
        # Who is for supervisors (the ranking); dispatch hears how many and why, in words.
        summary += f": {len(left)} on shift, none free ({why_not_free(left)})"
    return await _unfilled(
        session, call, request_id, by, ctx, [*ranked, *fallback], left, summary, serving
    )


def why_not_free(left: Sequence[Left]) -> str:
    """Why the peers on shift could not be offered the call, without their names: each
    reason once, with how many it holds for ("on another assignment (2 peers); credentials:
    nda expired 2026-11-20")."""
    counts: dict[str, int] = {}
    for peer in left:
        counts[peer.why] = counts.get(peer.why, 0) + 1
    return "; ".join(why if n == 1 else f"{why} ({n} peers)" for why, n in counts.items())


def _ranking_record(
    ranked: Sequence[Ranked], left: Sequence[Left], site: CallSite, summary: str | None = None
) -> dict[str, Any]:
    return {
        "call_position": site.point.what if site.point else None,
        "candidates": [
            {
                "place": r.place,
                "peer_id": str(r.candidate.peer_id),
                "display_name": r.candidate.display_name,
                "provider_id": r.candidate.provider_id,
                "county_fips": r.candidate.county_fips,
                "distance_km": round(r.distance_km, 2) if r.distance_km is not None else None,
                "reasons": list(r.reasons),
            }
            for r in ranked
        ],
        "left_out": [
            {"peer_id": str(x.peer_id), "display_name": x.display_name, "why": x.why} for x in left
        ],
        **({"summary": summary} if summary else {}),
    }


async def offer_first_free(
    session: AsyncSession,
    call: Call,
    request_id: uuid.UUID,
    ranked: Sequence[Ranked],
    left: list[Left],
    by: str,
    ctx: Context,
    site: CallSite,
    note: str | None = None,
) -> Assignment | None:
    if not ranked:
        return None
    gate = await scene.gate(session, call)
    secured = await scene.secured_earlier(session, call.id) if gate else None
    for choice in ranked:
        candidate = choice.candidate
        values = {
            "id": uuid.uuid4(),
            "request_id": request_id,
            "call_id": call.id,
            "peer_id": candidate.peer_id,
            "provider_id": candidate.provider_id,
            "status": "offered",
            "county_fips": candidate.county_fips,
            "fallback": not candidate.in_call_county,
            "place": choice.place,
            "distance_km": choice.distance_km,
            "ranking": _ranking_record(ranked, left, site),
            "offered_at": ctx.now,
            "expires_at": ctx.now + ctx.policy.ack_timeout,
            "scene_secure_required": gate,
            "scene_secured_at": secured[0] if secured else None,
            "scene_secured_by": secured[1] if secured else None,
        }
        inserted = await repository.insert_offer(session, values)
        if inserted is None:
            # Another call took this peer a moment ago (its offer is not committed yet, or
            # just was); the database said so. The next candidate is asked.
            left.append(Left(candidate.peer_id, candidate.display_name, "taken by another call"))
            continue
        assignment = await session.get(Assignment, inserted)
        if assignment is None:  # pragma: no cover - inserted in this transaction
            raise LookupError(f"assignment {inserted} vanished")
        await changes.record(session, call, assignment, None, by, note, "assignment.offered", ctx)
        await alerts.call_offered(session, call.id, ctx.now)
        if gate and secured is None:
            await scene.secure_by_cad(session, call, assignment, ctx)
        return assignment
    return None


async def _unfilled(
    session: AsyncSession,
    call: Call,
    request_id: uuid.UUID,
    by: str,
    ctx: Context,
    ranked: Sequence[Ranked],
    left: Sequence[Left],
    summary: str,
    serving: set[str] | None = None,
) -> Assignment:
    next_at = (
        await roster.next_offerable_start(
            session,
            call.county_fips,
            ctx.now,
            ctx.policy.required_credentials,
            serving if serving is not None else set(),
        )
        if call.county_fips is not None
        else None
    )
    site = call_site(call, ctx.geography)
    assignment = Assignment(
        id=uuid.uuid4(),
        request_id=request_id,
        call_id=call.id,
        peer_id=None,
        status="unfilled",
        county_fips=call.county_fips,
        ranking=_ranking_record(ranked, left, site, summary),
        ended_at=ctx.now,
        next_available_at=next_at,
        scene_secure_required=False,
    )
    session.add(assignment)
    await session.flush()
    await changes.record(session, call, assignment, None, by, summary, "assignment.unfilled", ctx)
    await alerts.request_unfilled(
        session,
        ctx.policy.alerts,
        ctx.now,
        call_id=call.id,
        call_label=f"{call.source_id}/{call.incident_number}",
        county_fips=call.county_fips,
        county_name=call.county_name,
        assignment_id=assignment.id,
        why=summary,
        next_available_at=next_at,
    )
    SUPERVISOR_ALERTS.labels("unfilled").inc()
    log.warning(
        "supervisor_alert",
        kind="unfilled",
        call_id=str(call.id),
        county=call.county_fips,
        next_available_at=next_at.isoformat() if next_at else None,
        summary=summary,
    )
    return assignment


# --- who could take a call now (a supervisor's question) ----------------------------------


@dataclass(frozen=True)
class Eligibility:
    """Who could be offered a call now, by matching's own tests (on shift in the call's
    county, or a neighbouring one within the travel limit, for a provider serving it;
    available, not booked, credentials valid), best first; and who is on shift but could not,
    with why."""

    candidates: list[Ranked]
    left_out: list[Left]


async def who_could_take(
    session: AsyncSession, principal: Principal, assignment_id: uuid.UUID, ctx: Context
) -> tuple[Assignment, Eligibility]:
    """The peers an assignment could be handed to now (its own peer is left out: it holds
    the assignment)."""
    assignment = await views.get_assignment(session, assignment_id, principal)
    call = await calls.get_call(session, assignment.call_id, principal)
    return assignment, await eligibility(session, call, assignment, ctx)


async def eligibility(
    session: AsyncSession, call: Call, assignment: Assignment, ctx: Context
) -> Eligibility:
    fips = call.county_fips
    if fips is None or fips not in ctx.geography.atlas.by_fips:
        return Eligibility([], [])
    serving = await roster.providers_serving(session, fips)
    seen: set[uuid.UUID] = set()
    # A person names the peer: one who declined this request before may be asked again.
    found, left = await _candidates(
        session, fips, ctx, in_call_county=True, tried={}, seen=seen, providers=serving
    )
    nearby: list[Candidate] = []
    for neighbour in ctx.geography.atlas.neighbours(fips):
        more, more_left = await _candidates(
            session,
            neighbour.fips,
            ctx,
            in_call_county=False,
            tried={},
            seen=seen,
            providers=serving,
        )
        nearby.extend(more)
        left.extend(more_left)
    site = call_site(call, ctx.geography)
    near, far = neighbours_within(nearby, site, ctx.policy.fallback_max_km)
    left.extend(far)
    ranked = rank(found, site)
    ranked += [replace(r, place=r.place + len(ranked)) for r in rank(near, site)]
    holder = assignment.peer_id
    return Eligibility(
        [r for r in ranked if r.candidate.peer_id != holder],
        [
            Left(x.peer_id, x.display_name, "holds this assignment") if x.peer_id == holder else x
            for x in left
        ],
    )
