"""The database out of reach: requests are answered 503 at once, as a problem document with
``Retry-After`` (never a 500, never a hang until the request's time limit), and /readyz says
so. tests/reliability/test_database_outage.py does the same to real processes under load."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.errors import database_unreachable
from corespond.ops.router import READY_SECONDS
from tests.conftest import PgServer, Source, make_source
from tests.helpers import cad_event, encode, signed_headers
from tests.reliability.processes import PgProxy, proxied, server_address, through


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def unreachable_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    database = Database.connect(f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{closed_port()}/x")
    application = create_app(settings, database=database)
    try:
        async with LifespanManager(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
    finally:
        await database.dispose()


async def test_a_cad_event_is_answered_503_at_once_when_the_database_is_unreachable(
    unreachable_client: httpx.AsyncClient,
) -> None:
    body = encode(cad_event())
    started = time.monotonic()
    answer = await unreachable_client.post(
        "/v1/cad/kanawha-911/events",
        content=body,
        headers=signed_headers("whsec_" + "A" * 32, body),
    )
    assert time.monotonic() - started < 5
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "2"
    # Ingest tries the statement twice: the event may have been stored by the first try, so
    # it says to send it again (a stored one is answered duplicate).
    assert "send it again" in answer.json()["detail"]


async def test_readiness_says_the_database_is_unreachable(
    unreachable_client: httpx.AsyncClient,
) -> None:
    answer = await unreachable_client.get("/readyz")
    assert answer.status_code == 503
    assert "database unreachable" in answer.json()["detail"]


async def test_a_connection_lost_mid_request_is_unreachable_not_a_bug(
    shared_database: Database,
) -> None:
    """A connection terminated under a transaction (as a server restart does) is told from a
    wrong statement."""
    async with shared_database.engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with shared_database.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as lost:
            await conn.execute(text("SELECT 1"))
    assert database_unreachable(lost.value)

    async with shared_database.engine.connect() as conn:
        with pytest.raises(DBAPIError) as wrong:
            await conn.execute(text("SELECT * FROM no_such_table"))
    assert not database_unreachable(wrong.value)


def test_refused_connections_and_a_server_starting_up_are_unreachable() -> None:
    assert database_unreachable(ConnectionRefusedError(111, "refused"))
    assert database_unreachable(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert database_unreachable(asyncpg.exceptions.TooManyConnectionsError("too many"))
    assert not database_unreachable(ValueError("a bug"))
    assert not database_unreachable(OperationalError("SELECT 1", {}, Exception("no sqlstate")))


@asynccontextmanager
async def behind_a_proxy(
    test_server: PgServer, settings: Settings, box: SecretBox, request_limit: float = 30.0
) -> AsyncIterator[tuple[httpx.AsyncClient, PgProxy, Source]]:
    """The app on a fresh database reached through a proxy the test can freeze, with a CAD
    source; requests time out after ``request_limit`` seconds."""
    name = await test_server.clone()
    try:
        with proxied(server_address(test_server.base_url)) as proxy:
            database = Database.connect(through(test_server.service_url(name), proxy.port))
            source = await make_source(database, box)
            limited = settings.model_copy(update={"request_timeout_seconds": request_limit})
            application = create_app(limited, database=database)
            try:
                async with LifespanManager(application):
                    transport = httpx.ASGITransport(app=application)
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://test"
                    ) as client:
                        yield client, proxy, source
                        await proxy.restore()  # before anything waits on the database
            finally:
                await database.dispose()
    finally:
        await test_server.drop(name)


async def test_readiness_answers_in_time_when_the_database_stops_answering(
    test_server: PgServer, settings: Settings, box: SecretBox
) -> None:
    """A connection that stops answering (a partition: no refusal, no reset) must not hold
    /readyz past its own limit; once the bytes flow again it is ready again."""
    async with behind_a_proxy(test_server, settings, box) as (client, proxy, _):
        assert (await client.get("/readyz")).status_code == 200
        proxy.freeze()
        asked = time.monotonic()
        answer = await client.get("/readyz")
        took = time.monotonic() - asked
        await proxy.restore()
        assert took < READY_SECONDS + 1.5
        assert answer.status_code == 503, answer.text
        assert "no answer within 3 s" in answer.json()["detail"]
        for _ in range(50):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("/readyz did not come back")


async def test_a_request_to_a_database_that_stopped_answering_ends_at_its_time_limit(
    test_server: PgServer, settings: Settings, box: SecretBox
) -> None:
    """A request whose connection stops answering is answered 503 soon after its limit,
    not when the database answers again; the event, sent again once it does, is stored."""
    async with behind_a_proxy(test_server, settings, box, 1.0) as (client, proxy, source):
        body = encode(cad_event())
        assert (await client.get("/readyz")).status_code == 200
        proxy.freeze()
        asked = time.monotonic()
        answer = await client.post(
            f"/v1/cad/{source.id}/events",
            content=body,
            headers=signed_headers(source.secret, body),
        )
        took = time.monotonic() - asked
        await proxy.restore()
        assert answer.status_code == 503, answer.text
        assert "may not have been carried out" in answer.json()["detail"]
        # The limit, and the driver's own bounded attempt (2 s) to close the connection
        # politely before it drops it; not the whole freeze.
        assert took < 1.0 + 2 + 1
        again = await client.post(
            f"/v1/cad/{source.id}/events",
            content=body,
            headers=signed_headers(source.secret, body),
        )
        assert again.status_code == 202, again.text
