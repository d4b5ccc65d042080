"""Health, readiness, metrics, request ids and the error contract of the whole app."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.dispatch.models import OutboxMessage
from corespond.sources import service as sources
from tests import program
from tests.conftest import PgServer, Source, make_key, make_source
from tests.helpers import cad_event, encode, signed_headers
from tests.program import CABELL, KANAWHA, PUTNAM
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


async def readiness_at(settings: Settings, test_server: PgServer, revision: str) -> httpx.Response:
    """``/readyz`` of this code on a database whose schema says it is at ``revision``."""
    from sqlalchemy import text

    async with test_server.cloned() as database:
        async with test_server.owner_of(database) as owner, owner.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        app = create_app(settings, database=database)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/readyz")


async def test_readyz_stays_ready_on_a_schema_a_newer_release_migrated(
    settings: Settings, test_server: PgServer
) -> None:
    response = await readiness_at(settings, test_server, "a0b1c2d3e4f5")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "database": "ok",
        "migrations": "ahead",
        "revision": "a0b1c2d3e4f5",
    }


async def test_readyz_is_503_on_a_schema_behind_the_code(
    settings: Settings, test_server: PgServer
) -> None:
    response = await readiness_at(settings, test_server, "7c4e2a9d5f31")
    assert_problem(response, 503, "corespond migrate")


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


# -- gauges read from the database at scrape time ---------------------------------------------


def samples(text: str, name: str) -> dict[str, float]:
    """The samples of ``name`` in a scrape, by their label text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name) :].rpartition(" ")
            found[labels] = float(value)
    return found


async def test_oldest_undelivered_message_age_per_source(
    client: httpx.AsyncClient, db: Database, source: Source, box: SecretBox
) -> None:
    quiet = await make_source(db, box, "cabell-911")
    idle = await make_source(db, box, "logan-911")
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
        other = await program.call(session, quiet.id)
        for seq, (age, state, retry_from) in enumerate(
            [
                (timedelta(minutes=7), "pending", None),  # the oldest waiting: 420 s
                (timedelta(minutes=3), "pending", None),
                (timedelta(hours=5), "delivered", None),  # delivered: not waiting
                (timedelta(hours=6), "dead", None),  # given up: CorespondDeliveriesDead's
            ],
            1,
        ):
            session.add(outbox(source.id, call.id, seq, now - age, state, retry_from))
        # Redelivery asked for a minute ago of a day-old message: it has waited a minute.
        asked = now - timedelta(minutes=1)
        session.add(outbox(quiet.id, other.id, 1, now - timedelta(days=1), "pending", asked))
        await sources.set_disabled(session, idle.id, True, now)
    text = (await client.get("/metrics")).text
    ages = samples(text, "corespond_dispatch_oldest_undelivered_seconds")
    assert 420 <= ages['{source="kanawha-911"}'] < 430
    assert 60 <= ages['{source="cabell-911"}'] < 70
    assert '{source="logan-911"}' not in ages  # disabled on purpose: not watched


async def test_nothing_waiting_is_zero_for_every_enabled_source(
    client: httpx.AsyncClient, source: Source
) -> None:
    text = (await client.get("/metrics")).text
    assert samples(text, "corespond_dispatch_oldest_undelivered_seconds") == {
        '{source="kanawha-911"}': 0.0
    }


async def test_peers_available_and_on_shift_per_county_as_coverage_counts_them(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", PUTNAM: "primary"})
        await program.provider(session, "rp", {CABELL: "primary"})
        await program.peer(session, "Free Fran", shift_hours=(-1, 5))
        await program.peer(session, "Off Otto", status="off_duty", shift_hours=(-1, 5))
        await program.peer(session, "Later Liz", shift_hours=(2, 8))
        await program.peer(
            session,
            "Lapsed Lee",
            provider_id="rp",
            counties=(CABELL,),
            credentials={"prss_certification": datetime.now(UTC) - timedelta(days=1)},
        )
    text = (await client.get("/metrics")).text
    available = samples(text, "corespond_peers_available")
    on_shift = samples(text, "corespond_peers_on_shift")
    kanawha = '{county="54039",county_name="Kanawha"}'
    putnam = '{county="54079",county_name="Putnam"}'
    cabell = '{county="54011",county_name="Cabell"}'
    assert (available[kanawha], on_shift[kanawha]) == (1, 2)
    assert (available[putnam], on_shift[putnam]) == (0, 0)  # served, no one on
    assert (available[cabell], on_shift[cabell]) == (0, 1)  # on shift, credential lapsed
    assert set(available) == {kanawha, putnam, cabell}  # counties no one serves: left out
    coverage = {c["fips"]: c for c in await coverage_now(client, db)}
    assert coverage["54039"]["available"] == available[kanawha]


async def coverage_now(client: httpx.AsyncClient, db: Database) -> list[dict[str, Any]]:
    admin = await make_key(db, "admin")
    response = await client.get("/v1/coverage", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200, response.text
    counties: list[dict[str, Any]] = response.json()["counties"]
    return counties


async def test_every_api_instance_reports_the_same_database_gauges(
    settings: Settings, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
        session.add(outbox(source.id, call.id, 1, datetime.now(UTC) - timedelta(minutes=2)))
    scraped = []
    for _ in range(2):  # two processes, one after the other, on the same database
        app = create_app(settings, database=db)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                text = (await client.get("/metrics")).text
        scraped.append(samples(text, "corespond_dispatch_oldest_undelivered_seconds"))
    first, second = scraped
    assert first.keys() == second.keys() == {'{source="kanawha-911"}'}
    assert abs(first['{source="kanawha-911"}'] - second['{source="kanawha-911"}']) < 5


async def test_metrics_answer_without_the_database_gauges_when_the_database_is_down(
    settings: Settings,
) -> None:
    down = Database.connect("postgresql+asyncpg://nobody@127.0.0.1:9/nothing")
    app = create_app(settings, database=down)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/metrics")
    finally:
        await down.dispose()
    assert response.status_code == 200
    assert samples(response.text, "corespond_dispatch_oldest_undelivered_seconds") == {}
    assert samples(response.text, "corespond_peers_available") == {}
    [failures] = [
        float(line.split()[1])
        for line in response.text.splitlines()
        if line.startswith("corespond_metrics_database_read_failures_total ")
    ]
    assert failures >= 1


def outbox(
    source_id: str,
    call_id: uuid.UUID,
    seq: int,
    created_at: datetime,
    state: str = "pending",
    retry_from: datetime | None = None,
) -> OutboxMessage:
    return OutboxMessage(
        id=uuid.uuid4(),
        source_id=source_id,
        call_id=call_id,
        seq=seq,
        event_type="assignment.offered",
        payload={"type": "assignment.offered"},
        state=state,
        created_at=created_at,
        retry_from=retry_from,
    )
