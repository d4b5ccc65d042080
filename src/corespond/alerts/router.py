"""Supervisors' alerts: ``/v1/alerts``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request

from corespond.alerts import service
from corespond.alerts.repository import AlertFilter
from corespond.alerts.schemas import AcknowledgeIn, AlertOut, AlertPage, Kind, alert_views
from corespond.alerts.service import AlertAcknowledged
from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.errors import BadRequest, Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.geo.service import require_county
from corespond.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["alerts"])


@router.get(
    "/v1/alerts",
    response_model=AlertPage,
    responses=problems(BadRequest, Unauthorized, Forbidden, InvalidPayload),
)
async def list_alerts(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    state: Annotated[
        Literal["open", "acknowledged", "resolved", "unresolved"] | None,
        Query(description="unresolved: open or acknowledged"),
    ] = None,
    kind: Annotated[Kind | None, Query()] = None,
    county: Annotated[
        str | None, Query(max_length=40, pattern=r"^[^\x00]*$", description="FIPS or name")
    ] = None,
    call: Annotated[uuid.UUID | None, Query(description="The alerts of one call")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """The alert history, newest first: each alert with who acknowledged it and when, and
    what became of its notices. A county-scoped key sees its county's alerts; statewide
    ones (CAD deliveries) are for unscoped keys."""
    atlas = request.app.state.geography.atlas
    where = AlertFilter(
        state=state,
        kind=kind,
        county_fips=require_county(atlas, county).fips if county else None,
        call_id=call,
    )
    after = decode_cursor(cursor) if cursor else None
    rows = list(await service.list_alerts(session, principal, where, after=after, limit=limit + 1))
    page = rows[:limit]
    await audit.record(
        session, principal, "alert.list", "alert", None, {"ids": [str(a.id) for a in page]}
    )
    next_cursor = encode_cursor(page[-1].raised_at, page[-1].id) if len(rows) > limit else None
    return AlertPage(items=await alert_views(session, page), next_cursor=next_cursor)


@router.get(
    "/v1/alerts/{alert_id}",
    response_model=AlertOut,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def get_alert(alert_id: uuid.UUID, session: SessionDep, principal: Authorized) -> AlertOut:
    """One alert with its history."""
    alert = await service.get_alert(session, principal, alert_id)
    [view] = await alert_views(session, [alert])
    await audit.record(session, principal, "alert.read", "alert", alert.id)
    return view


@router.post(
    "/v1/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=problems(Unauthorized, Forbidden, NotFound, AlertAcknowledged, InvalidPayload),
)
async def acknowledge(
    alert_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    body: Annotated[AcknowledgeIn | None, Body()] = None,
) -> AlertOut:
    """A supervisor has seen to the alert: kept with who and when (and the note), on the
    audit log; the supervisors are never told of it again, and its notices not yet sent are
    withdrawn. `409 alert-acknowledged` if someone already had (saying who and when)."""
    alert = await service.acknowledge(
        session, principal, alert_id, body.note if body else None, request.app.state.clock()
    )
    [view] = await alert_views(session, [alert])
    return view
