"""Overdue follow-ups reach the provider's admin: escalated on the queue, and pushed to the
admins who turned notices on (Web Push, checked and decrypted by a push service on
127.0.0.1; SMS at a provider of Twilio's shape on 127.0.0.1), saying how many and never
who; another provider's admin and a revoked key are not told; the queue says when the admin
was told and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update

from corespond.app import create_app
from corespond.auth.models import ApiKey
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.followups.jobs import FollowUpJobs
from corespond.notify.models import Notification
from corespond.notify.relay import Notifier, SmsProvider
from corespond.notify.service import Vapid
from tests import program
from tests.aftercall import auth, met, record_person
from tests.conftest import Source, make_key
from tests.pushservice import push_service
from tests.test_sms import _sms_settings, fake_sms

SITE = {"origin": "http://t", "sec-fetch-site": "same-origin"}
KEYS = {"p256dh": "B" * 87, "auth": "A" * 22}


async def _page(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    signed = await client.post("/provider/login", data={"key": key}, headers=SITE)
    assert signed.status_code == 303, signed.text
    cookie = signed.cookies["corespond_provider"]
    client.cookies.clear()
    return {**SITE, "cookie": f"corespond_provider={cookie}"}


async def test_overdue_follow_ups_are_pushed_to_the_providers_admins_who_asked(
    settings: Settings, db: Database, source: Source, box: SecretBox
) -> None:
    async with fake_sms() as sms, push_service() as pushes:
        configured = _sms_settings(settings, sms.url)
        app = create_app(configured, database=db)
        async with LifespanManager(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            m = await met(client, db, source)
            recorded = await record_person(client, m.assignment, m.ana)
            assert recorded.status_code == 201, recorded.text

            # The admin on the queue page: this browser, and SMS.
            admin = await make_key(db, "provider_admin", "provider:wvsl")
            page = await _page(client, admin)
            before = (await client.get("/provider/data", headers=page)).json()
            assert before["notices"] == {"push_subscriptions": 0, "sms": False, "told": []}
            subscribed = await client.post(
                "/provider/push-subscriptions", headers=page, json=pushes.subscribe("admin")
            )
            assert subscribed.status_code == 201, subscribed.text
            saved = await client.post(
                "/provider/contact",
                headers=page,
                json={"channels": ["webpush", "sms"], "phone": "304-555-0177"},
            )
            assert saved.status_code == 200, saved.text
            # A second admin, by SMS through the API.
            second = await make_key(db, "provider_admin", "provider:wvsl")
            mine = await client.put(
                "/v1/notify/me",
                headers=auth(second),
                json={"channels": ["sms"], "phone": "+1 304 555 0188"},
            )
            assert mine.status_code == 200, mine.text
            # Another provider's admin, an admin with no notices on, a revoked key: not told.
            other = await make_key(db, "provider_admin", "provider:rp")
            await client.put(
                "/v1/notify/me",
                headers=auth(other),
                json={"channels": ["sms"], "phone": "+1 304 555 0199"},
            )
            await make_key(db, "provider_admin", "provider:wvsl")
            gone = await make_key(db, "provider_admin", "provider:wvsl")
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

            # Two days on, the next-day follow-up is overdue: escalated, and the admins told.
            later = datetime.now(UTC) + timedelta(days=2, hours=1)
            jobs = FollowUpJobs(db, lambda: later)
            assert await jobs.sweep() == 1
            assert await jobs.sweep() == 0  # once
            async with db.sessionmaker() as session:
                rows = (
                    await session.scalars(
                        select(Notification).where(Notification.key_id.is_not(None))
                    )
                ).all()
            assert sorted(r.channel for r in rows) == ["sms", "sms", "webpush"]

            async with httpx.AsyncClient() as http:
                notifier = Notifier(
                    db,
                    http,
                    Vapid.of(box, "mailto:o@example.org"),
                    environment="test",
                    clock=lambda: later,
                    sms=SmsProvider.of(configured),
                )
                await notifier.drain()  # (the peer's offers on the way, long over: dead)
            [push] = pushes.received
            assert push.payload["title"] == "Follow-ups overdue"
            assert push.payload["body"] == (
                "1 follow-up of WVSL Recovery is overdue and now yours to see to"
            )
            assert push.payload["url"] == "/provider"
            texts = sorted(sms.sent, key=lambda t: t["To"])
            assert [t["To"] for t in texts] == ["+13045550177", "+13045550188"]
            for text in texts:
                assert "Follow-ups overdue" in text["Body"]
                assert "https://corespond.example.org/provider" in text["Body"]
                assert "Jo" not in text["Body"]  # nobody named
                assert "304-555-7788" not in text["Body"]

            # The queue: the follow-up escalated first, and when and how the admin was told.
            shown = (await client.get("/provider/data", headers=page)).json()
            assert [t["step"] for t in shown["escalated"]] == ["1d"]
            notices = shown["notices"]
            assert (notices["push_subscriptions"], notices["sms"]) == (1, True)
            assert sorted((n["channel"], n["state"]) for n in notices["told"]) == [
                ("SMS", "sent"),
                ("push", "sent"),
            ]


async def test_the_queue_page_takes_notices_only_from_its_own_admin(
    settings: Settings, db: Database
) -> None:
    app = create_app(settings, database=db)
    async with LifespanManager(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        for path, body in (
            ("/provider/contact", {"channels": ["sms"], "phone": "304-555-0177"}),
            ("/provider/push-subscriptions", {"endpoint": "https://p.example/x", "keys": KEYS}),
        ):
            anonymous = await client.post(path, json=body, headers=SITE)
            assert anonymous.status_code == 401, anonymous.text
            assert anonymous.headers["content-type"] == "application/problem+json"
        admin = await make_key(db, "provider_admin", "provider:wvsl")
        async with db.sessionmaker() as session, session.begin():
            await program.provider(session)
        page = await _page(client, admin)
        other_site = {**page, "sec-fetch-site": "cross-site"}
        refused = await client.post(
            "/provider/contact", json={"channels": ["sms"], "phone": "304"}, headers=other_site
        )
        assert refused.status_code == 403
        for body, field in (
            ({"channels": ["sms"]}, "phone"),
            ({"channels": ["sms"], "phone": "12"}, "phone"),
            ({"channels": ["pager"]}, "channels"),
        ):
            bad = await client.post("/provider/contact", json=body, headers=page)
            assert bad.status_code == 422, (body, bad.text)
            assert field in bad.text
        worker = await client.get("/provider/sw.js")
        assert worker.headers["service-worker-allowed"] == "/provider"
        assert "Follow-ups overdue" in worker.text
