"""API keys: expiry, last use, revocation on the next request, rotation; the admin API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from corespond.auth.models import ApiKey
from corespond.db import Database
from tests.conftest import make_key
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem


async def test_admin_manages_keys(client: httpx.AsyncClient, db: Database) -> None:
    admin = await make_key(db, "admin")
    created = await client.post(
        "/v1/keys",
        json={"role": "supervisor", "name": "Night sup", "scope": "county:Kanawha"},
        headers=auth(admin),
    )
    assert created.status_code == 201, created.text
    issued = created.json()
    assert issued["scope"] == "county:54039"
    assert issued["key"].startswith("csk_")
    key = issued["key"]
    assert (await client.get("/v1/coverage", headers=auth(key))).status_code == 200

    listed = (await client.get("/v1/keys", headers=auth(admin))).json()
    mine = next(k for k in listed if k["id"] == issued["id"])
    assert "key" not in mine
    assert mine["last_used_at"] is not None

    rotated = await client.post(f"/v1/keys/{issued['id']}/rotate", headers=auth(admin))
    assert rotated.status_code == 201
    assert_problem(await client.get("/v1/coverage", headers=auth(key)), 401, "revoked")
    new = rotated.json()["key"]
    assert (await client.get("/v1/coverage", headers=auth(new))).status_code == 200

    revoked = await client.post(f"/v1/keys/{rotated.json()['id']}/revoke", headers=auth(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_problem(await client.get("/v1/coverage", headers=auth(new)), 401)


async def test_keys_api_refuses_cleanly(client: httpx.AsyncClient, db: Database) -> None:
    admin = await make_key(db, "admin")
    supervisor = await make_key(db, "supervisor")
    assert_problem(await client.get("/v1/keys", headers=auth(supervisor)), 403)
    assert_problem(await client.get("/v1/keys"), 401)
    bad = [
        ({"role": "sheriff", "name": "x"}, "role"),
        ({"role": "provider_admin", "name": "x"}, "provider scope"),
        ({"role": "supervisor", "name": "x", "scope": "planet:mars"}, "scope"),
        ({"role": "supervisor", "name": "x", "scope": "county:Atlantis"}, "unknown county"),
        ({"role": "supervisor", "name": ""}, "name"),
        ({"role": "supervisor", "name": "x", "expires_at": "2020-01-01T00:00:00Z"}, "future"),
        ({"role": "supervisor", "name": "x", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"role": "supervisor", "name": "x", "key": "csk_mine"}, "key"),
    ]
    for body, why in bad:
        assert_problem(await client.post("/v1/keys", json=body, headers=auth(admin)), 422, why)
    assert_problem(
        await client.post(
            "/v1/keys/00000000-0000-0000-0000-000000000000/revoke", headers=auth(admin)
        ),
        404,
    )
    assert_problem(await client.post("/v1/keys/nope/revoke", headers=auth(admin)), 422)


async def test_an_expired_key_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    token = await make_key(db, "supervisor")
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == token.split("_")[1])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(await client.get("/v1/coverage", headers=auth(token)), 401, "expired")
