"""The supervisor page at ``/supervisor``: the state's counties coloured by coverage now, the
counties served with their peers, the gaps of the next 24 hours, unfilled requests, failing
deliveries and the alerts (acknowledged here); a county drilled into shows its calls, its
peers and their shifts, and the supervisor acts there: hand a call to another peer, call a
peer off, override a danger police reported unfounded. Live over Server-Sent Events (the
server says ``changed`` and the page refetches), and refreshed every few seconds anyway for
what only the clock changes (shifts beginning and ending). Every action goes through the
same services, rules of scope and audit as the API.

Sign-in: a supervisor (or admin) API key entered once in a form opens a session; the cookie
holds a random token (only its hash is stored) that is ``HttpOnly``, ``SameSite=Strict``,
limited to ``/supervisor``, ``Secure`` over TLS and outside development, and ends at sign-out,
after 12 hours, or when the key is revoked. Sign-in and sign-out accept only posts from this
site. Nothing is loaded from another site (no CDN, no map tiles: the counties are drawn from
the packaged GeoJSON).
"""

from __future__ import annotations

import functools
import math
import uuid
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts import service as alerts
from corespond.alerts.schemas import alert_views
from corespond.assignments import lifecycle, matching
from corespond.assignments.deps import context
from corespond.audit import service as audit
from corespond.auth.service import (
    Principal,
    session_principal,
)
from corespond.browser import (
    change_stream,
    same_site,
)
from corespond.calls import service as calls
from corespond.coverage import service
from corespond.coverage.router import county_detail_out
from corespond.coverage.signin import ALLOWED, COOKIE, SIGN_IN, html
from corespond.db import SessionDep
from corespond.dispatch.relay import DeliveryPolicy
from corespond.dispatch.service import source_status
from corespond.errors import Forbidden, NotFound, Unauthorized
from corespond.geo.atlas import CountyAtlas
from corespond.kit.validators import ReasonText
from corespond.notify import service as notify
from corespond.notify.schemas import SubscriptionIn

router = APIRouter(include_in_schema=False)

LABELS = {
    "available": "peer available",
    "busy": "on shift, none free",
    "none": "no peer on shift",
    "unserved": "no provider",
}
ALERTS_SHOWN = 50
MAP_WIDTH = 600.0
STATIC = {
    "supervisor.css": "text/css",
    "supervisor.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}


def _scoped(principal: Principal) -> list[str] | None:
    try:
        return service.scoped_counties(principal)
    except Forbidden:
        return []


@router.get("/supervisor")
async def page(request: Request, session: SessionDep) -> Response:
    principal = await SIGN_IN.signed_in(request, session)
    if principal is None:
        return html("login.html")
    states = {c.fips: c for c in await _coverage(request, session, principal)}
    await audit.record(session, principal, "supervisor_page.read", "coverage", None)
    zone = request.app.state.settings.program_timezone
    contact = await notify.supervisor_contact(session, principal.key_id)
    return html(
        "supervisor.html",
        who=principal.name,
        can_be_notified=principal.role == "supervisor",
        sms_phone=contact.phone if contact else "",
        sms_on=bool(contact and "sms" in contact.notify_channels),
        refresh_seconds=request.app.state.settings.supervisor_refresh_seconds,
        as_of=request.app.state.clock().astimezone(ZoneInfo(zone)).strftime("%a %H:%M"),
        timezone=zone,
        map=_map(request.app.state.geography.atlas, states),
    )


@router.post("/supervisor/login")
async def login(
    request: Request, session: SessionDep, key: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    def covers(principal: Principal) -> str | None:
        return "This key's scope does not cover any county." if _scoped(principal) == [] else None

    return await SIGN_IN.sign_in(request, session, key, covers)


@router.post("/supervisor/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    return await SIGN_IN.sign_out(request, session)


@router.get("/supervisor/data")
async def data(request: Request, session: SessionDep) -> Response:
    """What the page shows, for its refresh (the same sign-in cookie)."""
    principal = await SIGN_IN.require(request, session)
    now = request.app.state.clock()
    counties = await _coverage(request, session, principal)
    atlas = request.app.state.geography.atlas
    served = [c.fips for c in counties if c.provider_id is not None]
    required = request.app.state.settings.required_credentials
    gaps = await service.gaps_between(
        session, atlas, now, now + timedelta(hours=24), required, served
    )
    policy = DeliveryPolicy.of(request.app.state.settings)
    scope = _scoped(principal)
    deliveries = await source_status(session, now, policy.alert_after) if scope is None else []
    unfilled = await service.unfilled_recent(session, now - timedelta(hours=24), scope)
    recent = list(await alerts.list_alerts(session, principal, after=None, limit=ALERTS_SHOWN))
    body = {
        "at": now.isoformat(),
        "counties": [
            {
                "fips": c.fips,
                "name": c.name,
                "provider": c.provider_id,
                "provider_role": c.provider_role,
                "served": c.provider_id is not None,
                "state": _state(c),
                "available": c.available,
                "on_shift": len(c.peers),
                "active_assignments": c.active_assignments,
                "unfilled_24h": c.unfilled_24h,
                "peers": [
                    {
                        "display_name": p.display_name,
                        "free": p.free,
                        "why_not": p.why_not,
                        "shift_ends_at": p.shift_ends_at.isoformat(),
                    }
                    for p in c.peers
                ],
            }
            for c in counties
        ],
        "gaps": {
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=24)).isoformat(),
            "counties": [
                {
                    "fips": g.fips,
                    "name": g.name,
                    "uncovered_hours": round(g.uncovered_hours, 1),
                    "gaps": [
                        {"starts_at": s.isoformat(), "ends_at": e.isoformat()} for s, e in g.gaps
                    ],
                }
                for g in gaps
            ],
        },
        "unfilled": unfilled,
        "alerts": [a.model_dump(mode="json") for a in await alert_views(session, recent)],
        "deliveries": [
            {
                "source": d.source_id,
                "pending": d.pending,
                "dead": d.dead,
                "failing_since": d.failing_since.isoformat() if d.failing_since else None,
                "alert": d.alert,
            }
            for d in deliveries
        ],
    }
    await audit.record(
        session,
        principal,
        "supervisor_page.data",
        "coverage",
        None,
        {"counties": len(counties), "unfilled": len(unfilled), "alerts": len(recent)},
    )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/supervisor/events")
async def events(request: Request, session: SessionDep) -> Response:
    """``data: changed`` when calls, assignments, the roster, deliveries or alerts change
    (checked every second), a comment every 15 s to keep the connection open; ends when the
    session does."""
    await SIGN_IN.require(request, session)
    token = request.cookies.get(COOKIE, "")
    clock = request.app.state.clock

    async def signed_in(check: AsyncSession) -> bool:
        principal = await session_principal(check, token, clock())
        return principal is not None and principal.role in ALLOWED

    return change_stream(request, service.change_stamp, signed_in)


# --- a county drilled into, and the supervisor's actions -----------------------------------


@router.get("/supervisor/counties/{fips}")
async def county(fips: str, request: Request, session: SessionDep) -> Response:
    """A county drilled into (as ``GET /v1/coverage/counties/{county}``)."""
    principal = await SIGN_IN.require(request, session)
    atlas = request.app.state.geography.atlas
    if fips not in atlas.by_fips:
        raise NotFound(f"no county {fips[:10]!r}")
    now = request.app.state.clock()
    detail = await service.county_detail(
        session, atlas, principal, fips, request.app.state.settings.required_credentials, now
    )
    await audit.record(
        session,
        principal,
        "coverage.county_read",
        "coverage",
        None,
        {"county": fips, "calls": [str(c.call.id) for c in detail.calls]},
    )
    zone = ZoneInfo(request.app.state.settings.program_timezone)
    body = county_detail_out(detail, now, zone).model_dump(mode="json")
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/supervisor/assignments/{assignment_id}/candidates")
async def candidates(assignment_id: uuid.UUID, request: Request, session: SessionDep) -> Response:
    """Who the assignment could be handed to now, and who could not (why)."""
    principal = await SIGN_IN.require(request, session)
    assignment, found = await matching.who_could_take(
        session, principal, assignment_id, context(request)
    )
    await audit.record(
        session, principal, "assignment.candidates_read", "assignment", assignment.id
    )
    return JSONResponse(
        {
            "assignment_id": str(assignment.id),
            "status": assignment.status,
            "candidates": [
                {
                    "peer_id": str(r.candidate.peer_id),
                    "display_name": r.candidate.display_name,
                    "place": r.place,
                    "reasons": list(r.reasons),
                }
                for r in found.candidates
            ],
            "left_out": [
                {"peer_id": str(x.peer_id), "display_name": x.display_name, "why": x.why}
                for x in found.left_out
            ],
        },
        headers={"Cache-Control": "no-store"},
    )


class _Reassign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    peer_id: uuid.UUID
    reason: ReasonText


class _Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ReasonText


class _Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: ReasonText | None = None


@router.post("/supervisor/assignments/{assignment_id}/reassign")
async def reassign(
    assignment_id: uuid.UUID, request: Request, session: SessionDep, body: _Reassign
) -> Response:
    """Hand the call to another peer, saying why (as ``POST /v1/assignments/{id}/reassign``)."""
    principal = await SIGN_IN.require(request, session, post=True)
    offered = await lifecycle.reassign(
        session, principal, assignment_id, body.peer_id, body.reason, context(request)
    )
    return JSONResponse({"assignment": str(offered.id), "status": offered.status})


@router.post("/supervisor/assignments/{assignment_id}/cancel")
async def cancel(
    assignment_id: uuid.UUID, request: Request, session: SessionDep, body: _Reason
) -> Response:
    """Call the peer off, saying why (as ``POST /v1/assignments/{id}/cancel``)."""
    principal = await SIGN_IN.require(request, session, post=True)
    cancelled = await lifecycle.act(
        session, principal, assignment_id, "cancel", context(request), reason=body.reason
    )
    return JSONResponse({"assignment": str(cancelled.id), "status": cancelled.status})


@router.post("/supervisor/calls/{call_id}/danger-override")
async def override_danger(
    call_id: uuid.UUID, request: Request, session: SessionDep, body: _Reason
) -> Response:
    """Police report the danger unfounded: the call goes back to review (as the API)."""
    principal = await SIGN_IN.require(request, session, post=True)
    call = await calls.override_danger(
        session, principal, call_id, body.reason, request.app.state.clock()
    )
    return JSONResponse({"call": str(call.id), "decision": call.decision})


@router.post("/supervisor/alerts/{alert_id}/acknowledge")
async def acknowledge(
    alert_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    body: Annotated[_Note | None, Body()] = None,
) -> Response:
    """Acknowledge an alert: it is never told again (as the API)."""
    principal = await SIGN_IN.require(request, session, post=True)
    alert = await alerts.acknowledge(
        session, principal, alert_id, body.note if body else None, request.app.state.clock()
    )
    return JSONResponse({"alert": str(alert.id), "state": alerts.state_of(alert)})


# --- notices of unfilled requests on this browser, or by SMS -------------------------------


class _Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Literal["webpush", "sms"]] = Field(max_length=2)
    phone: str | None = Field(default=None, max_length=32)


async def _supervisor(request: Request, session: AsyncSession) -> Principal:
    if not same_site(request):
        raise Forbidden("use this page")
    principal = await SIGN_IN.signed_in(request, session)
    if principal is None:
        raise Unauthorized("sign in at /supervisor")
    if principal.role != "supervisor":
        raise Forbidden("notices of unfilled requests go to supervisor keys")
    return principal


@router.post("/supervisor/push-subscriptions", status_code=201)
async def add_push_subscription(
    request: Request, session: SessionDep, body: SubscriptionIn
) -> Response:
    """This browser gets a notice when a request in the supervisor's scope goes unfilled."""
    principal = await _supervisor(request, session)
    subscription = await notify.subscribe(
        session,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        request.app.state.settings.environment,
        now=request.app.state.clock(),
        key_id=principal.key_id,
    )
    await audit.record(session, principal, "push_subscription.create", "api_key", subscription.id)
    return JSONResponse({"id": str(subscription.id)}, status_code=201)


@router.post("/supervisor/contact")
async def set_contact(request: Request, session: SessionDep, body: _Contact) -> Response:
    """The channels (and SMS phone) an unfilled request reaches this supervisor on."""
    principal = await _supervisor(request, session)
    contact = await notify.set_contact(
        session, principal.key_id, body.phone, list(body.channels), request.app.state.clock()
    )
    await audit.record(session, principal, "supervisor_contact.set", "api_key", principal.key_id)
    return JSONResponse({"channels": contact.notify_channels, "phone": contact.phone})


@router.get("/supervisor/sw.js")
async def service_worker() -> Response:
    # The peer app's service worker: it takes its page from the scope it is registered at.
    text = resources.files("corespond.peerapp").joinpath("static/sw.js").read_text()
    return Response(
        text,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/supervisor"},
    )


@router.get("/supervisor/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no such file: {name}")
    text = resources.files("corespond.coverage").joinpath(f"static/{name}").read_text()
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


async def _coverage(
    request: Request, session: AsyncSession, principal: Principal
) -> list[service.CountyCoverage]:
    now = request.app.state.clock()
    _, counties = await service.coverage_at(
        session,
        request.app.state.geography.atlas,
        now,
        request.app.state.settings.required_credentials,
        now,
        _scoped(principal),
    )
    return counties


def _state(county: service.CountyCoverage) -> str:
    if county.provider_id is None and not county.peers:
        return "unserved"
    return county.state


def _map(atlas: CountyAtlas, states: dict[str, service.CountyCoverage]) -> dict[str, Any]:
    shapes = _shapes(atlas)
    counties = []
    for fips, name, d, x, y in shapes["counties"]:
        state = states.get(fips)
        label_state = _state(state) if state else "unserved"
        counties.append(
            {
                "fips": fips,
                "name": name,
                "d": d,
                "x": x,
                "y": y,
                "state": label_state,
                "served": bool(state and state.provider_id),
                "label": f"{name}: {LABELS[label_state]}",
            }
        )
    return {"width": shapes["width"], "height": shapes["height"], "counties": counties}


@functools.cache
def _shapes(atlas: CountyAtlas) -> dict[str, Any]:
    """SVG paths of the counties (simplified, equirectangular at the state's latitude)."""
    west, south, east, north = (
        min(c.geometry.bounds[0] for c in atlas.counties),
        min(c.geometry.bounds[1] for c in atlas.counties),
        max(c.geometry.bounds[2] for c in atlas.counties),
        max(c.geometry.bounds[3] for c in atlas.counties),
    )
    squash = math.cos(math.radians((south + north) / 2))
    scale = MAP_WIDTH / ((east - west) * squash)
    height = (north - south) * scale

    def xy(lon: float, lat: float) -> str:
        return f"{(lon - west) * squash * scale:.1f},{(north - lat) * scale:.1f}"

    counties = []
    for county in atlas.counties:
        shape = county.geometry.simplify(0.003, preserve_topology=True)
        polygons = shape.geoms if isinstance(shape, MultiPolygon) else [shape]
        rings = [
            "M" + " L".join(xy(lon, lat) for lon, lat in polygon.exterior.coords) + " Z"
            for polygon in polygons
            if isinstance(polygon, Polygon)
        ]
        point = county.geometry.representative_point()
        x, y = (float(v) for v in xy(point.x, point.y).split(","))
        counties.append((county.fips, county.name, " ".join(rings), x, y))
    return {"width": round(MAP_WIDTH, 1), "height": round(height, 1), "counties": counties}
