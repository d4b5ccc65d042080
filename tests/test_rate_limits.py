"""Abuse limits: per CAD source on the webhook, per API key on other writes; 429 with
Retry-After before anything is read or stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from corespond.app import create_app
from corespond.config import Settings
from corespond.db import Database
from corespond.ingest.models import CadEvent
from corespond.middleware import TokenBuckets
from tests.conftest import Source, make_key
from tests.helpers import cad_event, encode, signed_headers
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem


def test_token_bucket() -> None:
    buckets = TokenBuckets(rate=2, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", 0.0) == pytest.approx(0.5)
    assert buckets.take("b", 0.0) == 0  # keys are separate
    assert buckets.take("a", 0.5) == 0  # refilled
    assert buckets.take("a", 0.5) > 0


@pytest.fixture
async def strict(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(
        update={
            "rate_limit_cad_per_second": 0.01,
            "rate_limit_cad_burst": 3,
            "rate_limit_writes_per_second": 0.01,
            "rate_limit_writes_burst": 2,
        }
    )
    app = create_app(limited, database=db)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_cad_source_over_its_limit(
    strict: httpx.AsyncClient, db: Database, source: Source
) -> None:
    codes = []
    for n in range(5):
        body = encode(cad_event(f"rl-{n}"))
        response = await strict.post(
            f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
        )
        codes.append(response.status_code)
    assert codes == [202, 202, 202, 429, 429]
    assert int(response.headers["retry-after"]) >= 1
    assert_problem(response, 429, "over the limit")
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CadEvent)) == 3


async def test_unsigned_posts_cannot_use_up_a_sources_limit(
    settings: Settings, db: Database, source: Source
) -> None:
    limited = settings.model_copy(
        update={"rate_limit_cad_per_second": 0.01, "rate_limit_cad_burst": 2}
    )
    app = create_app(limited, database=db)
    async with LifespanManager(app):

        def client_at(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 4000))
            return httpx.AsyncClient(transport=transport, base_url="http://test")

        async with client_at("198.51.100.7") as attacker, client_at("10.1.1.1") as cad:
            for n in range(5):  # unsigned, with the source's name
                await attacker.post(
                    f"/v1/cad/{source.id}/events",
                    content=encode(cad_event(f"f{n}")),
                    headers={"content-type": "application/json"},
                )
            body = encode(cad_event("real-1"))
            real = await cad.post(
                f"/v1/cad/{source.id}/events",
                content=body,
                headers=signed_headers(source.secret, body),
            )
            assert real.status_code == 202  # the source's own limit was not touched


async def test_writes_per_key(strict: httpx.AsyncClient, db: Database) -> None:
    admin = await make_key(db, "admin")
    await make_key(db, "admin")
    codes = [
        (
            await strict.post(
                "/v1/providers", json={"id": f"p{n}", "name": "P"}, headers=auth(admin)
            )
        ).status_code
        for n in range(3)
    ]
    assert codes == [201, 201, 429]
    reads = await strict.get("/v1/providers", headers=auth(admin))
    assert reads.status_code == 200  # reads are not limited here
    fresh = await strict.post(
        "/v1/providers",
        json={"id": "q1", "name": "Q"},
        headers={"authorization": f"BEARER {admin}"},
    )
    assert fresh.status_code == 429  # the same key, however the scheme is spelled
