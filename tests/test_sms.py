"""SMS as the next channel: the text sent to a provider of Twilio's REST shape on 127.0.0.1,
escalation at half the deadline only while the offer is unanswered, and delivery callbacks
accepted only with the provider's signature."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.notify.models import Notification
from corespond.notify.relay import Notifier, SmsProvider
from corespond.notify.service import Vapid, e164, sms_signature
from tests import program
from tests.conftest import Source, make_key
from tests.pushservice import push_service
from tests.servers import served
from tests.test_assignments import auth

ACCOUNT, TOKEN = "AC123", "secret-token-of-the-account"


@dataclass
class FakeSms:
    url: str = ""
    sent: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def messages(self, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if (
            request.path_params["account"] != ACCOUNT
            or request.headers.get("authorization") != expected
        ):
            self.refused.append("auth")
            return JSONResponse({"message": "Authenticate"}, status_code=401)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        if not {"To", "From", "Body"} <= form.keys() or not form["To"].startswith("+"):
            self.refused.append("shape")
            return JSONResponse({"message": "bad request"}, status_code=400)
        self.sent.append(form)
        return JSONResponse(
            {"sid": f"SM{len(self.sent):032d}", "status": "queued"}, status_code=201
        )


@asynccontextmanager
async def fake_sms() -> AsyncIterator[FakeSms]:
    fake = FakeSms()
    app = Starlette(
        routes=[
            Route("/2010-04-01/Accounts/{account}/Messages.json", fake.messages, methods=["POST"])
        ]
    )
    async with served(app) as url:
        fake.url = url
        yield fake


def _sms_settings(settings: Settings, url: str) -> Settings:
    return settings.model_copy(
        update={
            "sms_url": url,
            "sms_account_sid": ACCOUNT,
            "sms_auth_token": SecretStr(TOKEN),
            "sms_from": "+13045550000",
            "public_url": "https://corespond.example.org",
        }
    )


def test_phone_numbers_for_sms() -> None:
    assert e164("304-555-0102") == "+13045550102"
    assert e164("+44 20 7946 0958") == "+442079460958"


async def test_an_unanswered_offer_escalates_to_sms_and_the_provider_reports_back(
    settings: Settings, db: Database, source: Source, box: SecretBox
) -> None:
    async with fake_sms() as sms, push_service() as pushes:
        configured = _sms_settings(settings, sms.url)
        app = create_app(configured, database=db)
        async with LifespanManager(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            async with db.sessionmaker() as session, session.begin():
                await program.provider(session)
                await program.agency(session)
                ana = await program.peer(session, "Ana", home=program.SOUTH_CHARLESTON)
                first = await program.call(session, source.id, incident_number="26-1")
                second = await program.call(session, source.id, incident_number="26-2")
            admin = await make_key(db, "admin")
            made = await client.post(f"/v1/peers/{ana.id}/sign-in-links", headers=auth(admin))
            assert made.json()["sent_to_phone"] is True  # the link goes to Ana's phone
            token = made.json()["url"].split("token=")[1]
            signed = await client.post("/peer/sign-in", data={"token": token})
            phone = {"cookie": f"corespond_peer={signed.cookies['corespond_peer']}"}
            client.cookies.clear()
            await client.post(
                "/peer/push-subscriptions", headers=phone, json=pushes.subscribe("ana")
            )
            dispatcher = await make_key(db, "dispatcher")
            offer = await client.post(
                f"/v1/calls/{first.id}/peer-requests", headers=auth(dispatcher)
            )
            assert offer.status_code == 201

            clock = [datetime.now(UTC)]
            async with httpx.AsyncClient() as http:
                notifier = Notifier(
                    db,
                    http,
                    Vapid.of(box, "mailto:o@example.org"),
                    environment="test",
                    clock=lambda: clock[0],
                    sms=SmsProvider.of(configured),
                )
                assert await notifier.drain() == 2  # the sign-in link by SMS; the push, at once
                assert len(pushes.received) == 1
                [link] = sms.sent  # the offer's SMS waits for half the deadline
                assert link["To"] == "+13045550100"
                assert f"https://corespond.example.org/peer/sign-in?token={token}" in link["Body"]
                clock[0] += timedelta(seconds=61)
                assert await notifier.drain() == 1
            [_, text] = sms.sent
            assert text["To"] == "+13045550100"
            assert text["From"] == "+13045550000"
            assert "New call offer" in text["Body"]
            assert "https://corespond.example.org/peer" in text["Body"]
            assert "1 Capitol" not in text["Body"]  # nothing of the call
            assert text["StatusCallback"] == "https://corespond.example.org/v1/notify/sms-status"

            # The provider's delivery report: only with its signature.
            report = {"MessageSid": "SM" + "2".rjust(32, "0"), "MessageStatus": "delivered"}
            url = "https://corespond.example.org/v1/notify/sms-status"
            forged = await client.post(
                "/v1/notify/sms-status", data=report, headers={"x-twilio-signature": "nope"}
            )
            assert forged.status_code == 403
            good = await client.post(
                "/v1/notify/sms-status",
                data=report,
                headers={"x-twilio-signature": sms_signature(TOKEN, url, report)},
            )
            assert good.status_code == 204
            async with db.sessionmaker() as session:
                row = await session.scalar(
                    select(Notification).where(
                        Notification.channel == "sms", Notification.assignment_id.is_not(None)
                    )
                )
            assert row is not None
            assert (row.state, row.delivery_status) == ("sent", "delivered")

            # An offer accepted before its halfway point sends no SMS.
            await client.post(
                f"/v1/assignments/{offer.json()['id']}/cancel", headers=auth(dispatcher)
            )
            again = await client.post(
                f"/v1/calls/{second.id}/peer-requests", headers=auth(dispatcher)
            )
            accepted = await client.post(
                f"/peer/assignments/{again.json()['id']}/accept", headers=phone
            )
            assert accepted.status_code == 200, accepted.text
            async with httpx.AsyncClient() as http:
                notifier = Notifier(
                    db,
                    http,
                    Vapid.of(box, "mailto:o@example.org"),
                    environment="test",
                    clock=lambda: datetime.now(UTC) + timedelta(seconds=61),
                    sms=SmsProvider.of(configured),
                )
                await notifier.drain()
            assert len(sms.sent) == 2  # the sign-in link and the first offer's, no more
            async with db.sessionmaker() as session:
                skipped = await session.scalar(
                    select(Notification).where(Notification.state == "skipped")
                )
            assert skipped is not None
            assert skipped.channel == "sms"
            await client.aclose()
    assert sms.refused == []


async def test_a_peer_chooses_the_channels_and_their_order(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        ana = await program.peer(session, "Ana")
    provider = await make_key(db, "provider_admin", "provider:wvsl")
    seen = await client.get(f"/v1/peers/{ana.id}", headers=auth(provider))
    assert seen.json()["notify_channels"] == ["webpush", "sms"]
    changed = await client.patch(
        f"/v1/peers/{ana.id}", headers=auth(provider), json={"notify_channels": ["sms"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["notify_channels"] == ["sms"]
    wrong = await client.patch(
        f"/v1/peers/{ana.id}", headers=auth(provider), json={"notify_channels": ["pager"]}
    )
    assert wrong.status_code == 422
