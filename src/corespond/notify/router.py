"""The SMS provider's delivery callbacks: ``POST /v1/notify/sms-status``."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from corespond.db import SessionDep
from corespond.errors import Forbidden, InvalidPayload, NotFound
from corespond.errors import problem_responses as problems
from corespond.notify import repository
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
