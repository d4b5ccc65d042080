"""The API reference in a real browser (Debian's Chromium driven by Playwright): Swagger UI
and ReDoc draw the document with nothing fetched from another site and nothing refused by
the page's content security policy; in production the page asks for an API key first.

Skipped, saying how to install it, where Chromium is missing (``.ci/run`` installs it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corespond.app import create_app
from corespond.config import Settings
from corespond.db import Database
from tests.browser import CHROMIUM, needs_chromium
from tests.conftest import make_key
from tests.servers import served
from tests.test_edge import production

pytestmark = needs_chromium


@asynccontextmanager
async def serving(settings: Settings, database: Database) -> AsyncIterator[str]:
    app = create_app(settings, database=database)
    async with served(app, lifespan="on") as url:
        yield url


@dataclass
class Seen:
    """What a page did that it should not: requests to other sites that the browser let
    out (its content security policy blocking the rest), script errors and other console
    errors."""

    sent_off_site: list[str] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        leaked = [f"sent: {url}" for url in self.sent_off_site if url not in self.blocked]
        # The console says so whenever the policy blocks something; those are fine.
        reported = [e for e in self.errors if "The action has been blocked" not in e]
        return leaked + reported


@asynccontextmanager
async def browser_page(base: str) -> AsyncIterator[tuple[Any, Seen]]:
    from playwright.async_api import async_playwright

    seen = Seen()
    local = (base, "data:", "blob:")

    def on_request(request: Any) -> None:
        if not request.url.startswith(local):
            seen.sent_off_site.append(request.url)

    def on_failed(request: Any) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):
            seen.blocked.add(request.url)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            page.on("request", on_request)
            page.on("requestfailed", on_failed)
            page.on("pageerror", lambda e: seen.errors.append(f"error: {e}"))
            page.on(
                "console",
                lambda m: seen.errors.append(f"console: {m.text}") if m.type == "error" else None,
            )
            yield page, seen
        finally:
            await browser.close()


async def test_swagger_ui_and_redoc_draw_the_document_from_this_service_alone(
    settings: Settings, committed_db: Database
) -> None:
    async with serving(settings, committed_db) as base, browser_page(base) as (page, seen):
        await page.goto(f"{base}/docs")
        await page.wait_for_selector('.opblock-summary-path[data-path="/v1/calls"]')
        assert await page.locator(".opblock").count() > 20
        health = page.locator("#operations-operations-healthz_healthz_get")
        await health.locator(".opblock-summary").click()
        await health.locator("button.try-out__btn").click()
        await health.locator("button.execute").click()
        await health.locator(".live-responses-table .response-col_status").first.wait_for()
        assert "200" in await health.locator(".live-responses-table").inner_text()
        await page.goto(f"{base}/redoc")
        await page.get_by_text("/v1/cad/{source}/events").first.wait_for(state="attached")
        assert await page.is_hidden("#key-form")
    # ReDoc asks for the Redocly logo from Redocly's site: the page's policy stops it.
    assert seen.problems() == []


async def test_production_docs_ask_for_a_key_before_showing_anything(
    tmp_path: Path, committed_db: Database
) -> None:
    key = await make_key(committed_db, "auditor")
    enabled = production(tmp_path, docs=True)
    async with serving(enabled, committed_db) as base, browser_page(base) as (page, seen):
        await page.goto(f"{base}/docs")
        await page.wait_for_selector("#key", state="visible")
        assert await page.locator(".opblock").count() == 0
        await page.fill("#key", "csk_not-a-key")
        await page.press("#key", "Enter")
        await page.wait_for_selector("text=That key is not valid.")
        await page.fill("#key", key)
        await page.press("#key", "Enter")
        await page.wait_for_selector('.opblock-summary-path[data-path="/v1/calls"]')
        assert await page.is_hidden("#key-form")
    # The refused fetch of the document is the only thing the browser reports.
    assert [p for p in seen.problems() if "401" not in p] == []
