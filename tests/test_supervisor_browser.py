"""The supervisor page in a real browser: Debian's Chromium driven by Playwright.

Skipped, saying how to install it, where Chromium is missing (``.ci/run`` installs it)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from corespond.app import create_app
from corespond.config import Settings
from corespond.db import Database
from corespond.roster.models import Peer, Shift
from tests import program
from tests.browser import CHROMIUM, needs_chromium
from tests.conftest import make_key
from tests.program import KANAWHA
from tests.servers import served

pytestmark = needs_chromium


@pytest.fixture
async def server(settings: Settings, committed_db: Database) -> AsyncIterator[str]:
    quick = settings.model_copy(update={"supervisor_refresh_seconds": 0.5})
    app = create_app(quick, database=committed_db)
    async with served(app, lifespan="on") as url:
        yield url


async def test_the_page_draws_every_county_and_updates_without_reloading(
    server: str, committed_db: Database
) -> None:
    from playwright.async_api import async_playwright, expect

    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)  # wvsl serves Kanawha; no one on shift yet
        peer = await program.peer(session, "Ana", shift_hours=(20, 28))
    key = await make_key(committed_db, "supervisor")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            # Anything the browser reports as an error (a missing icon, a refused script).
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{server}/supervisor")
            icon = await page.get_attribute("link[rel=icon]", "href")
            assert icon is not None
            assert (await page.request.get(f"{server}{icon}")).ok
            await page.fill("#key", key)
            await page.press("#key", "Enter")  # the form works from the keyboard
            await page.wait_for_selector("#map")
            counties = page.locator("path.county")
            assert await counties.count() == 55
            for index in range(55):  # each one really drawn, not an empty path
                box = await counties.nth(index).bounding_box()
                assert box is not None
                assert box["width"] > 1
                assert box["height"] > 1
            kanawha = page.locator(f"#county-{KANAWHA}")
            assert "none" in (await kanawha.get_attribute("class") or "")
            assert await kanawha.get_attribute("tabindex") == "0"
            await page.wait_for_selector(f"#row-{KANAWHA}")
            assert "no peer on shift" in await page.inner_text(f"#row-{KANAWHA}")
            loaded_at = await page.evaluate("window.corespondLoadedAt")

            # Ana's shift is moved to now: the county turns green with its label.
            async with committed_db.sessionmaker() as session, session.begin():
                stored = await session.scalar(select(Shift).where(Shift.peer_id == peer.id))
                assert stored is not None
                stored.starts_at = datetime.now(UTC) - timedelta(hours=1)
                stored.ends_at = datetime.now(UTC) + timedelta(hours=6)
            await expect(kanawha).to_have_class(re.compile(r"\bavailable\b"), timeout=10_000)
            label = await kanawha.get_attribute("aria-label") or ""
            assert "peer available" in label
            assert "1 free" in label
            assert "peer available" in await page.inner_text(f"#row-{KANAWHA}")
            assert await page.evaluate("window.corespondLoadedAt") == loaded_at  # no reload

            # Off duty: still on shift but none free.
            async with committed_db.sessionmaker() as session, session.begin():
                stored_peer = await session.get(Peer, peer.id)
                assert stored_peer is not None
                stored_peer.status = "off_duty"
            await expect(kanawha).to_have_class(re.compile(r"\bbusy\b"), timeout=10_000)
            if os.environ.get("CORESPOND_SCREENSHOT"):
                await page.screenshot(path=os.environ["CORESPOND_SCREENSHOT"], full_page=True)

            await page.click("text=Sign out")
            await page.wait_for_selector("#key")
            assert errors == []
        finally:
            await browser.close()
