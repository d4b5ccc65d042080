"""When nobody can take a call, the supervisors in scope are told: on the browsers they
turned notices on in (Web Push, checked and decrypted by a push service on 127.0.0.1) and by
SMS (a provider of Twilio's shape on 127.0.0.1), never anything of the call; a supervisor of
another county and a revoked key are not; the supervisor page shows what became of it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update

from corespond.app import create_app
from corespond.auth.models import ApiKey
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.notify.models import Notification
from corespond.notify.relay import Notifier, SmsProvider
from corespond.notify.service import Vapid
from tests import program
from tests.conftest import Source, make_key
from tests.pushservice import push_service
from tests.test_assignments import auth
from tests.test_sms import _sms_settings, fake_sms

SITE = {"origin": "http://t", "sec-fetch-site": "same-origin"}


async def _page_session(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    signed = await client.post("/supervisor/login", data={"key": key}, headers=SITE)
    assert signed.status_code == 303, signed.text
    cookie = signed.cookies["corespond_supervisor"]
    client.cookies.clear()
    return {**SITE, "cookie": f"corespond_supervisor={cookie}"}


async def test_an_unfilled_request_reaches_the_supervisors_in_scope_and_no_one_else(
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
                call = await program.call(session, source.id, incident_number="26-9")
            # On shift in the whole program: the page, push and SMS.
            whole = await make_key(db, "supervisor")
            page = await _page_session(client, whole)
            subscribed = await client.post(
                "/supervisor/push-subscriptions", headers=page, json=pushes.subscribe("sup")
            )
            assert subscribed.status_code == 201, subscribed.text
            saved = await client.post(
                "/supervisor/contact",
                headers=page,
                json={"channels": ["webpush", "sms"], "phone": "304-555-0177"},
            )
            assert saved.status_code == 200, saved.text
            # Kanawha's own supervisor, by SMS through the API.
            kanawha = await make_key(db, "supervisor", f"county:{program.KANAWHA}")
            mine = await client.put(
                "/v1/notify/me",
                headers=auth(kanawha),
                json={"channels": ["sms"], "phone": "+1 304 555 0188"},
            )
            assert mine.status_code == 200, mine.text
            assert mine.json() == {"channels": ["sms"], "phone": "+1 304 555 0188",
                                   "push_subscriptions": 0}  # fmt: skip
            # Another county's supervisor and a revoked key are not told.
            cabell = await make_key(db, "supervisor", f"county:{program.CABELL}")
            await client.put(
                "/v1/notify/me",
                headers=auth(cabell),
                json={"channels": ["sms"], "phone": "+1 304 555 0199"},
            )
            gone = await make_key(db, "supervisor")
            await client.put(
                "/v1/notify/me",
                headers=auth(gone),
                json={"channels": ["sms"], "phone": "+1 304 555 0111"},
            )
            async with db.sessionmaker() as session, session.begin():
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.prefix == gone.split("_")[1][:8])
                    .values(revoked_at=datetime.now(UTC))
                )

            dispatcher = await make_key(db, "dispatcher")
            asked = await client.post(
                f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher)
            )
            assert asked.status_code == 409, asked.text  # nobody on shift: unfilled

            async with db.sessionmaker() as session:
                rows = (await session.scalars(select(Notification))).all()
            assert sorted(r.channel for r in rows) == ["sms", "sms", "webpush"]
            assert all(r.key_id is not None and r.peer_id is None for r in rows)

            async with httpx.AsyncClient() as http:
                notifier = Notifier(
                    db,
                    http,
                    Vapid.of(box, "mailto:o@example.org"),
                    environment="test",
                    sms=SmsProvider.of(configured),
                )
                assert await notifier.drain() == 3
            [push] = pushes.received
            assert push.payload["title"] == "Request unfilled"
            assert push.payload["body"] == "No peer could be offered a call in Kanawha County"
            assert push.payload["url"] == "/supervisor"
            texts = sorted(sms.sent, key=lambda t: t["To"])
            assert [t["To"] for t in texts] == ["+13045550177", "+13045550188"]
            for text in texts:
                assert "Request unfilled" in text["Body"]
                assert "https://corespond.example.org/supervisor" in text["Body"]
                assert "26-9" not in text["Body"]  # nothing of the call

            shown = (await client.get("/supervisor/data", headers=page)).json()
            [unfilled] = shown["unfilled"]
            assert unfilled["supervisors_told"] == "SMS sent, SMS sent, push sent"


async def test_bad_contact_input_is_refused_and_changes_nothing(
    settings: Settings, db: Database
) -> None:
    app = create_app(settings, database=db)
    async with LifespanManager(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        supervisor = await make_key(db, "supervisor")
        for body, field in (
            ({"channels": ["sms"]}, "phone"),
            ({"channels": ["sms"], "phone": "12"}, "phone"),
            ({"channels": ["pager"]}, "channels"),
            ({"channels": ["sms", "sms"], "phone": "3045550100"}, "channels"),
            ({"channels": ["webpush"], "extra": 1}, "extra"),
        ):
            answer = await client.put("/v1/notify/me", headers=auth(supervisor), json=body)
            assert answer.status_code == 422, body
            assert answer.headers["content-type"] == "application/problem+json"
            assert field in answer.text
        unchanged = await client.get("/v1/notify/me", headers=auth(supervisor))
        assert unchanged.json() == {"channels": ["webpush"], "phone": None, "push_subscriptions": 0}
        dispatcher = await make_key(db, "dispatcher")
        refused = await client.put(
            "/v1/notify/me", headers=auth(dispatcher), json={"channels": ["webpush"]}
        )
        assert refused.status_code == 403
        # The page's own endpoints: a session from this site only.
        no_session = await client.post(
            "/supervisor/contact", headers=SITE, json={"channels": ["webpush"]}
        )
        assert no_session.status_code == 401
        page = await _page_session(client, supervisor)
        cross_site = await client.post(
            "/supervisor/contact",
            headers={**page, "origin": "https://elsewhere.example", "sec-fetch-site": "cross-site"},
            json={"channels": ["webpush"]},
        )
        assert cross_site.status_code == 403
        bad_push = await client.post(
            "/supervisor/push-subscriptions",
            headers=page,
            json={"endpoint": "http://127.0.0.1/x", "keys": {"p256dh": "x", "auth": "y"}},
        )
        assert bad_push.status_code == 422
        assert bad_push.headers["content-type"] == "application/problem+json"
        worker = await client.get("/supervisor/sw.js")
        assert worker.headers["service-worker-allowed"] == "/supervisor"
        assert "registration.scope" in worker.text  # the peer app's worker, its page by scope
