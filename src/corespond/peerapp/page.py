"""``/peer``: the peer's phone app, and the API that makes its sign-in links.

Server-rendered shell, a small script (no third-party code), live over Server-Sent Events:
the stream says "changed" within a second of anything on the peer's page changing, and the
script fetches ``/peer/data`` again. The page's actions post to ``/peer/...`` with the session
cookie (SameSite=Strict, and a same-site check on every post).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Form, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from corespond import aftercall
from corespond.agencies import service as agencies
from corespond.assignments import lifecycle
from corespond.assignments import views as assignments
from corespond.assignments.deps import context
from corespond.assignments.lifecycle import Clearing
from corespond.assignments.models import LIVE_STATUSES
from corespond.assignments.schemas import Outcome, Referral, assignment_out
from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.auth.models import ApiKey
from corespond.auth.service import Principal, end_session, revoke_key, session_principal
from corespond.browser import (
    SECURITY_HEADERS,
    change_stream,
    clear_session_cookie,
    same_site,
    set_session_cookie,
)
from corespond.calls.models import Call
from corespond.db import SessionDep, database_of
from corespond.directory import service as directory
from corespond.directory.models import KINDS
from corespond.directory.schemas import Kind, service_out
from corespond.errors import Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.followups import service as followups
from corespond.followups.service import FollowUpPolicy
from corespond.geo.service import require_county
from corespond.notify import service as notify
from corespond.notify.schemas import SubscriptionIn
from corespond.notify.service import current_vapid
from corespond.peerapp import service
from corespond.people import service as people
from corespond.people import views
from corespond.people.consent import CURRENT, FIELD_LABELS, PURPOSE_LABELS, statement
from corespond.people.schemas import ArrivalIn, ContactIn, OutcomeIn, ReferralIn, RevokeIn
from corespond.people.service import ConsentPolicy
from corespond.roster import service as roster
from corespond.roster.models import Peer

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["peers"])

COOKIE = "corespond_peer"
COOKIE_PATH = "/peer"
STATIC = {
    "peer.css": "text/css",
    "peer.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}

templates = Environment(
    loader=PackageLoader("corespond.peerapp", "templates"),
    autoescape=select_autoescape(["html"]),
)


def _html(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    body = templates.get_template(template).render(**values)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


async def _signed_in(request: Request, session: AsyncSession) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    principal = await session_principal(session, token, request.app.state.clock())
    return principal if principal is not None and principal.role == "peer" else None


async def _require(request: Request, session: AsyncSession) -> Principal:
    principal = await _signed_in(request, session)
    if principal is None:
        raise Unauthorized("sign in with the link your provider sent")
    return principal


def _require_same_site(request: Request) -> None:
    if not same_site(request):
        raise Forbidden("post from the peer page")


# --- the API: a sign-in link --------------------------------------------------------------


class SignInLinkOut(BaseModel):
    peer_id: uuid.UUID
    url: str = Field(description="Open on the peer's phone; it works once.")
    expires_at: datetime
    sent_to_phone: bool = Field(
        description="The link was also queued to the peer's own phone by SMS."
    )


@api.post(
    "/v1/peers/{peer_id}/sign-in-links",
    status_code=201,
    response_model=SignInLinkOut,
    responses=problems(Unauthorized, Forbidden, NotFound),
)
async def make_sign_in_link(
    peer_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> SignInLinkOut:
    """A one-time link that signs the peer in to the peer app (`/peer`) on their phone:
    valid for 15 minutes, once. Made only by the peer's provider admin (or an admin): never
    by a supervisor. Sent to the peer's phone by SMS where the peer has one, else shown as a
    QR code to the peer; the session it opens records who made it. Never ask a peer to
    paste an API key."""
    link = await service.create_link(
        session,
        principal,
        peer_id,
        request.app.state.clock(),
        by_sms=notify.sms_configured(request.app.state.settings),
    )
    await audit.record(
        session, principal, "peer.sign_in_link", "peer", peer_id, {"sms": link.sent_to_phone}
    )
    base = str(request.base_url).rstrip("/")
    return SignInLinkOut(
        peer_id=link.peer.id,
        url=f"{base}/peer/sign-in?token={link.token}",
        expires_at=link.expires_at,
        sent_to_phone=link.sent_to_phone,
    )


async def _audit_refused_link(request: Request, refused: service.LinkRefused) -> None:
    """A used or expired link tried again may be a leaked one: on the audit log, in a
    transaction of its own (the request's rolls back)."""
    async with database_of(request).sessionmaker() as own, own.begin():
        await audit.record(
            own,
            None,
            "peer.sign_in_refused",
            "peer",
            None,
            {"why": refused.detail},
            actor="peer app",
        )


# --- pages --------------------------------------------------------------------------------


@router.get("/peer")
async def page(request: Request, session: SessionDep) -> Response:
    principal = await _signed_in(request, session)
    if principal is None:
        return _html("signin.html", token=None)
    peer = await session.get(Peer, service.own_peer_id(principal))
    return _html("peer.html", name=peer.display_name if peer else "")


@router.get("/peer/sign-in")
async def sign_in_page(token: str = "") -> Response:
    """The link's page: a button, so that a link preview or scanner opening it does not use
    it up."""
    return _html("signin.html", token=token[:100] or None)


@router.post("/peer/sign-in")
async def sign_in(
    request: Request, session: SessionDep, token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    if not same_site(request):
        return _html("signin.html", 403, token=None, error="Sign in from the link's page.")
    try:
        signed = await service.sign_in(session, token, request.app.state.clock())
    except service.LinkRefused as refused:
        await _audit_refused_link(request, refused)
        return _html("signin.html", 409, token=None, error=refused.detail)
    await audit.record(
        session,
        None,
        "peer.sign_in",
        "peer",
        signed.peer.id,
        {"key_id": str(signed.key_id), "link_by": signed.link_by},
        actor=f"peer app: {signed.peer.display_name}",
    )
    response = RedirectResponse("/peer", status_code=303)
    set_session_cookie(response, request, COOKIE, signed.cookie, COOKIE_PATH, service.SESSION_HOURS)
    return response


@router.post("/peer/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    if not same_site(request):
        return _html("signin.html", 403, token=None, error="Sign out from the peer page.")
    token = request.cookies.get(COOKIE)
    principal = await _signed_in(request, session) if token else None
    if token:
        await end_session(session, token, request.app.state.clock())
    if principal is not None:
        # The session's own key goes with it (it was made for this sign-in alone).
        key = await session.get(ApiKey, principal.key_id)
        if key is not None:
            await revoke_key(session, key, request.app.state.clock())
        await audit.record(
            session,
            principal,
            "peer.sign_out",
            "peer",
            principal.scope.value if principal.scope else None,
        )
    response = RedirectResponse("/peer", status_code=303)
    clear_session_cookie(response, request, COOKIE, COOKIE_PATH)
    return response


# --- what the page shows, and its live stream -----------------------------------------------


async def _data(request: Request, session: AsyncSession, principal: Principal) -> dict[str, Any]:
    now = request.app.state.clock()
    peer_id = service.own_peer_id(principal)
    peer = await session.get(Peer, peer_id)
    if peer is None:
        raise NotFound("peer not found")
    atlas = request.app.state.geography.atlas
    items = []
    for assignment in await service.recent_assignments(session, peer_id, now):
        call = await session.get(Call, assignment.call_id)
        if call is None:  # pragma: no cover - a foreign key guarantees it
            continue
        if assignment.status not in LIVE_STATUSES:
            # Ended: what the page says of it, and nothing more of the call.
            items.append(
                {
                    "id": str(assignment.id),
                    "status": assignment.status,
                    "cancel_reason": assignment.cancel_reason,
                    "call": {"incident_number": call.incident_number},
                }
            )
            continue
        for_peer = await assignments.call_for_peer(session, call, assignment)
        view = assignment_out(assignment, call, for_peer, peer, principal, atlas)
        items.append(view.model_dump(mode="json"))
    zone = request.app.state.settings.program_timezone
    shifts = await roster.list_shifts(
        session,
        principal,
        peer_id=peer_id,
        provider_id=None,
        county_fips=None,
        starts_from=now - timedelta(hours=12),
        starts_to=now + timedelta(days=14),
        include_cancelled=False,
        after=None,
        limit=60,
    )
    await audit.record(
        session, principal, "peer_app.read", "assignment", None, {"ids": [i["id"] for i in items]}
    )
    after = await _after_the_call(request, session, principal, peer, now)
    return {
        "at": now.isoformat(),
        "peer": {"id": str(peer.id), "name": peer.display_name, "status": peer.status},
        "assignments": items,
        "shifts": [
            {
                "starts_at": s.starts_at.isoformat(),
                "ends_at": s.ends_at.isoformat(),
                "counties": list(s.counties),
                "kind": s.kind,
                "zone": zone,
            }
            for s in shifts
            if s.ends_at > now
        ],
        **after,
    }


@router.get("/peer/data")
async def data(request: Request, session: SessionDep) -> Response:
    principal = await _require(request, session)
    body = await _data(request, session, principal)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/peer/events")
async def events(request: Request, session: SessionDep) -> Response:
    """``data: changed`` whenever the peer's assignments or status change (checked every
    second), a comment every 15 s to keep the connection open."""
    principal = await _require(request, session)
    peer_id = service.own_peer_id(principal)
    token = request.cookies.get(COOKIE, "")
    clock = request.app.state.clock

    async def stamp(check: AsyncSession) -> object:
        return await service.change_stamp(check, peer_id)

    async def signed_in(check: AsyncSession) -> bool:
        # Signed out, expired or revoked since the stream began: it ends.
        return await session_principal(check, token, clock()) is not None

    return change_stream(request, stamp, signed_in)


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200)
    outcome: Outcome | None = None
    referrals: list[Referral] = Field(default=[], max_length=6)


Action = Literal["accept", "decline", "en-route", "on-scene", "clear"]


@router.post("/peer/assignments/{assignment_id}/{action}")
async def act(
    assignment_id: uuid.UUID,
    action: Action,
    request: Request,
    session: SessionDep,
    body: Annotated[ActionIn | None, Body()] = None,
) -> Response:
    """The page's buttons: accept, decline (with a reason), en route, on scene, clear (with
    the outcome). Answers what the page shows next."""
    _require_same_site(request)
    principal = await _require(request, session)
    body = body or ActionIn()
    clearing = None
    if action == "clear":
        if body.outcome is None:
            raise InvalidPayload("say what came of it: outcome")
        clearing = Clearing(body.outcome, tuple(dict.fromkeys(body.referrals)))
    await lifecycle.act(
        session,
        principal,
        assignment_id,
        action,
        context(request),
        clearing=clearing,
        reason=body.reason if action == "decline" else None,
    )
    return JSONResponse(await _data(request, session, principal))


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["available", "off_duty"]


@router.post("/peer/status")
async def set_status(request: Request, session: SessionDep, body: StatusIn) -> Response:
    """Go off duty, or available again (busy follows the calls)."""
    _require_same_site(request)
    principal = await _require(request, session)
    await roster.set_status(
        session,
        principal,
        service.own_peer_id(principal),
        body.status,
        request.app.state.clock(),
    )
    return JSONResponse(await _data(request, session, principal))


# --- notifications on this phone ------------------------------------------------------------


@router.get("/peer/push-key")
async def push_key(request: Request, session: SessionDep) -> Response:
    """The application server key a browser subscribes to Web Push with."""
    settings = request.app.state.settings
    vapid = await current_vapid(session, request.app.state.secret_box, settings.push_contact)
    return JSONResponse({"public_key": vapid.public_key})


@router.post("/peer/push-subscriptions", status_code=201)
async def add_push_subscription(
    request: Request, session: SessionDep, body: SubscriptionIn
) -> Response:
    """This phone gets a notification for each offer (nothing of the call is in it)."""
    _require_same_site(request)
    principal = await _require(request, session)
    subscription = await notify.subscribe(
        session,
        body.endpoint,
        body.keys.p256dh,
        body.keys.auth,
        request.app.state.settings.environment,
        now=request.app.state.clock(),
        peer_id=service.own_peer_id(principal),
    )
    await audit.record(session, principal, "push_subscription.create", "peer", subscription.id)
    return JSONResponse({"id": str(subscription.id)}, status_code=201)


# --- installable: manifest, service worker, files --------------------------------------------


@router.get("/peer/manifest.webmanifest")
async def manifest() -> Response:
    document = {
        "name": "corespond peer",
        "short_name": "corespond",
        "start_url": "/peer",
        "scope": "/peer",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1b5e20",
        "icons": [
            {"src": "/peer/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return JSONResponse(document, media_type="application/manifest+json")


@router.get("/peer/sw.js")
async def service_worker() -> Response:
    text = resources.files("corespond.peerapp").joinpath("static/sw.js").read_text()
    return Response(
        text,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/peer"},
    )


@router.get("/peer/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no such file: {name}")
    text = resources.files("corespond.peerapp").joinpath(f"static/{name}").read_text()
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


# --- after the call: whom the peer met, referrals, follow-ups --------------------------------

TREATMENT_KINDS = ("detox", "inpatient", "mat", "outpatient", "recovery_housing", "start", "va")


def _policies(request: Request) -> tuple[ConsentPolicy, FollowUpPolicy]:
    settings = request.app.state.settings
    return (
        ConsentPolicy(ZoneInfo(settings.program_timezone), settings.consent_max_days),
        FollowUpPolicy.of(settings),
    )


async def _person_card(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, now: datetime
) -> dict[str, Any] | None:
    """What the peer's page shows of a person their provider knows (the read is audited)."""
    try:
        read = await people.read_person(session, principal, person_id, now, how="peer app")
    except NotFound:
        return None
    consents = [views.consent_out(c, shares, now) for c, shares in read.consents]
    current = people.consent_in_force(read.consents, now)
    live = [c for c in consents if current is not None and c.id == current.id]
    return {
        "id": str(read.person.id),
        "name": read.person.name,
        "contact": read.person.contact,
        "consent": live[0].model_dump(mode="json") if live else None,
        "revoked": not live and any(c.state == "revoked" for c in consents),
    }


async def _after_the_call(
    request: Request, session: AsyncSession, principal: Principal, peer: Peer, now: datetime
) -> dict[str, Any]:
    """The peer's calls cleared in the last day with whom they met (or a way to record it),
    and their follow-ups (theirs and the team's) due in the next two weeks or overdue."""
    atlas = request.app.state.geography.atlas
    cleared = await service.cleared_recently(session, peer.id, now)
    contacts = await people.contacts_of_assignments(session, [a.id for a in cleared])
    shown = {
        c.id: v
        for c, v in zip(
            contacts.values(),
            await views.contact_outs(session, list(contacts.values()), now=now),
            strict=True,
        )
    }
    after = []
    for assignment in cleared:
        call = await assignments.call_of(session, assignment)
        county = atlas.by_fips.get(call.county_fips) if call.county_fips else None
        contact = contacts.get(assignment.id)
        item: dict[str, Any] = {
            "assignment_id": str(assignment.id),
            "incident_number": call.incident_number,
            "ended_at": assignment.ended_at.isoformat() if assignment.ended_at else None,
            "county": {"fips": county.fips, "name": county.name} if county else None,
            "contact": None,
        }
        if contact is not None:
            view = shown[contact.id]
            item["contact"] = {
                "id": str(contact.id),
                "identified": view.identified,
                "person": await _person_card(session, principal, contact.person_id, now)
                if contact.person_id
                else None,
                "referrals": [r.model_dump(mode="json") for r in view.referrals],
            }
        after.append(item)
    tasks = await followups.list_tasks(
        session,
        principal,
        state="open",
        due_before=now + timedelta(days=14),
        escalated=None,
        assignee=None,
        person_id=None,
        limit=50,
        now=now,
    )
    outs = await views.follow_up_outs(session, tasks, now)
    return {
        "after": after,
        "followups": [
            {**out.model_dump(mode="json"), "person_contact": person.contact}
            for out, (_, person) in zip(outs, tasks, strict=True)
        ],
        "kinds": [{"key": k, "label": directory.KIND_LABELS[k]} for k in KINDS],
    }


@router.get("/peer/after/{assignment_id}/consent-form")
async def consent_form(assignment_id: uuid.UUID, request: Request, session: SessionDep) -> Response:
    """What the consent screen offers for this call: the statement the person reads, the
    purposes, and whom they may name (the county's police agencies, treatment providers and
    Quick Response Teams in the directory)."""
    principal = await _require(request, session)
    assignment, _ = await people.met_assignment(session, principal, assignment_id)
    call = await assignments.call_of(session, assignment)
    now = request.app.state.clock()
    policy, _ = _policies(request)
    peer = await session.get(Peer, service.own_peer_id(principal))
    provider = await roster.get_provider(session, peer.provider_id) if peer else None
    county = call.county_fips
    agencies_here = sorted(
        {a.name for a in await agencies.list_agencies(session) if a.home_county_fips == county}
        | ({call.agency} if call.agency else set())
    )
    treatment: dict[str, str] = {}
    qrt: dict[str, str] = {}
    for kind in (*TREATMENT_KINDS, "qrt"):
        for _, organization in await directory.search(session, county=county, kind=kind):
            (qrt if kind == "qrt" else treatment)[organization.id] = organization.name
    today = now.astimezone(policy.zone).date()
    atlas = request.app.state.geography.atlas
    return JSONResponse(
        {
            "statement_version": CURRENT,
            "statement": statement(CURRENT, provider.name if provider else "your peer provider"),
            "purposes": [{"key": k, "label": v} for k, v in PURPOSE_LABELS.items()],
            "fields": [{"key": k, "label": v} for k, v in FIELD_LABELS.items()],
            "police": agencies_here,
            "treatment": [{"id": k, "name": v} for k, v in sorted(treatment.items(), key=_second)],
            "qrt": [{"id": k, "name": v} for k, v in sorted(qrt.items(), key=_second)],
            "county": {"fips": county, "name": atlas.by_fips[county].name}
            if county in atlas.by_fips
            else None,
            "expires_on": (today + timedelta(days=policy.max_days - 1)).isoformat(),
            "today": today.isoformat(),
        },
        headers={"Cache-Control": "no-store"},
    )


def _second(item: tuple[str, str]) -> str:
    return item[1]


@router.post("/peer/after/{assignment_id}/contact")
async def record_contact(
    assignment_id: uuid.UUID, request: Request, session: SessionDep, body: ContactIn
) -> Response:
    """Whom the peer met: with the person's consent, or de-identified. A possible match
    answers ``409 possible-match`` with the candidates, for the peer to choose."""
    _require_same_site(request)
    principal = await _require(request, session)
    consent_policy, followup_policy = _policies(request)
    await aftercall.record_contact(
        session,
        principal,
        assignment_id,
        views.contact_input(body),
        consent_policy=consent_policy,
        followup_policy=followup_policy,
        now=request.app.state.clock(),
        atlas=request.app.state.geography.atlas,
    )
    return JSONResponse(await _data(request, session, principal))


@router.get("/peer/directory")
async def directory_search(
    request: Request,
    session: SessionDep,
    county: Annotated[str | None, Query(max_length=40, pattern=r"^[^\x00]*$")] = None,
    kind: Kind | None = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
) -> Response:
    """Services to refer to, by county and kind."""
    await _require(request, session)
    atlas = request.app.state.geography.atlas
    fips = require_county(atlas, county, "query.county").fips if county and county.strip() else None
    found = await directory.search(
        session, county=fips, kind=kind, text=q.strip() if q and q.strip() else None, limit=30
    )
    return JSONResponse(
        {"items": [service_out(s, o, atlas).model_dump(mode="json") for s, o in found]},
        headers={"Cache-Control": "no-store"},
    )


@router.post("/peer/contacts/{contact_id}/referrals")
async def refer(
    contact_id: uuid.UUID, request: Request, session: SessionDep, body: ReferralIn
) -> Response:
    """Refer the person met to a service of the directory."""
    _require_same_site(request)
    principal = await _require(request, session)
    await people.add_referral(
        session, principal, contact_id, body.service_id, body.kind, request.app.state.clock()
    )
    return JSONResponse(await _data(request, session, principal))


@router.post("/peer/referrals/{referral_id}/arrival")
async def arrival(
    referral_id: uuid.UUID, request: Request, session: SessionDep, body: ArrivalIn
) -> Response:
    """Whether the person arrived (the warm hand-off confirmed)."""
    _require_same_site(request)
    principal = await _require(request, session)
    await people.record_arrival(
        session, principal, referral_id, body.arrived, request.app.state.clock()
    )
    return JSONResponse(await _data(request, session, principal))


@router.post("/peer/followups/{followup_id}/outcome")
async def follow_up_outcome(
    followup_id: uuid.UUID, request: Request, session: SessionDep, body: OutcomeIn
) -> Response:
    """What came of a follow-up."""
    _require_same_site(request)
    principal = await _require(request, session)
    await followups.record_outcome(
        session, principal, followup_id, body.outcome, request.app.state.clock()
    )
    return JSONResponse(await _data(request, session, principal))


@router.post("/peer/people/{person_id}/consent/revoke")
async def revoke(
    person_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    body: Annotated[RevokeIn | None, Body()] = None,
) -> Response:
    """The person takes their consent back, told to the peer: nothing more is shared."""
    _require_same_site(request)
    principal = await _require(request, session)
    await aftercall.revoke_consent(
        session, principal, person_id, request.app.state.clock(), body.reason if body else None
    )
    return JSONResponse(await _data(request, session, principal))
