"""Rosters: providers, peers, credentials, shifts across DST, overlaps, imports, scoping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from corespond.auth.service import Principal
from corespond.config import PROJECT_ROOT
from corespond.db import Database
from corespond.geo.service import geography_for
from corespond.roster import service
from corespond.roster.imports import run_import
from tests.conftest import make_key
from tests.test_ingest_api import assert_problem

ADMIN = Principal(key_id=uuid.uuid4(), name="test", role="admin", scope=None)
ATLAS = geography_for().atlas
ZONE = "America/New_York"
REQUIRED = ("prss_certification", "cjis_background", "nda")
EXAMPLES = PROJECT_ROOT / "examples" / "rosters"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def seed(
    db: Database,
    provider: str = "wvsl",
    peers: tuple[str, ...] = ("Jordan Miller",),
    county: str = "Kanawha",
) -> dict[str, uuid.UUID]:
    async with db.sessionmaker() as session, session.begin():
        await service.create_provider(session, provider, provider.upper())
        await service.set_counties(session, ATLAS, provider, [(county, "primary")])
        ids = {}
        for name in peers:
            peer = await service.create_peer(session, ADMIN, provider, display_name=name)
            for kind in REQUIRED:
                await service.set_credential(
                    session,
                    ADMIN,
                    peer.id,
                    kind,
                    reference="X",
                    expires_at=datetime(2030, 1, 1, tzinfo=UTC),
                    now=datetime.now(UTC),
                )
            ids[name] = peer.id
    return ids


async def post_shift(
    client: httpx.AsyncClient, key: str, peer: uuid.UUID, start: str, end: str, **extra: Any
) -> httpx.Response:
    body = {
        "peer_id": str(peer),
        "starts_at": start,
        "ends_at": end,
        "counties": ["Kanawha"],
        **extra,
    }
    return await client.post("/v1/shifts", json=body, headers=bearer(key))


async def test_overnight_shift_is_stored_in_utc_and_shown_locally(
    client: httpx.AsyncClient, db: Database
) -> None:
    peers = await seed(db)
    key = await make_key(db, "admin")
    response = await post_shift(
        client, key, peers["Jordan Miller"], "2026-11-23 19:00", "2026-11-24 07:00"
    )
    assert response.status_code == 201, response.text
    shift = response.json()
    assert shift["starts_at"] == "2026-11-24T00:00:00Z"
    assert shift["ends_at"] == "2026-11-24T12:00:00Z"
    assert shift["starts_local"] == "2026-11-23T19:00:00-05:00"
    assert shift["counties"] == ["54039"]


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-03-07 20:00", "2026-03-08 08:00", 11),  # spring forward: the night is an hour short
        ("2026-10-31 20:00", "2026-11-01 08:00", 13),  # fall back: an hour long
    ],
)
async def test_shifts_across_dst_changes_last_the_real_time(
    client: httpx.AsyncClient, db: Database, start: str, end: str, hours: int
) -> None:
    peers = await seed(db)
    key = await make_key(db, "admin")
    shift = (await post_shift(client, key, peers["Jordan Miller"], start, end)).json()
    length = datetime.fromisoformat(shift["ends_at"]) - datetime.fromisoformat(shift["starts_at"])
    assert length == timedelta(hours=hours)


async def test_a_time_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    peers = await seed(db)
    key = await make_key(db, "admin")
    response = await post_shift(
        client, key, peers["Jordan Miller"], "2026-03-08 02:30", "2026-03-08 08:00"
    )
    assert_problem(response, 422, "does not exist")


async def test_overlap_is_refused_but_back_to_back_and_cancelled_are_fine(
    client: httpx.AsyncClient, db: Database
) -> None:
    peers = await seed(db)
    key = await make_key(db, "admin")
    peer = peers["Jordan Miller"]
    first = (await post_shift(client, key, peer, "2026-11-23 07:00", "2026-11-23 19:00")).json()
    back_to_back = await post_shift(client, key, peer, "2026-11-23 19:00", "2026-11-24 07:00")
    assert back_to_back.status_code == 201
    overlap = await post_shift(client, key, peer, "2026-11-23 18:00", "2026-11-23 20:00")
    assert_problem(overlap, 409, "already has a shift")
    cancelled = await client.delete(f"/v1/shifts/{first['id']}", headers=bearer(key))
    assert cancelled.json()["cancelled_at"] is not None
    again = await post_shift(client, key, peer, "2026-11-23 08:00", "2026-11-23 12:00")
    assert again.status_code == 201
    history = (await client.get(f"/v1/shifts/{first['id']}/history", headers=bearer(key))).json()
    assert [h["action"] for h in history] == ["created", "cancelled"]
    assert history[-1]["changed_by"].endswith("(admin)")


async def test_updates_keep_history(client: httpx.AsyncClient, db: Database) -> None:
    peers = await seed(db)
    key = await make_key(db, "admin")
    shift = (
        await post_shift(
            client, key, peers["Jordan Miller"], "2026-11-23 07:00", "2026-11-23 19:00"
        )
    ).json()
    changed = await client.patch(
        f"/v1/shifts/{shift['id']}",
        json={"ends_at": "2026-11-23 21:00", "counties": ["Putnam", "54039"]},
        headers=bearer(key),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["counties"] == ["54039", "54079"]
    history = (await client.get(f"/v1/shifts/{shift['id']}/history", headers=bearer(key))).json()
    assert [h["action"] for h in history] == ["created", "updated"]
    assert history[1]["before"]["ends_at"] != history[1]["after"]["ends_at"]


async def test_who_is_on_and_who_can_be_offered(db: Database) -> None:
    peers = await seed(db, peers=("Jordan Miller", "Casey Adkins", "Sam Cole"))
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    async with db.sessionmaker() as session, session.begin():
        for name in peers:
            await service.create_shift(
                session,
                ADMIN,
                service.ShiftInput(
                    peers[name], at - timedelta(hours=2), at + timedelta(hours=10), ("54039",)
                ),
            )
            await service.set_status(session, ADMIN, peers[name], "available", datetime.now(UTC))
        await service.set_credential(
            session,
            ADMIN,
            peers["Casey Adkins"],
            "prss_certification",
            reference="X",
            expires_at=at - timedelta(days=1),
            now=datetime.now(UTC),
        )
        await service.set_status(session, ADMIN, peers["Sam Cole"], "busy", datetime.now(UTC))
        await service.create_shift(
            session,
            ADMIN,
            service.ShiftInput(
                peers["Jordan Miller"],
                at + timedelta(days=1),
                at + timedelta(days=1, hours=8),
                ("54039",),
            ),
        )
        on = await service.on_shift(session, "54039", at, REQUIRED)
        elsewhere = await service.on_shift(session, "54011", at, REQUIRED)
        upcoming = await service.next_on_shift(session, "54039", at)
    offerable = {o.peer.display_name: o.offerable for o in on}
    assert offerable == {"Casey Adkins": False, "Jordan Miller": True, "Sam Cole": False}
    casey = next(o for o in on if o.peer.display_name == "Casey Adkins")
    assert casey.credential_problems == ["prss_certification expired 2026-11-23"]
    assert elsewhere == []
    assert upcoming == at + timedelta(days=1)


async def test_expiring_credentials_are_listed(client: httpx.AsyncClient, db: Database) -> None:
    peers = await seed(db)
    soon = datetime.now(UTC) + timedelta(days=10)
    async with db.sessionmaker() as session, session.begin():
        await service.set_credential(
            session,
            ADMIN,
            peers["Jordan Miller"],
            "nda",
            reference=None,
            expires_at=soon,
            now=datetime.now(UTC),
        )
    key = await make_key(db, "supervisor")
    listed = (
        await client.get("/v1/peers/credentials/expiring?days=30", headers=bearer(key))
    ).json()
    assert [(e["display_name"], e["kind"], e["expired"]) for e in listed] == [
        ("Jordan Miller", "nda", False)
    ]
    peer = (await client.get(f"/v1/peers/{peers['Jordan Miller']}", headers=bearer(key))).json()
    assert peer["credential_problems"] == []


async def test_status_changes_are_timestamped(client: httpx.AsyncClient, db: Database) -> None:
    peers = await seed(db)
    key = await make_key(db, "supervisor")
    response = await client.post(
        f"/v1/peers/{peers['Jordan Miller']}/status",
        json={"status": "available"},
        headers=bearer(key),
    )
    assert response.json()["status"] == "available"
    assert_problem(
        await client.post(
            f"/v1/peers/{peers['Jordan Miller']}/status",
            json={"status": "asleep"},
            headers=bearer(key),
        ),
        422,
    )


async def test_provider_admins_manage_only_their_own_provider(
    client: httpx.AsyncClient, db: Database
) -> None:
    ours = await seed(db, "wvsl")
    theirs = await seed(db, "recovery-point", peers=("Riley Hatfield",), county="Cabell")
    key = await make_key(db, "provider_admin", "provider:wvsl")
    listed = (await client.get("/v1/peers", headers=bearer(key))).json()
    assert [p["display_name"] for p in listed["items"]] == ["Jordan Miller"]
    assert_problem(
        await client.get(f"/v1/peers/{theirs['Riley Hatfield']}", headers=bearer(key)), 404
    )
    foreign = await client.post(
        "/v1/peers",
        json={"provider_id": "recovery-point", "display_name": "X"},
        headers=bearer(key),
    )
    assert_problem(foreign, 403, "wvsl")
    assert (
        await post_shift(client, key, ours["Jordan Miller"], "2026-11-23 07:00", "2026-11-23 19:00")
    ).status_code == 201
    assert_problem(
        await post_shift(
            client, key, theirs["Riley Hatfield"], "2026-11-23 07:00", "2026-11-23 19:00"
        ),
        404,
    )
    dispatcher = await make_key(db, "dispatcher")
    assert_problem(
        await post_shift(
            client, dispatcher, ours["Jordan Miller"], "2026-11-25 07:00", "2026-11-25 19:00"
        ),
        403,
    )


async def test_providers_and_their_counties(client: httpx.AsyncClient, db: Database) -> None:
    key = await make_key(db, "admin")
    created = await client.post(
        "/v1/providers",
        json={"id": "recovery-point", "name": "Recovery Point"},
        headers=bearer(key),
    )
    assert created.status_code == 201
    counties = await client.put(
        "/v1/providers/recovery-point/counties",
        json=[{"county": "Cabell"}, {"county": "Wayne", "role": "backup"}],
        headers=bearer(key),
    )
    assert counties.json()["counties"] == [
        {"fips": "54011", "name": "Cabell", "role": "primary"},
        {"fips": "54099", "name": "Wayne", "role": "backup"},
    ]
    await client.post("/v1/providers", json={"id": "wvsl", "name": "WVSL"}, headers=bearer(key))
    clash = await client.put(
        "/v1/providers/wvsl/counties", json=[{"county": "Cabell"}], headers=bearer(key)
    )
    assert_problem(clash, 409, "primary")
    supervisor = await make_key(db, "supervisor")
    assert_problem(
        await client.post(
            "/v1/providers", json={"id": "x", "name": "X"}, headers=bearer(supervisor)
        ),
        403,
    )


async def test_csv_with_bad_rows_reports_each_and_applies_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    csv = (
        "shift_id,peer,starts_at,ends_at,counties,kind\n"
        "a,Jordan Miller,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
        "b,Nobody Here,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
        "c,Casey Adkins,2026-11-23 19:00,2026-11-23 18:00,Kanawha,on_duty\n"
        "d,Casey Adkins,2026-11-24 19:00,2026-11-25 07:00,Atlantis,on_duty\n"
        "e,Jordan Miller,2026-11-24 01:00,2026-11-24 03:00,Kanawha,on_duty\n"
        "f,Casey Adkins,,2026-11-25 07:00,Kanawha,on_duty\n"
    )
    headers = {**bearer(key), "content-type": "text/csv"}
    response = await client.post(
        "/v1/rosters/import?provider=wvsl", content=csv.encode(), headers=headers
    )
    problem = assert_problem(response, 422, "nothing was applied")
    rows = {r["line"]: r for r in problem["report"]["rows"]}
    assert rows[2]["result"] == "created"  # would have been; rolled back
    assert "no peer 'Nobody Here'" in rows[3]["reason"]
    assert "ends after it starts" in rows[4]["reason"]
    assert "Atlantis" in rows[5]["reason"]
    assert "already has a shift" in rows[6]["reason"]
    assert "empty starts_at" in rows[7]["reason"]
    shifts = (await client.get("/v1/shifts", headers=bearer(key))).json()
    assert shifts["items"] == []


async def test_csv_dry_run_then_apply_then_reimport_is_idempotent(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    body = (EXAMPLES / "shifts.csv").read_bytes()
    headers = {**bearer(key), "content-type": "text/csv"}
    dry = (
        await client.post(
            "/v1/rosters/import?provider=wvsl&dry_run=true", content=body, headers=headers
        )
    ).json()
    assert (dry["dry_run"], dry["applied"], dry["counts"]["created"]) == (True, False, 3)
    assert (await client.get("/v1/shifts", headers=bearer(key))).json()["items"] == []
    applied = (
        await client.post("/v1/rosters/import?provider=wvsl", content=body, headers=headers)
    ).json()
    assert (applied["applied"], applied["counts"]["created"]) == (True, 3)
    again = (
        await client.post("/v1/rosters/import?provider=wvsl", content=body, headers=headers)
    ).json()
    assert again["counts"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "cancelled": 0,
        "error": 0,
    }
    changed = body.replace(b"2027-02-16 19:00,Kanawha,on_duty", b"2027-02-16 20:00,Kanawha,on_duty")
    updated = (
        await client.post("/v1/rosters/import?provider=wvsl", content=changed, headers=headers)
    ).json()
    assert updated["counts"]["updated"] == 1


async def test_icalendar_weekly_rule_with_an_exception_date(db: Database) -> None:
    await seed(db)
    text = (EXAMPLES / "shifts.ics").read_text()
    window = (datetime(2026, 11, 25, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
    async with db.sessionmaker() as session, session.begin():
        report = await run_import(
            session,
            ADMIN,
            ATLAS,
            provider_id="wvsl",
            fmt="ics",
            text=text,
            dry_run=False,
            timezone=ZONE,
            now=datetime.now(UTC),
            window=window,
        )
        shifts = await service.list_shifts(
            session, ADMIN, peer_id=None, provider_id="wvsl", county_fips=None, starts_from=None,
            starts_to=None, include_cancelled=False, after=None, limit=50,
        )  # fmt: skip
    assert report.applied, report.rows
    assert report.counts()["created"] == 5  # six Tuesdays, one excepted
    starts = [s.starts_at for s in shifts]
    assert datetime(2026, 12, 23, 0, 0, tzinfo=UTC) not in starts  # 22 Dec 19:00 EST excepted
    assert starts[0] == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    assert all(s.ends_at - s.starts_at == timedelta(hours=12) for s in shifts)
    assert all(s.counties == ["54039", "54079"] for s in shifts)
    async with db.sessionmaker() as session, session.begin():
        again = await run_import(
            session,
            ADMIN,
            ATLAS,
            provider_id="wvsl",
            fmt="ics",
            text=text,
            dry_run=False,
            timezone=ZONE,
            now=datetime.now(UTC),
            window=window,
        )
    assert again.counts() == {
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "cancelled": 0,
        "error": 0,
    }


async def test_import_refuses_other_formats_and_bad_headers(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db)
    key = await make_key(db, "admin")
    wrong_type = await client.post(
        "/v1/rosters/import?provider=wvsl",
        content=b"x",
        headers={**bearer(key), "content-type": "application/pdf"},
    )
    assert_problem(wrong_type, 415)
    no_header = await client.post(
        "/v1/rosters/import?provider=wvsl",
        content=b"name,when\nx,y\n",
        headers={**bearer(key), "content-type": "text/csv"},
    )
    assert_problem(no_header, 422, "line 1")
    not_ical = await client.post(
        "/v1/rosters/import?provider=wvsl",
        content=b"hello",
        headers={**bearer(key), "content-type": "text/calendar"},
    )
    assert_problem(not_ical, 422, "iCalendar")


def test_example_files_exist() -> None:
    assert Path(EXAMPLES / "shifts.csv").exists()
    assert Path(EXAMPLES / "shifts.ics").exists()


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        ("9999-12-31T23:00:00-05:00", "between 2000 and 2100"),
        ("2026-11-01 01:30", "happens twice"),  # the repeated autumn hour needs an offset
    ],
)
async def test_out_of_range_and_ambiguous_times_are_refused(
    client: httpx.AsyncClient, db: Database, start: str, reason: str
) -> None:
    peers = await seed(db)
    key = await make_key(db, "admin")
    response = await post_shift(client, key, peers["Jordan Miller"], start, "2026-11-01 08:00")
    assert_problem(response, 422, reason)
    listed = await client.get("/v1/shifts?from=9999-12-31T23:00-05:00", headers=bearer(key))
    assert_problem(listed, 422)


async def test_csv_oddities_are_reported_not_crashing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    headers = {**bearer(key), "content-type": "text/csv"}
    huge = b'shift_id,peer,starts_at,ends_at,counties\nx,"' + b"A" * 200_000 + b'",a,b,c\n'
    response = await client.post("/v1/rosters/import?provider=wvsl", content=huge, headers=headers)
    assert_problem(response, 422, "line")
    twice = (
        "shift_id,peer,starts_at,ends_at,counties\n"
        "a,Jordan Miller,2026-11-23 07:00,2026-11-23 19:00,Kanawha\n"
        "a,Casey Adkins,2026-11-24 07:00,2026-11-24 19:00,Kanawha\n"
    )
    response = await client.post(
        "/v1/rosters/import?provider=wvsl", content=twice.encode(), headers=headers
    )
    problem = assert_problem(response, 422)
    assert "repeats the one on line 2" in problem["report"]["rows"][1]["reason"]


async def test_a_cancelled_shift_is_not_restored_by_a_reimport(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    headers = {**bearer(key), "content-type": "text/csv"}
    body = (EXAMPLES / "shifts.csv").read_bytes()
    first = (
        await client.post("/v1/rosters/import?provider=wvsl", content=body, headers=headers)
    ).json()
    cancelled = first["rows"][0]["shift_id"]
    await client.delete(f"/v1/shifts/{cancelled}", headers=bearer(key))
    again = (
        await client.post("/v1/rosters/import?provider=wvsl", content=body, headers=headers)
    ).json()
    assert again["applied"] is True
    assert again["rows"][0]["reason"] == "cancelled since; not restored by an import"


async def test_moving_a_one_off_calendar_event_updates_its_shift(db: Database) -> None:
    await seed(db)
    event = "\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//t//EN",
            "BEGIN:VEVENT",
            "UID:one-off-1",
            "SUMMARY:Jordan Miller",
            "LOCATION:Kanawha",
            "DTSTART:20261210T190000",
            "DTEND:20261211T070000",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    window = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    moved = event.replace("T190000", "T200000")
    results = []
    for text in (event, moved):
        async with db.sessionmaker() as session, session.begin():
            report = await run_import(
                session, ADMIN, ATLAS, provider_id="wvsl", fmt="ics", text=text,
                dry_run=False, timezone=ZONE, now=datetime.now(UTC), window=window,
            )  # fmt: skip
        results.append(report.counts())
    assert results == [
        {"created": 1, "updated": 0, "unchanged": 0, "cancelled": 0, "error": 0},
        {"created": 0, "updated": 1, "unchanged": 0, "cancelled": 0, "error": 0},
    ]


async def test_sub_hourly_recurrences_are_refused(client: httpx.AsyncClient, db: Database) -> None:
    await seed(db)
    key = await make_key(db, "admin")
    text = (
        (EXAMPLES / "shifts.ics")
        .read_text()
        .replace("FREQ=WEEKLY;BYDAY=TU;COUNT=6", "FREQ=SECONDLY")
    )
    response = await client.post(
        "/v1/rosters/import?provider=wvsl",
        content=text.encode(),
        headers={**bearer(key), "content-type": "text/calendar"},
    )
    assert_problem(response, 422, "more frequent than hourly")


async def test_keys_must_match_their_roster_role(client: httpx.AsyncClient, db: Database) -> None:
    from corespond.auth.service import Scope, create_key
    from corespond.errors import InvalidPayload

    peers = await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    async with db.sessionmaker() as session, session.begin():
        with pytest.raises(InvalidPayload, match="provider scope"):
            await create_key(session, role="provider_admin", now=datetime.now(UTC))
        with pytest.raises(InvalidPayload, match="provider scope"):
            await create_key(
                session,
                role="provider_admin",
                scope=Scope("county", "54039"),
                now=datetime.now(UTC),
            )
    own = await make_key(db, "peer", f"peer:{peers['Jordan Miller']}")
    unscoped = await make_key(db, "peer")
    ok = await client.post(
        f"/v1/peers/{peers['Jordan Miller']}/status",
        json={"status": "available"},
        headers=bearer(own),
    )
    assert ok.status_code == 200
    for key, peer in ((own, "Casey Adkins"), (unscoped, "Jordan Miller")):
        response = await client.post(
            f"/v1/peers/{peers[peer]}/status", json={"status": "busy"}, headers=bearer(key)
        )
        assert_problem(response, 403, "own peer")


async def test_a_county_listed_twice_is_a_clear_error(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db)
    key = await make_key(db, "admin")
    response = await client.put(
        "/v1/providers/wvsl/counties",
        json=[{"county": "Kanawha"}, {"county": "54039", "role": "backup"}],
        headers=bearer(key),
    )
    assert_problem(response, 422, "listed twice")
