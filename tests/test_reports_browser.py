"""The reports page in a real browser (Debian's Chromium, Playwright): sign in on the
supervisor page, follow its link to the reports, choose a month, a quarter and a county,
count the bars drawn, download the CSV, and print without the controls; no console errors.
Screenshot to docs/ with CORESPOND_SCREENSHOTS=1."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corespond.app import create_app
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from tests.browser import CHROMIUM, needs_chromium, screenshots
from tests.conftest import make_key, make_source
from tests.reports_month import COUNTIES, TOTAL, seed_march
from tests.servers import served

pytestmark = needs_chromium


@pytest.fixture
async def server(settings: Settings, committed_db: Database) -> AsyncIterator[str]:
    app = create_app(settings, database=committed_db)
    async with served(app, lifespan="on") as url:
        yield url


async def test_a_supervisor_reads_prints_and_downloads_a_months_report(
    server: str, committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    shots = screenshots(tmp_path)
    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await seed_march(session, source.id)
    supervisor = await make_key(committed_db, "supervisor")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{server}/supervisor/reports")
            await page.wait_for_selector("#key")  # sent to sign in first
            await page.fill("#key", supervisor)
            await page.press("#key", "Enter")
            await page.get_by_role("link", name="Reports").click()
            await expect(page.locator("h1")).to_have_text("Program reports")

            # This month first; then March 2026 from the chooser (only its fields show).
            await expect(page.locator("#quarter")).to_be_hidden()
            await page.select_option("#period", "month")
            await page.fill("#month", "2026-03")
            await page.get_by_role("button", name="Show").click()
            await expect(page.locator("#summary-title")).to_have_text("March 2026, all counties")
            weekly = page.locator("#chart-weeks rect.bar")
            await expect(weekly).to_have_count(6 * 4)
            requested = page.locator('#chart-weeks rect.bar[data-series="requested"]')
            values = [await requested.nth(i).get_attribute("data-value") for i in range(6)]
            assert values == ["1", "3", "0", "2", "1", "1"]
            for i in (0, 1, 3):  # each bar with a value really drawn
                box_ = await requested.nth(i).bounding_box()
                assert box_ is not None
                assert box_["height"] > 1
            await expect(page.locator("#chart-accept circle.point")).to_have_count(4)
            await expect(page.locator("#headline-eligible dd")).to_have_text(str(TOTAL["eligible"]))
            await expect(page.locator("#headline-callouts dd")).to_have_text("4")
            await expect(page.locator("#headline-referral-detox dd")).to_have_text("2")
            await page.screenshot(path=str(shots / "reports.png"), full_page=True)

            # The CSV of what is shown.
            async with page.expect_download() as waiting:
                await page.click("#download")
            download = await waiting.value
            assert download.suggested_filename == "corespond-report-2026-03.csv"
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            rows = list(csv.DictReader(io.StringIO(saved.read_text())))
            assert (rows[0]["breakdown"], rows[0]["eligible"], rows[0]["callouts"]) == (
                "total",
                "8",
                "4",
            )

            # A quarter in one county, from the keyboard.
            await page.focus("#period")
            await page.select_option("#period", "quarter")
            await expect(page.locator("#month")).to_be_hidden()
            await page.fill("#quarter", "2026-Q1")
            await page.select_option("#county", label="Kanawha")
            await page.press("#quarter", "Enter")
            await expect(page.locator("#summary-title")).to_have_text(
                re.compile(r"^2026 Q1 \(January.March\), Kanawha$")
            )
            await expect(page.locator("#chart-counties rect.bar")).to_have_count(4)
            # March's Kanawha calls, and K8 of 28 February.
            eligible = COUNTIES[1][2] + 1
            await expect(page.locator("#headline-eligible dd")).to_have_text(str(eligible))
            assert "county=54039" in (await page.get_attribute("#download", "href") or "")

            # Printed: the charts and tables, not the controls.
            await page.emulate_media(media="print")
            await expect(page.locator("#chooser")).to_be_hidden()
            await expect(page.locator("#download")).to_be_hidden()
            await expect(page.locator("#chart-weeks")).to_be_visible()
            pdf = await page.pdf(format="Letter")
            assert pdf.startswith(b"%PDF")
            await page.emulate_media(media="screen")

            await page.click("text=Sign out")
            await page.wait_for_selector("#key")
            assert errors == []
        finally:
            await browser.close()


async def test_the_year_after_the_call_on_the_demos_data(
    server: str, committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    """The demo's past year on the reports page: the section after the call, its chart and
    tables, and nothing that names anyone."""
    from datetime import UTC, datetime, timedelta

    from playwright.async_api import async_playwright, expect

    from corespond.assignments.policy import MatchPolicy
    from corespond.demo import seed_demo

    shots = screenshots(tmp_path)
    async with committed_db.sessionmaker() as session, session.begin():
        creds = await seed_demo(session, box, datetime.now(UTC), policy=MatchPolicy.of(Settings()))
    year = (datetime.now(UTC) - timedelta(days=60)).year

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{server}/supervisor")
            await page.fill("#key", creds.supervisor_key)
            await page.press("#key", "Enter")
            await page.goto(f"{server}/supervisor/reports?period=year&year={year}")
            await expect(page.locator("#summary-title")).to_have_text(f"{year}, all counties")
            contacts = page.locator("#after-contacts dd")
            assert int(await contacts.inner_text()) > 0
            bars = page.locator('#chart-services rect.bar[data-series="arrived"]')
            await expect(bars).to_have_count(9)
            assert (
                sum(
                    [
                        int(v or 0)
                        for v in await bars.evaluate_all("bars => bars.map(b => b.dataset.value)")
                    ]
                )
                > 0
            )
            await expect(page.locator("#table-agencies")).to_contain_text("HUNTINGTON PD")
            text = await page.locator("main").inner_text()
            assert "304-555-01" not in text  # the demo's people's phones
            # The section after the call: its headline, the chart and tables below it.
            top = await page.locator("section.after").bounding_box()
            bottom = await page.locator("#table-engaged").bounding_box()
            assert top is not None
            assert bottom is not None
            await page.screenshot(
                path=str(shots / "reports-after-the-call.png"),
                full_page=True,
                clip={
                    "x": 0,
                    "y": top["y"] - 8,
                    "width": 1280,
                    "height": bottom["y"] + bottom["height"] - top["y"] + 24,
                },
            )
            assert errors == []
        finally:
            await browser.close()
