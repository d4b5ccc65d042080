"""The dispatcher's console at ``/dispatch``: a browser tab beside the CAD for a center with
no CAD integration, or for the dispatcher who wants to see and act on peers.

Signed in with a dispatcher's (or supervisor's) key, it lists the calls of the last hours the
key may see, newest first by when the call opened, with the triage decision and its reasons
in one line, the county and the peer's state; ``review`` calls stand out. A dispatcher finds a
call by incident number, asks for a peer (with a note for the peer), sees who was offered and
the countdown, sees "staged — waiting for scene secure", reports the scene secure, and calls
the peer off. A ``review`` call may be sent a peer anyway only with a reason, recorded with
who decided. The page updates itself over Server-Sent Events (like the peer app): the
server says ``changed`` when a call or assignment in scope changes, and the page refetches.
Every action goes through the same services (and rules of scope) as the API.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    Response,
)
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments import lifecycle, scene
from corespond.assignments import views as assignments
from corespond.assignments.deps import context
from corespond.assignments.models import Assignment
from corespond.assignments.schemas import Language
from corespond.audit import service as audit
from corespond.auth.service import (
    Principal,
    session_principal,
)
from corespond.browser import (
    SECURITY_HEADERS,
    KeySignIn,
    change_stream,
)
from corespond.calls import service as calls
from corespond.calls.filters import CallFilter
from corespond.confidentiality.peer_view import clean_note
from corespond.console import repository
from corespond.db import SessionDep
from corespond.errors import InvalidPayload, NotFound
from corespond.kit.validators import INCIDENT_NUMBER_MAX
from corespond.pipeline import flow

router = APIRouter(include_in_schema=False)

COOKIE = "corespond_dispatch"
COOKIE_PATH = "/dispatch"
ALLOWED = ("dispatcher", "supervisor", "admin")
SESSION_HOURS = 12
WINDOW_HOURS = 12
STATIC = {
    "dispatch.css": "text/css",
    "dispatch.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}

templates = Environment(
    loader=PackageLoader("corespond.console", "templates"),
    autoescape=select_autoescape(["html"]),
)


def _html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = templates.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


SIGN_IN = KeySignIn(
    page=COOKIE_PATH,
    cookie=COOKIE,
    allowed=ALLOWED,
    hours=SESSION_HOURS,
    refuse=lambda status, error: _html("login.html", status, error=error),
    what="console",
)


# --- signing in and out --------------------------------------------------------------------


@router.get("/dispatch")
async def page(request: Request, session: SessionDep) -> Response:
    principal = await SIGN_IN.signed_in(request, session)
    if principal is None:
        return _html("login.html")
    await audit.record(session, principal, "dispatch_console.read", "call", None)
    return _html(
        "dispatch.html",
        who=principal.name,
        role=principal.role,
        timezone=request.app.state.settings.program_timezone,
        window_hours=WINDOW_HOURS,
    )


@router.post("/dispatch/login")
async def login(
    request: Request, session: SessionDep, key: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    return await SIGN_IN.sign_in(request, session, key)


@router.post("/dispatch/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    return await SIGN_IN.sign_out(request, session)


# --- what the console shows ----------------------------------------------------------------


def _assignment(assignment: Assignment | None, peer_name: str | None) -> dict[str, Any] | None:
    if assignment is None:
        return None
    return {
        "id": str(assignment.id),
        "status": assignment.status,
        "peer": peer_name,
        "expires_at": assignment.expires_at.isoformat() if assignment.expires_at else None,
        "staged": scene.staged(assignment),
        "scene_secured_at": assignment.scene_secured_at.isoformat()
        if assignment.scene_secured_at
        else None,
        "next_available_at": assignment.next_available_at.isoformat()
        if assignment.next_available_at
        else None,
        "why_unfilled": (assignment.ranking or {}).get("summary")
        if assignment.status == "unfilled"
        else None,
    }


async def _data(
    request: Request, session: AsyncSession, principal: Principal, number: str | None
) -> dict[str, Any]:
    now = request.app.state.clock()
    where = CallFilter(
        incident_number=number,
        opened_from=None if number else now - timedelta(hours=WINDOW_HOURS),
    )
    rows, _ = await calls.list_calls(session, where, principal, cursor=None, limit=200)
    found = await assignments.latest_for_calls(session, [c.id for c in rows])
    items = []
    for call in sorted(rows, key=lambda c: c.opened_at or c.created_at, reverse=True):
        assignment, peer = found.get(call.id, (None, None))
        items.append(
            {
                "id": str(call.id),
                "incident_number": call.incident_number,
                "source": call.source_id,
                "agency": call.agency,
                "call_type": call.call_type,
                "county": call.county_name,
                "opened_at": (call.opened_at or call.created_at).isoformat(),
                "status": call.status,
                "ended": call.ended_at is not None,
                "decision": call.decision,
                "summary": call.decision_summary,
                "assignment": _assignment(assignment, peer.display_name if peer else None),
            }
        )
    await audit.record(
        session, principal, "dispatch_console.data", "call", None, {"calls": len(items)}
    )
    return {
        "at": now.isoformat(),
        "calls": items,
        # May a request be widened to neighbouring counties' providers (the program decides)?
        "neighbour_providers": request.app.state.settings.neighbour_providers,
    }


def _number(text: str | None) -> str | None:
    if not text:
        return None
    number = unicodedata.normalize("NFKC", text).strip()
    if len(number) > INCIDENT_NUMBER_MAX or "\x00" in number:
        raise InvalidPayload(f"incident_number: at most {INCIDENT_NUMBER_MAX} characters")
    return number or None


@router.get("/dispatch/data")
async def data(
    request: Request, session: SessionDep, incident_number: str | None = None
) -> Response:
    """The console's calls (the same sign-in cookie); ``?incident_number=`` finds one."""
    principal = await SIGN_IN.require(request, session)
    body = await _data(request, session, principal, _number(incident_number))
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/dispatch/events")
async def events(request: Request, session: SessionDep) -> Response:
    """``data: changed`` when calls or assignments change (checked every second), a comment
    every 15 s to keep the connection open; ends when the session does."""
    await SIGN_IN.require(request, session)
    token = request.cookies.get(COOKIE, "")
    clock = request.app.state.clock

    async def signed_in(check: AsyncSession) -> bool:
        principal = await session_principal(check, token, clock())
        return principal is not None and principal.role in ALLOWED

    return change_stream(request, repository.change_stamp, signed_in)


# --- acting ----------------------------------------------------------------------------------


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500)
    review_reason: str | None = Field(default=None, max_length=300)
    language: Language | None = None
    neighbouring_providers: bool = False


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


@router.post("/dispatch/calls/{call_id}/request")
async def request_peer(
    call_id: uuid.UUID, request: Request, session: SessionDep, body: RequestIn
) -> Response:
    """Ask for a peer; on a ``review`` call only with a reason, recorded with who decided."""
    principal = await SIGN_IN.require(request, session, post=True)
    call = await calls.get_call(session, call_id, principal)
    if call.decision == "review":
        reason = (body.review_reason or "").strip()
        if not reason:
            raise InvalidPayload(
                "review_reason: this call is under review; say why a peer may go anyway"
            )
        await audit.record(
            session,
            principal,
            "call.review_overridden",
            "call",
            call_id,
            {"reason": reason, "decision_summary": call.decision_summary},
        )
    note = clean_note(body.note) if body.note else None
    result = await flow.request_peer(
        session,
        principal,
        call_id,
        context(request),
        note=note,
        language=body.language,
        neighbouring_providers=body.neighbouring_providers,
    )
    return JSONResponse({"assignment": str(result.assignment.id), "created": result.created})


@router.post("/dispatch/assignments/{assignment_id}/scene-secure")
async def scene_secure(assignment_id: uuid.UUID, request: Request, session: SessionDep) -> Response:
    """Police report the scene secure: the staged peer may go in."""
    principal = await SIGN_IN.require(request, session, post=True)
    assignment = await lifecycle.scene_secure(session, principal, assignment_id, context(request))
    return JSONResponse({"assignment": str(assignment.id), "status": assignment.status})


@router.post("/dispatch/assignments/{assignment_id}/cancel")
async def cancel(
    assignment_id: uuid.UUID, request: Request, session: SessionDep, body: CancelIn
) -> Response:
    """Call the peer off; the dispatcher's words are kept on the audit record (the
    assignment's history says ``dispatcher``)."""
    principal = await SIGN_IN.require(request, session, post=True)
    reason = body.reason.strip()
    if not reason:
        raise InvalidPayload("reason: say why the peer is called off")
    assignment = await lifecycle.act(session, principal, assignment_id, "cancel", context(request))
    await audit.record(
        session, principal, "assignment.called_off", "assignment", assignment.id, {"reason": reason}
    )
    return JSONResponse({"assignment": str(assignment.id), "status": assignment.status})


@router.get("/dispatch/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no such file: {name}")
    text = resources.files("corespond.console").joinpath(f"static/{name}").read_text()
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
