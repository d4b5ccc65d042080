"""The dispatch console in a real browser (Debian's Chromium, Playwright): sign in from the
keyboard, find a call, request a peer with a note, watch the offer turn into "staged" by
itself when the peer accepts (Server-Sent Events, no reload), report the scene secure; a
review call stands out and asks why. Screenshot to docs/ with CORESPOND_SCREENSHOTS=1."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from tests import program
from tests.browser import CHROMIUM, needs_chromium, screenshots
from tests.conftest import make_key, make_source
from tests.servers import served

pytestmark = needs_chromium


@pytest.fixture
async def server(settings: Settings, committed_db: Database) -> AsyncIterator[str]:
    app = create_app(settings, database=committed_db)
    async with served(app, lifespan="on") as url:
        yield url


async def test_a_dispatcher_requests_and_follows_a_peer_from_the_console(
    server: str, committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    shots = screenshots(tmp_path)
    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        await program.peer(session, "Ana Reyes", home=program.SOUTH_CHARLESTON)
        await program.call(session, source.id, incident_number="26-300")
        await program.call(
            session,
            source.id,
            incident_number="26-301",
            decision="review",
            narrative="RP ADV HUSBAND DRUNK, SAYS NOBODY WOULD MISS HIM",
        )
    dispatcher = await make_key(committed_db, "dispatcher")
    supervisor = await make_key(committed_db, "supervisor")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{server}/dispatch")
            await page.fill("#key", dispatcher)
            await page.press("#key", "Enter")
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            loaded = await page.evaluate("performance.timeOrigin")

            review = page.locator("tr", has_text="26-301")
            await expect(review).to_have_class(re.compile(r"\breview\b"))
            await expect(review.locator(".decision")).to_have_text("review")
            await expect(review.get_by_label("Why a peer may go")).to_be_visible()

            await page.fill("#number", "26-300")
            await page.press("#number", "Enter")
            row = page.locator("tr", has_text="26-300")
            await expect(page.locator("#calls tbody tr")).to_have_count(1)
            await row.get_by_label("Note for the peer").fill("Mother is on scene.")
            await row.get_by_role("button", name="Request a peer").click()
            await expect(row.locator(".state.offered")).to_contain_text("offered to Ana Reyes")
            await expect(row.locator(".state.offered")).to_contain_text(re.compile(r"\d:\d\d"))

            # The peer accepts elsewhere: the row changes by itself.
            async with httpx.AsyncClient(base_url=server) as api:
                listed = await api.get(
                    "/v1/assignments?status=offered",
                    headers={"Authorization": f"Bearer {supervisor}"},
                )
                [offer] = listed.json()["items"]
                accepted = await api.post(
                    f"/v1/assignments/{offer['id']}/accept",
                    headers={"Authorization": f"Bearer {supervisor}"},
                )
                assert accepted.status_code == 200, accepted.text
            await expect(row.locator(".state.staged")).to_contain_text(
                "waiting for scene secure", timeout=10_000
            )
            assert await page.evaluate("performance.timeOrigin") == loaded  # no reload
            await page.click("#all")
            await expect(page.locator("#calls tbody tr")).to_have_count(2)
            await page.screenshot(path=str(shots / "dispatch.png"), full_page=True)
            await row.get_by_role("button", name="Scene secure").press("Enter")
            await expect(row.locator(".state")).to_contain_text("accepted by Ana Reyes")

            await page.click("text=Sign out")
            await page.wait_for_selector("#key")
            assert errors == []
        finally:
            await browser.close()


async def test_the_main_path_by_keyboard_from_a_cad_event_to_a_cleared_call(
    settings: Settings, committed_db: Database, box: SecretBox
) -> None:
    """A signed CAD event arrives and appears by itself; the dispatcher asks for a peer from
    the keyboard; the peer accepts, the scene is reported secure, the peer clears, each seen
    live; a review call is requested by a person with a reason; a call nobody can take says
    why in words. No console errors."""
    from playwright.async_api import async_playwright, expect

    from corespond.ingest.schemas import EXAMPLE_EVENT
    from tests.helpers import encode, signed_headers

    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        await program.peer(session, "Ana Reyes", home=program.SOUTH_CHARLESTON)
        await program.call(
            session,
            source.id,
            incident_number="26-401",
            decision="review",
            narrative="RP ADV HUSBAND DRUNK, SAYS NOBODY WOULD MISS HIM",
        )
        await program.call(session, source.id, incident_number="26-402", county=program.BOONE)
    dispatcher = await make_key(committed_db, "dispatcher")
    supervisor = await make_key(committed_db, "supervisor")
    bearer = {"Authorization": f"Bearer {supervisor}"}
    app = create_app(settings.model_copy(update={"worker_enabled": True}), database=committed_db)
    async with served(app, lifespan="on") as server, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            # A 409 answer is shown to the dispatcher; Chromium also logs it as a failed load.
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and "status of 409" not in m.text
                    else None
                ),
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{server}/dispatch")
            await page.locator("#key").focus()
            await page.keyboard.type(dispatcher)
            await page.keyboard.press("Enter")
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            loaded = await page.evaluate("performance.timeOrigin")

            async with httpx.AsyncClient(base_url=server) as api:
                body = encode({**EXAMPLE_EVENT, "occurred_at": datetime.now(UTC).isoformat()})
                sent = await api.post(
                    f"/v1/cad/{source.id}/events",
                    content=body,
                    headers=signed_headers(source.secret, body),
                )
                assert sent.status_code == 202, sent.text
                row = page.locator("tr", has_text=EXAMPLE_EVENT["call"]["incident_number"])
                await expect(row.locator(".decision")).to_have_text("eligible", timeout=15_000)

                # From the keyboard: the note field, then Enter submits the request.
                await row.get_by_label("Note for the peer").focus()
                await page.keyboard.type("Mother is on scene.")
                await page.keyboard.press("Enter")
                await expect(row.locator(".state.offered")).to_contain_text("Ana Reyes")

                [offer] = (await api.get("/v1/assignments?status=offered", headers=bearer)).json()[
                    "items"
                ]
                act = f"/v1/assignments/{offer['id']}"
                assert (await api.post(f"{act}/accept", headers=bearer)).status_code == 200
                await expect(row.locator(".state.staged")).to_be_visible(timeout=10_000)
                await row.get_by_role("button", name="Scene secure").focus()
                await page.keyboard.press("Enter")
                await expect(row.locator(".state")).to_contain_text("accepted by Ana Reyes")
                for step in ("en-route", "on-scene"):
                    assert (await api.post(f"{act}/{step}", headers=bearer)).status_code == 200
                cleared = await api.post(
                    f"{act}/clear", headers=bearer, json={"outcome": "contact_made"}
                )
                assert cleared.status_code == 200, cleared.text
                await expect(row.locator(".state")).to_have_text("cleared", timeout=10_000)

            # A review call: a person decides, and says why.
            review = page.locator("tr", has_text="26-401")
            await review.get_by_label("Why a peer may go").fill("Wife says he is calm and asks")
            await review.get_by_role("button", name="Request a peer").press("Enter")
            await expect(review.locator(".state.offered")).to_contain_text("Ana Reyes")

            # Nobody serves Boone: the answer says so in words.
            boone = page.locator("tr", has_text="26-402")
            await boone.get_by_role("button", name="Request a peer").press("Enter")
            await expect(page.locator("#message")).to_contain_text("no peer free in")
            await expect(boone.locator(".state.unfilled")).to_contain_text("nobody free")
            assert await page.evaluate("performance.timeOrigin") == loaded  # never reloaded
            assert errors == []
        finally:
            await browser.close()
