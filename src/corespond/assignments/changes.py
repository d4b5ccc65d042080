"""What follows from every change of an assignment, in its transaction: the history row,
dispatch's outbox message, the peer's notice of an offer, the metric; and the peer's status
(busy while committed, available again after)."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments import repository, views
from corespond.assignments.models import LIVE_STATUSES, Assignment, AssignmentChange
from corespond.assignments.policy import Context
from corespond.assignments.transitions import COMMITTED
from corespond.auth.service import Principal
from corespond.calls.models import Call
from corespond.dispatch import outbox
from corespond.metrics import ASSIGNMENT_CHANGES
from corespond.notify import service as notify
from corespond.roster import service as roster

log = structlog.get_logger(__name__)


def actor(principal: Principal) -> str:
    """How the holder of a key is named in an assignment's history."""
    return roster.actor(principal)


async def record(
    session: AsyncSession,
    call: Call,
    assignment: Assignment,
    was: str | None,
    by: str,
    reason: str | None,
    event: str,
    ctx: Context,
) -> None:
    """The history row and the outbox message of one change (and the peer's notice of an
    offer), in its transaction."""
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
    peer = await views.peer_of(session, assignment)
    await outbox.enqueue(session, event, ctx.now, assignment, call, peer)
    if event == "assignment.offered" and peer is not None:
        await notify.offer_made(session, peer, assignment.id, assignment.expires_at, ctx.now)
    ASSIGNMENT_CHANGES.labels(event.removeprefix("assignment.")).inc()


async def follow_peer_status(
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
