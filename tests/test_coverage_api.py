"""Coverage, gaps and the program summary over the API, on a real database; the supervisor
page's sign-in, cookie and data over HTTP (the browser test is test_supervisor_browser.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from corespond.app import create_app
from corespond.assignments.models import Assignment, PeerRequest
from corespond.config import Settings
from corespond.coverage.service import SummaryRow
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.program import CABELL, KANAWHA, PUTNAM
from tests.test_assignments import auth
from tests.test_ingest_api import assert_problem


async def seed(db: Database, source: Source) -> dict[str, object]:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", PUTNAM: "primary"})
        await program.provider(session, "rp", {CABELL: "primary"})
        free = await program.peer(session, "Free Fran", shift_hours=(-1, 5))
        await program.peer(session, "Off Otto", status="off_duty", shift_hours=(-1, 5))
        busy = await program.peer(
            session, "Cabell Cy", provider_id="rp", counties=(CABELL,), shift_hours=(-2, 2)
        )
        call = await program.call(session, source.id, county=CABELL)
    return {"now": now, "free": free, "busy": busy, "call": call}


async def test_coverage_now(client: httpx.AsyncClient, db: Database, source: Source) -> None:
    data = await seed(db, source)
    supervisor = await make_key(db, "supervisor")
    # Cabell's only peer takes a call: on shift, none free.
    offer = await client.post(
        f"/v1/calls/{data['call'].id}/peer-requests",
        headers=auth(supervisor),  # type: ignore[attr-defined]
    )
    assert offer.status_code == 201
    response = await client.get("/v1/coverage", headers=auth(supervisor))
    assert response.status_code == 200
    counties = {c["name"]: c for c in response.json()["counties"]}
    assert len(counties) == 55
    kanawha = counties["Kanawha"]
    assert (kanawha["state"], kanawha["covered"], kanawha["available"]) == ("available", True, 1)
    assert kanawha["provider_id"] == "wvsl"
    who = {p["display_name"]: p for p in kanawha["peers_on_shift"]}
    assert who["Off Otto"]["free"] is False
    assert who["Off Otto"]["why_not"] == "status off_duty"
    assert datetime.fromisoformat(who["Free Fran"]["shift_ends_at"]).utcoffset() is not None
    cabell = counties["Cabell"]
    assert (cabell["state"], cabell["covered"], cabell["active_assignments"]) == ("busy", False, 1)
    assert cabell["peers_on_shift"][0]["why_not"] == "on an assignment"
    assert (counties["Putnam"]["state"], counties["Putnam"]["provider_id"]) == ("none", "wvsl")
    assert counties["Logan"]["provider_id"] is None

    later = await client.get(
        "/v1/coverage",
        params={"at": (data["now"] + timedelta(hours=6)).isoformat()},  # type: ignore[operator]
        headers=auth(supervisor),
    )
    assert {c["name"]: c["state"] for c in later.json()["counties"]}["Kanawha"] == "none"


async def test_gaps(client: httpx.AsyncClient, db: Database, source: Source) -> None:
    data = await seed(db, source)
    now: datetime = data["now"]  # type: ignore[assignment]
    supervisor = await make_key(db, "supervisor")
    response = await client.get(
        "/v1/coverage/gaps",
        params={
            "from": now.isoformat(),
            "to": (now + timedelta(hours=24)).isoformat(),
            "county": ["Kanawha", "54011"],
        },
        headers=auth(supervisor),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert datetime.fromisoformat(body["starts_at"]).utcoffset() in (
        timedelta(hours=-5),
        timedelta(hours=-4),
    )  # in the program's time zone
    rows = {r["name"]: r for r in body["counties"]}
    # Kanawha: two overlapping shifts until now+5h, then nothing.
    [gap] = rows["Kanawha"]["gaps"]
    assert gap["hours"] == 19.0
    assert rows["Kanawha"]["uncovered_hours"] == 19.0
    assert rows["Cabell"]["uncovered_hours"] == 22.0
    served = await client.get(
        "/v1/coverage/gaps", params={"provided_only": "true"}, headers=auth(supervisor)
    )
    assert {r["name"] for r in served.json()["counties"]} == {"Kanawha", "Putnam", "Cabell"}
    assert {r["uncovered_hours"] for r in served.json()["counties"]} != {0}


async def test_summary_json_and_csv(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    data = await seed(db, source)
    supervisor = await make_key(db, "supervisor")
    busy_key = await make_key(db, "peer", f"peer:{data['busy'].id}")  # type: ignore[attr-defined]
    offer = (
        await client.post(
            f"/v1/calls/{data['call'].id}/peer-requests",
            headers=auth(supervisor),  # type: ignore[attr-defined]
        )
    ).json()
    url = f"/v1/assignments/{offer['id']}"
    await client.post(f"{url}/accept", headers=auth(busy_key))
    await client.post(f"{url}/scene-secure", headers=auth(supervisor))
    await client.post(f"{url}/en-route", headers=auth(busy_key))
    await client.post(f"{url}/on-scene", headers=auth(busy_key))
    cleared = await client.post(
        f"{url}/clear", headers=auth(busy_key), json={"outcome": "referred", "referrals": ["mat"]}
    )
    assert cleared.status_code == 200
    async with db.sessionmaker() as session, session.begin():
        await program.call(session, source.id)  # eligible, Kanawha, never requested
    response = await client.get("/v1/coverage/summary", headers=auth(supervisor))
    assert response.status_code == 200
    rows = {(r["county"], r["provider"]): r for r in response.json()["rows"]}
    cabell = rows[("Cabell", "rp")]
    assert (cabell["eligible_calls"], cabell["requests"], cabell["filled"]) == (1, 1, 1)
    assert cabell["outcomes"] == {"referred": 1}
    assert cabell["referrals"] == {"mat": 1}
    assert cabell["median_minutes_to_accept"] is not None
    assert rows[("Kanawha", "wvsl")]["eligible_calls"] == 1

    as_csv = await client.get(
        "/v1/coverage/summary", headers={**auth(supervisor), "accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    cabell_row = next(r for r in table if r["county"] == "Cabell")
    assert cabell_row["outcome_referred"] == "1"
    assert cabell_row["referral_mat"] == "1"


async def test_coverage_refuses_cleanly(client: httpx.AsyncClient, db: Database) -> None:
    supervisor = await make_key(db, "supervisor")
    dispatcher = await make_key(db, "dispatcher")
    for path in ("/v1/coverage", "/v1/coverage/gaps", "/v1/coverage/summary"):
        assert_problem(await client.get(path), 401)
        assert_problem(await client.get(path, headers=auth(dispatcher)), 403)
    bad = [
        ("/v1/coverage", {"at": "yesterday"}, "not a date"),
        ("/v1/coverage", {"at": "2026-03-08 02:30"}, "does not exist"),
        ("/v1/coverage/gaps", {"from": "2026-11-02 00:00", "to": "2026-11-01 00:00"}, "after"),
        ("/v1/coverage/gaps", {"from": "2026-01-01 00:00", "to": "2026-12-01 00:00"}, "at most"),
        ("/v1/coverage/gaps", {"county": "Atlantis"}, "unknown county"),
        ("/v1/coverage/summary", {"from": "1999-01-01 00:00"}, "between"),
    ]
    for path, params, why in bad:
        assert_problem(await client.get(path, params=params, headers=auth(supervisor)), 422, why)


def session_token(response: httpx.Response) -> str:
    cookie = response.headers["set-cookie"]
    return cookie.split(";")[0].split("=", 1)[1]


async def test_supervisor_sign_in_and_out(client: httpx.AsyncClient, db: Database) -> None:
    supervisor = await make_key(db, "supervisor")
    dispatcher = await make_key(db, "dispatcher")
    first = await client.get("/supervisor")
    assert first.status_code == 200
    assert "Supervisor API key" in first.text
    assert "default-src 'self'" in first.headers["content-security-policy"]
    assert (await client.get("/supervisor/data")).status_code == 401

    wrong = await client.post("/supervisor/login", data={"key": "csk_nope"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    not_allowed = await client.post("/supervisor/login", data={"key": dispatcher})
    assert not_allowed.status_code == 403
    assert "dispatcher key cannot" in not_allowed.text

    signed = await client.post(
        "/supervisor/login", data={"key": supervisor}, headers={"x-forwarded-proto": "https"}
    )
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/supervisor"):
        assert flag.lower() in cookie.lower()
    token = session_token(signed)
    assert supervisor not in cookie
    assert len(token) > 30
    client.cookies.set("corespond_supervisor", token, path="/supervisor")
    page = await client.get("/supervisor")
    assert page.status_code == 200
    assert 'id="map"' in page.text
    assert page.text.count('class="county ') == 55
    data = await client.get("/supervisor/data")
    assert data.status_code == 200
    assert len(data.json()["counties"]) == 55
    assert (await client.get("/supervisor/static/supervisor.js")).status_code == 200
    assert (await client.get("/supervisor/static/secret.py")).status_code == 404

    out = await client.post("/supervisor/logout")
    assert out.status_code == 303
    assert "corespond_supervisor=" in out.headers["set-cookie"]
    client.cookies.set("corespond_supervisor", token, path="/supervisor")  # a copied cookie
    assert (await client.get("/supervisor/data")).status_code == 401  # ended on the server
    plain = await client.post("/supervisor/login", data={"key": supervisor})
    assert "secure" not in plain.headers["set-cookie"].lower()  # plain HTTP in development


async def test_sign_in_and_out_refuse_other_sites(client: httpx.AsyncClient, db: Database) -> None:
    supervisor = await make_key(db, "supervisor")
    forged = await client.post(
        "/supervisor/login",
        data={"key": supervisor},
        headers={"origin": "http://evil.example", "host": "test"},
    )
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers
    cross = await client.post("/supervisor/logout", headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    same = await client.post(
        "/supervisor/login",
        data={"key": supervisor},
        headers={"origin": "http://test", "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 303


async def test_a_revoked_key_ends_its_sessions(client: httpx.AsyncClient, db: Database) -> None:
    from corespond.auth.service import revoke_keys_named

    async with db.sessionmaker() as session, session.begin():
        from corespond.auth.service import create_key

        _, key = await create_key(
            session, role="supervisor", name="night sup", now=datetime.now(UTC)
        )
    signed = await client.post("/supervisor/login", data={"key": key})
    client.cookies.set("corespond_supervisor", session_token(signed), path="/supervisor")
    assert (await client.get("/supervisor/data")).status_code == 200
    async with db.sessionmaker() as session, session.begin():
        await revoke_keys_named(session, "night sup", datetime.now(UTC))
    assert (await client.get("/supervisor/data")).status_code == 401


async def test_page_with_an_unknown_session_asks_to_sign_in_again(
    client: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    client.cookies.set("corespond_supervisor", "made-up", path="/supervisor")
    page = await client.get("/supervisor")
    assert "Supervisor API key" in page.text
    assert (await client.get("/supervisor/data")).status_code == 401


async def test_scoped_keys(client: httpx.AsyncClient, db: Database, source: Source) -> None:
    await seed(db, source)
    kanawha_only = await make_key(db, "supervisor", "county:54039")
    agency = await make_key(db, "supervisor", "agency:CHARLESTON PD")
    counties = (await client.get("/v1/coverage", headers=auth(kanawha_only))).json()["counties"]
    assert [c["name"] for c in counties] == ["Kanawha"]
    gaps = await client.get(
        "/v1/coverage/gaps", params={"county": "Cabell"}, headers=auth(kanawha_only)
    )
    assert gaps.json()["counties"] == []
    assert_problem(await client.get("/v1/coverage", headers=auth(agency)), 403, "by county")
    refused = await client.post("/supervisor/login", data={"key": agency})
    assert refused.status_code == 403


async def test_a_peer_whose_provider_does_not_serve_the_county_does_not_cover_it(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {CABELL: "primary"})
        await program.peer(session, "Stray", provider_id="rp", counties=(KANAWHA,))
    supervisor = await make_key(db, "supervisor")
    counties = {
        c["name"]: c
        for c in (await client.get("/v1/coverage", headers=auth(supervisor))).json()["counties"]
    }
    kanawha = counties["Kanawha"]
    assert (kanawha["state"], kanawha["covered"]) == ("busy", False)
    assert "does not serve this county" in kanawha["peers_on_shift"][0]["why_not"]
    gaps = await client.get(
        "/v1/coverage/gaps", params={"county": "Kanawha"}, headers=auth(supervisor)
    )
    assert gaps.json()["counties"][0]["uncovered_hours"] == 168.0  # the whole week


async def test_coverage_ahead_is_what_is_scheduled(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.peer(session, "Later Lee", status="off_duty", shift_hours=(20, 28))
    supervisor = await make_key(db, "supervisor")
    ahead = await client.get(
        "/v1/coverage",
        params={"at": (datetime.now(UTC) + timedelta(hours=22)).isoformat()},
        headers=auth(supervisor),
    )
    body = ahead.json()
    assert body["basis"] == "scheduled"
    kanawha = next(c for c in body["counties"] if c["name"] == "Kanawha")
    assert (kanawha["state"], kanawha["available"]) == ("available", 1)
    assert kanawha["peers_on_shift"][0]["status"] == "scheduled"


async def test_gaps_across_the_autumn_change_in_wall_clock_time(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        night = await program.peer(session, "Night Nat", shift_hours=(-1000, -999))
        early = await program.peer(session, "Early Eve", shift_hours=(-1000, -999))
        # 19:00 EDT to 07:00 EST, the night the clocks go back: 13 real hours …
        await program.shift(session, night, datetime(2026, 10, 31, 23, tzinfo=UTC), 13, (KANAWHA,))
        # … and an overlapping 04:00-10:00 EST.
        await program.shift(session, early, datetime(2026, 11, 1, 9, tzinfo=UTC), 6, (KANAWHA,))
    supervisor = await make_key(db, "supervisor")
    response = await client.get(
        "/v1/coverage/gaps",
        params={
            "from": "2026-10-31 12:00",
            "to": "2026-11-01 12:00",
            "county": ["Kanawha", "54039"],
        },
        headers=auth(supervisor),
    )
    assert response.status_code == 200, response.text
    [kanawha] = response.json()["counties"]  # the county asked for twice is listed once
    assert [g["hours"] for g in kanawha["gaps"]] == [7.0, 2.0]
    assert kanawha["uncovered_hours"] == 9.0
    first = kanawha["gaps"][0]
    assert first["starts_at"] == "2026-10-31T12:00:00-04:00"
    assert first["ends_at"] == "2026-10-31T19:00:00-04:00"
    assert kanawha["gaps"][1]["starts_at"] == "2026-11-01T10:00:00-05:00"


async def test_summary_attributes_a_backup_providers_fill_and_counts_every_request(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "backup", {KANAWHA: "backup"})
        helper = await program.peer(session, "Backup Bo", provider_id="backup")
        first = await program.call(session, source.id)
        second = await program.call(session, source.id)
    supervisor = await make_key(db, "supervisor")
    key = await make_key(db, "peer", f"peer:{helper.id}")
    offer = (
        await client.post(f"/v1/calls/{first.id}/peer-requests", headers=auth(supervisor))
    ).json()
    await client.post(f"/v1/assignments/{offer['id']}/accept", headers=auth(key))
    unfilled = await client.post(f"/v1/calls/{second.id}/peer-requests", headers=auth(supervisor))
    assert unfilled.status_code == 409
    rows = {
        (r["county"], r["provider"]): r
        for r in (await client.get("/v1/coverage/summary", headers=auth(supervisor))).json()["rows"]
    }
    assert rows[("Kanawha", "backup")]["filled"] == 1
    wvsl = rows[("Kanawha", "wvsl")]
    assert (wvsl["eligible_calls"], wvsl["requests"], wvsl["unfilled"]) == (2, 1, 1)
    counties = (await client.get("/v1/coverage", headers=auth(supervisor))).json()["counties"]
    assert next(c for c in counties if c["name"] == "Kanawha")["unfilled_24h"] == 1
    refused_csv = await client.get(
        "/v1/coverage/summary", headers={**auth(supervisor), "accept": "text/csv;q=0, */*"}
    )
    assert refused_csv.headers["content-type"].startswith("application/json")


async def test_sign_in_refuses_odd_input_cleanly(client: httpx.AsyncClient, db: Database) -> None:
    too_long = await client.post("/supervisor/login", data={"key": "csk_" + "x" * 5000})
    assert too_long.status_code == 422
    assert too_long.headers["content-type"] == "application/problem+json"
    not_a_form = await client.post(
        "/supervisor/login", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert 400 <= not_a_form.status_code < 500
    empty = await client.post("/supervisor/login")
    assert empty.status_code == 401
    assert "not valid" in empty.text


async def supervisor_data(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    signed = await client.post("/supervisor/login", data={"key": key})
    client.cookies.set("corespond_supervisor", session_token(signed), path="/supervisor")
    data = await client.get("/supervisor/data")
    assert data.status_code == 200
    body: dict[str, Any] = data.json()
    return body


async def test_a_peer_whose_credential_expired_covers_no_gap_anywhere(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    valid = dict.fromkeys(program.CREDENTIALS)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", CABELL: "primary"})
        await program.peer(
            session, "Lapsed Lou", shift_hours=(-1, 30), credentials={**valid, "nda": now}
        )
        # Cabell's peer (not Kanawha's neighbour) holds an NDA running out 3 hours from now.
        await program.peer(
            session,
            "Soon Sue",
            counties=(CABELL,),
            shift_hours=(-1, 30),
            credentials={**valid, "nda": now + timedelta(hours=3)},
        )
        call = await program.call(session, source.id)
    supervisor = await make_key(db, "supervisor")
    dispatcher = await make_key(db, "dispatcher")

    counties = {
        c["name"]: c
        for c in (await client.get("/v1/coverage", headers=auth(supervisor))).json()["counties"]
    }
    assert (counties["Kanawha"]["covered"], counties["Kanawha"]["state"]) == (False, "busy")
    assert "nda expired" in counties["Kanawha"]["peers_on_shift"][0]["why_not"]
    assert counties["Cabell"]["covered"] is True
    refused = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert_problem(refused, 409, "no peer free")

    window = {"from": now.isoformat(), "to": (now + timedelta(hours=24)).isoformat()}
    gaps = await client.get(
        "/v1/coverage/gaps",
        params={**window, "county": ["Kanawha", "Cabell"]},
        headers=auth(supervisor),
    )
    rows = {r["name"]: r for r in gaps.json()["counties"]}
    assert rows["Kanawha"]["uncovered_hours"] == 24.0
    [cabell_gap] = rows["Cabell"]["gaps"]
    assert cabell_gap["hours"] == 21.0  # covered until the NDA runs out
    assert datetime.fromisoformat(cabell_gap["starts_at"]) == now + timedelta(hours=3)

    page = await supervisor_data(client, supervisor)
    page_gaps = {g["name"]: g for g in page["gaps"]["counties"]}
    assert page_gaps["Kanawha"]["uncovered_hours"] == 24.0
    assert page_gaps["Cabell"]["uncovered_hours"] == 21.0


async def test_a_county_served_only_by_a_backup_says_so(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary"})
        await program.provider(session, "rp", {CABELL: "backup", KANAWHA: "backup"})
    supervisor = await make_key(db, "supervisor")
    counties = {
        c["name"]: c
        for c in (await client.get("/v1/coverage", headers=auth(supervisor))).json()["counties"]
    }
    assert (counties["Kanawha"]["provider_id"], counties["Kanawha"]["provider_role"]) == (
        "wvsl",
        "primary",
    )
    assert (counties["Cabell"]["provider_id"], counties["Cabell"]["provider_role"]) == (
        "rp",
        "backup",
    )
    assert (counties["Logan"]["provider_id"], counties["Logan"]["provider_role"]) == (None, None)
    gaps = await client.get(
        "/v1/coverage/gaps", params={"provided_only": "true"}, headers=auth(supervisor)
    )
    assert {r["name"]: r["provider_role"] for r in gaps.json()["counties"]} == {
        "Kanawha": "primary",
        "Cabell": "backup",
    }
    page = await supervisor_data(client, supervisor)
    cabell = next(c for c in page["counties"] if c["name"] == "Cabell")
    assert (cabell["provider"], cabell["provider_role"]) == ("rp", "backup")


def test_the_documented_statuses_of_a_peer_on_shift_include_scheduled(
    settings: Settings,
) -> None:
    schema = create_app(settings).openapi()["components"]["schemas"]["PeerOnShiftOut"]
    status = schema["properties"]["status"]
    assert status["enum"] == ["available", "busy", "off_duty", "scheduled"]
    assert "scheduled" in status["description"]


async def test_a_wait_of_no_time_is_zero_never_negative_zero(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    now = datetime.now(UTC)
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        peer = await program.peer(session, "Quick Quinn")
        call = await program.call(session, source.id)
        request = PeerRequest(
            call_id=call.id, trigger="dispatcher", requested_by="t", created_at=now
        )
        session.add(request)
        await session.flush()
        # The acceptance's clock a tenth of a second behind the database's.
        session.add(
            Assignment(
                request_id=request.id,
                call_id=call.id,
                peer_id=peer.id,
                provider_id="wvsl",
                status="accepted",
                accepted_at=now - timedelta(milliseconds=100),
            )
        )
    supervisor = await make_key(db, "supervisor")
    as_json = await client.get("/v1/coverage/summary", headers=auth(supervisor))
    [row] = [r for r in as_json.json()["rows"] if r["filled"]]
    assert row["median_minutes_to_accept"] == 0.0
    as_csv = await client.get(
        "/v1/coverage/summary", headers={**auth(supervisor), "accept": "text/csv"}
    )
    assert "-0.0" not in as_csv.text
    [filled] = [r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["filled"] == "1"]
    assert filled["median_minutes_to_accept"] == "0.0"
    # Even a median of waits a skew made negative reads 0.0, never -0.0.
    rounded = SummaryRow(None, None, None, accept_minutes=[-0.001]).median_minutes_to_accept
    assert str(rounded) == "0.0"
