"""The supervisor page's own endpoints for its actions: a signed-in session from this site
only, the same rules of scope as the API, bad input answered 4xx problem+json."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from corespond.assignments.models import Assignment
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.program import CABELL, KANAWHA
from tests.test_assignments import Program, auth, request
from tests.test_ingest_api import assert_problem
from tests.test_supervisor_notices import SITE, _page_session


async def test_the_pages_actions_need_a_session_from_this_site_and_keep_to_scope(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    p = await Program(db, source).build()
    offer = (await request(client, p)).json()
    page = await _page_session(client, p.supervisor)
    reassign = f"/supervisor/assignments/{offer['id']}/reassign"
    body = {"peer_id": str(p.ben.id), "reason": "Ben is closer now"}

    # No session, another site, a bad body: refused, and nothing changes.
    assert_problem(await client.post(reassign, headers=SITE, json=body), 401)
    cross = {**page, "origin": "https://elsewhere.example", "sec-fetch-site": "cross-site"}
    assert_problem(await client.post(reassign, headers=cross, json=body), 403)
    for bad, field in (
        ({"peer_id": str(p.ben.id)}, "reason"),
        ({"peer_id": "ben", "reason": "x"}, "peer_id"),
        ({**body, "extra": 1}, "extra"),
    ):
        problem = assert_problem(await client.post(reassign, headers=page, json=bad), 422)
        assert field in str(problem["invalid-params"])
    assert_problem(
        await client.post(
            f"/supervisor/assignments/{offer['id']}/cancel", headers=page, json={"reason": ""}
        ),
        422,
    )
    assert_problem(
        await client.post(
            f"/supervisor/assignments/{uuid.uuid4()}/reassign", headers=page, json=body
        ),
        404,
    )
    assert_problem(await client.get("/supervisor/counties/99999", headers=page), 404)
    assert_problem(await client.get("/supervisor/counties/" + KANAWHA, headers=SITE), 401)
    assert_problem(await client.get("/supervisor/events", headers=SITE), 401)

    # Who could take it, then hand it over.
    who = await client.get(f"/supervisor/assignments/{offer['id']}/candidates", headers=page)
    assert who.status_code == 200, who.text
    assert [c["display_name"] for c in who.json()["candidates"]] == ["Ben"]
    moved = await client.post(reassign, headers=page, json=body)
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "offered"
    county = (await client.get(f"/supervisor/counties/{KANAWHA}", headers=page)).json()
    [call] = county["calls"]
    assert call["assignment"]["peer_display_name"] == "Ben"
    cancelled = await client.post(
        f"/supervisor/assignments/{moved.json()['assignment']}/cancel",
        headers=page,
        json={"reason": "family drove him to detox"},
    )
    assert cancelled.status_code == 200, cancelled.text
    async with db.sessionmaker() as session:
        stored = await session.get(Assignment, uuid.UUID(moved.json()["assignment"]))
        assert stored is not None
        assert (stored.status, stored.cancel_reason) == ("cancelled", "supervisor")

    # A county-scoped supervisor's session: its own county only.
    cabell = await make_key(db, "supervisor", f"county:{CABELL}")
    theirs = await _page_session(client, cabell)
    assert_problem(await client.get(f"/supervisor/counties/{KANAWHA}", headers=theirs), 404)
    assert (await client.get(f"/supervisor/counties/{CABELL}", headers=theirs)).status_code == 200
    async with db.sessionmaker() as session, session.begin():
        other = await program.call(
            session, source.id, incident_number="26-x", decision="ineligible"
        )
    assert_problem(
        await client.post(
            f"/supervisor/calls/{other.id}/danger-override", headers=theirs, json={"reason": "x"}
        ),
        404,
    )
    assert_problem(
        await client.post(
            f"/supervisor/calls/{other.id}/danger-override", headers=page, json={"reason": "x"}
        ),
        409,
        "not-turned-dangerous",
    )
    data = (await client.get("/supervisor/data", headers=theirs)).json()
    assert data["alerts"] == []


async def test_the_page_lists_and_acknowledges_alerts(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        call = await program.call(session, source.id, incident_number="26-88")
    supervisor = await make_key(db, "supervisor")
    assert (
        await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(supervisor))
    ).status_code == 409
    page = await _page_session(client, supervisor)
    [alert] = (await client.get("/supervisor/data", headers=page)).json()["alerts"]
    assert (alert["kind"], alert["state"]) == ("unfilled", "open")
    url = f"/supervisor/alerts/{alert['id']}/acknowledge"
    assert_problem(await client.post(url, headers=page, json={"note": "x" * 301}), 422)
    done = await client.post(url, headers=page, json={"note": "on it"})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "acknowledged"
    assert_problem(await client.post(url, headers=page), 409, "alert-acknowledged")
    [shown] = (await client.get("/supervisor/data", headers=page)).json()["alerts"]
    assert shown["acknowledged_by"] == "supervisor key (supervisor)"
    assert shown["acknowledged_note"] == "on it"
    kanawha = await make_key(db, "supervisor", f"county:{CABELL}")
    theirs = await _page_session(client, kanawha)
    assert_problem(await client.post(url, headers=theirs), 404)
    async with db.sessionmaker() as session:
        assert await session.scalar(select(Assignment.status)) == "unfilled"
