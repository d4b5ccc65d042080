"""The supervisor's actions in a real browser (Debian's Chromium, Playwright): from the
keyboard, drill into a county, hand an offer to another peer with a reason, override a
danger police reported unfounded (audited), acknowledge an alert, which is then never sent
again; the page follows every change live (Server-Sent Events, no reload). Screenshot to
docs/supervisor-actions.png with CORESPOND_SCREENSHOTS=1."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from corespond.app import create_app
from corespond.assignments.models import Assignment
from corespond.audit.models import AuditEntry
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.notify.models import Notification
from corespond.triage.models import TriageDecisionRecord
from tests import program
from tests.browser import CHROMIUM, needs_chromium, screenshots
from tests.conftest import make_key, make_source
from tests.program import KANAWHA, PUTNAM, SOUTH_CHARLESTON, ST_ALBANS, WINFIELD
from tests.servers import served
from tests.test_assignments import auth

pytestmark = needs_chromium


@pytest.fixture
async def live(settings: Settings, committed_db: Database) -> AsyncIterator[tuple[str, FastAPI]]:
    # No timer refresh to speak of: what changes on the page must come over the live stream.
    slow = settings.model_copy(update={"supervisor_refresh_seconds": 600})
    app = create_app(slow, database=committed_db)
    async with served(app, lifespan="on") as url:
        yield url, app


async def _alert_notices(db: Database, alert_id: str) -> int:
    async with db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.alert_id == uuid.UUID(alert_id))
        )
    return int(count or 0)


async def test_a_supervisor_reassigns_overrides_and_acknowledges_from_the_page(
    live: tuple[str, FastAPI], committed_db: Database, box: SecretBox, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    server, app = live
    shots = screenshots(tmp_path)
    db = committed_db
    source = await make_source(db, box)
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.agency(session)
        await program.peer(session, "Ana Reyes", home=SOUTH_CHARLESTON)
        ben = await program.peer(session, "Ben Shaw", home=ST_ALBANS)
        await program.peer(
            session,
            "Dee Lucas",
            home=ST_ALBANS,
            credentials={
                "prss_certification": None,
                "cjis_background": None,
                "nda": now - timedelta(days=3),
            },
        )
        offered = await program.call(session, source.id, incident_number="26-400")
        dangerous = await program.call(
            session,
            source.id,
            incident_number="26-401",
            decision="ineligible",
            turned_dangerous_at=now,
            narrative="RP SAYS SUBJ NOW HOLDING A KNIFE",
        )
        for decision, danger in (("eligible", False), ("ineligible", True)):
            session.add(
                TriageDecisionRecord(
                    call_id=dangerous.id,
                    decision=decision,
                    summary=f"{decision}: test",
                    reasons=[
                        {
                            "rule": "danger.weapon" if danger else "substance.intoxication",
                            "kind": "danger" if danger else "substance",
                            "label": "weapon" if danger else "intoxication",
                            "detail": "KNIFE in narrative" if danger else "ETOH in narrative",
                        }
                    ],
                    rules_version="test",
                    inputs_sha256=decision,
                    danger=danger,
                    turned_dangerous=danger,
                )
            )
        unserved = await program.call(
            session, source.id, incident_number="26-402", county=PUTNAM, at=WINFIELD
        )
    supervisor = await make_key(db, "supervisor")
    dispatcher = await make_key(db, "dispatcher")
    async with httpx.AsyncClient(base_url=server) as api:
        contact = await api.put(
            "/v1/notify/me",
            headers=auth(supervisor),
            json={"channels": ["sms"], "phone": "+1 304 555 0177"},
        )
        assert contact.status_code == 200, contact.text
        first = await api.post(f"/v1/calls/{offered.id}/peer-requests", headers=auth(dispatcher))
        assert first.json()["peer"]["display_name"] == "Ana Reyes"
        nobody = await api.post(f"/v1/calls/{unserved.id}/peer-requests", headers=auth(dispatcher))
        assert nobody.status_code == 409
        [alert] = (await api.get("/v1/alerts", headers=auth(supervisor))).json()["items"]

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{server}/supervisor")
            await page.fill("#key", supervisor)
            await page.press("#key", "Enter")
            await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            loaded = await page.evaluate("performance.timeOrigin")

            alert_row = page.locator(f"#alert-{alert['id']}")
            await expect(alert_row).to_contain_text("No peer for kanawha-911/26-402")
            await expect(alert_row.locator(".badge.open")).to_contain_text("open")

            # Into Kanawha from the keyboard: focus its county on the map, press Enter.
            await page.focus(f"#county-{KANAWHA}")
            await page.keyboard.press("Enter")
            await expect(page.locator("#county-title")).to_have_text("Kanawha County")
            await expect(page.locator("#county-title")).to_be_focused()
            row = page.locator("#county-calls tr", has_text="26-400")
            await expect(row.locator(".state.offered")).to_contain_text("offered to Ana Reyes")
            peers = page.locator("#county-peers")
            await expect(peers.locator("tr", has_text="Dee Lucas")).to_contain_text("nda expired")

            # Reassign: a reason is required; the peer list says who cannot take it and why.
            await row.get_by_role("button", name="Reassign…").press("Enter")
            dialog = page.locator("#act")
            await expect(dialog).to_be_visible()
            await expect(page.locator("#act-peer")).to_be_focused()
            options = page.locator("#act-peer option")
            await expect(options.first).to_contain_text("Ben Shaw")
            await expect(page.locator("#act-peer option[disabled]")).to_contain_text(
                ["Ana Reyes — holds this assignment", re.compile(r"Dee Lucas — credentials")]
            )
            await page.keyboard.press("Tab")
            await expect(page.locator("#act-reason")).to_be_focused()
            await page.keyboard.press("Enter")  # no reason yet
            await expect(page.locator("#act-error")).to_contain_text("Say why")
            await page.keyboard.type("Ana is stuck at a crash scene on I-64")
            await page.keyboard.press("Enter")
            await expect(dialog).to_be_hidden()
            await expect(page.locator("#message")).to_contain_text("Reassigned")
            await expect(row.locator(".state.offered")).to_contain_text("offered to Ben Shaw")

            # Override the danger police found unfounded.
            danger_row = page.locator("#county-calls tr", has_text="26-401")
            await expect(danger_row.locator(".decision")).to_have_text("ineligible")
            await expect(danger_row).to_contain_text("turned dangerous")
            await danger_row.get_by_role("button", name="Override danger…").click()
            await page.fill("#act-reason", "Cpl. Meade: the knife was a phone, no threat")
            await page.click("#act-submit")
            await expect(dialog).to_be_hidden()
            await expect(danger_row.locator(".decision")).to_have_text("review")
            await expect(danger_row).not_to_contain_text("turned dangerous")
            await expect(danger_row).to_contain_text("danger reported unfounded by police")

            # Acknowledge the alert; it is then never sent again.
            await alert_row.get_by_role("button", name="Acknowledge").click()
            await page.fill("#act-reason", "asked Recovery Point to cover Putnam")
            await page.press("#act-reason", "Enter")
            await expect(dialog).to_be_hidden()
            await expect(alert_row.locator(".badge.acknowledged")).to_contain_text(
                "acknowledged by supervisor key (supervisor)"
            )
            await expect(alert_row).to_contain_text("asked Recovery Point to cover Putnam")
            await expect(alert_row.get_by_role("button", name="Acknowledge")).to_have_count(0)

            # Elsewhere, Ben accepts: the page follows by itself.
            async with httpx.AsyncClient(base_url=server) as api:
                ben_key = await make_key(db, "peer", f"peer:{ben.id}")
                [mine] = (
                    await api.get("/v1/assignments?status=offered", headers=auth(ben_key))
                ).json()["items"]
                accepted = await api.post(
                    f"/v1/assignments/{mine['id']}/accept", headers=auth(ben_key)
                )
                assert accepted.status_code == 200, accepted.text
            await expect(row.locator(".state.staged")).to_contain_text(
                "Ben Shaw staged", timeout=10_000
            )
            assert await page.evaluate("performance.timeOrigin") == loaded  # never reloaded
            await page.screenshot(path=str(shots / "supervisor-actions.png"), full_page=True)

            await page.click("text=Sign out")
            await page.wait_for_selector("#key")
            assert errors == []
        finally:
            await browser.close()

    # On the record: who reassigned and overrode, and why.
    async with db.sessionmaker() as session:
        entries = {
            e.action: e
            for e in (
                await session.scalars(
                    select(AuditEntry).where(
                        AuditEntry.action.in_(
                            (
                                "assignment.reassigned",
                                "call.danger_overridden",
                                "alert.acknowledged",
                            )
                        )
                    )
                )
            ).all()
        }
        old = await session.get(Assignment, uuid.UUID(first.json()["id"]))
    assert entries["assignment.reassigned"].detail["reason"] == (
        "Ana is stuck at a crash scene on I-64"
    )
    assert entries["call.danger_overridden"].detail["reason"].startswith("Cpl. Meade")
    assert entries["alert.acknowledged"].actor == "supervisor key"
    assert old is not None
    assert old.cancel_reason == "reassigned"

    # The acknowledged alert is not repeated, however long it stays unresolved.
    told = await _alert_notices(db, alert["id"])
    for later in (timedelta(minutes=11), timedelta(minutes=45), timedelta(hours=3)):
        await app.state.alert_jobs.sweep(datetime.now(UTC) + later)
    assert await _alert_notices(db, alert["id"]) == told
    async with db.sessionmaker() as session:
        states = (
            await session.scalars(
                select(Notification.state).where(Notification.alert_id == uuid.UUID(alert["id"]))
            )
        ).all()
    assert set(states) <= {"skipped", "dead", "sent"}
    assert "pending" not in states
