"""The provider's follow-up queue at ``/provider``: a provider admin signs in with their key
(scoped to the provider) and sees every open follow-up of the provider's people: those
overdue and escalated first, then the week's, then later ones; assigns them to a peer or the
team and records what came of them. The same services, scope and audit as the API
(``/v1/followups``): the list is a read of each person it names.

Sign-in like the supervisor page: a session cookie (hashed token server-side; HttpOnly,
SameSite=Strict, limited to ``/provider``), posts only from this site, nothing loaded from
another site; live over Server-Sent Events when the queue changes.

The admin turns notices on here, as a supervisor does on theirs: this browser (Web Push)
and, if they like, SMS to a phone. When follow-ups become overdue the worker tells them how
many (never who), and the queue says when they were told and how.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.auth.service import Principal, session_principal
from corespond.browser import SECURITY_HEADERS, KeySignIn, change_stream, same_site
from corespond.db import SessionDep
from corespond.errors import Forbidden, NotFound, Unauthorized
from corespond.followups import service as followups
from corespond.notify import service as notify
from corespond.notify.schemas import SubscriptionIn
from corespond.people import views
from corespond.people.schemas import AssignIn, OutcomeIn
from corespond.roster import service as roster

router = APIRouter(include_in_schema=False)

PAGE = "/provider"
COOKIE = "corespond_provider"
SESSION_HOURS = 12
STATIC = {"provider.css": "text/css", "provider.js": "text/javascript", "icon.svg": "image/svg+xml"}
WEEK = timedelta(days=7)

templates = Environment(
    loader=PackageLoader("corespond.provider", "templates"),
    autoescape=select_autoescape(["html"]),
)


def _html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = templates.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _scoped(principal: Principal) -> str | None:
    if principal.scope is None or principal.scope.kind != "provider":
        return "A provider admin key scoped to its provider (provider:ID) opens this page."
    return None


SIGN_IN = KeySignIn(
    page=PAGE,
    cookie=COOKIE,
    allowed=("provider_admin",),
    hours=SESSION_HOURS,
    refuse=lambda status, error: _html("login.html", status, error=error),
)


async def _signed_in(request: Request, session: AsyncSession) -> Principal | None:
    principal = await SIGN_IN.signed_in(request, session)
    return principal if principal is not None and _scoped(principal) is None else None


async def _require(request: Request, session: AsyncSession) -> Principal:
    principal = await SIGN_IN.require(request, session)
    if _scoped(principal) is not None:
        raise Unauthorized(f"sign in at {PAGE}")
    return principal


def _provider_id(principal: Principal) -> str:
    if principal.scope is None:  # pragma: no cover - _signed_in refuses it
        raise Forbidden("a provider admin key needs a provider scope")
    return principal.scope.value


@router.get(PAGE)
async def page(request: Request, session: SessionDep) -> Response:
    principal = await _signed_in(request, session)
    if principal is None:
        return _html("login.html")
    provider = await roster.get_provider(session, _provider_id(principal))
    contact = await notify.contact_of(session, principal.key_id)
    return _html(
        "provider.html",
        who=principal.name,
        provider=provider.name,
        timezone=request.app.state.settings.program_timezone,
        sms_phone=contact.phone if contact and contact.phone else "",
        sms_on=bool(contact and "sms" in contact.notify_channels),
    )


@router.post(f"{PAGE}/login")
async def login(
    request: Request, session: SessionDep, key: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    return await SIGN_IN.sign_in(request, session, key, _scoped)


@router.post(f"{PAGE}/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    return await SIGN_IN.sign_out(request, session)


async def _queue(request: Request, session: AsyncSession, principal: Principal) -> dict[str, Any]:
    now: datetime = request.app.state.clock()
    tasks = await followups.list_tasks(
        session,
        principal,
        state="open",
        due_before=None,
        escalated=None,
        assignee=None,
        person_id=None,
        limit=500,
        now=now,
    )
    outs = await views.follow_up_outs(session, tasks, now)
    rows = [
        {**out.model_dump(mode="json"), "person_contact": person.contact}
        for out, (_, person) in zip(outs, tasks, strict=True)
    ]
    peers = await roster.provider_peers(session, _provider_id(principal))
    return {
        "at": now.isoformat(),
        "notices": await _notices(session, principal),
        "escalated": [r for r in rows if r["escalated_at"]],
        "overdue": [r for r in rows if r["overdue"] and not r["escalated_at"]],
        "week": [
            r for r in rows if not r["overdue"] and datetime.fromisoformat(r["due_at"]) < now + WEEK
        ],
        "later": [
            r
            for r in rows
            if not r["overdue"] and datetime.fromisoformat(r["due_at"]) >= now + WEEK
        ],
        "peers": sorted(
            ({"id": str(p.id), "name": p.display_name} for p in peers), key=lambda p: p["name"]
        ),
    }


CHANNEL_WORDS = {"webpush": "push", "sms": "SMS"}


async def _notices(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    """How this admin is told of overdue follow-ups, and what they were told lately."""
    contact = await notify.contact_of(session, principal.key_id)
    told = await notify.notices_of_key(session, principal.key_id, notify.FOLLOW_UPS_TAG)
    return {
        "push_subscriptions": await notify.push_subscriptions(session, principal.key_id),
        "sms": bool(contact and contact.phone and "sms" in contact.notify_channels),
        "told": [
            {
                "at": n.created_at.isoformat(),
                "channel": CHANNEL_WORDS.get(n.channel, n.channel),
                "state": n.state,
                "body": n.payload.get("body"),
            }
            for n in told
        ],
    }


@router.get(f"{PAGE}/data")
async def data(request: Request, session: SessionDep) -> Response:
    principal = await _require(request, session)
    body = await _queue(request, session, principal)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get(f"{PAGE}/events")
async def events(request: Request, session: SessionDep) -> Response:
    """``data: changed`` when the provider's queue changes (checked every second)."""
    principal = await _require(request, session)
    provider = _provider_id(principal)
    token = request.cookies.get(COOKIE, "")
    clock = request.app.state.clock

    async def stamp(check: AsyncSession) -> object:
        return await followups.change_stamp(check, provider)

    async def signed_in(check: AsyncSession) -> bool:
        return await session_principal(check, token, clock()) is not None

    return change_stream(request, stamp, signed_in)


def _same_site(request: Request) -> None:
    if not same_site(request):
        raise Forbidden("post from the provider page")


@router.post(f"{PAGE}/followups/{{followup_id}}/outcome")
async def outcome(
    followup_id: uuid.UUID, request: Request, session: SessionDep, body: OutcomeIn
) -> Response:
    _same_site(request)
    principal = await _require(request, session)
    await followups.record_outcome(
        session, principal, followup_id, body.outcome, request.app.state.clock()
    )
    return JSONResponse(await _queue(request, session, principal))


@router.post(f"{PAGE}/followups/{{followup_id}}/assign")
async def assign(
    followup_id: uuid.UUID, request: Request, session: SessionDep, body: AssignIn
) -> Response:
    _same_site(request)
    principal = await _require(request, session)
    await followups.assign(session, principal, followup_id, body.peer_id)
    return JSONResponse(await _queue(request, session, principal))


class _Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[Literal["webpush", "sms"]] = Field(max_length=2)
    phone: str | None = Field(default=None, max_length=32)


async def _admin(request: Request, session: AsyncSession) -> Principal:
    _same_site(request)
    return await _require(request, session)


@router.post(f"{PAGE}/push-subscriptions", status_code=201)
async def add_push_subscription(
    request: Request, session: SessionDep, body: SubscriptionIn
) -> Response:
    """This browser is told when the provider's follow-ups become overdue."""
    principal = await _admin(request, session)
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


@router.post(f"{PAGE}/contact")
async def set_contact(request: Request, session: SessionDep, body: _Contact) -> Response:
    """The channels (and SMS phone) overdue follow-ups reach this admin on."""
    principal = await _admin(request, session)
    contact = await notify.set_contact(
        session, principal.key_id, body.phone, list(body.channels), request.app.state.clock()
    )
    await audit.record(session, principal, "notify_contact.set", "api_key", principal.key_id)
    return JSONResponse({"channels": contact.notify_channels, "phone": contact.phone})


@router.get(f"{PAGE}/sw.js")
async def service_worker() -> Response:
    # The peer app's service worker: it takes its page from the scope it is registered at.
    text = resources.files("corespond.peerapp").joinpath("static/sw.js").read_text()
    return Response(
        text,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": PAGE},
    )


@router.get(f"{PAGE}/static/{{name}}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no such file: {name}")
    text = resources.files("corespond.provider").joinpath(f"static/{name}").read_text()
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
