"""Fixtures of the reliability suite: a scratch database on the test PostgreSQL with a small
program in it (two CAD sources with their callbacks, an agency that asks for peers
automatically, peers on shift with their keys), and the processes of a scenario, all
stopped when it ends. A failed scenario prints the end of each process's log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from corespond.auth.service import Scope, create_key
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.sources.service import set_callback
from tests import program
from tests.conftest import PgServer, make_source
from tests.reliability.cad import AGENCY, CHARLESTON, CadSource, Callback
from tests.reliability.figures import REPORT
from tests.reliability.processes import Cluster, server_address, through
from tests.test_operator_walkthrough import libpq

SOURCES = ("metro-911", "county-911")
PEERS = 6


@dataclass
class Scratch:
    """A migrated database of the scenario's own: the service's URL (libpq form, for the
    processes) and a connection pool for the test's own reads."""

    name: str
    url: str
    database: Database
    server: PgServer

    def upstream(self) -> str:
        """Where the server listens (for a proxy in front of it)."""
        return server_address(self.server.base_url)

    def url_through(self, port: int) -> str:
        """The service's URL through a proxy on 127.0.0.1:``port``."""
        return through(self.url, port)


@dataclass
class Program:
    sources: list[CadSource]
    callbacks: dict[str, Callback]
    peer_keys: dict[str, str]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def scratch(test_server: PgServer) -> AsyncIterator[Scratch]:
    name = await test_server.clone()
    database = Database.connect(test_server.service_url(name))
    try:
        yield Scratch(name, libpq(test_server.service_url(name)), database, test_server)
    finally:
        await database.dispose()
        await test_server.drop(name)


@pytest.fixture
async def prepared(scratch: Scratch, box: SecretBox) -> AsyncIterator[Program]:
    """Two CAD sources of CHARLESTON PD, which asks for a peer on every eligible call, each
    with its callback running; a provider with ``PEERS`` peers on shift in Kanawha, each with
    a peer key."""
    database = scratch.database
    sources = []
    for source_id in SOURCES:
        made = await make_source(database, box, source_id)
        sources.append(CadSource(made.id, made.secret))
    callbacks = {s.id: await Callback(s.secret).start() for s in sources}
    keys: dict[str, str] = {}
    try:
        async with database.sessionmaker() as session, session.begin():
            await program.agency(session, AGENCY, auto_request=True)
            await program.provider(session)
            for number in range(PEERS):
                peer = await program.peer(session, f"Peer {number + 1}", home=CHARLESTON)
                _, keys[str(peer.id)] = await create_key(
                    session,
                    role="peer",
                    scope=Scope.parse(f"peer:{peer.id}"),
                    now=datetime.now(UTC),
                )
            for source in sources:
                await set_callback(session, source.id, callbacks[source.id].url, "test")
        yield Program(sources, callbacks, keys)
    finally:
        for callback in callbacks.values():
            await callback.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        yield client


@pytest.fixture
def cluster(scratch: Scratch, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The scenario's processes (none started yet), stopped at its end, whatever happened."""
    processes = Cluster(tmp_path / "processes", scratch.url)
    try:
        yield processes
    finally:
        processes.close()
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            print(processes.logs())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("reliability figures")
        for block in REPORT:
            terminalreporter.write_line(block)
