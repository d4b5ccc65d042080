"""Moving assignments through their lifecycle (see ``transitions``): a peer accepts,
declines, goes en route once the scene is secure, arrives and clears with the outcome; a
dispatcher or supervisor calls the peer off; an offer not answered in time expires and the
call goes to the next candidate; a supervisor hands a call to another peer.

Locking: everything that changes a call's assignments first takes the call's row lock
(``FOR NO KEY UPDATE``), then works on assignment and peer rows. One lock order everywhere,
and one call per transaction, so two requests can only ever wait for each other, never
deadlock. Every move is a compare-and-set on the current status.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments import changes, matching, repository, scene, views
from corespond.assignments.errors import (
    AssignmentConflict,
    CancelledForDanger,
    OfferExpired,
    PeerNotEligible,
    SceneNotSecure,
)
from corespond.assignments.models import LIVE_STATUSES, OUTCOMES, REFERRALS, Assignment
from corespond.assignments.policy import (
    Context,
    cancel_reason,
    cancel_reason_for_call,
    dangerous,
    refuse_unrequestable,
)
from corespond.assignments.transitions import PEER_ACTIONS, TRANSITIONS, refusal
from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.models import Call
from corespond.errors import Forbidden, InvalidPayload, NotFound
from corespond.metrics import SUPERVISOR_ALERTS
from corespond.roster import service as roster

log = structlog.get_logger(__name__)


# --- a peer's, a dispatcher's and a supervisor's actions ----------------------------------


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
    assignment = await views.get_assignment(session, assignment_id, principal)
    own = views.own_peer_id(principal)
    if action in PEER_ACTIONS and principal.role == "peer" and assignment.peer_id != own:
        raise NotFound(f"assignment {assignment_id} not found")
    if action not in PEER_ACTIONS and principal.role == "peer":
        raise Forbidden(f"a peer key cannot {action} an assignment")
    call = await calls.lock(session, assignment.call_id)
    await session.refresh(assignment)
    assignment_was = assignment.status
    by = changes.actor(principal)
    if action != "cancel" and assignment.status in LIVE_STATUSES and dangerous(call):
        await _move(session, call, assignment, "cancel", "corespond (triage)", "danger", ctx)
        raise CancelledForDanger(
            "the call now reports danger; the assignment is cancelled: do not go",
            extra={"assignment_status": "cancelled", "cancel_reason": "danger"},
        )
    if action == "en-route" and scene.staged(assignment):
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
        where = calls.position(call, ctx.geography)
        point = (where.lat, where.lon) if where is not None else None
    if point is not None and action in PEER_ACTIONS:
        await _place_peer(session, moved, point, ctx)
    return moved


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
    await changes.record(session, call, moved, was, by, note or reason, transition.event, ctx)
    await changes.follow_peer_status(session, moved, was, ctx)
    if action in ("decline", "expire"):
        await _reoffer(session, call, moved.request_id, ctx)
    if action == "cancel":
        log.info("assignment_cancelled", assignment_id=str(moved.id), reason=reason)
    return moved


async def _reoffer(
    session: AsyncSession, call: Call, request_id: uuid.UUID, ctx: Context
) -> Assignment | None:
    """After a decline or an expiry: the next candidate, unless the call can no longer have
    a peer (it turned dangerous, ended, or is no longer eligible): then the request ends."""
    if cancel_reason_for_call(call) is not None or call.decision not in ("eligible", "review"):
        log.info("peer_request_ended", call_id=str(call.id), why="call no longer requestable")
        return None
    return await matching.offer_next(session, call, request_id, "corespond (next candidate)", ctx)


async def _place_peer(
    session: AsyncSession, assignment: Assignment, point: tuple[float, float], ctx: Context
) -> None:
    """Where the peer reported being (or the call's point, on arrival), for matching."""
    peer = await views.peer_of(session, assignment)
    if peer is None:
        return
    peer.last_lat, peer.last_lon = point
    peer.last_located_at = ctx.now
    await session.flush()


async def scene_secure(
    session: AsyncSession, principal: Principal, assignment_id: uuid.UUID, ctx: Context
) -> Assignment:
    """A dispatcher reports the scene secure; the peer may go in."""
    assignment = await views.get_assignment(session, assignment_id, principal)
    call = await calls.lock(session, assignment.call_id)
    await session.refresh(assignment)
    return await scene.mark_secure(session, call, assignment, changes.actor(principal), ctx)


# --- offer deadlines ----------------------------------------------------------------------


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
    await changes.record(
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


async def due_offers(session: AsyncSession, ctx: Context, limit: int = 100) -> Sequence[uuid.UUID]:
    """Offers past their deadline, oldest deadline first."""
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


# --- keeping assignments in step with CAD and triage --------------------------------------


async def out_of_step(
    session: AsyncSession, call_ids: Sequence[uuid.UUID] | None = None
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Calls whose live assignment is out of step with what CAD and triage now say: those
    that turned dangerous or ended (the peer must be called off), and those whose scene CAD
    reports secure (the staged peer may go in)."""
    cancel: list[uuid.UUID] = []
    secure: list[uuid.UUID] = []
    for assignment, call in await repository.live_with_calls(session, call_ids):
        if cancel_reason(call, assignment) is not None:
            cancel.append(call.id)
        elif assignment.scene_secured_at is None and await scene.cad_reports_secure(session, call):
            secure.append(call.id)
    return cancel, secure


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


# --- a supervisor hands a call to another peer --------------------------------------------


# An open offer, or a peer who accepted and is staged (or cleared to go) but not yet moving.
REASSIGNABLE = ("offered", "accepted")


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
    assignment = await views.get_assignment(session, assignment_id, principal)
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
    refuse_unrequestable(call)
    if assignment.peer_id == peer_id:
        raise PeerNotEligible(
            "the assignment is already this peer's", extra={"peer_id": str(peer_id)}
        )
    peer = await roster.get_peer(session, peer_id, principal)
    eligibility = await matching.eligibility(session, call, assignment, ctx)
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
    by = changes.actor(principal)
    was = assignment.status
    old_peer = await views.peer_of(session, assignment)
    withdrawn = await repository.compare_and_set(
        session,
        assignment.id,
        (was,),
        {"status": "cancelled", "ended_at": ctx.now, "cancel_reason": "reassigned"},
    )
    if withdrawn is None:  # pragma: no cover - the call's lock is held
        raise AssignmentConflict("the assignment changed meanwhile; try again")
    await changes.record(
        session,
        call,
        withdrawn,
        was,
        by,
        f"reassigned to {peer.display_name}: {reason}",
        "assignment.cancelled",
        ctx,
    )
    await changes.follow_peer_status(session, withdrawn, was, ctx)
    left = list(eligibility.left_out)
    offered = await matching.offer_first_free(
        session,
        call,
        withdrawn.request_id,
        [replace(chosen, place=1)],
        left,
        by,
        ctx,
        matching.call_site(call, ctx.geography),
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
