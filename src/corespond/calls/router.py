"""Reading calls: ``GET /v1/calls`` and ``GET /v1/calls/{call_id}``."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.auth.service import Principal
from corespond.calls import service
from corespond.calls.filters import CallFilter
from corespond.calls.schemas import (
    CallDetail,
    CallOut,
    CallPage,
    DangerOverrideIn,
)
from corespond.calls.service import NotDangerous, PeerStillAssigned
from corespond.db import SessionDep
from corespond.errors import (
    BadRequest,
    Forbidden,
    InvalidPayload,
    NotFound,
    Unauthorized,
)
from corespond.errors import problem_responses as problems
from corespond.geo.service import require_county
from corespond.kit.validators import INCIDENT_NUMBER_MAX, QueryTimestamp
from corespond.pipeline import flow, views
from corespond.sources import service as sources

router = APIRouter(tags=["calls"])

NO_NUL = r"^[^\x00]*$"


@router.get(
    "/v1/calls",
    response_model=CallPage,
    responses=problems(BadRequest, Unauthorized, Forbidden, InvalidPayload),
)
async def list_calls(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    source: Annotated[
        str | None, Query(max_length=63, pattern=NO_NUL, description="CAD source id")
    ] = None,
    incident_number: Annotated[
        str | None,
        Query(
            max_length=INCIDENT_NUMBER_MAX,
            pattern=NO_NUL,
            description="CAD incident number, read like the CAD event's (NFKC, trimmed); with "
            "`source` it names one call",
        ),
    ] = None,
    agency: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    status: Annotated[
        str | None, Query(max_length=32, pattern=NO_NUL, description="e.g. dispatched, closed")
    ] = None,
    decision: Annotated[
        Literal["eligible", "review", "ineligible"] | None, Query(description="triage decision")
    ] = None,
    county: Annotated[
        str | None, Query(max_length=40, pattern=NO_NUL, description="FIPS code or county name")
    ] = None,
    opened_from: Annotated[QueryTimestamp | None, Query(description="opened at or after")] = None,
    opened_to: Annotated[QueryTimestamp | None, Query(description="opened before")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallPage:
    """List calls newest first, filtered; follow `next_cursor` for more."""
    atlas = request.app.state.geography.atlas
    county_fips = require_county(atlas, county).fips if county is not None else None
    number = _incident_number(incident_number)
    where = CallFilter(
        county_fips=county_fips,
        source=source,
        incident_number=number or None,
        agency=agency,
        status=status,
        decision=decision,
        opened_from=opened_from,
        opened_to=opened_to,
    )
    return await _page(session, principal, where, cursor, limit)


async def _page(
    session: AsyncSession,
    principal: Principal,
    where: CallFilter,
    cursor: str | None,
    limit: int,
) -> CallPage:
    rows, next_cursor = await service.list_calls(
        session, where, principal, cursor=cursor, limit=limit
    )
    briefs = await views.assignment_briefs(session, principal, [c.id for c in rows])
    items = [CallOut.of(c).model_copy(update={"assignment": briefs.get(c.id)}) for c in rows]
    await audit.record(
        session, principal, "call.list", "call", None, {"ids": [str(c.id) for c in rows]}
    )
    return CallPage(items=items, next_cursor=next_cursor)


@router.get(
    "/v1/cad/{source}/calls",
    response_model=CallPage,
    responses=problems(BadRequest, Unauthorized, Forbidden, NotFound, InvalidPayload),
    tags=["CAD integration"],
)
async def source_calls(
    source: str,
    session: SessionDep,
    principal: Authorized,
    incident_number: Annotated[
        str | None,
        Query(
            max_length=INCIDENT_NUMBER_MAX,
            pattern=NO_NUL,
            description="CAD incident number, read like the CAD event's (NFKC, trimmed)",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallPage:
    """A CAD's own calls, newest first; with `incident_number`, the call that incident
    became (its triage, county and assignment), for the source's integrator key."""
    await sources.reach_source(session, principal, source)
    number = _incident_number(incident_number)
    where = CallFilter(source=source, incident_number=number or None)
    return await _page(session, principal, where, cursor, limit)


def _incident_number(value: str | None) -> str | None:
    """The filter read like a CAD event's number (NFKC, trimmed); one that is blank once
    trimmed is refused, never read as no filter (which would answer every call)."""
    if value is None:
        return None
    number = unicodedata.normalize("NFKC", value).strip()
    if not number:
        raise InvalidPayload("incident_number is blank: leave it out to list every call")
    return number


@router.get(
    "/v1/calls/{call_id}",
    response_model=CallDetail,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def get_call(call_id: uuid.UUID, session: SessionDep, principal: Authorized) -> CallDetail:
    """One call as CAD last described it, with its event history; once purged
    (`purged_at`), its de-identified facts and outcome without narrative or location."""
    call = await service.get_call(session, call_id, principal)
    detail = await views.call_detail(session, principal, call)
    await audit.record(session, principal, "call.read", "call", call.id)  # last: see audit
    return detail


@router.post(
    "/v1/calls/{call_id}/danger-override",
    response_model=CallDetail,
    responses=problems(
        Unauthorized, Forbidden, NotFound, NotDangerous, PeerStillAssigned, InvalidPayload
    ),
)
async def override_danger(
    call_id: uuid.UUID,
    body: DangerOverrideIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> CallDetail:
    """A supervisor overrides a call that turned dangerous, after police reported the danger
    unfounded. Never automatic; the reason is required and kept, with who, in the triage
    history (`override_by`, the `policy.danger_overridden` reason) and on the audit log.

    The call goes back to `review`, not to what it was before: the danger words are still in
    its text, so a person decides whether a peer goes (a dispatcher's request; no peer is
    sent by the override, and the cancelled assignment stays cancelled). From then on it is
    at most `review`, and danger in any later update of the call makes it ineligible
    again. `409 not-turned-dangerous` for any other call; `409 peer-still-assigned` while
    a peer is still on it (the call-off for danger has not happened yet: call the peer off
    first)."""
    call = await flow.override_danger(
        session, principal, call_id, body.reason, request.app.state.clock()
    )
    return await views.call_detail(session, principal, call)
