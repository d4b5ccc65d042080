"""Reading assignments: what a key may see of them, and what a peer may see of their call."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies.names import agency_key
from corespond.assignments import repository
from corespond.assignments.models import Assignment, AssignmentChange, PeerRequest
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.models import Call
from corespond.confidentiality.peer_view import PeerCall, compose
from corespond.errors import Forbidden, NotFound
from corespond.roster import service as roster
from corespond.roster.models import Peer
from corespond.triage import service as triage


def own_peer_id(principal: Principal) -> uuid.UUID | None:
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
    own = own_peer_id(principal)
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
    own = own_peer_id(principal)
    agency = county = None
    if own is not None:
        where = repository.AssignmentFilter(**{**where.__dict__, "peer_id": own})
    elif principal.scope is not None and principal.scope.kind == "provider":
        where = repository.AssignmentFilter(
            **{**where.__dict__, "provider_id": principal.scope.value}
        )
    elif principal.scope is not None and principal.scope.kind == "agency":
        agency = agency_key(principal.scope.value)
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


async def peer_of(session: AsyncSession, assignment: Assignment) -> Peer | None:
    """The peer an assignment is (or was) offered to; none for an unfilled request."""
    return await roster.peer_by_id(session, assignment.peer_id) if assignment.peer_id else None


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


async def busy_peers(session: AsyncSession, peer_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``peer_ids`` holding an active assignment."""
    return await repository.busy_peers(session, peer_ids)


async def latest_for_calls(
    session: AsyncSession, call_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[Assignment, Peer | None]]:
    """Each call's live assignment, else its latest, with the peer."""
    found = await repository.latest_for_calls(session, call_ids)
    out: dict[uuid.UUID, tuple[Assignment, Peer | None]] = {}
    for call_id, assignment in found.items():
        peer = await peer_of(session, assignment)
        out[call_id] = (assignment, peer)
    return out


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
