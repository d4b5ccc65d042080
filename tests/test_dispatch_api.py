"""The delivery log API, callback URLs, the dispatch sink, and an assignment reaching a CAD."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.dispatch.sink import sink_app
from corespond.errors import InvalidPayload
from corespond.sources.service import check_callback_url, generate_secret
from tests import program
from tests.conftest import Source, make_key, make_source
from tests.helpers import signed_headers
from tests.receiver import Receiver
from tests.test_assignments import auth
from tests.test_dispatch import messages, point_at
from tests.test_ingest_api import assert_problem


@pytest.mark.parametrize(
    ("url", "environment", "why"),
    [
        ("http://cad.example.org/hook", "production", "must use https"),
        ("https://user:pw@cad.example.org/hook", "production", "credentials"),
        ("https://127.0.0.1/hook", "production", "internal"),
        ("https://10.1.2.3/hook", "production", "internal"),
        ("https://[::1]/hook", "production", "internal"),
        ("https://169.254.169.254/latest", "production", "internal"),
        ("https://localhost/hook", "production", "internal"),
        ("https://cad.example.org/hook#x", "production", "fragment"),
        ("ftp://cad.example.org/", "development", "must use https or http"),
        ("https:///nohost", "development", "no host"),
        ("https://cad.example.org:99999/", "development", "not a valid URL"),
        ("https://2130706433/", "production", "internal"),
        ("https://0x7f000001/", "production", "internal"),
        ("https://127.1/", "production", "internal"),
        ("https://0177.0.0.1/", "production", "internal"),
        ("https://localhost./", "production", "internal"),
        ("https://[::ffff:127.0.0.1]/", "production", "internal"),
        ("https://[64:ff9b::a9fe:a9fe]/", "production", "internal"),
        ("https://[2002:7f00:1::]/", "production", "internal"),
    ],
)
def test_callback_urls_refused(url: str, environment: str, why: str) -> None:
    with pytest.raises(InvalidPayload, match=why):
        check_callback_url(url, environment)


@pytest.mark.parametrize(
    ("url", "environment"),
    [
        ("https://cad.example.org/corespond/events", "production"),
        ("https://8.8.8.8:8443/hook", "production"),  # a global address
        ("http://127.0.0.1:9100/", "development"),
        ("http://localhost:9100/", "test"),
    ],
)
def test_callback_urls_accepted(url: str, environment: str) -> None:
    assert check_callback_url(url, environment) == url


async def test_deliveries_api(client: httpx.AsyncClient, db: Database, source: Source) -> None:
    made = await messages(db, source, each=2)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == made[0].id)
            .values(state="dead", attempts=3, last_error="HTTP 410: refused, not retried")
        )
    supervisor = await make_key(db, "supervisor")
    page = await client.get("/v1/deliveries?status=dead", headers=auth(supervisor))
    assert page.status_code == 200
    [dead] = page.json()["items"]
    assert dead["id"] == str(made[0].id)
    assert dead["seq"] == 1
    assert dead["next_attempt_at"] is None

    detail = await client.get(f"/v1/deliveries/{dead['id']}", headers=auth(supervisor))
    assert detail.status_code == 200
    assert detail.json()["attempt_log"] == []

    # Message 2 of the call waits, never sent: 1 goes again, and 2 waits behind it.
    again = await client.post(f"/v1/deliveries/{dead['id']}/redeliver", headers=auth(supervisor))
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "pending"
    assert again.json()["attempts"] == 3

    by_call = await client.get(
        f"/v1/deliveries?call={made[0].call_id}&source={source.id}", headers=auth(supervisor)
    )
    assert [m["seq"] for m in by_call.json()["items"]] == [2, 1]

    sources = await client.get("/v1/deliveries/sources", headers=auth(supervisor))
    [row] = sources.json()
    assert row["source"] == source.id
    assert row["pending"] == 2
    assert row["alert"] is False


async def test_deliveries_api_refuses_cleanly(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    [message] = await messages(db, source)
    dispatcher = await make_key(db, "dispatcher")
    supervisor = await make_key(db, "supervisor")
    assert_problem(await client.get("/v1/deliveries"), 401)
    assert_problem(await client.get("/v1/deliveries", headers=auth(dispatcher)), 403)
    assert_problem(
        await client.post(f"/v1/deliveries/{message.id}/redeliver", headers=auth(dispatcher)), 403
    )
    assert_problem(
        await client.get(f"/v1/deliveries/{uuid.uuid4()}", headers=auth(supervisor)), 404
    )
    assert_problem(
        await client.post(f"/v1/deliveries/{uuid.uuid4()}/redeliver", headers=auth(supervisor)),
        404,
    )
    assert_problem(await client.get("/v1/deliveries/nope", headers=auth(supervisor)), 422)
    assert_problem(
        await client.get("/v1/deliveries?status=lost", headers=auth(supervisor)), 422, "status"
    )
    assert_problem(await client.get("/v1/deliveries?cursor=x", headers=auth(supervisor)), 400)
    assert_problem(await client.get("/v1/deliveries?source=A%20B", headers=auth(supervisor)), 422)


async def test_sink_verifies_and_shows_what_dispatch_sees() -> None:
    secret = generate_secret()
    lines: list[str] = []
    app = sink_app(secret, fail_first=1, say=lines.append)
    body = (
        '{"type":"assignment.accepted","timestamp":"2026-11-23T04:20:00+00:00","data":'
        '{"assignment":{"status":"accepted"},"call":{"source":"kanawha-911",'
        '"incident_number":"26-1"},"peer":{"display_name":"Jordan Miller",'
        '"provider":"WVSL","phone":"304-555-0101"}}}'
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sink") as client:
        headers = signed_headers(secret, body, message_id="msg_1")
        assert (await client.post("/", content=body, headers=headers)).status_code == 503
        assert (await client.post("/", content=body, headers=headers)).status_code == 204
        assert (await client.post("/", content=body, headers=headers)).status_code == 204
        forged = signed_headers(generate_secret(), body)
        assert (await client.post("/", content=body, headers=forged)).status_code == 401
    assert "503 on purpose" in lines[0]
    assert "assignment.accepted" in lines[1]
    assert "kanawha-911/26-1" in lines[1]
    assert "Jordan Miller (WVSL, 304-555-0101)" in lines[1]
    assert "repeat" in lines[2]
    assert lines[3].startswith("REJECTED")


async def test_an_assignment_reaches_the_cad_signed_and_in_order(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    """Through the running application: request a peer, accept; the relay in the app
    (woken by NOTIFY) delivers both events to the CAD's callback."""
    source = await make_source(committed_db, box)
    receiver = await Receiver(source.secret).start()
    # Sweeps far apart: only the NOTIFY sent with each change can wake the relay in time.
    quiet = {"worker_enabled": True, "relay_sweep_seconds": 3600, "worker_sweep_seconds": 3600}
    app = create_app(settings.model_copy(update=quiet), database=committed_db)
    try:
        await point_at(committed_db, source, receiver.url)
        async with committed_db.sessionmaker() as session, session.begin():
            await program.provider(session)
            peer = await program.peer(session, "Ana", home=program.CHARLESTON)
            call = await program.call(session, source.id)
        dispatcher = await make_key(committed_db, "dispatcher")
        peer_key = await make_key(committed_db, "peer", f"peer:{peer.id}")
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                offer = await client.post(
                    f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher)
                )
                assert offer.status_code == 201
                accepted = await client.post(
                    f"/v1/assignments/{offer.json()['id']}/accept", headers=auth(peer_key)
                )
                assert accepted.status_code == 200
                await wait_for(lambda: len(receiver.received) >= 2)
    finally:
        await receiver.stop()
    types = [r.event["type"] for r in receiver.received]
    assert types == ["assignment.offered", "assignment.accepted"]
    assert all(r.verified for r in receiver.received)
    data: dict[str, Any] = receiver.received[1].event["data"]
    assert data["peer"]["display_name"] == "Ana"
    assert data["call"] == {
        "id": str(call.id),
        "source": source.id,
        "incident_number": call.incident_number,
    }
    assert data["assignment"]["status"] == "accepted"
    assert [r.event["data"]["sequence"] for r in receiver.received] == [1, 2]


async def wait_for(condition: Any, seconds: float = 15) -> None:
    import asyncio

    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    while datetime.now(UTC) < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_redeliver_refuses_odd_input(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    [message] = await messages(db, source)
    supervisor = await make_key(db, "supervisor")
    assert_problem(
        await client.post(
            f"/v1/deliveries/{message.id}/redeliver?force=maybe", headers=auth(supervisor)
        ),
        422,
        "force",
    )
    async with db.sessionmaker() as session:
        stored = await session.get(OutboxMessage, message.id)
        assert stored is not None
        assert stored.state == "pending"


async def test_redelivery_is_refused_only_after_a_later_message_was_delivered(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    first, second = await messages(db, source, each=2)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == first.id).values(state="dead")
        )
    supervisor = await make_key(db, "supervisor")
    url = f"/v1/deliveries/{first.id}/redeliver"
    pending = await client.post(url, headers=auth(supervisor))
    assert pending.status_code == 200, pending.text  # message 2 was never sent

    delivered_at = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == first.id).values(state="dead")
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == second.id)
            .values(state="delivered", delivered_at=delivered_at)
        )
    refused = assert_problem(
        await client.post(url, headers=auth(supervisor)),
        409,
        "message 2 of this call was delivered at 2026-11-23 09:30:00 UTC",
        "force=true",
    )
    assert refused["later_delivery_id"] == str(second.id)
    forced = await client.post(f"{url}?force=true", headers=auth(supervisor))
    assert forced.status_code == 200, forced.text
    assert forced.json()["state"] == "pending"


async def test_redelivery_waits_for_a_later_message_being_delivered_right_now(
    committed_db: Database, box: SecretBox
) -> None:
    from sqlalchemy import select

    from corespond.auth.service import Principal
    from corespond.dispatch import service
    from corespond.errors import Conflict

    source = await make_source(committed_db, box)
    first, second = await messages(committed_db, source, each=2)
    async with committed_db.sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == first.id).values(state="dead")
        )
    supervisor = Principal(key_id=uuid.uuid4(), name="sup", role="supervisor", scope=None)
    # A relay holds message 2 for the length of its HTTP request.
    async with committed_db.sessionmaker() as relay, relay.begin():
        await relay.execute(
            select(OutboxMessage.id).where(OutboxMessage.id == second.id).with_for_update()
        )
        async with committed_db.sessionmaker() as session, session.begin():
            with pytest.raises(Conflict, match="later message of this call is being delivered"):
                await service.redeliver(session, supervisor, first.id, datetime.now(UTC))
    async with committed_db.sessionmaker() as session, session.begin():
        again = await service.redeliver(session, supervisor, first.id, datetime.now(UTC))
        assert again.state == "pending"
