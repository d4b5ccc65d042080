"""Every assignment endpoint: a precise 4xx problem for bad input, never a 500, nothing lost."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from corespond.assignments.models import Assignment
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from tests.conftest import Source, make_key
from tests.test_assignments import Program, auth, request
from tests.test_ingest_api import assert_problem


@pytest.fixture
async def offered(client: httpx.AsyncClient, db: Database, source: Source) -> dict[str, Any]:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    return {"program": p, "id": offer["id"], "url": f"/v1/assignments/{offer['id']}"}


async def unchanged(db: Database, assignment_id: str) -> None:
    """The offer still stands and dispatch was told nothing more."""
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, uuid.UUID(assignment_id))
        assert stored is not None
        assert stored.status == "offered"
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_keys_and_roles(
    client: httpx.AsyncClient, db: Database, offered: dict[str, Any]
) -> None:
    p, url = offered["program"], offered["url"]
    call_url = f"/v1/calls/{p.call.id}/peer-requests"
    auditor = await make_key(db, "auditor")
    provider_admin = await make_key(db, "provider_admin", "provider:wvsl")
    for method, path in [
        ("POST", call_url),
        ("GET", "/v1/assignments"),
        ("GET", url),
        ("POST", f"{url}/accept"),
        ("POST", f"{url}/cancel"),
        ("POST", f"{url}/scene-secure"),
    ]:
        assert_problem(await client.request(method, path), 401)
        assert_problem(await client.request(method, path, headers=auth("csk_nope")), 401)
        for key in (auditor, provider_admin):
            assert_problem(await client.request(method, path, headers=auth(key)), 403)
    # A peer key without its peer scope, or scoped to another kind, gets nothing.
    unscoped_peer = await make_key(db, "peer")
    assert_problem(await client.get(url, headers=auth(unscoped_peer)), 403, "peer scope")
    await unchanged(db, offered["id"])


async def test_unknown_and_malformed_ids(
    client: httpx.AsyncClient, offered: dict[str, Any]
) -> None:
    p = offered["program"]
    missing = uuid.uuid4()
    assert_problem(
        await client.post(f"/v1/calls/{missing}/peer-requests", headers=auth(p.dispatcher)), 404
    )
    assert_problem(await client.get(f"/v1/assignments/{missing}", headers=auth(p.dispatcher)), 404)
    assert_problem(
        await client.post(f"/v1/assignments/{missing}/accept", headers=auth(p.ana_key)), 404
    )
    assert_problem(
        await client.post("/v1/calls/not-a-uuid/peer-requests", headers=auth(p.dispatcher)),
        422,
        "call_id",
    )
    assert_problem(
        await client.post("/v1/assignments/42/cancel", headers=auth(p.dispatcher)),
        422,
        "assignment_id",
    )


async def test_agency_scoped_dispatcher_sees_only_its_calls(
    client: httpx.AsyncClient, db: Database, offered: dict[str, Any]
) -> None:
    p, url = offered["program"], offered["url"]
    elsewhere = await make_key(db, "dispatcher", "agency:BLUEFIELD PD")
    assert_problem(await client.get(url, headers=auth(elsewhere)), 404)
    assert_problem(await client.post(f"{url}/cancel", headers=auth(elsewhere)), 404)
    assert_problem(
        await client.post(f"/v1/calls/{p.call.id}/peer-requests", headers=auth(elsewhere)), 404
    )
    listed = await client.get("/v1/assignments", headers=auth(elsewhere))
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    await unchanged(db, offered["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "cured"}, "outcome"),
        ({}, "outcome"),
        ({"outcome": "referred"}, "referrals"),
        ({"outcome": "contact_made", "referrals": ["detox"]}, "referrals"),
        ({"outcome": "referred", "referrals": ["spa"]}, "referrals.0"),
        ({"outcome": "referred", "referrals": "detox"}, "referrals"),
        ({"outcome": "no_contact", "note": "free text"}, "note"),
        ([], "(body)"),
    ],
)
async def test_clear_bodies(
    client: httpx.AsyncClient,
    db: Database,
    offered: dict[str, Any],
    body: Any,
    field: str,
) -> None:
    p = offered["program"]
    response = await client.post(f"{offered['url']}/clear", headers=auth(p.ana_key), json=body)
    assert_problem(response, 422, field)
    await unchanged(db, offered["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"position": {"lat": 91, "lon": 0}}, "position.lat"),
        ({"position": {"lat": "38.3", "lon": -81.6}}, "position.lat"),
        ({"position": {"lat": 38.3}}, "position.lon"),
        ({"where": "here"}, "where"),
        ("yes", "(body)"),
    ],
)
async def test_position_bodies(
    client: httpx.AsyncClient, db: Database, offered: dict[str, Any], body: Any, field: str
) -> None:
    p = offered["program"]
    response = await client.post(f"{offered['url']}/accept", headers=auth(p.ana_key), json=body)
    assert_problem(response, 422, field)
    await unchanged(db, offered["id"])


async def test_broken_json_and_oversized_bodies(
    client: httpx.AsyncClient, db: Database, offered: dict[str, Any]
) -> None:
    p = offered["program"]
    headers = {**auth(p.ana_key), "content-type": "application/json"}
    assert_problem(
        await client.post(f"{offered['url']}/accept", headers=headers, content=b"{nope"),
        422,
        "(body)",
    )
    huge = json.dumps({"position": {"lat": 1, "lon": 1}, "x": "a" * 400_000}).encode()
    assert_problem(
        await client.post(f"{offered['url']}/accept", headers=headers, content=huge),
        413,
        "exceeds the limit",
    )

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    assert_problem(
        await client.post(f"{offered['url']}/accept", headers=headers, content=chunks()), 413
    )
    await unchanged(db, offered["id"])


async def test_list_filters(client: httpx.AsyncClient, offered: dict[str, Any]) -> None:
    p = offered["program"]
    headers = auth(p.supervisor)
    assert_problem(await client.get("/v1/assignments?status=lost", headers=headers), 422, "status")
    assert_problem(await client.get("/v1/assignments?county=Atlantis", headers=headers), 422)
    assert_problem(await client.get("/v1/assignments?cursor=zzz", headers=headers), 400)
    assert_problem(await client.get("/v1/assignments?limit=0", headers=headers), 422, "limit")
    assert_problem(await client.get("/v1/assignments?from=yesterday", headers=headers), 422)
    ok = await client.get("/v1/assignments?status=offered&county=Kanawha", headers=headers)
    assert ok.status_code == 200
    assert len(ok.json()["items"]) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    action=st.sampled_from(["accept", "decline", "en-route", "on-scene", "clear", "cancel"]),
    body=st.fixed_dictionaries(
        {},
        optional={
            "outcome": st.sampled_from(["referred", "no_contact", "x"]) | json_values,
            "referrals": st.lists(st.sampled_from(["detox", "mat", "?"]), max_size=3) | json_values,
            "position": st.fixed_dictionaries(
                {"lat": st.floats(-100, 100) | json_values, "lon": st.floats(-200, 200)}
            )
            | json_values,
        },
    )
    | json_values,
)
async def test_random_bodies_never_cause_a_server_error(
    client: httpx.AsyncClient, offered: dict[str, Any], action: str, body: Any
) -> None:
    p = offered["program"]
    key = p.dispatcher if action == "cancel" else p.supervisor
    response = await client.post(
        f"{offered['url']}/{action}",
        content=json.dumps(body).encode(),
        headers={**auth(key), "content-type": "application/json"},
    )
    assert response.status_code < 500, response.text
