"""Follow-up tasks over HTTP: a peer's list, a provider's queue, outcomes, assignment."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.deps import Authorized
from corespond.auth.service import Principal
from corespond.db import SessionDep
from corespond.errors import Conflict, Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.followups import service
from corespond.followups.models import FollowUp
from corespond.followups.service import FollowUpDone, FollowUpPolicy
from corespond.kit.validators import QueryTimestamp
from corespond.people import views
from corespond.people.schemas import AssignIn, FollowUpIn, FollowUpOut, FollowUpPage, OutcomeIn

router = APIRouter(tags=["follow-ups"])

WRITE = problems(Unauthorized, Forbidden, NotFound, Conflict, InvalidPayload)


@router.get(
    "/v1/followups",
    response_model=FollowUpPage,
    responses=problems(Unauthorized, Forbidden, InvalidPayload),
)
async def list_followups(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    state: Literal["open", "done", "cancelled"] | None = "open",
    due_before: Annotated[QueryTimestamp | None, Query()] = None,
    escalated: bool | None = None,
    assignee: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^(team|[0-9a-fA-F-]{32,36})$",
            description="A peer id, or `team`",
        ),
    ] = None,
    person: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FollowUpPage:
    """Follow-ups, soonest due first (open ones by default): a peer's key, theirs and their
    team's (unassigned); a provider admin's, the provider's whole queue (`escalated=true`:
    those overdue and escalated to it). Each names its person (the read is on the audit
    log)."""
    now = request.app.state.clock()
    tasks = await service.list_tasks(
        session,
        principal,
        state=state,
        due_before=due_before,
        escalated=escalated,
        assignee=assignee,
        person_id=person,
        limit=limit,
        now=now,
    )
    return FollowUpPage(items=await views.follow_up_outs(session, tasks, now))


async def _out(
    session: AsyncSession, request: Request, principal: Principal, task: FollowUp, how: str
) -> FollowUpOut:
    """The task as answered, naming its person: the read is on the audit log."""
    shown = await service.with_person(session, principal, task, how)
    now = request.app.state.clock()
    return (await views.follow_up_outs(session, [shown], now))[0]


@router.post(
    "/v1/followups/{followup_id}/outcome",
    response_model=FollowUpOut,
    responses={**WRITE, **problems(FollowUpDone)},
)
async def record_outcome(
    followup_id: uuid.UUID,
    body: OutcomeIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> FollowUpOut:
    """What came of a follow-up: reached, not_reached, in_treatment, relapse, declined (the
    person wants no more: their other open follow-ups are cancelled) or deceased (likewise).
    `409 follow-up-done` if it is not open."""
    task = await service.record_outcome(
        session, principal, followup_id, body.outcome, request.app.state.clock()
    )
    return await _out(session, request, principal, task, "follow-up outcome")


@router.post(
    "/v1/followups/{followup_id}/assign",
    response_model=FollowUpOut,
    responses={**WRITE, **problems(FollowUpDone)},
)
async def assign(
    followup_id: uuid.UUID,
    body: AssignIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> FollowUpOut:
    """Give a follow-up to a peer of the provider, or to the team (`peer_id` null). A peer
    takes a team task for themselves or gives their own back; the provider's admin assigns
    any."""
    task = await service.assign(session, principal, followup_id, body.peer_id)
    return await _out(session, request, principal, task, "follow-up assign")


@router.post(
    "/v1/people/{person_id}/followups",
    status_code=status.HTTP_201_CREATED,
    response_model=FollowUpOut,
    responses=WRITE,
)
async def add_followup(
    person_id: uuid.UUID,
    body: FollowUpIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> FollowUpOut:
    """A follow-up made by hand for a person of the provider: a Quick Response Team visit
    (`qrt_visit`, optionally made by a QRT of the directory, `organization_id`: the person's
    consent in force must name it for `follow_up`, else `403 consent-refused`), or an extra
    follow-up; overdue after the program's grace, as any."""
    task = await service.add_task(
        session,
        principal,
        person_id,
        kind=body.kind,
        due_at=body.due_at,
        assignee=body.assignee_peer_id,
        policy=FollowUpPolicy.of(request.app.state.settings),
        now=request.app.state.clock(),
        organization=body.organization_id,
    )
    return await _out(session, request, principal, task, "follow-up create")
