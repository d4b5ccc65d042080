"""GET /v1/calls and /v1/calls/{id}: who may read, filters, pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from corespond.db import Database
from tests.conftest import Source, make_key, serve_agency
from tests.helpers import cad_event, encode, signed_headers
from tests.test_ingest_api import assert_problem, fold

URL = "/v1/cad/kanawha-911/events"


async def seed(client: httpx.AsyncClient, source: Source, db: Database, count: int) -> list[str]:
    await serve_agency(db, source.id, "KANAWHA COUNTY SHERIFF", "54039")
    ids = []
    for i in range(count):
        document = cad_event(
            f"ev-{i}",
            incident_number=f"26-{i:06d}",
            agency="CHARLESTON PD" if i % 2 == 0 else "KANAWHA COUNTY SHERIFF",
        )
        if i == 0:
            document["call"]["status"] = "enroute"
        body = encode(document)
        response = await client.post(URL, content=body, headers=signed_headers(source.secret, body))
        ids.append(response.json()["call_id"])
    await fold(db)
    return ids


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_list_is_newest_first_and_pages_with_a_cursor(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    ids = await seed(client, source, db, 5)
    key = await make_key(db, "supervisor")
    first = (await client.get("/v1/calls?limit=2", headers=bearer(key))).json()
    assert [c["id"] for c in first["items"]] == ids[::-1][:2]
    seen = [c["id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await client.get(f"/v1/calls?limit=2&cursor={cursor}", headers=bearer(key))).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]


async def test_filters_by_agency_status_and_source(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    await seed(client, source, db, 4)
    key = await make_key(db, "supervisor")
    by_agency = (await client.get("/v1/calls?agency=charleston pd", headers=bearer(key))).json()
    assert {c["agency"] for c in by_agency["items"]} == {"CHARLESTON PD"}
    assert len(by_agency["items"]) == 2
    by_status = (await client.get("/v1/calls?status=enroute", headers=bearer(key))).json()
    assert [c["incident_number"] for c in by_status["items"]] == ["26-000000"]
    other = (await client.get("/v1/calls?source=logan-911", headers=bearer(key))).json()
    assert other["items"] == []
    window = await client.get(
        "/v1/calls?opened_from=2026-11-23T09:00:00Z&opened_to=2026-11-23T10:00:00Z",
        headers=bearer(key),
    )
    assert len(window.json()["items"]) == 4


async def test_a_call_is_found_by_its_incident_number(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    ids = await seed(client, source, db, 3)
    key = await make_key(db, "dispatcher")
    found = await client.get(
        "/v1/calls?source=kanawha-911&incident_number=26-000001", headers=bearer(key)
    )
    assert [c["id"] for c in found.json()["items"]] == [ids[1]]
    # Read like the CAD event's: full-width digits are digits, spaces around are dropped.
    wide = await client.get(
        "/v1/calls", params={"incident_number": " \uff12\uff16-000002 "}, headers=bearer(key)
    )
    assert [c["id"] for c in wide.json()["items"]] == [ids[2]]
    none = await client.get("/v1/calls?incident_number=26-999999", headers=bearer(key))
    assert none.json()["items"] == []
    too_long = await client.get(
        "/v1/calls", params={"incident_number": "9" * 256}, headers=bearer(key)
    )
    assert_problem(too_long, 422)


async def test_agency_scoped_dispatcher_sees_only_their_agency(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    ids = await seed(client, source, db, 4)
    key = await make_key(db, "dispatcher", "agency:KANAWHA COUNTY SHERIFF")
    page = (await client.get("/v1/calls", headers=bearer(key))).json()
    assert {c["agency"] for c in page["items"]} == {"KANAWHA COUNTY SHERIFF"}
    hidden = await client.get(f"/v1/calls/{ids[0]}", headers=bearer(key))
    assert_problem(hidden, 404)


async def test_call_detail_lists_its_events(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    [call_id] = await seed(client, source, db, 1)
    key = await make_key(db, "dispatcher")
    call = (await client.get(f"/v1/calls/{call_id}", headers=bearer(key))).json()
    assert call["events"][0]["event_id"] == "ev-0"
    assert call["events"][0]["processed"] is True


async def test_reading_calls_needs_a_key(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/v1/calls"), 401, "Bearer")
    assert problem["title"] == "Authentication required"
    bad = await client.get("/v1/calls", headers=bearer("csk_nope_nope"))
    assert_problem(bad, 401)
    assert bad.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await client.get("/v1/calls", headers={"Authorization": "Basic eDp5"}), 401)


@pytest.mark.parametrize("role", ["peer", "provider_admin", "auditor"])
async def test_roles_without_call_access_get_403(
    client: httpx.AsyncClient, db: Database, role: str
) -> None:
    key = await make_key(db, role, "provider:wvsl" if role == "provider_admin" else None)
    assert_problem(await client.get("/v1/calls", headers=bearer(key)), 403, role)


async def test_revoked_key_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    from corespond.auth.service import revoke_keys_named

    key = await make_key(db, "supervisor")
    async with db.sessionmaker() as session, session.begin():
        await revoke_keys_named(session, "supervisor key", datetime.now(UTC))
    assert_problem(await client.get("/v1/calls", headers=bearer(key)), 401, "revoked")


async def test_bad_query_parameters_are_precise_4xx(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    assert_problem(await client.get("/v1/calls?cursor=abc", headers=bearer(key)), 400, "cursor")
    assert_problem(await client.get("/v1/calls?limit=0", headers=bearer(key)), 422, "limit")
    naive = await client.get("/v1/calls?opened_from=2026-11-23T09:00:00", headers=bearer(key))
    assert_problem(naive, 422, "opened_from")
    assert_problem(await client.get("/v1/calls/not-a-uuid", headers=bearer(key)), 422, "call_id")
    assert_problem(await client.get(f"/v1/calls/{uuid.uuid4()}", headers=bearer(key)), 404)


@pytest.mark.parametrize("scope", ["provider:recovery-point"])
async def test_keys_with_scopes_calls_cannot_honour_yet_are_refused(
    client: httpx.AsyncClient, source: Source, db: Database, scope: str
) -> None:
    [call_id] = await seed(client, source, db, 1)
    key = await make_key(db, "dispatcher", scope)
    assert_problem(await client.get("/v1/calls", headers=bearer(key)), 403, scope.split(":")[0])
    assert_problem(await client.get(f"/v1/calls/{call_id}", headers=bearer(key)), 403)


@pytest.mark.parametrize(
    "query",
    [
        "agency=%00",
        "status=a%00b",
        "source=%00",
        "opened_from=0001-01-01T00:00:00%2B05:00",
        "opened_to=9999-12-31T23:59:59-05:00",
    ],
)
async def test_query_values_the_database_cannot_take_are_422(
    client: httpx.AsyncClient, db: Database, query: str
) -> None:
    key = await make_key(db, "supervisor")
    assert_problem(await client.get(f"/v1/calls?{query}", headers=bearer(key)), 422)


async def test_forged_cursor_out_of_range_is_400(client: httpx.AsyncClient, db: Database) -> None:
    import base64
    import json

    key = await make_key(db, "supervisor")
    raw = json.dumps(["0001-01-01T00:00:00+05:00", str(uuid.uuid4())]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert_problem(await client.get(f"/v1/calls?cursor={cursor}", headers=bearer(key)), 400)


async def test_county_scoped_key_sees_only_calls_in_its_county(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    [in_kanawha] = await seed(client, source, db, 1)  # the example call is in Charleston
    body = encode(
        cad_event(
            "ev-cabell",
            incident_number="26-CABELL",
            location={
                "address": "820 4th Ave",
                "city": "Huntington",
                "lat": 38.4192,
                "lon": -82.4452,
            },
        )
    )
    await client.post(URL, content=body, headers=signed_headers(source.secret, body))
    await fold(db)
    kanawha = await make_key(db, "supervisor", "county:54039")
    page = (await client.get("/v1/calls", headers=bearer(kanawha))).json()
    assert [c["id"] for c in page["items"]] == [in_kanawha]
    cabell = await make_key(db, "supervisor", "county:54011")
    assert_problem(await client.get(f"/v1/calls/{in_kanawha}", headers=bearer(cabell)), 404)
    everyone = await make_key(db, "supervisor")
    by_name = await client.get("/v1/calls?county=cabell", headers=bearer(everyone))
    assert [c["incident_number"] for c in by_name.json()["items"]] == ["26-CABELL"]
    assert_problem(await client.get("/v1/calls?county=Atlantis", headers=bearer(everyone)), 422)
