"""The demo seed: safe to run again whatever was changed through the API since, and never
a reason for the service not to start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from structlog.testing import capture_logs

from corespond.assignments.policy import MatchPolicy
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.demo import DemoCredentials, seed_demo
from corespond.geo.service import geography_for
from corespond.roster import service as roster
from tests.conftest import make_key


async def _seed(db: Database, box: SecretBox, settings: Settings) -> DemoCredentials:
    """One run of the demo seed, as ``corespond serve --demo`` does it: one transaction."""
    async with db.sessionmaker() as session, session.begin():
        return await seed_demo(session, box, datetime.now(UTC), policy=MatchPolicy.of(settings))


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _peer_names(client: httpx.AsyncClient, key: str) -> list[str]:
    response = await client.get("/v1/peers", headers=_bearer(key))
    assert response.status_code == 200, response.text
    return sorted(p["display_name"] for p in response.json()["items"])


async def test_a_demo_peer_renamed_through_the_api_is_found_again_not_duplicated(
    db: Database, box: SecretBox, settings: Settings, client: httpx.AsyncClient
) -> None:
    first = await _seed(db, box, settings)
    admin = await make_key(db, "provider_admin", "provider:wvsl")
    peers = (await client.get("/v1/peers", headers=_bearer(admin))).json()["items"]
    jordan = next(p for p in peers if p["display_name"] == "Jordan Miller")
    renamed = await client.patch(
        f"/v1/peers/{jordan['id']}",
        json={"display_name": "Jordan Miller-Reyes"},
        headers=_bearer(admin),
    )
    assert renamed.status_code == 200, renamed.text

    again = await _seed(db, box, settings)

    assert again.source_secret == first.source_secret
    assert again.events_accepted == 0
    assert await _peer_names(client, again.admin_key) == [
        "Casey Adkins",
        "Jordan Miller-Reyes",
        "Riley Hatfield",
        "Sam Cole",
    ]
    # The new peer key is the renamed peer's own: it sees the call the demo routed to them
    # (and their calls of the demo's past year, newest first after it).
    own = await client.get("/v1/assignments", headers=_bearer(again.peer_keys["Jordan Miller"]))
    assert own.status_code == 200, own.text
    items = own.json()["items"]
    assert {a["peer"]["display_name"] for a in items} == {"Jordan Miller-Reyes"}
    assert items[0]["call"]["incident_number"] == "DEMO-0001"
    assert all(a["call"]["incident_number"].startswith("H-") for a in items[1:])
    # The keys of the first run were revoked.
    old = await client.get("/v1/assignments", headers=_bearer(first.peer_keys["Jordan Miller"]))
    assert old.status_code == 401


async def test_a_demo_part_that_cannot_be_seeded_is_logged_and_the_rest_still_is(
    db: Database, box: SecretBox, settings: Settings, client: httpx.AsyncClient
) -> None:
    # An operator's own provider is already Kanawha's primary: the demo's rosters cannot
    # claim it, and the demo must still give its keys and calls so the service starts.
    async with db.sessionmaker() as session, session.begin():
        await roster.create_provider(session, "kanawha-peers", "Kanawha Peers")
        await roster.set_counties(
            session, geography_for().atlas, "kanawha-peers", [("Kanawha", "primary")]
        )

    with capture_logs() as logs:
        creds = await _seed(db, box, settings)

    assert [(e["event"], e["part"]) for e in logs if e["log_level"] == "error"] == [
        ("demo_part_not_seeded", "rosters")
    ]
    assert creds.peer_keys == {}
    calls = await client.get("/v1/calls", headers=_bearer(creds.admin_key))
    assert calls.status_code == 200, calls.text
    assert sorted(c["incident_number"] for c in calls.json()["items"]) == [
        f"DEMO-000{n}" for n in range(1, 7)
    ]
    providers = await client.get("/v1/providers", headers=_bearer(creds.supervisor_key))
    assert [p["id"] for p in providers.json()] == ["kanawha-peers"]


async def test_the_demo_seeds_a_year_of_activity_after_the_call(
    db: Database, box: SecretBox, settings: Settings, client: httpx.AsyncClient
) -> None:
    creds = await _seed(db, box, settings)
    headers = _bearer(creds.supervisor_key)
    now = datetime.now(UTC)
    year = now - timedelta(days=40)
    report = await client.get(
        "/v1/reports/program",
        params={
            "from": (year - timedelta(days=300)).date().isoformat(),
            "to": year.date().isoformat(),
        },
        headers=headers,
    )
    assert report.status_code == 200, report.text
    body = report.json()
    after = body["after"]["total"]
    # Plausible: about a hundred callouts, contacts most with consent, referrals made and
    # arrived, follow-ups mostly on time, some people still engaged a year on.
    assert 60 <= body["total"]["callouts"] <= 160
    assert after["contacts_identified"] > after["contacts_deidentified"] > 0
    assert after["consents"] == after["contacts_identified"]
    referred = sum(k["made"] for k in after["service_referrals"].values())
    arrived = sum(k["arrived"] for k in after["service_referrals"].values())
    assert referred > arrived > 0
    followups = after["followups"]
    assert followups["on_time"] > followups["late"] + followups["missed"] > 0
    assert after["engaged"]["30"] >= after["engaged"]["90"] > 0
    assert {a["agency"] for a in body["by_agency"]} >= {"CHARLESTON PD", "HUNTINGTON PD"}
    # The live demo's month is left as it was: the history ends a month before.
    month = await client.get("/v1/reports/program", headers=headers)
    assert {a["agency"] for a in month.json()["by_agency"]} <= {
        "CHARLESTON PD",
        "KANAWHA COUNTY SHERIFF",
        "LOGAN COUNTY SHERIFF",
    }
    # The live feed's assignments apart from the history's.
    live = await client.get("/v1/assignments?source=demo-cad", headers=headers)
    assert {a["call"]["incident_number"][:5] for a in live.json()["items"]} == {"DEMO-"}
    past = await client.get("/v1/assignments?source=demo-history&limit=5", headers=headers)
    assert {a["call"]["incident_number"][:2] for a in past.json()["items"]} == {"H-"}
    # Seeded once: a second run adds nothing.
    again = await _seed(db, box, settings)
    second = await client.get(
        "/v1/reports/program",
        params={
            "from": (year - timedelta(days=300)).date().isoformat(),
            "to": year.date().isoformat(),
        },
        headers=_bearer(again.supervisor_key),
    )
    assert second.json()["after"] == body["after"]
