"""Secrets never in the OpenAPI document or the logs; requests that take too long get 503."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from corespond.app import create_app
from corespond.config import PROJECT_ROOT, Settings
from corespond.db import Database
from tests.conftest import TEST_KEY, Source, make_key
from tests.helpers import cad_event, encode, signed_headers
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem

SECRET_SHAPES = [re.compile(r"whsec_[A-Za-z0-9+/=]{20,}"), re.compile(r"csk_[0-9a-f]{8}_\S{20,}")]


def test_the_openapi_document_holds_no_secret() -> None:
    text = (PROJECT_ROOT / "openapi" / "openapi.json").read_text()
    for shape in SECRET_SHAPES:
        assert not shape.search(text)
    assert TEST_KEY.decode() not in text


async def test_secrets_and_keys_never_reach_the_logs(
    client: httpx.AsyncClient,
    db: Database,
    source: Source,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = await make_key(db, "supervisor")
    body = encode(cad_event("s1"))
    await client.post(
        f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
    )
    await client.post(f"/v1/cad/{source.id}/events", content=body, headers={"webhook-id": "x"})
    await client.get("/v1/coverage", headers=auth(key))
    await client.get("/v1/coverage", headers=auth(key + "tampered"))
    logged = capsys.readouterr()
    everything = logged.out + logged.err
    assert source.secret not in everything
    assert key not in everything
    assert source.secret.removeprefix("whsec_") not in everything


@pytest.fixture
async def impatient(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"request_timeout_seconds": 0.0005}), database=db)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_a_request_that_takes_too_long_is_answered_503(
    impatient: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    response = await impatient.get("/v1/coverage", headers=auth(key))
    problem = assert_problem(response, 503, "retry")
    assert response.headers["retry-after"] == "1"
    # Never "nothing was changed": a commit already sent when the limit struck may land.
    assert "may not have been carried out" in problem["detail"]
    assert json.dumps(problem).count("timeout") >= 1
