"""The peer app over HTTP: one-time sign-in links, the session, the page's data and buttons,
and what it refuses."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from corespond.audit.models import AuditEntry
from corespond.auth.models import ApiKey
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.notify.models import Notification, PushSubscription
from corespond.notify.relay import Notifier
from corespond.notify.service import Vapid
from corespond.peerapp.models import PeerSignIn
from corespond.roster.models import Peer
from tests import program
from tests.conftest import Source, make_key
from tests.pushservice import Subscriber, push_service, unb64
from tests.test_assignments import auth
from tests.test_cli import cli_env, invoke  # noqa: F401 - the CLI's fixture


async def _two_peers(db: Database, source: Source) -> tuple[str, str, str]:
    """Ana (nearest) and Ben on shift in Kanawha, and an eligible call there."""
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        ana = await program.peer(session, "Ana", home=program.SOUTH_CHARLESTON)
        ben = await program.peer(session, "Ben", home=program.ST_ALBANS)
        call = await program.call(session, source.id)
    return str(ana.id), str(ben.id), str(call.id)


async def _link(client: httpx.AsyncClient, key: str, peer_id: str) -> str:
    made = await client.post(f"/v1/peers/{peer_id}/sign-in-links", headers=auth(key))
    assert made.status_code == 201, made.text
    return parse_qs(urlsplit(made.json()["url"]).query)["token"][0]


async def _sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    response = await client.post("/peer/sign-in", data={"token": token})
    client.cookies.clear()  # each test says whose session it sends
    return response


def session_of(response: httpx.Response) -> dict[str, str]:
    return {"cookie": f"corespond_peer={response.cookies['corespond_peer']}"}


async def test_a_link_signs_a_peer_in_once(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, _, _ = await _two_peers(db, source)
    provider = await make_key(db, "provider_admin", "provider:wvsl")
    token = await _link(client, provider, ana)

    page = await client.get(f"/peer/sign-in?token={token}")
    assert page.status_code == 200
    assert 'name="token"' in page.text  # a button: opening the link changes nothing
    signed = await _sign_in(client, token)
    assert signed.status_code == 303
    cookie = signed.cookies.get("corespond_peer")
    assert cookie
    assert re.search(r"HttpOnly", signed.headers["set-cookie"], re.IGNORECASE)
    assert "samesite=strict" in signed.headers["set-cookie"].lower()
    assert "path=/peer" in signed.headers["set-cookie"].lower()

    data = await client.get("/peer/data", headers=session_of(signed))
    assert data.status_code == 200
    assert data.json()["peer"]["name"] == "Ana"

    again = await _sign_in(client, token)
    assert again.status_code == 409
    assert "has been used" in again.text


async def test_expired_unknown_and_foreign_links_are_refused(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, _, _ = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    token = await _link(client, admin, ana)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(PeerSignIn).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert "has expired" in (await _sign_in(client, token)).text
    assert "not known" in (await _sign_in(client, "psi_" + "x" * 40)).text
    assert "not a sign-in link" in (await _sign_in(client, "csk_abc")).text
    # Another provider's admin cannot make a link for this provider's peer.
    other = await make_key(db, "provider_admin", "provider:elsewhere")
    refused = await client.post(f"/v1/peers/{ana}/sign-in-links", headers=auth(other))
    assert refused.status_code in (403, 404)
    # A supervisor makes none (a link signs in as the peer, who reads the provider's
    # people), scoped to the peer's county or not; nor a dispatcher.
    for supervisor in (
        await make_key(db, "supervisor"),
        await make_key(db, "supervisor", "county:54039"),
    ):
        refused = await client.post(f"/v1/peers/{ana}/sign-in-links", headers=auth(supervisor))
        assert refused.status_code == 403, refused.text
        assert "token" not in refused.text
    dispatcher = await make_key(db, "dispatcher")
    refused = await client.post(f"/v1/peers/{ana}/sign-in-links", headers=auth(dispatcher))
    assert refused.status_code == 403
    # A post from another site is refused.
    cross = await client.post(
        "/peer/sign-in", data={"token": token}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403


async def test_the_page_answers_an_offer_and_refuses_what_is_not_its_own(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, ben, call = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    jar: dict[str, dict[str, str]] = {}
    for name, peer in (("ana", ana), ("ben", ben)):
        signed = await _sign_in(client, await _link(client, admin, peer))
        jar[name] = session_of(signed)
    dispatcher = await make_key(db, "dispatcher")
    offer = await client.post(
        f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher), json={"note": "side door"}
    )
    assert offer.status_code == 201, offer.text
    assignment = offer.json()["id"]
    assert offer.json()["peer"]["display_name"] == "Ana"

    seen = (await client.get("/peer/data", headers=jar["ana"])).json()
    [mine] = seen["assignments"]
    assert mine["status"] == "offered"
    assert mine["call"]["narrative"] is None  # the composed view only
    assert mine["call"]["for_peer"]["note"] == "side door"
    assert (await client.get("/peer/data", headers=jar["ben"])).json()["assignments"] == []

    # Ben's session cannot answer Ana's offer; no session at all is 401.
    stolen = await client.post(f"/peer/assignments/{assignment}/accept", headers=jar["ben"])
    assert stolen.status_code == 404
    anonymous = await client.post(f"/peer/assignments/{assignment}/accept")
    assert anonymous.status_code == 401

    accepted = await client.post(f"/peer/assignments/{assignment}/accept", headers=jar["ana"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["assignments"][0]["status"] == "accepted"
    twice = await client.post(f"/peer/assignments/{assignment}/accept", headers=jar["ana"])
    assert twice.status_code == 409  # a double tap: a clear answer, nothing changed
    staged = await client.post(f"/peer/assignments/{assignment}/en-route", headers=jar["ana"])
    assert staged.status_code == 409
    assert "scene secure" in staged.json()["detail"]
    unclear = await client.post(f"/peer/assignments/{assignment}/clear", headers=jar["ana"])
    assert unclear.status_code in (409, 422)


async def test_a_decline_with_a_reason_moves_the_offer_on(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, _, call = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    signed = await _sign_in(client, await _link(client, admin, ana))
    cookies = session_of(signed)
    dispatcher = await make_key(db, "dispatcher")
    offer = (await client.post(f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher))).json()
    declined = await client.post(
        f"/peer/assignments/{offer['id']}/decline",
        headers=cookies,
        json={"reason": "I know the person"},
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["assignments"][0]["status"] == "declined"
    history = await client.get(f"/v1/assignments/{offer['id']}", headers=auth(admin))
    assert "I know the person" in [c["reason"] for c in history.json()["history"]]
    nxt = await client.get(f"/v1/assignments?call={call}&status=offered", headers=auth(admin))
    assert [a["peer"]["display_name"] for a in nxt.json()["items"]] == ["Ben"]


async def test_going_off_duty_and_signing_out(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, _, _ = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    signed = await _sign_in(client, await _link(client, admin, ana))
    cookies = session_of(signed)
    off = await client.post("/peer/status", headers=cookies, json={"status": "off_duty"})
    assert off.status_code == 200
    assert off.json()["peer"]["status"] == "off_duty"
    busy = await client.post("/peer/status", headers=cookies, json={"status": "busy"})
    assert busy.status_code == 422
    out = await client.post("/peer/sign-out", headers=cookies)
    assert out.status_code == 303
    assert (await client.get("/peer/data", headers=cookies)).status_code == 401


async def test_the_app_installs_and_loads_nothing_from_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    manifest = await client.get("/peer/manifest.webmanifest")
    assert manifest.json()["start_url"] == "/peer"
    assert manifest.json()["display"] == "standalone"
    assert (await client.get("/peer/sw.js")).status_code == 200
    assert (await client.get("/peer/static/icon.svg")).status_code == 200
    page = await client.get("/peer")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"https?://", page.text)
    assert (await client.get(f"/peer/static/{uuid.uuid4()}")).status_code == 404


async def test_the_cli_prints_a_sign_in_link(cli_env: Database) -> None:  # noqa: F811
    async with cli_env.sessionmaker() as session, session.begin():
        await program.provider(session)
        peer = await program.peer(session, "Ana")
    code, output = await invoke(
        "peers", "sign-in-link", str(peer.id), "--base-url", "https://x.org"
    )
    assert code == 0, output
    assert re.search(r"https://x\.org/peer/sign-in\?token=psi_\S+", output)
    assert "for Ana; works once" in output
    code, output = await invoke("peers", "sign-in-link", "not-a-peer")
    assert code == 2


async def test_an_offer_reaches_the_peers_phone_by_web_push(
    client: httpx.AsyncClient, app: FastAPI, db: Database, source: Source, box: SecretBox
) -> None:
    """End to end: the phone subscribes; an offer queues a push in its own transaction; the
    notifier (a fresh one: as after a crash) signs it with VAPID and encrypts it; the push
    service verifies the JWT, decrypts the payload, and it says nothing of the call."""
    ana, _, call = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    phone = session_of(await _sign_in(client, await _link(client, admin, ana)))
    key = (await client.get("/peer/push-key")).json()["public_key"]
    assert len(unb64(key)) == 65
    async with push_service() as pushes:
        subscribed = await client.post(
            "/peer/push-subscriptions", headers=phone, json=pushes.subscribe("ana-phone")
        )
        assert subscribed.status_code == 201, subscribed.text
        dispatcher = await make_key(db, "dispatcher")
        offer = await client.post(f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher))
        assert offer.status_code == 201
        async with httpx.AsyncClient() as http:
            notifier = Notifier(
                db, http, Vapid.of(box, "mailto:ops@example.org"), environment="test"
            )
            assert await notifier.drain() == 1
            assert await notifier.drain() == 0  # sent once
    assert pushes.refused == []
    [push] = pushes.received
    assert push.payload["title"] == "New call offer"
    assert push.payload["body"] == "Answer within 2 minutes"
    assert push.payload["url"] == "/peer"
    assert "HEROIN" not in json.dumps(push.payload).upper()
    assert push.headers["urgency"] == "high"
    assert 0 < int(push.headers["ttl"]) <= 120


PUSHES = select(Notification).where(Notification.channel == "webpush")


async def test_a_gone_subscription_ends_and_a_busy_push_service_is_retried(
    client: httpx.AsyncClient, db: Database, source: Source, box: SecretBox
) -> None:
    ana, _, call = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    phone = session_of(await _sign_in(client, await _link(client, admin, ana)))
    async with push_service() as pushes:
        await client.post(
            "/peer/push-subscriptions", headers=phone, json=pushes.subscribe("ana-phone")
        )
        dispatcher = await make_key(db, "dispatcher")
        await client.post(f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher))
        async with httpx.AsyncClient() as http:
            notifier = Notifier(db, http, Vapid.of(box, "mailto:o@example.org"), environment="test")
            pushes.answer = 503
            await notifier.drain()
            async with db.sessionmaker() as session:
                [row] = (await session.scalars(PUSHES)).all()
            assert (row.state, row.attempts, row.last_status_code) == ("pending", 1, 503)
            assert row.next_attempt_at > row.last_attempt_at  # backoff
            async with db.sessionmaker() as session, session.begin():
                await session.execute(
                    update(Notification)
                    .where(Notification.id == row.id)
                    .values(next_attempt_at=row.created_at)
                )
            pushes.answer = 410
            await notifier.drain()
            async with db.sessionmaker() as session:
                [row] = (await session.scalars(PUSHES)).all()
                subscription = await session.get(PushSubscription, row.subscription_id)
            assert (row.state, row.attempts, row.last_status_code) == ("dead", 2, 410)
            assert subscription is not None
            assert subscription.ended_at is not None


async def test_a_push_subscription_must_be_a_real_one(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, _, _ = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    phone = session_of(await _sign_in(client, await _link(client, admin, ana)))
    good = Subscriber().keys()
    for body, why in (
        ({"endpoint": "ftp://x", "keys": good}, "https"),
        ({"endpoint": "https://push.example/x", "keys": {**good, "p256dh": "AAAA"}}, "65 bytes"),
        ({"endpoint": "https://push.example/x", "keys": {**good, "auth": "!!"}}, "auth"),
        (
            {"endpoint": "https://push.example/x", "keys": {**good, "p256dh": "B" + "A" * 86}},
            "not a point",
        ),
    ):
        refused = await client.post("/peer/push-subscriptions", headers=phone, json=body)
        assert refused.status_code == 422, refused.text
        assert why in refused.text
    anonymous = await client.post(
        "/peer/push-subscriptions", json={"endpoint": "https://push.example/x", "keys": good}
    )
    assert anonymous.status_code == 401


async def test_a_push_that_breaks_costs_only_its_own_row(
    client: httpx.AsyncClient,
    db: Database,
    source: Source,
    box: SecretBox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscription whose key is not a curve point (stored before the check, say) fails
    its own notification, and the next one is sent."""
    from corespond.notify import relay

    monkeypatch.setattr(relay, "SEND_SECONDS", 0.5)
    ana, ben, call = await _two_peers(db, source)
    async with push_service() as pushes:
        good = pushes.subscribe("ben-phone")
        async with db.sessionmaker() as session, session.begin():
            broken = PushSubscription(
                peer_id=uuid.UUID(ana),
                endpoint=f"{pushes.url}/slow/ana",
                p256dh="B" + "A" * 86,
                auth=good["keys"]["auth"],
            )
            session.add(broken)
            session.add(
                PushSubscription(
                    peer_id=uuid.UUID(ben),
                    endpoint=good["endpoint"],
                    p256dh=good["keys"]["p256dh"],
                    auth=good["keys"]["auth"],
                )
            )
        dispatcher = await make_key(db, "dispatcher")
        offer = await client.post(f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher))
        admin = await make_key(db, "admin")
        cancelled = await client.post(
            f"/v1/assignments/{offer.json()['id']}/cancel",
            headers=auth(admin),
            json={"reason": "test: free the call"},
        )
        assert cancelled.status_code == 200, cancelled.text
        async with db.sessionmaker() as session, session.begin():
            other = await program.call(session, source.id, incident_number="26-9")
        async with db.sessionmaker() as session, session.begin():
            await session.execute(
                update(Peer).where(Peer.id == uuid.UUID(ana)).values(status="off_duty")
            )
        await client.post(f"/v1/calls/{other.id}/peer-requests", headers=auth(dispatcher))
        async with httpx.AsyncClient() as http:
            notifier = Notifier(db, http, Vapid.of(box, "mailto:o@example.org"), environment="test")
            await notifier.drain()
    async with db.sessionmaker() as session:
        rows = {
            r.peer_id: r
            for r in (await session.scalars(select(Notification).where(PUSHES_ONLY))).all()
        }
    assert rows[uuid.UUID(ana)].state in ("pending", "dead")
    assert "while sending" in (rows[uuid.UUID(ana)].last_error or "")
    assert rows[uuid.UUID(ben)].state == "sent"
    assert [r.path for r in pushes.received] == ["ben-phone"]


PUSHES_ONLY = Notification.channel == "webpush"


async def test_sign_in_and_out_are_audited_and_sign_out_ends_the_key(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    ana, _, _ = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    token = await _link(client, admin, ana)
    signed = await _sign_in(client, token)
    again = await _sign_in(client, token)
    assert again.status_code == 409
    await client.post("/peer/sign-out", headers=session_of(signed))
    async with db.sessionmaker() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action.like("peer.sign%")))
        ).all()
        keys = (await session.scalars(select(ApiKey).where(ApiKey.name == "peer app: Ana"))).all()
    assert [e.action for e in entries] == [
        "peer.sign_in_link",
        "peer.sign_in",
        "peer.sign_in_refused",
        "peer.sign_out",
    ]
    [key] = keys
    assert key.revoked_at is not None
    assert entries[1].detail["key_id"] == str(key.id)
    # The session says who made the link it came from.
    assert entries[1].detail["link_by"] == f"{entries[0].actor} (admin)"


async def test_a_push_service_that_never_answers_does_not_hold_the_queue(
    client: httpx.AsyncClient,
    db: Database,
    source: Source,
    box: SecretBox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from corespond.notify import relay

    monkeypatch.setattr(relay, "SEND_SECONDS", 0.5)

    done = asyncio.Event()
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await done.wait()  # accepts, reads nothing, answers nothing until the test ends

    hanging = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = hanging.sockets[0].getsockname()[1]
    ana, _, call = await _two_peers(db, source)
    admin = await make_key(db, "admin")
    phone = session_of(await _sign_in(client, await _link(client, admin, ana)))
    try:
        async with push_service() as pushes:
            stuck = {**pushes.subscribe("other"), "endpoint": f"http://127.0.0.1:{port}/x"}
            for body in (stuck, pushes.subscribe("ana-phone")):
                made = await client.post("/peer/push-subscriptions", headers=phone, json=body)
                assert made.status_code == 201, made.text
            dispatcher = await make_key(db, "dispatcher")
            await client.post(f"/v1/calls/{call}/peer-requests", headers=auth(dispatcher))
            async with httpx.AsyncClient() as http:
                notifier = Notifier(
                    db, http, Vapid.of(box, "mailto:o@example.org"), environment="test"
                )
                started = asyncio.get_running_loop().time()
                await notifier.drain()
                assert asyncio.get_running_loop().time() - started < 5
    finally:
        done.set()
        for writer in connections:
            writer.close()
        hanging.close()
        await hanging.wait_closed()
    assert [r.path for r in pushes.received] == ["ana-phone"]
    async with db.sessionmaker() as session:
        errors = [
            r.last_error
            for r in (await session.scalars(select(Notification).where(PUSHES_ONLY))).all()
        ]
    assert any(e and "no answer within 0.5 s" in e for e in errors)
