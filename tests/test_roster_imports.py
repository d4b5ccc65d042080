"""Roster imports as a scheduler uses them: malformed CSV rows, a recurring series moved or
shortened, a dry run that answers what the import would, peers who will not be offered calls."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from corespond.db import Database
from corespond.roster import service
from corespond.roster.imports import ImportReport, parse_csv, run_import
from corespond.roster.models import Shift
from tests.conftest import make_key
from tests.test_ingest_api import assert_problem
from tests.test_roster import ADMIN, ATLAS, ZONE, bearer, seed

HEADER = "shift_id,peer,starts_at,ends_at,counties,kind\n"
WINDOW = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 31, tzinfo=UTC))


async def import_csv(
    client: httpx.AsyncClient, key: str, body: str, *, dry_run: bool = False
) -> httpx.Response:
    return await client.post(
        f"/v1/rosters/import?provider=wvsl{'&dry_run=true' if dry_run else ''}",
        content=body.encode(),
        headers={**bearer(key), "content-type": "text/csv"},
    )


async def stored_shifts(db: Database, *, cancelled: bool = False) -> list[Shift]:
    async with db.sessionmaker() as session:
        return list(
            await service.list_shifts(
                session, ADMIN, peer_id=None, provider_id="wvsl", county_fips=None,
                starts_from=None, starts_to=None, include_cancelled=cancelled, after=None,
                limit=500,
            )
        )  # fmt: skip


# --- CSV rows against the header ----------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "cells"),
    [
        ("a,Jordan Miller,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty,Putnam", 7),
        ("a,Jordan Miller,2026-11-23 19:00,2026-11-24 07:00,Kanawha", 5),
    ],
    ids=["a surplus cell", "a missing cell"],
)
async def test_a_row_whose_cells_differ_from_the_header_is_an_error_and_nothing_is_applied(
    client: httpx.AsyncClient, db: Database, row: str, cells: int
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    body = (
        HEADER + "b,Casey Adkins,2026-11-25 07:00,2026-11-25 19:00,Kanawha,on_duty\n" + row + "\n"
    )
    problem = assert_problem(await import_csv(client, key, body), 422, "nothing was applied")
    rows = {r["line"]: r for r in problem["report"]["rows"]}
    assert rows[3]["result"] == "error"
    assert f"{cells} cells where the header has 6" in rows[3]["reason"]
    assert rows[2]["result"] == "created"
    assert await stored_shifts(db) == []


def test_a_quoted_cell_with_a_comma_is_one_cell_and_blank_lines_are_skipped() -> None:
    parsed = parse_csv(
        HEADER
        + "\n"
        + 'a,"Miller, Jordan",2026-11-23 19:00,2026-11-24 07:00,"Kanawha;Putnam",on_call\n'
        + "\n"
    )
    assert parsed.unreadable == []
    [row] = parsed.rows
    assert (row.line, row.peer, row.counties, row.kind) == (
        3,
        "Miller, Jordan",
        ("Kanawha", "Putnam"),
        "on_call",
    )


cell = st.text(alphabet=st.characters(exclude_characters="\r\n\x00"), max_size=8)


@given(st.lists(st.lists(cell, min_size=1, max_size=9), min_size=1, max_size=12))
def test_every_row_with_the_wrong_number_of_cells_is_reported_on_its_line(
    records: list[list[str]],
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["shift_id", "peer", "starts_at", "ends_at", "counties", "kind"])
    writer.writerows(records)
    parsed = parse_csv(out.getvalue())
    wrong = {line for line, record in enumerate(records, start=2) if len(record) != 6}
    reported = {
        r.line for r in parsed.unreadable if "cells where the header has 6" in (r.reason or "")
    }
    assert reported == wrong
    assert not wrong & {r.line for r in parsed.rows}


# --- recurring calendar events ------------------------------------------------------------


def calendar(start: str, end: str, rule: str, uid: str = "wvsl-days@example.org") -> str:
    return "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//t//EN",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "SUMMARY:Jordan Miller",
            "LOCATION:Kanawha",
            f"DTSTART;TZID=America/New_York:{start}",
            f"DTEND;TZID=America/New_York:{end}",
            f"RRULE:{rule}",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )


async def import_ics(db: Database, text: str) -> ImportReport:
    async with db.sessionmaker() as session, session.begin():
        return await run_import(
            session, ADMIN, ATLAS, provider_id="wvsl", fmt="ics", text=text, dry_run=False,
            timezone=ZONE, now=datetime.now(UTC), window=WINDOW,
        )  # fmt: skip


async def test_moving_a_weekly_series_an_hour_later_updates_its_shifts(db: Database) -> None:
    await seed(db)
    weekly = "FREQ=WEEKLY;BYDAY=TU;COUNT=4"
    first = await import_ics(db, calendar("20261201T080000", "20261201T160000", weekly))
    assert first.counts()["created"] == 4, first.rows
    ids = {s.id for s in await stored_shifts(db)}

    moved = await import_ics(db, calendar("20261201T090000", "20261201T170000", weekly))
    assert moved.applied, moved.rows
    assert moved.counts() == {
        "created": 0, "updated": 4, "unchanged": 0, "cancelled": 0, "error": 0,
    }  # fmt: skip
    shifts = await stored_shifts(db)
    assert {s.id for s in shifts} == ids
    assert [s.starts_at.hour for s in shifts] == [14, 14, 14, 14]  # 09:00 EST
    async with db.sessionmaker() as session:
        history = await service.shift_history(session, shifts[0].id)
    assert [h.action for h in history] == ["created", "updated"]
    assert history[1].before is not None
    assert history[1].before["starts_at"] == "2026-12-01T13:00:00+00:00"


async def test_moving_back_to_back_day_long_shifts_later_moves_each_out_of_the_next_ones_way(
    db: Database,
) -> None:
    await seed(db)
    daily = "FREQ=DAILY;COUNT=5"
    await import_ics(db, calendar("20261201T080000", "20261202T080000", daily))
    # Each occurrence moved an hour later overlaps the next one's old place until it moves.
    moved = await import_ics(db, calendar("20261201T090000", "20261202T090000", daily))
    assert moved.applied, moved.rows
    assert moved.counts()["updated"] == 5
    assert [s.starts_at.hour for s in await stored_shifts(db)] == [14] * 5


async def test_occurrences_a_series_no_longer_has_are_cancelled(db: Database) -> None:
    await seed(db)
    await import_ics(db, calendar("20261201T080000", "20261201T160000", "FREQ=WEEKLY;COUNT=4"))
    shorter = await import_ics(
        db, calendar("20261201T080000", "20261201T160000", "FREQ=WEEKLY;COUNT=2")
    )
    assert shorter.applied, shorter.rows
    assert shorter.counts() == {
        "created": 0, "updated": 0, "unchanged": 2, "cancelled": 2, "error": 0,
    }  # fmt: skip
    cancelled = [r for r in shorter.rows if r.result == "cancelled"]
    assert [r.key for r in cancelled] == [
        "wvsl-days@example.org@2026-12-15",
        "wvsl-days@example.org@2026-12-22",
    ]
    assert all(r.shift_id is not None and r.line == 5 for r in cancelled)
    live = await stored_shifts(db)
    assert [s.starts_at.day for s in live] == [1, 8]
    async with db.sessionmaker() as session:
        history = await service.shift_history(session, cancelled[0].shift_id)  # type: ignore[arg-type]
    assert [h.action for h in history] == ["created", "cancelled"]


async def test_another_events_shifts_are_not_cancelled(db: Database) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    other = calendar("20261202T080000", "20261202T160000", "FREQ=WEEKLY;COUNT=2", uid="x@y")
    await import_ics(db, other.replace("Jordan Miller", "Casey Adkins"))
    mine = await import_ics(
        db, calendar("20261201T080000", "20261201T160000", "FREQ=WEEKLY;COUNT=2", uid="x")
    )
    assert mine.counts()["cancelled"] == 0
    assert len(await stored_shifts(db)) == 4


async def test_two_occurrences_on_one_day_keep_apart(db: Database) -> None:
    await seed(db)
    twice = "FREQ=DAILY;BYHOUR=7,19;COUNT=4"
    report = await import_ics(db, calendar("20261201T070000", "20261201T190000", twice))
    assert report.applied, report.rows
    assert sorted(r.key.split("@")[-1] for r in report.rows) == [
        "2026-12-01",
        "2026-12-01#2",
        "2026-12-02",
        "2026-12-02#2",
    ]


async def test_a_series_imported_before_date_keys_is_updated_not_duplicated(
    db: Database,
) -> None:
    peers = await seed(db)
    start = datetime(2026, 12, 1, 13, tzinfo=UTC)  # 08:00 EST
    async with db.sessionmaker() as session, session.begin():
        for week in range(2):
            at = start + timedelta(weeks=week)
            await service.create_shift(
                session,
                ADMIN,
                service.ShiftInput(
                    peers["Jordan Miller"],
                    at,
                    at + timedelta(hours=8),
                    ("54039",),
                    external_key=f"wvsl-days@example.org@{at.isoformat()}",
                ),
            )
    weekly = "FREQ=WEEKLY;COUNT=2"
    same = await import_ics(db, calendar("20261201T080000", "20261201T160000", weekly))
    assert same.counts()["unchanged"] == 2, same.rows  # adopted under their date keys
    moved = await import_ics(db, calendar("20261201T090000", "20261201T170000", weekly))
    assert moved.counts()["updated"] == 2, moved.rows
    assert len(await stored_shifts(db, cancelled=True)) == 2


# --- dry runs -----------------------------------------------------------------------------


def without_dry_run(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "dry_run"}


async def test_a_dry_run_with_row_errors_answers_what_the_import_would(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    body = (
        HEADER
        + "a,Jordan Miller,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
        + "b,Nobody Here,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
    )
    dry = await import_csv(client, key, body, dry_run=True)
    real = await import_csv(client, key, body)
    assert dry.status_code == real.status_code == 422
    assert dry.headers["content-type"] == real.headers["content-type"]
    dry_report, real_report = dry.json()["report"], real.json()["report"]
    assert dry_report["dry_run"] is True
    assert without_dry_run(dry_report) == without_dry_run(real_report)
    assert [r["shift_id"] for r in dry_report["rows"]] == [None, None]  # nothing was stored
    assert dry.json()["detail"] == real.json()["detail"]


async def test_a_clean_dry_run_shows_no_shift_that_does_not_exist(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db, peers=("Jordan Miller", "Casey Adkins"))
    key = await make_key(db, "admin")
    body = HEADER + "a,Jordan Miller,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
    dry = await import_csv(client, key, body, dry_run=True)
    assert dry.status_code == 200
    assert [(r["result"], r["shift_id"]) for r in dry.json()["rows"]] == [("created", None)]
    real = await import_csv(client, key, body)
    assert real.status_code == 200
    assert (dry.json()["counts"], dry.json()["notes"]) == (
        real.json()["counts"],
        real.json()["notes"],
    )
    assert [(r["line"], r["key"], r["result"]) for r in dry.json()["rows"]] == [
        (r["line"], r["key"], r["result"]) for r in real.json()["rows"]
    ]
    [row] = real.json()["rows"]
    shown = await client.get(f"/v1/shifts/{row['shift_id']}", headers=bearer(key))
    assert shown.status_code == 200
    # Re-checking what is stored: the dry run names the stored shift it would update.
    again = await import_csv(
        client, key, body.replace("07:00,Kanawha", "08:00,Kanawha"), dry_run=True
    )
    assert [(r["result"], r["shift_id"]) for r in again.json()["rows"]] == [
        ("updated", row["shift_id"])
    ]


# --- peers who will not be offered calls --------------------------------------------------


async def test_a_new_peer_is_told_it_starts_off_duty(
    client: httpx.AsyncClient, db: Database
) -> None:
    await seed(db)
    key = await make_key(db, "admin")
    created = await client.post(
        "/v1/peers", json={"provider_id": "wvsl", "display_name": "Sam Cole"}, headers=bearer(key)
    )
    assert created.status_code == 201, created.text
    peer = created.json()
    assert peer["status"] == "off_duty"
    [note] = peer["notes"]
    assert "off duty" in note
    assert "offered no calls until their status is set to available" in note
    available = await client.post(
        f"/v1/peers/{peer['id']}/status", json={"status": "available"}, headers=bearer(key)
    )
    assert available.json()["notes"] == []


async def test_the_import_report_names_the_peers_who_are_off_duty(
    client: httpx.AsyncClient, db: Database
) -> None:
    peers = await seed(db, peers=("Jordan Miller", "Casey Adkins", "Sam Cole"))
    key = await make_key(db, "admin")
    await client.post(
        f"/v1/peers/{peers['Sam Cole']}/status", json={"status": "available"}, headers=bearer(key)
    )
    body = (
        HEADER
        + "a,Jordan Miller,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
        + "b,Casey Adkins,2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
        + f"c,{peers['Sam Cole']},2026-11-23 19:00,2026-11-24 07:00,Kanawha,on_duty\n"
    )
    report = (await import_csv(client, key, body)).json()
    assert report["applied"] is True
    assert report["notes"] == [
        "2 peers are off duty and will not be offered calls until their status is set to "
        "available (POST /v1/peers/{id}/status): Casey Adkins, Jordan Miller"
    ]
