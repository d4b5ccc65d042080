"""A CAD integrator's self-service on /v1/cad/{source}: settings, secret rotation with a grace
period, a declared field mapping, test delivery, its calls by incident number, the resync
feed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from corespond.calls.models import Call
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.ingest.models import CadEvent as StoredEvent
from tests.conftest import Source, make_key, make_source
from tests.helpers import cad_event, encode, signed_headers
from tests.receiver import Receiver
from tests.test_ingest_api import assert_problem, fold

BASE = "/v1/cad/kanawha-911"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
async def integrator(db: Database, source: Source) -> dict[str, str]:
    return bearer(await make_key(db, "cad_integrator", f"source:{source.id}"))


async def post_signed(
    client: httpx.AsyncClient, secret: str, document: Any, url: str = BASE + "/events"
) -> httpx.Response:
    body = encode(document)
    return await client.post(url, content=body, headers=signed_headers(secret, body))


async def test_an_integrator_key_needs_a_source_scope(db: Database) -> None:
    from corespond.errors import InvalidPayload

    with pytest.raises(InvalidPayload, match="source scope"):
        await make_key(db, "cad_integrator")
    with pytest.raises(InvalidPayload, match="source scope"):
        await make_key(db, "supervisor", "source:kanawha-911")


async def test_an_integrator_reaches_its_own_source_only(
    client: httpx.AsyncClient, db: Database, box: SecretBox, source: Source
) -> None:
    await make_source(db, box, "logan-911")
    other = bearer(await make_key(db, "cad_integrator", "source:logan-911"))
    assert_problem(await client.get(BASE, headers=other), 403, "logan-911")
    assert_problem(await client.post(BASE + "/secrets", json={}, headers=other), 403)
    dispatcher = bearer(await make_key(db, "dispatcher"))
    assert_problem(await client.get(BASE, headers=dispatcher), 403)
    own = bearer(await make_key(db, "cad_integrator", "source:logan-911"))
    body = (await client.get("/v1/cad/logan-911", headers=own)).json()
    assert body["id"] == "logan-911"
    assert body["format"] == "native"
    assert "secret" not in str(body["secrets"]).lower().replace("secrets", "")


async def test_the_source_time_zone_reads_offsetless_times(
    client: httpx.AsyncClient, db: Database, source: Source, integrator: dict[str, str]
) -> None:
    changed = await client.patch(BASE, json={"timezone": "America/Chicago"}, headers=integrator)
    assert changed.status_code == 200, changed.text
    assert changed.json()["timezone"] == "America/Chicago"
    response = await post_signed(
        client, source.secret, cad_event(occurred_at="2026-11-23T04:12:09")
    )
    assert response.status_code == 202, response.text
    async with db.sessionmaker() as session:
        stored = await session.scalar(select(StoredEvent))
    assert stored is not None
    assert stored.occurred_at == datetime(2026, 11, 23, 10, 12, 9, tzinfo=UTC)
    bad = await client.patch(BASE, json={"timezone": "Mars/Olympus"}, headers=integrator)
    assert_problem(bad, 422, "Mars/Olympus")


async def test_a_rotated_secret_keeps_working_for_its_grace_period_then_only_the_new_one(
    client: httpx.AsyncClient, source: Source, integrator: dict[str, str]
) -> None:
    first = await client.post(BASE + "/secrets", json={"grace_hours": 1}, headers=integrator)
    assert first.status_code == 200, first.text
    new_secret = first.json()["secret"]
    assert new_secret.startswith("whsec_")
    until = datetime.fromisoformat(first.json()["old_secrets_valid_until"])
    assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    old = await post_signed(client, source.secret, cad_event(event_id="a"))
    new = await post_signed(client, new_secret, cad_event(event_id="b"))
    assert (old.status_code, new.status_code) == (202, 202)
    # A second rotation with no grace: only the newest secret verifies from now on.
    second = await client.post(BASE + "/secrets", json={"grace_hours": 0}, headers=integrator)
    newest = second.json()["secret"]
    assert_problem(await post_signed(client, source.secret, cad_event(event_id="c")), 401)
    assert_problem(await post_signed(client, new_secret, cad_event(event_id="d")), 401)
    assert (await post_signed(client, newest, cad_event(event_id="e"))).status_code == 202
    bad = await client.post(BASE + "/secrets", json={"grace_hours": -1}, headers=integrator)
    assert_problem(bad, 422, "grace_hours")


MAPPING: dict[str, Any] = {
    "version": 1,
    "fields": {
        "event_id": "msg.uuid",
        "event_type": "msg.kind",
        "occurred_at": "msg.sent",
        "call.incident_number": "inc.number",
        "call.call_type": "inc.nature.code",
        "call.call_type_description": "inc.nature.text",
        "call.priority": "inc.pri",
        "call.narrative": "inc.comments[].text",
        "call.location.lat": "inc.where.y",
        "call.location.lon": "inc.where.x",
    },
    "values": {"event_type": {"NEW": "call.created", "UPD": "call.updated"}},
    "constants": {"call.agency": "CHARLESTON PD"},
}


def invented_export(**changes: Any) -> dict[str, Any]:
    """An export of a CAD with a shape of its own."""
    export: dict[str, Any] = {
        "msg": {"uuid": "x-1", "kind": "NEW", "sent": "2026-11-23T04:12:09-05:00"},
        "inc": {
            "number": "26-555",
            "nature": {"code": "OD", "text": "OVERDOSE"},
            "pri": "2",
            "comments": [
                {"text": "SUBJ REVIVED WITH NARCAN, CONSCIOUS"},
                {"text": "NO WEAPONS SEEN"},
            ],
            "where": {"y": 38.3498, "x": -81.6326},
        },
    }
    export["inc"].update(changes)
    return export


async def test_a_declared_mapping_reads_an_invented_cad_shape(
    client: httpx.AsyncClient, db: Database, source: Source, integrator: dict[str, str]
) -> None:
    saved = await client.put(BASE + "/mapping", json=MAPPING, headers=integrator)
    assert saved.status_code == 200, saved.text
    assert saved.json()["format"] == "mapped"
    response = await post_signed(client, source.secret, invented_export())
    assert response.status_code == 202, response.text
    await fold(db)
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call).where(Call.incident_number == "26-555"))
    assert call is not None
    assert (call.agency, call.call_type, call.priority) == ("CHARLESTON PD", "OD", 2)
    assert call.narrative == "SUBJ REVIVED WITH NARCAN, CONSCIOUS\nNO WEAPONS SEEN"
    assert call.county_fips == "54039"
    # A bad value is named with the CAD's own field it came from.
    bad = await post_signed(client, source.secret, invented_export(pri="high"))
    assert_problem(bad, 422, "call.priority (from inc.pri)")


async def test_a_mapping_is_checked_when_saved_and_nothing_changes_if_it_is_wrong(
    client: httpx.AsyncClient, integrator: dict[str, str]
) -> None:
    wrong = {**MAPPING, "fields": {**MAPPING["fields"], "call.colour": "inc.colour"}}
    assert_problem(
        await client.put(BASE + "/mapping", json=wrong, headers=integrator), 422, "colour"
    )
    broken = {**MAPPING, "fields": {**MAPPING["fields"], "call.priority": "inc.[pri"}}
    assert_problem(
        await client.put(BASE + "/mapping", json=broken, headers=integrator), 422, "JMESPath"
    )
    missing = {**MAPPING, "fields": {"event_id": "msg.uuid"}}
    assert_problem(
        await client.put(BASE + "/mapping", json=missing, headers=integrator),
        422,
        "call.incident_number",
    )
    assert (await client.get(BASE, headers=integrator)).json()["format"] == "native"


async def test_the_mapping_preview_shows_the_call_and_triage_and_stores_nothing(
    client: httpx.AsyncClient, db: Database, integrator: dict[str, str]
) -> None:
    preview = await client.post(
        BASE + "/mapping/preview",
        json={"mapping": MAPPING, "document": invented_export()},
        headers=integrator,
    )
    assert preview.status_code == 200, preview.text
    result = preview.json()
    assert result["valid"] is True
    assert result["event"]["call"]["incident_number"] == "26-555"
    assert result["validation"]["triage"]["decision"] == "eligible"
    broken = await client.post(
        BASE + "/mapping/preview",
        json={"mapping": MAPPING, "document": invented_export(number=None)},
        headers=integrator,
    )
    assert broken.json()["valid"] is False
    assert any("call.incident_number" in p for p in broken.json()["problems"])
    async with db.sessionmaker() as session:
        assert await session.scalar(select(Call.id)) is None


async def test_a_test_delivery_reaches_the_callback_signed(
    client: httpx.AsyncClient, source: Source, integrator: dict[str, str]
) -> None:
    assert_problem(await client.post(BASE + "/test-delivery", headers=integrator), 422)
    receiver = await Receiver(source.secret).start()
    try:
        set_url = await client.patch(BASE, json={"callback_url": receiver.url}, headers=integrator)
        assert set_url.status_code == 200, set_url.text
        answer = await client.post(BASE + "/test-delivery", headers=integrator)
    finally:
        await receiver.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["delivered"] is True
    assert answer.json()["status_code"] == 204
    assert receiver.delivered()[0].event["type"] == "test"


async def test_calls_by_incident_number_are_the_sources_own(
    client: httpx.AsyncClient, db: Database, source: Source, integrator: dict[str, str]
) -> None:
    await post_signed(client, source.secret, cad_event())
    await fold(db)
    found = await client.get(
        BASE + "/calls", params={"incident_number": "26-118734"}, headers=integrator
    )
    assert found.status_code == 200, found.text
    [call] = found.json()["items"]
    assert call["decision"] == "eligible"
    none = await client.get(
        BASE + "/calls", params={"incident_number": "26-000000"}, headers=integrator
    )
    assert none.json()["items"] == []


async def _message(db: Database, source_id: str, seq: int, call_id: uuid.UUID) -> uuid.UUID:
    async with db.sessionmaker() as session, session.begin():
        message = OutboxMessage(
            source_id=source_id,
            call_id=call_id,
            seq=seq,
            event_type="assignment.offered",
            payload={"type": "assignment.offered", "data": {"sequence": seq}},
        )
        session.add(message)
    return message.id


async def _call(db: Database, source_id: str, number: str) -> uuid.UUID:
    async with db.sessionmaker() as session, session.begin():
        call = Call(source_id=source_id, incident_number=number)
        session.add(call)
    return call.id


async def test_the_resync_feed_returns_exactly_the_changes_after_a_cursor_in_order(
    committed_db: Database, box: SecretBox, settings: Any
) -> None:
    from asgi_lifespan import LifespanManager

    from corespond.app import create_app

    source = await make_source(committed_db, box)
    key = bearer(await make_key(committed_db, "cad_integrator", f"source:{source.id}"))
    first_call = await _call(committed_db, source.id, "26-1")
    second_call = await _call(committed_db, source.id, "26-2")
    ids = [
        await _message(committed_db, source.id, 1, first_call),
        await _message(committed_db, source.id, 1, second_call),
        await _message(committed_db, source.id, 2, first_call),
    ]

    async def read(since: str, limit: int = 100) -> dict[str, Any]:
        application = create_app(settings, database=committed_db)
        async with LifespanManager(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get(
                    BASE + "/changes", params={"since": since, "limit": limit}, headers=key
                )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    page = await read("0", limit=2)
    assert [item["webhook_id"] for item in page["items"]] == [str(i) for i in ids[:2]]
    assert page["has_more"] is True
    # A new process (a restart) goes on from the cursor: exactly what came after it.
    rest = await read(page["next_cursor"])
    assert [item["webhook_id"] for item in rest["items"]] == [str(ids[2])]
    assert rest["has_more"] is False

    # A change written while another transaction is still open, and committed after a read,
    # is still found after that read's cursor: positions are given in commit order.
    async with committed_db.sessionmaker() as late, late.begin():
        late.add(
            OutboxMessage(
                source_id=source.id,
                call_id=second_call,
                seq=2,
                event_type="assignment.accepted",
                payload={"type": "assignment.accepted"},
            )
        )
        await late.flush()
        newer = await _message(committed_db, source.id, 3, first_call)
        between = await read(rest["next_cursor"])
        assert [item["webhook_id"] for item in between["items"]] == [str(newer)]
    after = await read(between["next_cursor"])
    assert [item["type"] for item in after["items"]] == ["assignment.accepted"]
    assert (await read(after["next_cursor"]))["items"] == []
    assert_problem_status = await read_bad(committed_db, settings, key)
    assert assert_problem_status == 422


async def read_bad(database: Database, settings: Any, key: dict[str, str]) -> int:
    from asgi_lifespan import LifespanManager

    from corespond.app import create_app

    application = create_app(settings, database=database)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(BASE + "/changes", params={"since": "-1"}, headers=key)
    return response.status_code


async def test_bad_settings_and_mappings_are_answered_4xx_never_500(
    client: httpx.AsyncClient, source: Source, integrator: dict[str, str]
) -> None:
    # "America" is a folder of the zone database, not a zone.
    assert_problem(await client.patch(BASE, json={"timezone": "America"}, headers=integrator), 422)
    assert_problem(await client.patch(BASE, json={"format": "xml"}, headers=integrator), 422)
    assert_problem(await client.patch(BASE, json={"colour": "red"}, headers=integrator), 422)
    assert_problem(
        await client.post(BASE + "/secrets", json={"grace_hours": 10_000}, headers=integrator),
        422,
    )
    # An expression that compiles but cannot run on this document (abs of a string).
    failing = {**MAPPING, "fields": {**MAPPING["fields"], "call.priority": "abs(inc.pri)"}}
    assert (
        await client.put(BASE + "/mapping", json=failing, headers=integrator)
    ).status_code == 200
    preview = await client.post(
        BASE + "/mapping/preview", json={"document": invented_export()}, headers=integrator
    )
    assert preview.status_code == 200
    assert preview.json()["valid"] is False
    assert "call.priority" in preview.json()["problems"][0]
    sent = await post_signed(client, source.secret, invented_export())
    assert_problem(sent, 422, "call.priority (from abs(inc.pri))")
    assert_problem(
        await client.get(BASE + "/changes", params={"since": "9" * 19}, headers=integrator), 422
    )


async def test_the_feed_never_waits_for_a_message_being_sent_and_keeps_each_calls_order(
    committed_db: Database, box: SecretBox, settings: Any
) -> None:
    """A relay holds a message's row while it sends it: reading the feed meanwhile answers
    at once, without that message and without the later ones of its call."""
    source = await make_source(committed_db, box)
    key = bearer(await make_key(committed_db, "cad_integrator", f"source:{source.id}"))
    busy_call = await _call(committed_db, source.id, "26-8")
    other_call = await _call(committed_db, source.id, "26-9")
    sending = await _message(committed_db, source.id, 1, busy_call)
    later = await _message(committed_db, source.id, 2, busy_call)
    other = await _message(committed_db, source.id, 1, other_call)

    from asgi_lifespan import LifespanManager

    from corespond.app import create_app

    async def read(since: str) -> list[str]:
        application = create_app(settings, database=committed_db)
        async with LifespanManager(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await asyncio.wait_for(
                    client.get(BASE + "/changes", params={"since": since}, headers=key), 10
                )
        assert response.status_code == 200, response.text
        return [item["webhook_id"] for item in response.json()["items"]]

    async with committed_db.sessionmaker() as relay, relay.begin():
        await relay.execute(
            select(OutboxMessage).where(OutboxMessage.id == sending).with_for_update()
        )
        assert await read("0") == [str(other)]
    assert await read("0") == [str(other), str(sending), str(later)]


async def test_a_disabled_sources_integrator_key_reaches_only_its_settings(
    client: httpx.AsyncClient, db: Database, source: Source, integrator: dict[str, str]
) -> None:
    from corespond.sources.service import set_disabled

    call_id = await _call(db, source.id, "26-500001")
    message_id = await _message(db, source.id, 1, call_id)
    async with db.sessionmaker() as session, session.begin():
        await set_disabled(session, source.id, True, datetime.now(UTC))
    settings = await client.get(BASE, headers=integrator)
    assert settings.status_code == 200
    assert settings.json()["disabled"] is True
    for method, url in [
        ("GET", BASE + "/calls"),
        ("GET", BASE + "/changes"),
        ("POST", BASE + "/secrets"),
        ("POST", BASE + "/test-delivery"),
        ("GET", "/v1/deliveries"),
        ("GET", f"/v1/deliveries/{message_id}"),
        ("POST", f"/v1/deliveries/{message_id}/redeliver"),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method == "POST" and "secrets" in url else {}
        answer = await client.request(method, url, headers=integrator, **kwargs)
        assert_problem(answer, 403, "disabled")
    async with db.sessionmaker() as session:
        message = await session.get(OutboxMessage, message_id)
        assert message is not None
        assert message.state == "pending"
    async with db.sessionmaker() as session, session.begin():
        await set_disabled(session, source.id, False, datetime.now(UTC))
    assert (await client.get(BASE + "/calls", headers=integrator)).status_code == 200


async def test_a_blank_incident_number_is_refused_not_read_as_no_filter(
    client: httpx.AsyncClient, db: Database, source: Source, integrator: dict[str, str]
) -> None:
    supervisor = bearer(await make_key(db, "supervisor"))
    for url, headers in [(BASE + "/calls", integrator), ("/v1/calls", supervisor)]:
        answer = await client.get(url, params={"incident_number": "   "}, headers=headers)
        assert_problem(answer, 422, "blank")
