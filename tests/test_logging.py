"""Logs are JSON lines with a request id, and never carry a narrative, secret or key."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog

from corespond.db import Database
from corespond.logging import configure_logging
from tests.conftest import Source, make_key
from tests.helpers import cad_event, encode, signed_headers
from tests.test_ingest_api import fold

NARRATIVE = "SUBJ SAYS HE USED FENTANYL AT 0300, NAME JOHN Q PUBLIC"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


async def test_request_logs_have_ids_and_no_sensitive_content(
    json_logs: io.StringIO,
    client: httpx.AsyncClient,
    source: Source,
    db: Database,
) -> None:
    body = encode(cad_event(narrative=NARRATIVE))
    headers = signed_headers(source.secret, body)
    await client.post("/v1/cad/kanawha-911/events", content=body, headers=headers)
    await client.post("/v1/cad/kanawha-911/events", content=body, headers=headers)  # duplicate
    await fold(db)
    key = await make_key(db, "dispatcher")
    await client.get("/v1/calls", headers={"Authorization": f"Bearer {key}"})

    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    requests = [r for r in records if r.get("event") == "request"]
    assert len(requests) == 3
    assert all(len(r["request_id"]) == 32 for r in requests)
    assert {r["route"] for r in requests} == {"/v1/cad/{source}/events", "/v1/calls"}
    everything = "\n".join(lines)
    for secret in (NARRATIVE, "FENTANYL", source.secret, key):
        assert secret not in everything


async def test_a_caller_sent_request_id_is_logged_beside_ours(
    json_logs: io.StringIO, client: httpx.AsyncClient
) -> None:
    sent = await client.get("/healthz", headers={"X-Request-ID": "cad-4711"})
    await client.get("/healthz", headers={"X-Request-ID": "not sane"})

    records = [json.loads(line) for line in json_logs.getvalue().splitlines() if line.strip()]
    first, second = [r for r in records if r.get("event") == "request"]
    assert first["request_id"] == sent.headers["x-request-id"] != "cad-4711"
    assert first["caller_request_id"] == "cad-4711"
    assert "caller_request_id" not in second
