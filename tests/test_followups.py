"""Follow-ups: the program's schedule on its clock (across DST, over a year), made for a
person who consented, shown to their peer and the provider's queue, done with outcomes,
escalated when overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from corespond.audit.models import AuditEntry
from corespond.db import Database
from corespond.followups.jobs import FollowUpJobs
from corespond.followups.schedule import (
    DEFAULT_SCHEDULE,
    ScheduleError,
    Step,
    due_times,
    parse_schedule,
    step_time,
)
from tests import program
from tests.aftercall import (
    DETOX_ORG,
    QRT_ORG,
    auth,
    consent,
    met,
    met_on_a_call,
    record_person,
)
from tests.conftest import Source, make_key

NY = ZoneInfo("America/New_York")


def local(when: datetime) -> datetime:
    return when.astimezone(NY)


def test_the_default_schedule_is_the_programs() -> None:
    steps = parse_schedule(DEFAULT_SCHEDULE)
    assert [s.label for s in steps] == [
        "1d", "72h", "7d", "30d", "2m", "3m", "4m", "5m", "6m", "7m", "8m", "9m", "10m",
        "11m", "12m",
    ]  # fmt: skip


def test_a_year_of_follow_ups_lands_on_the_same_time_of_day_every_month() -> None:
    start = datetime(2026, 1, 31, 9, 30, tzinfo=NY)
    times = [local(t) for _, t in due_times(start, parse_schedule(DEFAULT_SCHEDULE), NY)]
    assert times[0] == datetime(2026, 2, 1, 9, 30, tzinfo=NY)  # the next day
    assert times[1] == datetime(2026, 2, 3, 9, 30, tzinfo=NY)  # 72 hours (no DST change)
    assert times[3] == datetime(2026, 3, 2, 9, 30, tzinfo=NY)  # 30 days
    # The 31st's months: the last day of the shorter ones, 9:30 whatever the offset.
    assert [(t.month, t.day) for t in times[4:]] == [
        (3, 31), (4, 30), (5, 31), (6, 30), (7, 31), (8, 31), (9, 30), (10, 31), (11, 30),
        (12, 31), (1, 31),
    ]  # fmt: skip
    assert {(t.hour, t.minute) for t in times[4:]} == {(9, 30)}
    assert times[-1].year == 2027
    assert times == sorted(times)


def test_across_the_spring_change_a_day_is_23_hours_and_72_hours_are_72() -> None:
    evening = datetime(2026, 3, 7, 21, 0, tzinfo=NY)  # clocks go forward at 2:00 on the 8th
    next_day = step_time(evening, Step(1, "d"), NY)
    assert local(next_day) == datetime(2026, 3, 8, 21, 0, tzinfo=NY)
    assert next_day - evening == timedelta(hours=23)
    hours = step_time(evening, Step(72, "h"), NY)
    assert hours - evening == timedelta(hours=72)
    assert local(hours).hour == 22  # the wall clock moved an hour


def test_across_the_autumn_change_a_day_is_25_hours() -> None:
    evening = datetime(2026, 10, 31, 21, 0, tzinfo=NY)  # clocks go back at 2:00 on Nov 1
    next_day = step_time(evening, Step(1, "d"), NY)
    assert next_day - evening == timedelta(hours=25)
    assert local(next_day).hour == 21
    week = step_time(evening, Step(1, "w"), NY)
    assert (local(week).day, local(week).hour) == (7, 21)


def test_a_time_the_clocks_skip_moves_forward_and_one_they_repeat_is_the_first() -> None:
    skipped = step_time(datetime(2026, 3, 7, 2, 30, tzinfo=NY), Step(1, "d"), NY)
    assert local(skipped) == datetime(2026, 3, 8, 3, 30, tzinfo=NY)
    repeated = step_time(datetime(2026, 10, 31, 1, 30, tzinfo=NY), Step(1, "d"), NY)
    assert repeated == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 1:30 EDT, the first


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty step"),
        ("1d,,3d", "empty step"),
        ("1d,soon", "'soon' is not a step"),
        ("7d,1d", "does not come after"),
        ("1d,3m-2m", "runs forward"),
        ("1d,30m", "more than two years"),
        ("0d", "is not a step"),
    ],
)
def test_a_schedule_that_cannot_be_read_says_where(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_schedule(text)


async def test_a_consented_contact_is_followed_up_for_a_year_by_the_peer_who_met_them(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    recorded = await record_person(client, m.assignment, m.ana)
    tasks = recorded.json()["follow_ups"]
    assert [t["step"] for t in tasks] == [s.label for s in parse_schedule(DEFAULT_SCHEDULE)]
    assert {t["assignee"] for t in tasks} == {"Ana"}
    assert {t["state"] for t in tasks} == {"open"}
    first = datetime.fromisoformat(tasks[0]["due_at"])
    last = datetime.fromisoformat(tasks[-1]["due_at"])
    assert timedelta(days=363) <= last - first <= timedelta(days=365)  # a year after the day

    mine = await client.get("/v1/followups", headers=auth(m.ana))
    assert [t["id"] for t in mine.json()["items"]] == [t["id"] for t in tasks]
    # A de-identified contact has nobody to follow up.
    again = await met_on_a_call(
        client, db, source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    anonymous = await client.post(f"/v1/assignments/{again}/contact", json={}, headers=auth(m.ana))
    assert anonymous.json()["follow_ups"] == []

    done = await client.post(
        f"/v1/followups/{tasks[0]['id']}/outcome",
        json={"outcome": "in_treatment"},
        headers=auth(m.ana),
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "done"
    assert done.json()["done_by"].startswith("peer key")
    twice = await client.post(
        f"/v1/followups/{tasks[0]['id']}/outcome", json={"outcome": "reached"}, headers=auth(m.ana)
    )
    assert twice.status_code == 409
    assert twice.json()["type"].endswith("/follow-up-done")
    bad = await client.post(
        f"/v1/followups/{tasks[1]['id']}/outcome", json={"outcome": "fine"}, headers=auth(m.ana)
    )
    assert bad.status_code == 422
    assert bad.json()["invalid-params"][0]["name"] == "outcome"

    # Declined: the rest of the year is called off.
    declined = await client.post(
        f"/v1/followups/{tasks[1]['id']}/outcome", json={"outcome": "declined"}, headers=auth(m.ana)
    )
    assert declined.status_code == 200
    open_ = await client.get("/v1/followups", headers=auth(m.ana))
    assert open_.json()["items"] == []
    cancelled = await client.get("/v1/followups?state=cancelled", headers=auth(m.ana))
    assert len(cancelled.json()["items"]) == len(tasks) - 2
    assert {t["cancelled_reason"] for t in cancelled.json()["items"]} == {
        "the person declined follow-up"
    }


async def test_overdue_follow_ups_go_to_the_provider_admins_queue(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    tasks = (await record_person(client, m.assignment, m.ana)).json()["follow_ups"]
    admin = await make_key(db, "provider_admin", "provider:wvsl")
    other = await make_key(db, "provider_admin", "provider:rp")
    queue = await client.get("/v1/followups", headers=auth(admin))
    assert len(queue.json()["items"]) == len(tasks)
    assert queue.json()["items"][0]["person_name"] == "Jo Doe"
    assert (await client.get("/v1/followups", headers=auth(other))).json()["items"] == []
    for key in (m.supervisor, m.dispatcher, m.admin):
        refused = await client.get("/v1/followups", headers=auth(key))
        assert refused.status_code == 403

    # Two days on, the next-day follow-up is overdue (a day's grace): escalated, once.
    later = datetime.now(UTC) + timedelta(days=2, hours=1)
    jobs = FollowUpJobs(db, lambda: later)
    assert await jobs.sweep() == 1
    assert await jobs.sweep() == 0
    escalated = await client.get("/v1/followups?escalated=true", headers=auth(admin))
    (item,) = escalated.json()["items"]
    assert item["step"] == "1d"
    assert item["escalated_at"] is not None

    # The admin hands it to the team; a peer of the team takes it.
    team = await client.post(
        f"/v1/followups/{item['id']}/assign", json={"peer_id": None}, headers=auth(admin)
    )
    assert team.json()["assignee"] is None
    async with db.sessionmaker() as session, session.begin():
        ben = await program.peer(session, "Ben", home=program.ST_ALBANS)
    ben_key = await make_key(db, "peer", f"peer:{ben.id}")
    bens = await client.get("/v1/followups?assignee=team", headers=auth(ben_key))
    assert [t["id"] for t in bens.json()["items"]] == [item["id"]]
    taken = await client.post(
        f"/v1/followups/{item['id']}/assign", json={"peer_id": str(ben.id)}, headers=auth(ben_key)
    )
    assert taken.json()["assignee"] == "Ben"
    grab = await client.post(
        f"/v1/followups/{tasks[1]['id']}/assign", json={"peer_id": None}, headers=auth(ben_key)
    )
    assert grab.status_code == 403  # Ana's, not his to give away


async def test_a_qrt_visit_is_a_follow_up_added_by_hand(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    person = (await record_person(client, m.assignment, m.ana)).json()["person"]["id"]
    admin = await make_key(db, "provider_admin", "provider:wvsl")
    when = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    visit = await client.post(
        f"/v1/people/{person}/followups",
        json={"kind": "qrt_visit", "due_at": when},
        headers=auth(admin),
    )
    assert visit.status_code == 201, visit.text
    assert visit.json()["kind"] == "qrt_visit"
    assert visit.json()["assignee"] is None  # the team
    naive = await client.post(
        f"/v1/people/{person}/followups",
        json={"kind": "qrt_visit", "due_at": "2026-12-01T10:00"},
        headers=auth(admin),
    )
    assert naive.status_code == 422
    for far in ("9999-12-31T10:00:00+00:00", "2001-01-01T10:00:00+00:00"):
        refused = await client.post(
            f"/v1/people/{person}/followups",
            json={"kind": "qrt_visit", "due_at": far},
            headers=auth(admin),
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["invalid-params"][0]["name"] == "due_at"
    stranger = await make_key(db, "provider_admin", "provider:rp")
    hidden = await client.post(
        f"/v1/people/{person}/followups",
        json={"kind": "qrt_visit", "due_at": when},
        headers=auth(stranger),
    )
    assert hidden.status_code == 404


async def test_a_visit_by_a_quick_response_team_needs_the_persons_consent_and_ends_with_it(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    qrt_share = {"to": "qrt", "organization": QRT_ORG[0]}
    body = {
        "person": {"name": "Jo Doe", "contact": "304-555-7788"},
        "consent": consent(shares=[qrt_share], purposes=["follow_up"]),
    }
    recorded = await client.post(
        f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana)
    )
    assert recorded.status_code == 201, recorded.text
    person = recorded.json()["person"]["id"]
    admin = await make_key(db, "provider_admin", "provider:wvsl")
    when = (datetime.now(UTC) + timedelta(days=3)).isoformat()

    async def add(**fields: object) -> httpx.Response:
        return await client.post(
            f"/v1/people/{person}/followups",
            json={"kind": "qrt_visit", "due_at": when, **fields},
            headers=auth(admin),
        )

    visit = await add(organization_id=QRT_ORG[0])
    assert visit.status_code == 201, visit.text
    assert visit.json()["organization"] == QRT_ORG[1]
    # Not a team of the directory, not a QRT, not a visit: the field is named.
    for fields in (
        {"organization_id": "org-nowhere"},
        {"organization_id": DETOX_ORG[0]},
        {"organization_id": QRT_ORG[0], "kind": "follow_up"},
    ):
        bad = await add(**fields)
        assert bad.status_code == 422, (fields, bad.text)
        assert bad.json()["invalid-params"][0]["name"] == "organization_id"

    # Another person, whose consent names the police only: the QRT may not be sent.
    other = await met_on_a_call(
        client, db, source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    kim = await record_person(client, other, m.ana, name="Kim Roe", contact="304-555-0001")
    kim_id = kim.json()["person"]["id"]
    refused = await client.post(
        f"/v1/people/{kim_id}/followups",
        json={"kind": "qrt_visit", "due_at": when, "organization_id": QRT_ORG[0]},
        headers=auth(admin),
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("/consent-refused")
    kims = await client.get(f"/v1/followups?person={kim_id}", headers=auth(admin))
    assert all(t["kind"] == "follow_up" for t in kims.json()["items"])  # nothing added
    async with db.sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "follow_up.share_refused")
        )
    assert entry is not None
    assert (entry.record_id, entry.detail["reason"]) == (kim_id, "not_named")
    assert entry.detail["organization"] == QRT_ORG[0]

    # Jo signs again, without the QRT: its visit is cancelled at once, the provider's own
    # follow-ups go on.
    again = await client.post(
        f"/v1/people/{person}/consents",
        json=consent(purposes=["follow_up"]),
        headers=auth(m.ana),
    )
    assert again.status_code == 201, again.text
    tasks = {t["id"]: t for t in again.json()["follow_ups"]}
    cancelled = tasks[visit.json()["id"]]
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancelled_reason"] == (
        f"consent signed again: no longer shared with {QRT_ORG[1]}"
    )
    assert {t["state"] for t in tasks.values() if t["kind"] == "follow_up"} == {"open"}
    async with db.sessionmaker() as session:
        logged = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "follow_up.cancel")
        )
    assert logged is not None
    assert logged.record_id == visit.json()["id"]


async def test_revocation_cancels_a_qrt_visit_the_consent_allowed(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    m = await met(client, db, source)
    body = {
        "person": {"name": "Jo Doe"},
        "consent": consent(shares=[{"to": "qrt", "organization": QRT_ORG[0]}]),
    }
    person = (
        await client.post(f"/v1/assignments/{m.assignment}/contact", json=body, headers=auth(m.ana))
    ).json()["person"]["id"]
    when = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    visit = await client.post(
        f"/v1/people/{person}/followups",
        json={"kind": "qrt_visit", "due_at": when, "organization_id": QRT_ORG[0]},
        headers=auth(m.ana),
    )
    assert visit.status_code == 201, visit.text
    own = await client.post(
        f"/v1/people/{person}/followups",
        json={"kind": "qrt_visit", "due_at": when},
        headers=auth(m.ana),
    )
    revoked = await client.post(
        f"/v1/people/{person}/consent/revoke", json={"reason": "asked"}, headers=auth(m.ana)
    )
    assert revoked.status_code == 200, revoked.text
    states = {t["id"]: t["state"] for t in revoked.json()["follow_ups"]}
    assert states[visit.json()["id"]] == "cancelled"
    assert states[own.json()["id"]] == "open"  # the provider's own peers still go
