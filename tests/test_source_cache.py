"""Sources are kept a few seconds for receiving events, and forgotten the moment any process
changes one (a NOTIFY at commit): a rotated-out secret or a disabled source is refused at
once, from the API or the CLI alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from asgi_lifespan import LifespanManager

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.sources.service import rotate_secret, set_disabled
from tests.conftest import make_source
from tests.helpers import cad_event, encode, signed_headers

URL = "/v1/cad/kanawha-911/events"


async def test_a_change_made_elsewhere_reaches_the_cache_at_once(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    source = await make_source(committed_db, box)
    app = create_app(
        settings.model_copy(update={"source_cache_seconds": 300}), database=committed_db
    )
    async with LifespanManager(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

        async def post(secret: str, event_id: str) -> int:
            body = encode(cad_event(event_id))
            response = await client.post(URL, content=body, headers=signed_headers(secret, body))
            return response.status_code

        cache = app.state.source_cache
        assert cache.listening()
        assert await post(source.secret, "a") == 202
        # Kept: the next event of this source costs no query.
        assert cache._kept

        # As the CLI does, in its own process and transaction: rotate with no grace.
        async with committed_db.sessionmaker() as session, session.begin():
            newest, _ = await rotate_secret(
                session, box, source.id, grace=timedelta(0), now=datetime.now(UTC)
            )
        for _ in range(50):
            if not cache._kept:
                break
            await asyncio.sleep(0.05)
        assert await post(source.secret, "b") == 401
        assert await post(newest, "c") == 202

        async with committed_db.sessionmaker() as session, session.begin():
            await set_disabled(session, source.id, True, datetime.now(UTC))
        await asyncio.sleep(0.3)
        assert await post(newest, "d") == 403
