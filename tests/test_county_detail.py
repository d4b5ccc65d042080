"""A county drilled into (GET /v1/coverage/counties/{county}): its calls of the last hours
with their peers, the peers who serve it with why they are or are not free, and their
shifts; within the key's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from corespond.calls.models import Call
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.program import CABELL, KANAWHA, SOUTH_CHARLESTON, ST_ALBANS
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem


async def test_a_county_with_its_calls_peers_and_shifts(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {CABELL: "primary"})
        await program.agency(session)
        ana = await program.peer(session, "Ana", home=SOUTH_CHARLESTON)
        await program.peer(session, "Ben", home=ST_ALBANS, status="off_duty")
        dee = await program.peer(
            session,
            "Dee",
            home=ST_ALBANS,
            credentials={
                "prss_certification": None,
                "cjis_background": None,
                "nda": now + timedelta(days=10),
            },
            shift_hours=(20, 32),
        )
        await program.shift(session, dee, now + timedelta(days=2), 12, (KANAWHA,))
        await program.peer(session, "Gus", provider_id="rp", counties=(CABELL,))
        offered = await program.call(session, source.id, incident_number="26-1")
        danger = await program.call(
            session,
            source.id,
            incident_number="26-2",
            decision="ineligible",
            turned_dangerous_at=now,
        )
        old = await program.call(session, source.id, incident_number="26-0")
        await program.call(session, source.id, incident_number="26-9", county=CABELL)
        await session.execute(
            update(Call).where(Call.id == old.id).values(opened_at=now - timedelta(hours=20))
        )
        await session.execute(
            update(Call).where(Call.id == danger.id).values(opened_at=now - timedelta(minutes=5))
        )
    supervisor = await make_key(db, "supervisor")
    asked = await client.post(f"/v1/calls/{offered.id}/peer-requests", headers=auth(supervisor))
    assert asked.status_code == 201, asked.text

    answer = await client.get("/v1/coverage/counties/Kanawha", headers=auth(supervisor))
    assert answer.status_code == 200, answer.text
    county = answer.json()
    assert (county["fips"], county["name"], county["provider_id"]) == (KANAWHA, "Kanawha", "wvsl")
    assert county["state"] == "busy"  # Ana holds the offer, Ben is off duty
    assert [c["incident_number"] for c in county["calls"]] == ["26-1", "26-2"]  # newest first
    first, dangerous = county["calls"]
    assert first["assignment"]["status"] == "offered"
    assert first["assignment"]["peer_display_name"] == "Ana"
    assert first["assignment"]["expires_at"] is not None
    assert dangerous["turned_dangerous_at"] is not None
    assert dangerous["assignment"] is None

    peers = {p["display_name"]: p for p in county["peers"]}
    assert list(peers) == ["Ana", "Ben", "Dee"]  # on shift now first; not Cabell's Gus
    assert peers["Ana"]["on_shift_now"] is True
    assert peers["Ana"]["free"] is False
    assert peers["Ana"]["why_not"] == "on an assignment"
    assert peers["Ana"]["assignment"]["incident_number"] == "26-1"
    assert peers["Ana"]["assignment"]["status"] == "offered"
    assert peers["Ben"]["why_not"] == "status off_duty"
    assert peers["Dee"]["on_shift_now"] is False
    assert peers["Dee"]["why_not"] == "not on shift here now"
    assert [c["kind"] for c in peers["Dee"]["credentials_expiring"]] == ["nda"]
    assert len(peers["Dee"]["shifts"]) == 2
    assert peers["Dee"]["shifts"][0]["starts_at"] < peers["Dee"]["shifts"][1]["starts_at"]
    assert peers["Ana"]["shifts"][0]["counties"] == [KANAWHA]
    assert str(ana.id) == peers["Ana"]["peer_id"]

    by_fips = await client.get(f"/v1/coverage/counties/{KANAWHA}", headers=auth(supervisor))
    assert by_fips.json()["name"] == "Kanawha"


async def test_a_county_is_drilled_into_within_scope(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.call(session, source.id, incident_number="26-5")
    kanawha = await make_key(db, "supervisor", f"county:{KANAWHA}")
    cabell = await make_key(db, "supervisor", f"county:{CABELL}")
    ok = await client.get("/v1/coverage/counties/Kanawha", headers=auth(kanawha))
    assert ok.status_code == 200
    assert [c["incident_number"] for c in ok.json()["calls"]] == ["26-5"]
    assert_problem(await client.get("/v1/coverage/counties/Kanawha", headers=auth(cabell)), 404)
    agency = await make_key(db, "supervisor", "agency:CHARLESTON PD")
    assert_problem(await client.get("/v1/coverage/counties/Kanawha", headers=auth(agency)), 403)
    dispatcher = await make_key(db, "dispatcher")
    assert_problem(await client.get("/v1/coverage/counties/Kanawha", headers=auth(dispatcher)), 403)
    problem = assert_problem(
        await client.get("/v1/coverage/counties/Atlantis", headers=auth(kanawha)), 422
    )
    assert problem["invalid-params"][0]["name"] == "county"
    assert_problem(
        await client.get("/v1/coverage/counties/" + "x" * 41, headers=auth(kanawha)), 422
    )


async def test_a_peers_call_in_another_county_is_not_shown_to_a_county_key(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    """Ana serves Kanawha and Putnam and is on a Putnam call: a Kanawha key sees that she is
    busy, never which call."""
    from tests.program import PUTNAM

    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", PUTNAM: "primary"})
        await program.agency(session)
        await program.peer(session, "Ana", counties=(KANAWHA, PUTNAM), home=SOUTH_CHARLESTON)
        theirs = await program.call(session, source.id, incident_number="26-77", county=PUTNAM)
    admin = await make_key(db, "admin")
    asked = await client.post(f"/v1/calls/{theirs.id}/peer-requests", headers=auth(admin))
    assert asked.status_code == 201, asked.text
    kanawha = await make_key(db, "supervisor", f"county:{KANAWHA}")
    answer = await client.get(f"/v1/coverage/counties/{KANAWHA}", headers=auth(kanawha))
    assert answer.status_code == 200, answer.text
    [ana] = answer.json()["peers"]
    assert ana["free"] is False
    assert ana["assignment"] is None
    assert "26-77" not in answer.text
