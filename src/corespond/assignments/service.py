"""Matching a call to a peer, and moving assignments through their lifecycle.

Locking: everything that changes a call's assignments first takes the call's row lock
(``FOR NO KEY UPDATE``), then works on assignment and peer rows. One lock order everywhere,
and one call per transaction, so two requests can only ever wait for each other, never
deadlock. Which peer wins is left to the database: an offer is an ``INSERT … ON CONFLICT
DO NOTHING`` against the unique index of active assignments per peer, so two calls racing
for the last free peer end with one offer and one next-best candidate (or ``unfilled``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.alerts import service as alerts
from corespond.alerts.service import AlertPolicy
from corespond.assignments import repository
from corespond.assignments.lifecycle import COMMITTED, PEER_ACTIONS, TRANSITIONS, refusal
from corespond.assignments.models import (
    LIVE_STATUSES,
    OUTCOMES,
    REFERRALS,
    Assignment,
    AssignmentChange,
    PeerRequest,
)
from corespond.assignments.ranking import (
    CallSite,
    Candidate,
    Left,
    Point,
    Ranked,
    neighbours_within,
    rank,
)
from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.models import Call
from corespond.confidentiality.peer_view import PeerCall, compose
from corespond.config import Settings
from corespond.dispatch import outbox
from corespond.errors import Conflict, Forbidden, InvalidPayload, NotFound
from corespond.geo.service import Geography
from corespond.metrics import ASSIGNMENT_CHANGES, MATCH_SECONDS, SUPERVISOR_ALERTS
from corespond.notify import service as notify
from corespond.roster import service as roster
from corespond.roster.models import Peer, Shift
from corespond.sources import service as sources
from corespond.sources.service import SceneSecureSignals
from corespond.triage import service as triage

log = structlog.get_logger(__name__)

# Calls decided longer ago than this are not matched automatically by the sweep (a call
# that sat unrequested for half a day is history, not a dispatch).
AUTO_REQUEST_WINDOW = timedelta(hours=12)
# How far ahead of ours a CAD's clock may be and its event still count as just happened; an
# event dated later (a wrong clock, a test file) waits for a person like an old one.
CLOCK_SKEW = timedelta(minutes=1)
# A request repeated this soon after one went unfilled gets that answer again.
REPEAT_UNFILLED_WINDOW = timedelta(seconds=15)


# --- problems ------------------------------------------------------------------------------


class NoCoverage(Conflict):
    """No peer could be offered the call; the unfilled request is recorded and dispatch told."""

    slug = "no-coverage"
    title = "No peer available"
    keeps_changes: ClassVar[bool] = True


class CallNotRequestable(Conflict):
    slug = "call-not-requestable"
    title = "A peer cannot be requested for this call"


class AssignmentConflict(Conflict):
    slug = "assignment-conflict"
    title = "The assignment is not in a state that allows this"


class SceneNotSecure(Conflict):
    slug = "scene-not-secure"
    title = "The scene has not been reported secure"


class OfferExpired(Conflict):
    slug = "offer-expired"
    title = "The offer expired"
    keeps_changes: ClassVar[bool] = True


class PeerNotEligible(Conflict):
    slug = "peer-not-eligible"
    title = "The peer cannot be offered this call"


class CancelledForDanger(Conflict):
    slug = "cancelled-danger"
    title = "The assignment was cancelled: the call now reports danger"
    keeps_changes: ClassVar[bool] = True


# --- what matching runs with ---------------------------------------------------------------


@dataclass(frozen=True)
class MatchPolicy:
    ack_timeout: timedelta
    fallback_max_km: float
    required_credentials: tuple[str, ...]
    auto_request_max_age: timedelta = timedelta(minutes=5)
    # May a dispatcher widen an unfilled request to neighbouring counties' providers?
    neighbour_providers: bool = False
    # How supervisors are told when a request goes unfilled (and reminded).
    alerts: AlertPolicy = field(default_factory=AlertPolicy.default)

    @classmethod
    def of(cls, settings: Settings) -> MatchPolicy:
        return cls(
            ack_timeout=timedelta(seconds=settings.ack_timeout_seconds),
            fallback_max_km=settings.fallback_max_km,
            required_credentials=tuple(settings.required_credentials),
            auto_request_max_age=timedelta(seconds=settings.auto_request_max_age_seconds),
            neighbour_providers=settings.neighbour_providers,
            alerts=AlertPolicy.of(settings),
        )


@dataclass(frozen=True)
class Context:
    """The policy, the map and the time one piece of work runs with."""

    policy: MatchPolicy
    geography: Geography
    now: datetime


@dataclass(frozen=True)
class Clearing:
    """What the peer reports on clearing (kept for program evaluation, never sent out)."""

    outcome: str
    referrals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise InvalidPayload(f"outcome must be one of {', '.join(OUTCOMES)}")
        unknown = [r for r in self.referrals if r not in REFERRALS]
        if unknown:
            raise InvalidPayload(f"referrals must be among {', '.join(REFERRALS)}")
        if (self.outcome == "referred") != bool(self.referrals):
            raise InvalidPayload("referrals are given with, and only with, outcome 'referred'")


def actor(principal: Principal) -> str:
    return roster.actor(principal)


# --- reading -------------------------------------------------------------------------------


def _own_peer_id(principal: Principal) -> uuid.UUID | None:
    """The peer a peer key belongs to (None for other roles); a peer key needs that scope."""
    if principal.role != "peer":
        return None
    if principal.scope is None or principal.scope.kind != "peer":
        raise Forbidden("a peer key needs a peer scope (peer:<id>)")
    try:
        return uuid.UUID(principal.scope.value)
    except ValueError as exc:
        raise Forbidden("this key's peer scope is not a peer id") from exc


async def get_assignment(
    session: AsyncSession, assignment_id: uuid.UUID, principal: Principal
) -> Assignment:
    """An assignment the key may see, else ``NotFound`` (no hint that it exists).

    A peer sees only their own; a provider-scoped key its provider's; other keys those of
    the calls they may read.
    """
    assignment = await session.get(Assignment, assignment_id)
    missing = NotFound(f"assignment {assignment_id} not found")
    if assignment is None:
        raise missing
    own = _own_peer_id(principal)
    if own is not None:
        if assignment.peer_id != own:
            raise missing
        return assignment
    if principal.scope is not None and principal.scope.kind == "provider":
        if assignment.provider_id != principal.scope.value:
            raise missing
        return assignment
    try:
        await calls.get_call(session, assignment.call_id, principal)
    except NotFound:
        raise missing from None
    return assignment


async def list_assignments(
    session: AsyncSession,
    principal: Principal,
    where: repository.AssignmentFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Assignment]:
    own = _own_peer_id(principal)
    agency = county = None
    if own is not None:
        where = repository.AssignmentFilter(**{**where.__dict__, "peer_id": own})
    elif principal.scope is not None and principal.scope.kind == "provider":
        where = repository.AssignmentFilter(
            **{**where.__dict__, "provider_id": principal.scope.value}
        )
    elif principal.scope is not None and principal.scope.kind == "agency":
        agency = agencies.agency_key(principal.scope.value)
    elif principal.scope is not None and principal.scope.kind == "county":
        county = principal.scope.value
    return await repository.list_assignments(
        session, where, agency=agency, call_county=county, after=after, limit=limit
    )


async def call_of(session: AsyncSession, assignment: Assignment) -> Call:
    """The call an assignment is on (for a caller that already checked who may see it)."""
    call = await session.get(Call, assignment.call_id)
    if call is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound(f"call {assignment.call_id} not found")
    return call


async def live_for_call(session: AsyncSession, call_id: uuid.UUID) -> Assignment | None:
    """The call's live assignment (offered, accepted, en route or on scene), if any."""
    return await repository.live_for_call(session, call_id)


async def history(session: AsyncSession, assignment_id: uuid.UUID) -> Sequence[AssignmentChange]:
    return await repository.changes_of(session, assignment_id)


async def live_by_peer(
    session: AsyncSession, peer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Assignment, Call]]:
    """Each of these peers' live assignment, with its call."""
    return await repository.live_by_peer(session, peer_ids)


async def latest_for_calls(
    session: AsyncSession, call_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Assignment, Peer | None]]:
    """Each call's live assignment, else its latest, with the peer."""
    found = await repository.latest_for_calls(session, call_ids)
    out: dict[uuid.UUID, tuple[Assignment, Peer | None]] = {}
    for call_id, assignment in found.items():
        peer = await session.get(Peer, assignment.peer_id) if assignment.peer_id else None
        out[call_id] = (assignment, peer)
    return out


# --- requesting a peer ---------------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    assignment: Assignment
    created: bool


def dangerous(call: Call) -> bool:
    """The call was eligible or under review and then reported danger (sticky)."""
    return call.decision == "ineligible" and call.turned_dangerous_at is not None


def _refuse_unrequestable(call: Call) -> None:
    if call.decision is None:
        raise CallNotRequestable(
            "the call has not been triaged yet; try again in a moment",
            extra={"decision": None},
        )
    if call.decision == "ineligible":
        raise CallNotRequestable(
            f"the call is ineligible for a peer ({call.decision_summary})",
            extra={"decision": call.decision},
        )
    if call.status in ("closed", "cancelled"):
        raise CallNotRequestable(f"the call is {call.status}", extra={"decision": call.decision})


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
        actor(principal),
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
    call = await calls.lock(session, call_id)
    live = await repository.live_for_call(session, call.id)
    if live is not None and cancel_reason(call, live) is None:
        if note is not None:
            request = await session.get(PeerRequest, live.request_id)
            if request is not None:
                request.note = note
        return RequestOutcome(live, created=False)
    _refuse_unrequestable(call)  # a live assignment here is about to be cancelled
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
    assignment = await _offer_next(session, call, request.id, by, ctx)
    MATCH_SECONDS.labels(trigger).observe(time.perf_counter() - started)
    return RequestOutcome(assignment, created=True)


async def call_for_peer(session: AsyncSession, call: Call, assignment: Assignment) -> PeerCall:
    """What the assignment's peer may see of its call (see ``confidentiality.peer_view``)."""
    decision = await triage.latest(session, call.id)
    request = await session.get(PeerRequest, assignment.request_id)
    return compose(
        narrative=call.narrative,
        hazards=list(call.hazards or []),
        reasons=decision.reasons if decision else [],
        note=request.note if request else None,
    )


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


async def _offer_next(
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
    offered = await _offer_first_free(session, call, request_id, ranked, left, by, ctx, site)
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
    offered = await _offer_first_free(session, call, request_id, fallback, left, by, ctx, site)
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


async def _offer_first_free(
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
    gate = await _scene_gate(session, call)
    secured = await repository.scene_secured_earlier(session, call.id) if gate else None
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
        await _record(session, call, assignment, None, by, note, "assignment.offered", ctx)
        await alerts.call_offered(session, call.id, ctx.now)
        if gate and secured is None:
            await secure_by_cad(session, call, assignment, ctx)
        return assignment
    return None


async def _scene_gate(session: AsyncSession, call: Call) -> bool:
    """Whether the peer waits for the scene to be secured: yes, unless the agency opted out."""
    agency = await agencies.find(session, call.agency) if call.agency else None
    return True if agency is None else agency.scene_gate


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
    await _record(session, call, assignment, None, by, summary, "assignment.unfilled", ctx)
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


async def _record(
    session: AsyncSession,
    call: Call,
    assignment: Assignment,
    was: str | None,
    by: str,
    reason: str | None,
    event: str,
    ctx: Context,
) -> None:
    """The history row and the outbox message of one change, in its transaction."""
    await repository.add_change(
        session,
        AssignmentChange(
            assignment_id=assignment.id,
            from_status=was,
            to_status=assignment.status,
            actor=by,
            reason=reason,
            changed_at=ctx.now,
        ),
    )
    peer = await session.get(Peer, assignment.peer_id) if assignment.peer_id else None
    await outbox.enqueue(session, event, ctx.now, assignment, call, peer)
    if event == "assignment.offered" and peer is not None:
        await notify.offer_made(session, peer, assignment.id, assignment.expires_at, ctx.now)
    ASSIGNMENT_CHANGES.labels(event.removeprefix("assignment.")).inc()


# --- the lifecycle -------------------------------------------------------------------------


async def act(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    action: str,
    ctx: Context,
    *,
    clearing: Clearing | None = None,
    position: tuple[float, float] | None = None,
    reason: str | None = None,
) -> Assignment:
    """Take ``action`` on an assignment for ``principal``; a peer only on their own (a
    decline may say why: ``reason``, kept in the history). A cancel's ``cancel_reason`` is
    ``dispatcher`` for a dispatcher's key, ``supervisor`` for a supervisor's (or admin's);
    its ``reason``, if given, is kept in the history and on the audit log."""
    assignment = await get_assignment(session, assignment_id, principal)
    own = _own_peer_id(principal)
    if action in PEER_ACTIONS and principal.role == "peer" and assignment.peer_id != own:
        raise NotFound(f"assignment {assignment_id} not found")
    if action not in PEER_ACTIONS and principal.role == "peer":
        raise Forbidden(f"a peer key cannot {action} an assignment")
    call = await calls.lock(session, assignment.call_id)
    await session.refresh(assignment)
    assignment_was = assignment.status
    by = actor(principal)
    if action != "cancel" and assignment.status in LIVE_STATUSES and dangerous(call):
        await _move(session, call, assignment, "cancel", "corespond (triage)", "danger", ctx)
        raise CancelledForDanger(
            "the call now reports danger; the assignment is cancelled: do not go",
            extra={"assignment_status": "cancelled", "cancel_reason": "danger"},
        )
    if action == "en-route" and assignment.status == "accepted" and not _scene_clear(assignment):
        raise SceneNotSecure(
            "stay staged: police have not reported the scene secure yet; you will be told "
            "(assignment.scene_secure) when they do"
        )
    if action == "cancel":
        # Who called the peer off, as dispatch hears it; the person's own words (if given)
        # go to the history and the audit log.
        category = "dispatcher" if principal.role == "dispatcher" else "supervisor"
        moved = await _move(
            session, call, assignment, action, by, category, ctx, note=reason or category
        )
        if reason:
            await audit.record(
                session,
                principal,
                "assignment.called_off",
                "assignment",
                moved.id,
                {"reason": reason, "was": assignment_was},
            )
        return moved
    moved = await _move(session, call, assignment, action, by, reason, ctx, clearing=clearing)
    point = position
    if point is None and action == "on-scene":
        site = call_site(call, ctx.geography)
        point = (site.point.lat, site.point.lon) if site.point else None
    if point is not None and action in PEER_ACTIONS:
        await _place_peer(session, moved, point, ctx)
    return moved


def _scene_clear(assignment: Assignment) -> bool:
    return not assignment.scene_secure_required or assignment.scene_secured_at is not None


async def _move(
    session: AsyncSession,
    call: Call,
    assignment: Assignment,
    action: str,
    by: str,
    reason: str | None,
    ctx: Context,
    *,
    clearing: Clearing | None = None,
    note: str | None = None,
) -> Assignment:
    """One transition as a compare-and-set, with everything that follows from it. ``reason``
    is the cancel reason of a cancel; ``note`` (default: ``reason``) goes to the history."""
    transition = TRANSITIONS[action]
    was = assignment.status
    values: dict[str, Any] = {"status": transition.target, transition.stamp: ctx.now}
    conditions = []
    if action == "accept":
        conditions.append(Assignment.expires_at > ctx.now)
    if action == "clear":
        if clearing is None:
            raise InvalidPayload("clearing needs an outcome")
        values["outcome"] = clearing.outcome
        values["referrals"] = list(clearing.referrals)
    if action == "cancel":
        values["cancel_reason"] = reason
    moved = await repository.compare_and_set(
        session, assignment.id, transition.sources, values, *conditions
    )
    if moved is None:
        await session.refresh(assignment)
        if action == "accept" and assignment.status == "offered":
            deadline = assignment.expires_at
            await expire(session, call, assignment, ctx)
            after = await repository.live_for_call(session, call.id)
            raise OfferExpired(
                f"the offer expired at {deadline.isoformat() if deadline else '?'}; "
                + (
                    "the call has been offered to the next peer"
                    if after is not None
                    else "no other peer was free to offer it to"
                ),
                extra={"assignment_status": "expired"},
            )
        extra: dict[str, Any] = {"assignment_status": assignment.status}
        detail = refusal(action, assignment.status)
        live = await repository.live_for_call(session, call.id)
        if live is not None and live.id != assignment.id:
            # A dispatcher holding an old offer's id is pointed at the one that counts now.
            extra["live_assignment_id"] = str(live.id)
            detail += f"; the call's live assignment is {live.id} ({live.status})"
        raise AssignmentConflict(detail, extra=extra)
    await _record(session, call, moved, was, by, note or reason, transition.event, ctx)
    await _follow_peer_status(session, moved, was, ctx)
    if action in ("decline", "expire"):
        await _reoffer(session, call, moved.request_id, ctx)
    if action == "cancel":
        log.info("assignment_cancelled", assignment_id=str(moved.id), reason=reason)
    return moved


async def expire(session: AsyncSession, call: Call, assignment: Assignment, ctx: Context) -> bool:
    """Expire an offer past its deadline and offer the call to the next candidate.
    False if the offer was answered (or expired) first."""
    moved = await repository.compare_and_set(
        session,
        assignment.id,
        ("offered",),
        {"status": "expired", "ended_at": ctx.now},
        Assignment.expires_at <= ctx.now,
    )
    if moved is None:
        return False
    await _record(
        session,
        call,
        moved,
        "offered",
        "corespond (timer)",
        "not accepted in time",
        "assignment.expired",
        ctx,
    )
    await _reoffer(session, call, moved.request_id, ctx)
    return True


async def _reoffer(
    session: AsyncSession, call: Call, request_id: uuid.UUID, ctx: Context
) -> Assignment | None:
    """After a decline or an expiry: the next candidate, unless the call can no longer have
    a peer (it turned dangerous, ended, or is no longer eligible): then the request ends."""
    if cancel_reason_for_call(call) is not None or call.decision not in ("eligible", "review"):
        log.info("peer_request_ended", call_id=str(call.id), why="call no longer requestable")
        return None
    return await _offer_next(session, call, request_id, "corespond (next candidate)", ctx)


async def _follow_peer_status(
    session: AsyncSession, assignment: Assignment, was: str, ctx: Context
) -> None:
    """A peer who accepts is busy; when a committed assignment ends they are available
    again (unless they went off duty meanwhile)."""
    if assignment.peer_id is None:
        return
    new = None
    if assignment.status in COMMITTED and was == "offered":
        new, expected = "busy", "available"
    elif assignment.status not in LIVE_STATUSES and was in COMMITTED:
        new, expected = "available", "busy"
    if new is None:
        return
    if await roster.change_status_if(
        session,
        assignment.peer_id,
        expected,
        new,
        f"assignment {assignment.id} {assignment.status}",
        ctx.now,
    ):
        log.info("peer_status_followed", peer_id=str(assignment.peer_id), status=new)


async def _place_peer(
    session: AsyncSession, assignment: Assignment, point: tuple[float, float], ctx: Context
) -> None:
    peer = await session.get(Peer, assignment.peer_id) if assignment.peer_id else None
    if peer is None:
        return
    peer.last_lat, peer.last_lon = point
    peer.last_located_at = ctx.now
    await session.flush()


async def scene_secure(
    session: AsyncSession, principal: Principal, assignment_id: uuid.UUID, ctx: Context
) -> Assignment:
    """A dispatcher reports the scene secure; the peer may go in."""
    assignment = await get_assignment(session, assignment_id, principal)
    call = await calls.lock(session, assignment.call_id)
    await session.refresh(assignment)
    return await _mark_secure(session, call, assignment, actor(principal), ctx)


async def _mark_secure(
    session: AsyncSession, call: Call, assignment: Assignment, by: str, ctx: Context
) -> Assignment:
    if assignment.scene_secured_at is not None:
        return assignment  # said before; once is enough
    moved = await repository.compare_and_set(
        session,
        assignment.id,
        LIVE_STATUSES,
        {"scene_secured_at": ctx.now, "scene_secured_by": by},
        Assignment.scene_secured_at.is_(None),
    )
    if moved is None:
        await session.refresh(assignment)
        raise AssignmentConflict(
            f"the assignment is {assignment.status}; the scene can no longer be reported secure",
            extra={"assignment_status": assignment.status},
        )
    await _record(
        session, call, moved, moved.status, by, "scene secure", "assignment.scene_secure", ctx
    )
    return moved


# --- a supervisor hands a call to another peer --------------------------------------------

# An open offer, or a peer who accepted and is staged (or cleared to go) but not yet moving.
REASSIGNABLE = ("offered", "accepted")


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
    assignment = await get_assignment(session, assignment_id, principal)
    call = await calls.get_call(session, assignment.call_id, principal)
    return assignment, await _eligibility(session, call, assignment, ctx)


async def _eligibility(
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


async def reassign(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    peer_id: uuid.UUID,
    reason: str,
    ctx: Context,
) -> Assignment:
    """A supervisor hands an open offer or an accepted (staged) assignment to a named peer,
    saying why. The peer must pass matching's tests now (``PeerNotEligible`` says which
    fails). In one transaction: the old assignment is cancelled (``reassigned``; its peer
    is free again, an offer withdrawn), the new peer is offered the call with a fresh
    deadline, dispatch hears both (``assignment.cancelled``, ``assignment.offered``), and the
    audit log keeps who and why. The database still decides a race for the peer: if another
    call booked them a moment ago, nothing changes and ``PeerNotEligible`` says so."""
    assignment = await get_assignment(session, assignment_id, principal)
    # The key must see the call itself, not only the assignment's provider.
    await calls.get_call(session, assignment.call_id, principal)
    call = await calls.lock(session, assignment.call_id)
    await session.refresh(assignment)
    if assignment.status in LIVE_STATUSES and dangerous(call):
        await _move(session, call, assignment, "cancel", "corespond (triage)", "danger", ctx)
        raise CancelledForDanger(
            "the call now reports danger; the assignment is cancelled and no peer may go",
            extra={"assignment_status": "cancelled", "cancel_reason": "danger"},
        )
    if assignment.status not in REASSIGNABLE:
        raise AssignmentConflict(
            f"the assignment is {assignment.status}; only an open offer or an accepted "
            "(staged) assignment can be reassigned",
            extra={"assignment_status": assignment.status},
        )
    # An ended call, or one triage no longer lets a peer go to (ineligible), gets no offer.
    _refuse_unrequestable(call)
    if assignment.peer_id == peer_id:
        raise PeerNotEligible(
            "the assignment is already this peer's", extra={"peer_id": str(peer_id)}
        )
    peer = await roster.get_peer(session, peer_id, principal)
    eligibility = await _eligibility(session, call, assignment, ctx)
    chosen = next((r for r in eligibility.candidates if r.candidate.peer_id == peer.id), None)
    if chosen is None:
        where = f"{call.county_name} County" if call.county_name else "the call's county"
        why = next(
            (x.why for x in eligibility.left_out if x.peer_id == peer.id),
            f"not on shift in {where} or a neighbouring county within "
            f"{ctx.policy.fallback_max_km:.0f} km",
        )
        raise PeerNotEligible(
            f"{peer.display_name} cannot be offered this call: {why}",
            extra={"peer_id": str(peer.id), "why": why},
        )
    by = actor(principal)
    was = assignment.status
    old_peer = await session.get(Peer, assignment.peer_id) if assignment.peer_id else None
    withdrawn = await repository.compare_and_set(
        session,
        assignment.id,
        (was,),
        {"status": "cancelled", "ended_at": ctx.now, "cancel_reason": "reassigned"},
    )
    if withdrawn is None:  # pragma: no cover - the call's lock is held
        raise AssignmentConflict("the assignment changed meanwhile; try again")
    await _record(
        session,
        call,
        withdrawn,
        was,
        by,
        f"reassigned to {peer.display_name}: {reason}",
        "assignment.cancelled",
        ctx,
    )
    await _follow_peer_status(session, withdrawn, was, ctx)
    left = list(eligibility.left_out)
    offered = await _offer_first_free(
        session,
        call,
        withdrawn.request_id,
        [replace(chosen, place=1)],
        left,
        by,
        ctx,
        call_site(call, ctx.geography),
        note=f"reassigned from {old_peer.display_name if old_peer else 'another peer'}: {reason}",
    )
    if offered is None:
        # The database refused: another call booked the peer first. The request's
        # transaction rolls back, so the old assignment stands as it was.
        raise PeerNotEligible(
            f"{peer.display_name} cannot be offered this call: taken by another call a moment ago",
            extra={"peer_id": str(peer.id), "why": "taken by another call"},
        )
    offered.ranking = {
        **offered.ranking,
        "reassigned": {
            "from_assignment_id": str(withdrawn.id),
            "from_peer": old_peer.display_name if old_peer else None,
            "by": by,
            "reason": reason,
        },
    }
    await session.flush()
    await audit.record(
        session,
        principal,
        "assignment.reassigned",
        "assignment",
        withdrawn.id,
        {
            "reason": reason,
            "was": was,
            "from_peer_id": str(withdrawn.peer_id) if withdrawn.peer_id else None,
            "to_peer_id": str(peer.id),
            "new_assignment_id": str(offered.id),
        },
    )
    log.info(
        "assignment_reassigned",
        assignment_id=str(withdrawn.id),
        new_assignment_id=str(offered.id),
        peer_id=str(peer.id),
    )
    return offered


# --- keeping assignments in step with CAD and triage ---------------------------------------


def cad_says_secure(
    status: str | None, hazards: Sequence[str] | None, signals: SceneSecureSignals
) -> bool:
    """Whether the call's CAD status or one of its flags means the scene is secure."""
    statuses = {s.strip().lower() for s in signals.statuses}
    flags = {f.strip().lower() for f in signals.flags}
    if status is not None and status.strip().lower() in statuses:
        return True
    return any(h.strip().lower() in flags for h in hazards or ())


def cancel_reason(call: Call, assignment: Assignment) -> str | None:
    """Why a live assignment must be cancelled now, if it must."""
    reason = cancel_reason_for_call(call)
    if reason == "call_closed" and assignment.status == "on_scene":
        return None  # a peer on scene clears it themselves, with the outcome
    return reason


def cancel_reason_for_call(call: Call) -> str | None:
    """Why no peer may be (or stay) on this call, if so: danger, or CAD ended it."""
    if dangerous(call):
        return "danger"
    if call.status == "cancelled":
        return "call_cancelled"
    if call.status == "closed":
        return "call_closed"
    return None


async def out_of_step(
    session: AsyncSession, call_ids: Sequence[uuid.UUID] | None = None
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Calls whose live assignment is out of step with what CAD and triage now say: those
    that turned dangerous or ended (the peer must be called off), and those whose scene CAD
    reports secure (the staged peer may go in)."""
    cancel: list[uuid.UUID] = []
    secure: list[uuid.UUID] = []
    signals: dict[str, SceneSecureSignals] = {}
    for assignment, call in await repository.live_with_calls(session, call_ids):
        if cancel_reason(call, assignment) is not None:
            cancel.append(call.id)
        elif assignment.scene_secured_at is None:
            if call.source_id not in signals:
                signals[call.source_id] = await sources.scene_secure_signals(
                    session, call.source_id
                )
            if cad_says_secure(call.status, call.hazards, signals[call.source_id]):
                secure.append(call.id)
    return cancel, secure


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


async def call_off(
    session: AsyncSession, call: Call, live: Assignment, reason: str, ctx: Context
) -> Assignment:
    """Cancel a live assignment the call no longer allows (``cancel_reason``, locked call);
    a peer called off for danger is a supervisor alert."""
    moved = await _move(session, call, live, "cancel", "corespond", reason, ctx)
    if reason == "danger":
        SUPERVISOR_ALERTS.labels("danger").inc()
        log.warning(
            "assignment_cancelled_for_danger",
            call_id=str(call.id),
            assignment_id=str(live.id),
            peer_id=str(live.peer_id),
        )
    return moved


async def secure_by_cad(session: AsyncSession, call: Call, live: Assignment, ctx: Context) -> bool:
    """Mark the scene of a live assignment secure if the call's CAD now says it is (locked
    call); whether it did."""
    if live.scene_secured_at is not None:
        return False
    signals = await sources.scene_secure_signals(session, call.source_id)
    if not cad_says_secure(call.status, call.hazards, signals):
        return False
    await _mark_secure(session, call, live, "CAD", ctx)
    return True


async def request_automatically(
    session: AsyncSession, call_id: uuid.UUID, ctx: Context
) -> RequestOutcome:
    """A request made by corespond for an agency that opted in to automatic requests."""
    return await _request(session, call_id, "auto", "corespond (agency opted in)", ctx)


def _auto_window(ctx: Context) -> repository.AutoWindow:
    """Which calls are recent enough to be matched without a person: decided in the last
    12 hours, and their latest CAD event younger than the policy's maximum age (and not
    dated more than a minute ahead)."""
    return repository.AutoWindow(
        decided_since=ctx.now - AUTO_REQUEST_WINDOW,
        occurred_since=ctx.now - ctx.policy.auto_request_max_age,
        occurred_until=ctx.now + CLOCK_SKEW,
    )


async def due_offers(session: AsyncSession, ctx: Context, limit: int = 100) -> Sequence[uuid.UUID]:
    return await repository.due_offers(session, ctx.now, limit)


async def expire_offer(session: AsyncSession, assignment_id: uuid.UUID, ctx: Context) -> bool:
    """The timer of one offer: expire it if still unanswered past its deadline."""
    assignment = await session.get(Assignment, assignment_id)
    if assignment is None:
        return False
    call = await calls.lock(session, assignment.call_id)
    await session.refresh(assignment)
    if assignment.status != "offered":
        return False
    return await expire(session, call, assignment, ctx)
