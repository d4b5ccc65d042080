"""The peer app on a phone: Debian's Chromium, driven by Playwright, in a 390 by 844 touch
viewport. Sign in by link; an offer arrives while the page is open; accept; wait until
dispatch reports the scene secure; en route; on scene; clear with an outcome. A decline moves
the offer on; an unanswered offer shows as expired. Screenshots of each screen go to docs/
with CORESPOND_SCREENSHOTS=1.

Skipped, saying how to install it, where Chromium is missing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from corespond.app import create_app
from corespond.assignments.models import Assignment
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from tests import program
from tests.browser import CHROMIUM, needs_chromium, screenshots
from tests.conftest import make_key, make_source
from tests.servers import served

pytestmark = needs_chromium

# Screenshots go to docs/ only when asked (CORESPOND_SCREENSHOTS=1): a test run changes no
# file of the repository.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
async def server(settings: Settings, committed_db: Database) -> AsyncIterator[str]:
    # The worker on, with quick timers: offers expire by themselves, as in production.
    live = settings.model_copy(
        update={"worker_enabled": True, "timer_sweep_seconds": 0.5, "ack_timeout_seconds": 30}
    )
    app = create_app(live, database=committed_db)
    async with served(app, lifespan="on") as url:
        yield url


async def test_a_peer_answers_a_call_from_a_phone(
    server: str, committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    shots = screenshots(tmp_path)

    source = await make_source(committed_db, box)
    async with committed_db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        ana = await program.peer(session, "Ana Reyes", home=program.SOUTH_CHARLESTON)
        await program.peer(session, "Ben Cole", home=program.ST_ALBANS)
    admin = await make_key(committed_db, "admin")
    dispatcher = await make_key(committed_db, "dispatcher")
    bearer = {"Authorization": f"Bearer {admin}"}
    calls = []

    async with httpx.AsyncClient(base_url=server, timeout=10) as api:
        link = (await api.post(f"/v1/peers/{ana.id}/sign-in-links", headers=bearer)).json()["url"]
        async with committed_db.sessionmaker() as session, session.begin():
            for number, narrative in enumerate(
                (
                    "CALLER STATES HUSBAND OD ON HEROIN, NARCAN X2 GIVEN BY WIFE. NOW AWAKE "
                    "AND TALKING. NCIC: ACTIVE WARRANT",
                    "FEMALE INTOXICATED AT BUS STOP, WANTS HELP WITH DETOX",
                    "MALE NODDING OFF IN CAR, POSS FENTANYL, BREATHING",
                )
            ):
                call = await program.call(
                    session,
                    source.id,
                    narrative=narrative,
                    incident_number=f"26-10{number}",
                )
                await program.triaged(session, call)
                calls.append(str(call.id))

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                context = await browser.new_context(**PHONE)
                page = await context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

                await page.goto(link)
                await page.screenshot(path=str(shots / "peer-1-sign-in.png"))
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#live")).to_contain_text("Live", timeout=10_000)
                await expect(page.locator("#assignment")).to_contain_text("No offer right now")
                await page.screenshot(path=str(shots / "peer-2-waiting.png"), full_page=True)

                # The offer arrives while the page is open.
                offered = await api.post(
                    f"/v1/calls/{calls[0]}/peer-requests",
                    headers={"Authorization": f"Bearer {dispatcher}"},
                    json={"note": "Wife will meet you at the side door"},
                )
                assert offered.status_code == 201, offered.text
                assignment = offered.json()["id"]
                await expect(page.get_by_role("alert")).to_contain_text("New offer", timeout=5000)
                await expect(page.locator("#countdown")).to_have_text(
                    re.compile(r"^[0-9]:[0-5][0-9]$")
                )
                await expect(page.locator("#assignment")).to_contain_text("side door")
                await expect(page.locator("#assignment")).not_to_contain_text("WARRANT")
                await page.screenshot(path=str(shots / "peer-3-offer.png"), full_page=True)

                await page.get_by_role("button", name="Accept").tap()
                await expect(page.locator("#wait")).to_contain_text("Wait", timeout=5000)
                await expect(page.locator("#en-route")).to_be_disabled()
                await page.screenshot(path=str(shots / "peer-4-staged.png"), full_page=True)

                # Dispatch reports the scene secure; the page turns to "go" by itself.
                secured = await api.post(
                    f"/v1/assignments/{assignment}/scene-secure",
                    headers={"Authorization": f"Bearer {dispatcher}"},
                )
                assert secured.status_code == 200, secured.text
                await expect(page.locator("#go")).to_contain_text("Go", timeout=5000)
                await page.screenshot(path=str(shots / "peer-5-go.png"), full_page=True)

                await page.locator("#en-route").tap()
                await expect(page.locator("#on-scene")).to_be_visible(timeout=5000)
                await page.locator("#on-scene").tap()
                await expect(page.locator("#clear-form")).to_be_visible(timeout=5000)
                await page.select_option("#outcome", "referred")
                await page.get_by_label("Detox").check()
                # A live update arriving while the form is filled in must not wipe it.
                await page.evaluate("load()")
                await expect(page.locator("#outcome")).to_have_value("referred")
                await page.screenshot(path=str(shots / "peer-6-clear.png"), full_page=True)
                await page.locator("#clear").tap()
                await expect(page.locator("#ended")).to_contain_text("Cleared", timeout=5000)
                done = await api.get(f"/v1/assignments/{assignment}", headers=bearer)
                assert done.json()["outcome"] == "referred"
                assert done.json()["referrals"] == ["detox"]

                # A decline, with a reason, moves the next call's offer to Ben.
                offered = await api.post(
                    f"/v1/calls/{calls[1]}/peer-requests",
                    headers={"Authorization": f"Bearer {dispatcher}"},
                )
                await expect(page.get_by_role("alert")).to_contain_text("New offer", timeout=5000)
                await page.get_by_role("button", name="Decline", exact=True).tap()
                await page.select_option("#decline-reason", "Too far away")
                await page.screenshot(path=str(shots / "peer-7-decline.png"), full_page=True)
                await page.locator("#decline-confirm").tap()
                await expect(page.locator("#ended")).to_contain_text("declined", timeout=5000)
                moved = await api.get(
                    f"/v1/assignments?call={calls[1]}&status=offered", headers=bearer
                )
                assert [a["peer"]["display_name"] for a in moved.json()["items"]] == ["Ben Cole"]

                # An offer nobody answers expires, and the page says so.
                offered = await api.post(
                    f"/v1/calls/{calls[2]}/peer-requests",
                    headers={"Authorization": f"Bearer {dispatcher}"},
                )
                await expect(page.get_by_role("alert")).to_contain_text("New offer", timeout=5000)
                async with committed_db.sessionmaker() as session, session.begin():
                    await session.execute(
                        update(Assignment)
                        .where(Assignment.id == offered.json()["id"])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
                    )
                await expect(page.locator("#ended")).to_contain_text("timed out", timeout=8000)
                await page.screenshot(path=str(shots / "peer-8-expired.png"), full_page=True)
                assert errors == []
            finally:
                await browser.close()
