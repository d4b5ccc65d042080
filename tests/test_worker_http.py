"""``corespond worker`` with CORESPOND_WORKER_HTTP_PORT: liveness and its own metrics,
the metrics under the API's token rule."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from corespond.config import Settings
from corespond.ops.worker_http import start_worker_http, worker_response
from tests.conftest import TEST_KEY

TOKEN = "t" * 40


def production(**values: object) -> Settings:
    return Settings(
        environment="production",
        database_url="postgresql://corespond_app:pw@db:5432/corespond",
        secret_key=SecretStr(TEST_KEY.decode()),
        **values,  # type: ignore[arg-type]
    )


def test_metrics_follow_the_apis_token_rule() -> None:
    assert worker_response(production(), "GET", "/metrics", "")[0] == 404
    guarded = production(metrics_token=SecretStr(TOKEN))
    assert worker_response(guarded, "GET", "/metrics", "")[0] == 401
    assert worker_response(guarded, "GET", "/metrics", "Bearer wrong")[0] == 401
    status, content_type, body = worker_response(guarded, "GET", "/metrics", f"Bearer {TOKEN}")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert b"corespond_cad_events_processed_total" in body
    assert worker_response(Settings(environment="test"), "GET", "/metrics", "")[0] == 200


def test_only_health_and_metrics_are_answered() -> None:
    assert worker_response(production(), "GET", "/healthz", "")[:2] == (200, "application/json")
    assert worker_response(production(), "HEAD", "/healthz", "")[0] == 200
    assert worker_response(production(), "POST", "/healthz", "")[0] == 405
    assert worker_response(production(), "GET", "/v1/calls", "")[0] == 404


async def test_the_worker_answers_over_http_on_loopback() -> None:
    settings = Settings(environment="test", metrics_token=SecretStr(TOKEN))
    server = await start_worker_http(settings, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/healthz")
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            assert (await client.head("/healthz")).status_code == 200
            refused = await client.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert scraped.status_code == 200
            assert "corespond_dispatch_deliveries_total" in scraped.text
    finally:
        server.close()
        await server.wait_closed()
