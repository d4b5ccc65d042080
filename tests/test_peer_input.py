"""Every field a phone, a dispatcher or an SMS provider sends to the peer app and its
notifications: a clear 4xx problem+json, never a 500, and nothing stored changed."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from corespond.app import create_app
from corespond.config import Settings
from corespond.db import Database
from corespond.notify.service import sms_signature
from tests import program
from tests.conftest import Source, make_key
from tests.test_assignments import auth
from tests.test_peer_app import _link, _sign_in, _two_peers, session_of

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_a_peer_request_note_is_bounded(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    _, _, call = await _two_peers(db, source)
    dispatcher = await make_key(db, "dispatcher")
    url = f"/v1/calls/{call}/peer-requests"
    for body in ({"note": "x" * 501}, {"note": 5}, {"note": "ok", "extra": 1}):
        _problem(await client.post(url, headers=auth(dispatcher), json=body), 422)
    _problem(
        await client.post(
            url,
            headers={**auth(dispatcher), "content-type": "application/json"},
            content=b"{not json",
        ),
        422,
    )
    listed = await client.get(f"/v1/assignments?call={call}", headers=auth(dispatcher))
    assert listed.json()["items"] == []  # nothing was requested


@pytest.mark.parametrize(
    ("action", "body", "status"),
    [
        ("accept", {"surprise": 1}, 422),
        ("decline", {"reason": "x" * 201}, 422),
        ("clear", {"outcome": "arrested"}, 422),
        ("clear", {"outcome": "referred", "referrals": ["jail"]}, 422),
        ("teleport", {}, 422),
    ],
)
async def test_the_page_buttons_refuse_what_they_cannot_read(
    client: httpx.AsyncClient,
    db: Database,
    source: Source,
    action: str,
    body: dict[str, object],
    status: int,
) -> None:
    ana, _, call = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    phone = session_of(await _sign_in(client, await _link(client, admin, ana)))
    offer = await client.post(f"/v1/calls/{call}/peer-requests", headers=auth(admin))
    url = f"/peer/assignments/{offer.json()['id']}/{action}"
    _problem(await client.post(url, headers=phone, json=body), status)
    seen = await client.get(f"/v1/assignments/{offer.json()['id']}", headers=auth(admin))
    assert seen.json()["status"] == "offered"
    for bad in (b"[", b"null", b'{"status": "retired"}'):
        response = await client.post(
            "/peer/status", headers={**phone, "content-type": "application/json"}, content=bad
        )
        _problem(response, 422)
    _problem(
        await client.post(
            "/peer/push-subscriptions",
            headers={**phone, "content-type": "application/json"},
            content=b'{"endpoint": 1}',
        ),
        422,
    )


async def test_a_sign_in_token_of_any_size_is_answered(client: httpx.AsyncClient) -> None:
    too_long = await client.post("/peer/sign-in", data={"token": "psi_" + "x" * 500})
    assert too_long.status_code == 422
    assert (await client.get("/peer/sign-in?token=" + "x" * 5000)).status_code == 200


async def test_sms_reports_without_configuration_or_fields(
    settings: Settings, client: httpx.AsyncClient, db: Database
) -> None:
    _problem(await client.post("/v1/notify/sms-status", data={"MessageSid": "SM1"}), 404)
    configured = settings.model_copy(
        update={
            "sms_url": "http://127.0.0.1:9",
            "sms_account_sid": "AC1",
            "sms_auth_token": SecretStr("t"),
            "sms_from": "+13045550000",
            "public_url": "https://corespond.example.org",
        }
    )
    app = create_app(configured, database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as sms_client:
        url = "https://corespond.example.org/v1/notify/sms-status"
        for form in ({"MessageSid": "SM1"}, {"MessageSid": "SM1", "MessageStatus": "eaten"}):
            signed = {"x-twilio-signature": sms_signature("t", url, form)}
            response = await sms_client.post("/v1/notify/sms-status", data=form, headers=signed)
            _problem(response, 422)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)  # the database still answers: nothing went wrong
