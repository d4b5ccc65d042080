"""Is the scene secure? Decided here, and only here.

Police secure the scene first, then the peer goes in: an accepted peer stays staged until
the scene is reported secure, by a dispatcher or by CAD (a call status or hazard flag the
source names), unless the responding agency opted out of the gate.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.assignments import changes, repository
from corespond.assignments.errors import AssignmentConflict
from corespond.assignments.models import LIVE_STATUSES, Assignment
from corespond.assignments.policy import Context
from corespond.calls.models import Call
from corespond.sources import service as sources
from corespond.sources.service import SceneSecureSignals


async def gate(session: AsyncSession, call: Call) -> bool:
    """Whether a peer offered this call waits for the scene to be secured: yes, unless the
    responding agency opted out (its peers ride along)."""
    agency = await agencies.find(session, call.agency) if call.agency else None
    return True if agency is None else agency.scene_gate


def clear_to_go(assignment: Assignment) -> bool:
    """Whether the assignment's peer may go in: no gate, or the scene reported secure."""
    return not assignment.scene_secure_required or assignment.scene_secured_at is not None


def staged(assignment: Assignment) -> bool:
    """Accepted, and waiting for police to report the scene secure."""
    return assignment.status == "accepted" and not clear_to_go(assignment)


def cad_says_secure(
    status: str | None, hazards: Sequence[str] | None, signals: SceneSecureSignals
) -> bool:
    """Whether a CAD status or one of the call's flags is one the source reports a secure
    scene with."""
    statuses = {s.strip().lower() for s in signals.statuses}
    flags = {f.strip().lower() for f in signals.flags}
    if status is not None and status.strip().lower() in statuses:
        return True
    return any(h.strip().lower() in flags for h in hazards or ())


async def cad_reports_secure(session: AsyncSession, call: Call) -> bool:
    """Whether the call's CAD now reports its scene secure."""
    signals = await sources.scene_secure_signals(session, call.source_id)
    return cad_says_secure(call.status, call.hazards, signals)


async def secured_earlier(
    session: AsyncSession, call_id: uuid.UUID
) -> tuple[datetime, str | None] | None:
    """When (and by whom) the call's scene was first reported secure, on any of its
    assignments: police secured the scene, whichever peer was offered the call then."""
    return await repository.scene_secured_earlier(session, call_id)


async def mark_secure(
    session: AsyncSession, call: Call, assignment: Assignment, by: str, ctx: Context
) -> Assignment:
    """Record that the scene of a live assignment is secure (locked call), once: the peer
    and dispatch are told (``assignment.scene_secure``)."""
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
    await changes.record(
        session, call, moved, moved.status, by, "scene secure", "assignment.scene_secure", ctx
    )
    return moved


async def secure_by_cad(session: AsyncSession, call: Call, live: Assignment, ctx: Context) -> bool:
    """Mark the scene of a live assignment secure if the call's CAD now reports it so
    (locked call); whether it did."""
    if live.scene_secured_at is not None or not await cad_reports_secure(session, call):
        return False
    await mark_secure(session, call, live, "CAD", ctx)
    return True
