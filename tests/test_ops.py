"""Health, readiness, metrics, request ids and the error contract of the whole app."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from corespond.app import create_app
from corespond.config import Settings
from corespond.db import Database
from tests.conftest import PgServer, Source
from tests.helpers import cad_event, encode, signed_headers
from tests.test_ingest_api import assert_problem


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["migrations"] == "head"


async def test_readyz_is_503_before_migrations(settings: Settings, test_server: PgServer) -> None:
    name = f"corespond_empty_{id(settings) % 100000}"
    from tests.conftest import _admin

    await _admin(test_server.base_url, f'CREATE DATABASE "{name}"')
    database = Database.connect(test_server.url(name))
    try:
        app = create_app(settings, database=database)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/readyz")
        assert_problem(response, 503, "corespond migrate")
    finally:
        await database.dispose()
        await test_server.drop(name)


async def test_metrics_count_requests_and_ingested_events(
    client: httpx.AsyncClient, source: Source
) -> None:
    body = encode(cad_event())
    await client.post(
        "/v1/cad/kanawha-911/events", content=body, headers=signed_headers(source.secret, body)
    )
    await client.post("/v1/cad/kanawha-911/events", content=body, headers={})
    text = (await client.get("/metrics")).text
    assert 'corespond_cad_events_ingested_total{source="kanawha-911",status="accepted"}' in text
    assert 'corespond_cad_events_ingested_total{source="kanawha-911",status="rejected"}' in text
    assert 'route="/v1/cad/{source}/events"' in text
    assert "corespond_http_request_duration_seconds_bucket" in text


async def test_request_id_is_ours_whatever_the_caller_sends(client: httpx.AsyncClient) -> None:
    ids = [
        (await client.get("/healthz", headers=headers)).headers["x-request-id"]
        for headers in (
            {"X-Request-ID": "cad-req-42"},
            {"X-Request-ID": "cad-req-42"},
            {"X-Request-ID": "bad id with spaces"},
            {},
        )
    ]
    assert all(len(request_id) == 32 and int(request_id, 16) >= 0 for request_id in ids)
    assert "cad-req-42" not in ids
    assert len(set(ids)) == len(ids)  # the same caller id twice is still two requests


async def test_unknown_route_and_wrong_method_are_problem_documents(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(await client.get("/v2/nothing"), 404)
    assert_problem(await client.delete("/healthz"), 405)


async def test_a_bug_is_a_500_problem_with_request_id_and_logs_no_data(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    import io
    import logging

    import structlog

    from corespond.logging import configure_logging

    async def broken() -> None:
        raise RuntimeError("SUBJ NAME JOHN Q PUBLIC USED HEROIN")

    app.add_api_route("/test-only/boom", broken)
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        response = await client.get("/test-only/boom", headers={"X-Request-ID": "req-1"})
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    request_id = response.headers["x-request-id"]
    assert request_id != "req-1"
    assert_problem(response, 500, f"quote request id {request_id}")
    logs = stream.getvalue()
    assert '"unhandled_error"' in logs
    assert "RuntimeError" in logs
    assert "HEROIN" not in logs


async def test_unknown_http_methods_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/healthz")
    text = (await client.get("/metrics")).text
    assert 'method="BREW"' not in text
    assert 'method="OTHER"' in text
