"""Peer requests and assignments: ``/v1/calls/{id}/peer-requests``, ``/v1/assignments``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments import lifecycle, matching, views
from corespond.assignments.deps import Ctx
from corespond.assignments.errors import (
    AssignmentConflict,
    CallNotRequestable,
    CancelledForDanger,
    NoCoverage,
    PeerNotEligible,
    SceneNotSecure,
)
from corespond.assignments.lifecycle import Clearing
from corespond.assignments.models import Assignment
from corespond.assignments.repository import AssignmentFilter
from corespond.assignments.schemas import (
    AssignmentDetail,
    AssignmentOut,
    AssignmentPage,
    CancelIn,
    CandidatesOut,
    ClearIn,
    LeftOutOut,
    PeerRequestIn,
    PeerUpdateIn,
    RankedOut,
    ReassignIn,
    Status,
    assignment_out,
)
from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.auth.service import Principal
from corespond.confidentiality.peer_view import clean_note
from corespond.db import SessionDep
from corespond.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidParam,
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    Problem,
    Unauthorized,
)
from corespond.errors import problem_responses as problems
from corespond.geo.service import require_county
from corespond.kit.validators import QueryTimestamp
from corespond.pagination import decode_cursor, encode_cursor
from corespond.pipeline import flow

router = APIRouter(tags=["assignments"])


WRITE_PROBLEMS = problems(
    Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, InvalidPayload
)


async def _view(
    session: AsyncSession,
    request: Request,
    principal: Principal,
    assignment: Assignment,
    *,
    detail: bool = False,
    audit_read: bool = True,
) -> AssignmentOut:
    call = await views.call_of(session, assignment)
    peer = await views.peer_of(session, assignment)
    history = list(await views.history(session, assignment.id)) if detail else None
    for_peer = await views.call_for_peer(session, call, assignment)
    view = assignment_out(
        assignment, call, for_peer, peer, principal, request.app.state.geography.atlas, history
    )
    if audit_read:  # last: the chain's lock is then held only until the commit
        await audit.record(session, principal, "assignment.read", "assignment", assignment.id)
    return view


@router.post(
    "/v1/calls/{call_id}/peer-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentOut,
    responses={
        200: {"model": AssignmentOut, "description": "The call already has a live assignment."},
        **problems(Unauthorized, Forbidden, NotFound, NoCoverage, InvalidPayload),
    },
)
async def request_peer(
    call_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Authorized,
    ctx: Ctx,
    body: Annotated[PeerRequestIn | None, Body()] = None,
) -> AssignmentOut:
    """Ask for a peer on an `eligible` or `review` call, optionally with a note for the peer
    (the only free text a peer is shown as written: nothing law-enforcement only in it).

    `201` with the offer made (status `offered`: the best candidate has
    `expires_at` to accept, then the next is asked); `200` with the call's live
    assignment if it has one. `409` problems: `no-coverage` (no one free in the county or
    within the travel limit in a neighbouring one; the request is recorded as `unfilled`,
    dispatch is told, and `next_available_at` says when the next shift starts),
    `call-not-requestable` (ineligible, not yet triaged, or ended).
    """
    note = clean_note(body.note) if body else None
    result = await flow.request_peer(
        session,
        principal,
        call_id,
        ctx,
        note=note,
        language=body.language if body else None,
        neighbouring_providers=body.neighbouring_providers if body else False,
    )
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return await _view(session, request, principal, result.assignment)


@router.get(
    "/v1/assignments",
    response_model=AssignmentPage,
    responses=problems(BadRequest, Unauthorized, Forbidden, InvalidPayload),
)
async def list_assignments(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    call: Annotated[uuid.UUID | None, Query(description="Assignments of one call")] = None,
    peer: Annotated[uuid.UUID | None, Query(description="Assignments of one peer")] = None,
    provider: Annotated[str | None, Query(max_length=63, pattern=r"^[a-z0-9_-]+$")] = None,
    county: Annotated[
        str | None, Query(max_length=40, pattern=r"^[^\x00]*$", description="FIPS or name")
    ] = None,
    created_from: Annotated[QueryTimestamp | None, Query(alias="from")] = None,
    created_to: Annotated[QueryTimestamp | None, Query(alias="to")] = None,
    source: Annotated[
        str | None,
        Query(
            max_length=63,
            pattern=r"^[a-z0-9_-]+$",
            description="Assignments of one CAD source's calls",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AssignmentPage:
    """Assignments newest first. A peer's key lists only that peer's (their offers to
    answer: `?status=offered`); `?status=unfilled` is the supervisor's list of requests no
    one could take."""
    atlas = request.app.state.geography.atlas
    where = AssignmentFilter(
        status=status_,
        call_id=call,
        peer_id=peer,
        provider_id=provider,
        county_fips=require_county(atlas, county).fips if county else None,
        created_from=created_from,
        created_to=created_to,
        source=source,
    )
    after = decode_cursor(cursor) if cursor else None
    rows = await views.list_assignments(session, principal, where, after=after, limit=limit + 1)
    page = rows[:limit]
    items = [await _view(session, request, principal, a, audit_read=False) for a in page]
    await audit.record(
        session,
        principal,
        "assignment.list",
        "assignment",
        None,
        {"ids": [str(a.id) for a in page]},
    )
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return AssignmentPage(items=items, next_cursor=next_cursor)


@router.get(
    "/v1/assignments/{assignment_id}",
    response_model=AssignmentDetail,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def get_assignment(
    assignment_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> AssignmentOut:
    """One assignment with its history; the ranking shows why this peer was chosen."""
    assignment = await views.get_assignment(session, assignment_id, principal)
    return await _view(session, request, principal, assignment, detail=True)


OptionalUpdate = Annotated[PeerUpdateIn | None, Body()]

# A peer's answers with an optional position: action -> (what it means, extra problems).
PEER_UPDATES: dict[str, tuple[str, tuple[type[Problem], ...]]] = {
    "accept": (
        "The peer takes the call. `409 offer-expired` if the deadline passed (the call has "
        "gone to the next peer); `409 assignment-conflict` if it was cancelled meanwhile.",
        (),
    ),
    "decline": ("The peer cannot take it; the next candidate is offered the call at once.", ()),
    "en-route": (
        "The peer sets off. Refused with `409 scene-not-secure` until police report the scene "
        "secure (by CAD or a dispatcher), unless the agency's peers ride with the officer.",
        (SceneNotSecure,),
    ),
    "on-scene": ("The peer has arrived.", ()),
}


def _peer_update(action: str, doc: str) -> Callable[..., Awaitable[AssignmentOut]]:
    async def endpoint(
        assignment_id: uuid.UUID,
        request: Request,
        session: SessionDep,
        principal: Authorized,
        ctx: Ctx,
        body: OptionalUpdate = None,
    ) -> AssignmentOut:
        position = (body.position.lat, body.position.lon) if body and body.position else None
        assignment = await lifecycle.act(
            session, principal, assignment_id, action, ctx, position=position
        )
        return await _view(session, request, principal, assignment)

    endpoint.__name__ = action.replace("-", "_")
    endpoint.__doc__ = doc
    return endpoint


for _action, (_doc, _extra) in PEER_UPDATES.items():
    router.add_api_route(
        f"/v1/assignments/{{assignment_id}}/{_action}",
        _peer_update(_action, _doc),
        methods=["POST"],
        response_model=AssignmentOut,
        responses={**WRITE_PROBLEMS, **problems(*_extra)},
    )


@router.post(
    "/v1/assignments/{assignment_id}/clear", response_model=AssignmentOut, responses=WRITE_PROBLEMS
)
async def clear(
    assignment_id: uuid.UUID,
    body: ClearIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    ctx: Ctx,
) -> AssignmentOut:
    """The co-response is over; the peer records the outcome (for program evaluation only:
    dispatch hears `cleared`, never the outcome)."""
    clearing = Clearing(body.outcome, tuple(dict.fromkeys(body.referrals)))
    assignment = await lifecycle.act(
        session, principal, assignment_id, "clear", ctx, clearing=clearing
    )
    return await _view(session, request, principal, assignment)


@router.post(
    "/v1/assignments/{assignment_id}/cancel",
    response_model=AssignmentOut,
    responses=problems(Unauthorized, Forbidden, NotFound, AssignmentConflict, InvalidPayload),
)
async def cancel(
    assignment_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    ctx: Ctx,
    body: Annotated[CancelIn | None, Body()] = None,
) -> AssignmentOut:
    """A dispatcher or supervisor calls the peer off; the peer is free again and dispatch
    hears `assignment.cancelled` (`cancel_reason` `dispatcher` or `supervisor`). A
    supervisor's key must say why (`reason`, else `422`); a dispatcher's may. The reason is
    kept in the assignment's history and on the audit log."""
    reason = body.reason if body else None
    if reason is None and principal.role != "dispatcher":
        raise InvalidPayload(
            "reason: a supervisor says why the peer is called off",
            [InvalidParam(name="reason", reason="required for a supervisor's key")],
        )
    assignment = await lifecycle.act(
        session, principal, assignment_id, "cancel", ctx, reason=reason
    )
    return await _view(session, request, principal, assignment)


@router.post(
    "/v1/assignments/{assignment_id}/reassign",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentOut,
    responses=problems(
        Unauthorized,
        Forbidden,
        NotFound,
        AssignmentConflict,
        PeerNotEligible,
        CallNotRequestable,
        CancelledForDanger,
        InvalidPayload,
    ),
)
async def reassign(
    assignment_id: uuid.UUID,
    body: ReassignIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    ctx: Ctx,
) -> AssignmentOut:
    """A supervisor hands an open offer (`offered`) or an accepted, staged assignment
    (`accepted`) to a named peer, saying why. `201` with the new offer: the peer has
    `expires_at` to accept, as any offer (then the next candidate is asked).

    The peer must pass the tests matching applies now: on shift in the call's county (or a
    neighbouring one within the travel limit) for a provider serving it, `available`, every
    required credential valid, no other live assignment; `409 peer-not-eligible` says which
    failed (`why`). The old assignment is cancelled with `cancel_reason` `reassigned` (its
    peer is free again); dispatch hears `assignment.cancelled` then `assignment.offered`, in
    order; the reason is in both assignments' history and on the audit log. The database's
    one-live-assignment-per-peer rule still decides a race: nothing changes for the loser.
    `409 assignment-conflict` for an assignment en route, on scene or ended."""
    offered = await lifecycle.reassign(
        session, principal, assignment_id, body.peer_id, body.reason, ctx
    )
    return await _view(session, request, principal, offered)


@router.get(
    "/v1/assignments/{assignment_id}/candidates",
    response_model=CandidatesOut,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def candidates(
    assignment_id: uuid.UUID, session: SessionDep, principal: Authorized, ctx: Ctx
) -> CandidatesOut:
    """Who the assignment could be handed to now (`POST .../reassign`), best first with the
    reasons for each place, as matching ranks them; and who is on shift but could not take
    it, with why (the assignment's own peer: "holds this assignment")."""
    assignment, found = await matching.who_could_take(session, principal, assignment_id, ctx)
    out = CandidatesOut(
        assignment_id=assignment.id,
        status=assignment.status,  # type: ignore[arg-type]
        candidates=[
            RankedOut(
                place=r.place,
                peer_id=r.candidate.peer_id,
                display_name=r.candidate.display_name,
                provider_id=r.candidate.provider_id,
                county_fips=r.candidate.county_fips,
                distance_km=round(r.distance_km, 2) if r.distance_km is not None else None,
                reasons=list(r.reasons),
            )
            for r in found.candidates
        ],
        left_out=[
            LeftOutOut(peer_id=x.peer_id, display_name=x.display_name, why=x.why)
            for x in found.left_out
        ],
    )
    await audit.record(
        session, principal, "assignment.candidates_read", "assignment", assignment.id
    )
    return out


@router.post(
    "/v1/assignments/{assignment_id}/scene-secure",
    response_model=AssignmentOut,
    responses=problems(
        Unauthorized, Forbidden, NotFound, AssignmentConflict, CallNotRequestable, InvalidPayload
    ),
)
async def scene_secure(
    assignment_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    ctx: Ctx,
) -> AssignmentOut:
    """Police report the scene secure: the staged peer may go in (`assignment.scene_secure`
    goes to dispatch and the peer). Saying it twice changes nothing."""
    assignment = await lifecycle.scene_secure(session, principal, assignment_id, ctx)
    return await _view(session, request, principal, assignment)
