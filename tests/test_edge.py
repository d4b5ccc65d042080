"""The service's edge: one Authorization header, client addresses behind a trusted proxy
only, CAD junk charged apart from signed events, bounded rate-limit tables, and the API
reference and metrics closed in production."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from starlette.types import Receive, Scope, Send

from corespond.app import create_app
from corespond.config import Settings
from corespond.db import Database
from corespond.middleware import TokenBuckets, TrustedProxyMiddleware
from tests.conftest import TEST_KEY, Source, make_key
from tests.helpers import cad_event, encode, signed_headers
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem
from tests.test_schemathesis import free_port

PROXY = "127.0.0.1"
METRICS_TOKEN = "m" * 40


@asynccontextmanager
async def running(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    app = create_app(settings, database=db)
    async with LifespanManager(app):
        yield app


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client connecting from ``address`` (the peer the server sees)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def limited(settings: Settings, **update: Any) -> Settings:
    """Writes: 1 per key and 5 per address before the limit, and 3 per CAD source (and 3
    failed CAD posts per address), refilling so slowly that a test never sees it."""
    return settings.model_copy(
        update={
            "rate_limit_writes_per_second": 0.001,
            "rate_limit_writes_burst": 1,
            "rate_limit_cad_per_second": 0.001,
            "rate_limit_cad_burst": 3,
            **update,
        }
    )


# --- 1. one Authorization header --------------------------------------------------------


@pytest.mark.parametrize("valid_first", [True, False])
async def test_two_authorization_headers_are_refused_in_either_order(
    settings: Settings, db: Database, valid_first: bool
) -> None:
    admin = await make_key(db, "admin")
    headers = [("authorization", f"Bearer {admin}"), ("authorization", "Bearer csk_other")]
    if not valid_first:
        headers.reverse()
    async with running(limited(settings), db) as app, client_at(app, "192.0.2.10") as client:
        for n in range(3):  # the key's budget is 1 write: the second header would dodge it
            response = await client.post(
                "/v1/providers", json={"id": f"p{n}", "name": "P"}, headers=headers
            )
            assert_problem(response, 400, "more than one Authorization header")
        read = await client.get("/v1/providers", headers=headers)
        assert_problem(read, 400, "more than one Authorization header")
        # Nothing was stored, and the key's one write is still there for a proper request.
        listed = await client.get("/v1/providers", headers=auth(admin))
        assert listed.json() == []
        one = await client.post(
            "/v1/providers", json={"id": "ok", "name": "P"}, headers=auth(admin)
        )
        assert one.status_code == 201


# --- 2. client addresses: forwarded headers only from trusted proxies --------------------


async def _writes_until_refused(client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    """Status of an unauthenticated write (charged to the client address) per header."""
    codes = []
    for value in forwarded_for:
        response = await client.post("/v1/providers", json={}, headers={"x-forwarded-for": value})
        codes.append(response.status_code)
    return codes


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    settings: Settings, db: Database
) -> None:
    assert settings.trusted_proxies == ()  # the default: no proxy is believed
    spoofed = [f"203.0.113.{n}" for n in range(6)]
    async with running(limited(settings), db) as app, client_at(app, PROXY) as client:
        codes = await _writes_until_refused(client, spoofed)
    assert codes == [401] * 5 + [429]  # one address, however many it claims to forward


async def test_a_trusted_proxy_reports_the_client_address(settings: Settings, db: Database) -> None:
    trusting = limited(settings, trusted_proxies=Settings(trusted_proxies=PROXY).trusted_proxies)
    async with running(trusting, db) as app, client_at(app, PROXY) as proxy:
        distinct = await _writes_until_refused(proxy, [f"203.0.113.{n}" for n in range(6)])
        # The proxy appends the address it saw; whatever the client wrote left of it is
        # not an address of anyone this service can vouch for.
        same = await _writes_until_refused(proxy, [f"10.9.9.{n}, 198.51.100.7" for n in range(6)])
        async with client_at(app, "192.0.2.55") as stranger:
            ignored = await _writes_until_refused(
                stranger, [f"203.0.113.{n}" for n in range(100, 106)]
            )
    assert distinct == [401] * 6
    assert same == [401] * 5 + [429]
    assert ignored == [401] * 5 + [429]


async def _seen(trusted: str, peer: str, headers: list[tuple[bytes, bytes]]) -> tuple[Any, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(client=scope["client"][0], scheme=scope["scheme"])

    middleware = TrustedProxyMiddleware(app, Settings(trusted_proxies=trusted).trusted_proxies)
    scope = {"type": "http", "client": (peer, 1), "scheme": "http", "headers": headers}
    await middleware(scope, None, None)  # type: ignore[arg-type]
    return seen["client"], seen["scheme"]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "proto", "client", "scheme"),
    [
        # A trusted peer: the right-most untrusted hop, the last proto.
        ("127.0.0.1", "198.51.100.7", "https", "198.51.100.7", "https"),
        ("127.0.0.1", "1.2.3.4, 198.51.100.7", "https", "198.51.100.7", "https"),
        ("127.0.0.1", "198.51.100.7, 10.0.0.2", "http", "198.51.100.7", "http"),
        ("127.0.0.1", "10.0.0.3, 10.0.0.2", None, "10.0.0.3", "http"),  # all proxies
        ("127.0.0.1", "nonsense, 10.0.0.2", None, "10.0.0.2", "http"),  # unreadable hop
        ("127.0.0.1", "", "gopher", "127.0.0.1", "http"),  # nothing usable
        ("::ffff:127.0.0.1", "2001:DB8::0:1", None, "2001:db8::1", "http"),
        # Anyone else: nothing forwarded is read.
        ("192.0.2.1", "198.51.100.7", "https", "192.0.2.1", "http"),
    ],
)
async def test_the_client_is_the_right_most_untrusted_hop(
    peer: str, forwarded_for: str, proto: str | None, client: str, scheme: str
) -> None:
    headers = [(b"x-forwarded-for", forwarded_for.encode())]
    if proto:
        headers.append((b"x-forwarded-proto", proto.encode()))
    assert await _seen("127.0.0.1, 10.0.0.0/8", peer, headers) == (client, scheme)


async def test_a_proxy_inside_a_trusted_network_is_trusted_but_not_its_clients() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https")]
    assert await _seen("10.0.0.0/8", "10.0.0.2", headers) == ("198.51.100.7", "https")
    assert await _seen("10.0.0.0/8", "11.0.0.2", headers) == ("11.0.0.2", "http")


def test_trusted_proxies_are_read_comma_separated_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORESPOND_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 ,::1")
    assert [str(n) for n in Settings().trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    monkeypatch.setenv("CORESPOND_TRUSTED_PROXIES", "")
    assert Settings().trusted_proxies == ()
    for wrong in ("*", "proxy.internal", "10.0.0.1/8"):
        monkeypatch.setenv("CORESPOND_TRUSTED_PROXIES", wrong)
        with pytest.raises(ValidationError, match="trusted_proxies"):
            Settings()


BIN = Path(sys.executable).parent


@pytest.fixture
def served(committed_db: Database) -> Iterator[str]:
    """``corespond serve`` as deployed (uvicorn), with a tiny per-address write limit."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": committed_db.engine.url.render_as_string(hide_password=False),
        "CORESPOND_ENVIRONMENT": "test",
        "CORESPOND_PORT": str(port),
        "CORESPOND_LOG_LEVEL": "WARNING",
        "CORESPOND_WORKER_ENABLED": "false",
        "CORESPOND_RATE_LIMIT_WRITES_PER_SECOND": "0.001",
        "CORESPOND_RATE_LIMIT_WRITES_BURST": "1",
    }
    env.pop("CORESPOND_TRUSTED_PROXIES", None)
    env.pop("FORWARDED_ALLOW_IPS", None)
    server = subprocess.Popen(  # noqa: S603 - our own console script
        [str(BIN / "corespond"), "serve"], env=env, stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_serve_does_not_believe_forwarded_for_from_localhost(served: str) -> None:
    codes = [
        httpx.post(
            f"{served}/v1/providers", json={}, headers={"x-forwarded-for": f"203.0.113.{n}"}
        ).status_code
        for n in range(6)
    ]
    assert codes == [401] * 5 + [429]


# --- 3. CAD junk is charged to the sender's failures, never to a source's intake --------


async def _post_event(
    client: httpx.AsyncClient, source: str, headers: dict[str, str], event_id: str
) -> httpx.Response:
    return await client.post(
        f"/v1/cad/{source}/events", content=encode(cad_event(event_id)), headers=headers
    )


async def test_junk_from_an_address_never_refuses_a_signed_event_from_it(
    settings: Settings, db: Database, source: Source
) -> None:
    unsigned = {"content-type": "application/json"}
    forged = signed_headers("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", b"{}")
    async with running(limited(settings), db) as app, client_at(app, "198.51.100.20") as nat:
        codes = [
            (await _post_event(nat, source.id, unsigned, f"j{n}")).status_code for n in range(3)
        ]
        assert codes == [401, 401, 401]
        refused = await _post_event(nat, source.id, unsigned, "j3")
        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
        # Signature headers always reach the check: a forgery is told it is one ...
        assert (await _post_event(nat, source.id, forged, "j4")).status_code == 401
        # ... and a correctly signed event from the same address is accepted.
        body = encode(cad_event("real-1"))
        real = await nat.post(
            f"/v1/cad/{source.id}/events", content=body, headers=signed_headers(source.secret, body)
        )
        assert real.status_code == 202, real.text


async def test_posts_to_unknown_sources_count_as_failures_and_signed_events_do_not(
    settings: Settings, db: Database, source: Source
) -> None:
    unsigned = {"content-type": "application/json"}
    async with running(limited(settings), db) as app:
        async with client_at(app, "198.51.100.21") as sprayer:
            codes = [
                (await _post_event(sprayer, f"nope-{n}", unsigned, "x")).status_code
                for n in range(4)
            ]
        assert codes == [404, 404, 404, 429]
        async with client_at(app, "198.51.100.22") as cad:
            for n in range(3):  # the source's whole burst, accepted
                body = encode(cad_event(f"ok-{n}"))
                response = await cad.post(
                    f"/v1/cad/{source.id}/events",
                    content=body,
                    headers=signed_headers(source.secret, body),
                )
                assert response.status_code == 202
            # Accepted events cost its address nothing: a mistake is still answered as one.
            assert (await _post_event(cad, source.id, unsigned, "u")).status_code == 401


# --- 4. bounded rate-limit tables --------------------------------------------------------


def test_rate_limit_tables_stay_bounded_however_many_keys_come() -> None:
    buckets = TokenBuckets(rate=0.001, burst=2)
    for n in range(100_000):
        assert buckets.take(f"ip:{n}", 0.0) == 0
    assert len(buckets) <= buckets.max_keys
    assert buckets.max_keys == 10_000


def test_the_least_recently_used_key_is_forgotten_and_starts_full() -> None:
    buckets = TokenBuckets(rate=0.001, burst=1, max_keys=3)
    for key in ("a", "b", "c"):
        assert buckets.take(key, 0.0) == 0
    assert buckets.take("a", 0.0) > 0  # a is used again (refused), so b is the oldest
    assert buckets.take("d", 0.0) == 0
    assert len(buckets) == 3
    assert buckets.take("a", 0.0) > 0  # remembered: still empty
    assert buckets.take("b", 0.0) == 0  # forgotten: full again
    assert buckets.wait("b", 0.0) > 0  # wait() only looks
    assert buckets.wait("zzz", 0.0) == 0
    assert len(buckets) == 3


# --- 5. the API reference and metrics ----------------------------------------------------

_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_docs_load_everything_from_this_service(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert not re.search(r"(?i)(https?:)?//", response.text), "an off-site URL"
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "http" not in policy
        assert "script-src 'self';" in policy
        links = _LINK.findall(response.text)
        assert len(links) >= 3
        for link in links:
            assert re.match(r"/[^/]", link), link
            asset = await client.get(link)
            assert asset.status_code == 200, link
    document = await client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "corespond"


def production(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        environment="production",
        database_url="postgresql://corespond:unused@127.0.0.1:1/corespond",
        secret_key=SecretStr(TEST_KEY.decode()),
        data_dir=tmp_path,
        worker_enabled=False,
        **extra,
    )


async def test_production_serves_no_docs_and_no_metrics_by_default(
    tmp_path: Path, db: Database
) -> None:
    async with running(production(tmp_path), db) as app, client_at(app, "192.0.2.1") as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/static/swagger-ui.css"):
            assert_problem(await client.get(path), 404)
        assert_problem(await client.get("/metrics"), 404)
        assert_problem(await client.get("/metrics", headers=auth(METRICS_TOKEN)), 404)
        assert (await client.get("/healthz")).status_code == 200


async def test_production_metrics_need_the_token(tmp_path: Path, db: Database) -> None:
    settings = production(tmp_path, metrics_token=SecretStr(METRICS_TOKEN))
    async with running(settings, db) as app, client_at(app, "192.0.2.1") as client:
        anonymous = await client.get("/metrics")
        assert_problem(anonymous, 401, "metrics token")
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        for wrong in (
            f"Bearer {METRICS_TOKEN[:-1]}",
            METRICS_TOKEN,
            f"Basic {METRICS_TOKEN}",
            "Bearer caf\xe9".encode("latin-1"),
        ):
            response = await client.get("/metrics", headers={"authorization": wrong})
            assert_problem(response, 401)
        scraped = await client.get("/metrics", headers=auth(METRICS_TOKEN))
        assert scraped.status_code == 200
        assert "corespond_http_requests_total" in scraped.text


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(metrics_token=SecretStr("too-short"))


async def test_production_docs_when_enabled_show_the_document_to_api_keys_only(
    tmp_path: Path, db: Database
) -> None:
    async with (
        running(production(tmp_path, docs=True), db) as app,
        client_at(app, "192.0.2.1") as client,
    ):
        for page in ("/docs", "/redoc", "/docs/static/docs.js"):
            assert (await client.get(page)).status_code == 200  # the pages hold no API text
        assert_problem(await client.get("/openapi.json"), 401)
        assert_problem(await client.get("/openapi.json", headers=auth("csk_wrong")), 401)
        key = await make_key(db, "auditor")
        document = await client.get("/openapi.json", headers=auth(key))
        assert document.status_code == 200
        assert "/v1/calls" in document.json()["paths"]
