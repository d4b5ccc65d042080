"""The SMS provider's delivery callbacks (``POST /v1/notify/sms-status``), and how a
supervisor is reached when a request in their scope goes unfilled, or a provider admin when
its follow-ups become overdue (``/v1/notify/me``)."""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.errors import Forbidden, InvalidPayload, NotFound
from corespond.errors import problem_responses as problems
from corespond.notify import repository, service
from corespond.notify.relay import SMS_STATUS_PATH, SmsProvider
from corespond.notify.service import sms_signature

router = APIRouter(tags=["notifications"])

STATUSES = {"queued", "sending", "sent", "delivered", "undelivered", "failed", "accepted"}


@router.post(
    SMS_STATUS_PATH,
    status_code=204,
    responses=problems(Forbidden, NotFound, InvalidPayload),
)
async def sms_status(request: Request, session: SessionDep) -> Response:
    """The SMS provider says what became of a text (form fields `MessageSid`,
    `MessageStatus`), signed with the account's token (`X-Twilio-Signature`: HMAC-SHA1 of
    `CORESPOND_PUBLIC_URL` + this path and the fields sorted by name). Kept on the
    notification as `delivery_status`."""
    sms = SmsProvider.of(request.app.state.settings)
    if sms is None:
        raise NotFound("SMS is not configured")
    form = await request.form()
    params = {name: value for name, value in form.items() if isinstance(value, str)}
    url = f"{sms.public_url}{SMS_STATUS_PATH}" if sms.public_url else str(request.url)
    expected = sms_signature(sms.token, url, params)
    given = request.headers.get("x-twilio-signature", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("the signature does not verify")
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    if not sid or status not in STATUSES:
        raise InvalidPayload("MessageSid and a known MessageStatus are required")
    row = await repository.by_provider_message(session, sid)
    if row is not None:
        row.delivery_status = status
    return Response(status_code=204)


class ContactIn(BaseModel):
    """How this key is told: a supervisor of an unfilled request in their scope, a provider
    admin of its follow-ups becoming overdue."""

    model_config = ConfigDict(extra="forbid")

    channels: list[Literal["webpush", "sms"]] = Field(
        max_length=2,
        description="In order; `webpush` reaches the browsers this key turned notices on in "
        "(the supervisor page, the provider's queue), `sms` the phone below.",
    )
    phone: str | None = Field(default=None, max_length=32, description="For `sms`.")


class ContactOut(BaseModel):
    channels: list[str]
    phone: str | None
    push_subscriptions: int = Field(description="Browsers of this key that get a push.")


async def _contact_out(session: SessionDep, principal: Authorized) -> ContactOut:
    contact = await repository.contact_of(session, principal.key_id)
    subscriptions = await repository.live_subscriptions(session, key_id=principal.key_id)
    return ContactOut(
        channels=contact.notify_channels if contact else ["webpush"],
        phone=contact.phone if contact else None,
        push_subscriptions=len(subscriptions),
    )


@router.get("/v1/notify/me", responses=problems())
async def my_contact(session: SessionDep, principal: Authorized) -> ContactOut:
    """How this key is notified: a supervisor when a request in its scope goes unfilled
    (an unscoped key: every request; a county-scoped key: its county's); a provider admin
    when its provider's follow-ups become overdue."""
    return await _contact_out(session, principal)


@router.put("/v1/notify/me", responses=problems(InvalidPayload))
async def set_my_contact(
    request: Request, session: SessionDep, principal: Authorized, body: ContactIn
) -> ContactOut:
    """Set the channels (and the phone for SMS) this key is notified on: a supervisor of an
    unfilled request (the notice says only which county had no peer, never anything of the
    call), a provider admin of overdue follow-ups (how many, never who)."""
    await service.set_contact(
        session, principal.key_id, body.phone, list(body.channels), request.app.state.clock()
    )
    await audit.record(session, principal, "supervisor_contact.set", "api_key", principal.key_id)
    return await _contact_out(session, principal)
