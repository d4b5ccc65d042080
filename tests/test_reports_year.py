"""The program's year in figures after the call: a year seeded with what happened after each
call, every figure known by hand, read through GET /v1/reports/program?year= (JSON and CSV)
and the page; the same request gives the same numbers; nothing in it names anyone.

America/New_York. 2025:

======  =======  ======================  ==================================================
who     county   met (local)             what followed
======  =======  ======================  ==================================================
P1      Kanawha  Fri Jan 10 10:00        consented (police); follow-ups: next day done on
                                         time (reached), 30 days done late (not reached),
                                         90 days missed, May 1 done on time (in treatment),
                                         one cancelled; referred to inpatient (did not
                                         arrive) and MOUD (not confirmed yet)
(anon)  Cabell   Sun Jun 1 14:00         de-identified; referred to detox: arrived
P2      Kanawha  Wed Dec 31 23:30        consented (04:30 UTC on New Year's Day: 2025 on the
                                         program's clock); the consent revoked since
P0      Kanawha  Tue Dec 31 2024 23:30   consented; 2024, not counted (though 2025 in UTC)
======  =======  ======================  ==================================================

Calls: P1's and P0's by CHARLESTON PD, the anonymous one by HUNTINGTON PD, P2's by
KANAWHA COUNTY SHERIFF: each a callout (a peer went en route).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import Assignment, PeerRequest
from corespond.db import Database
from corespond.directory.models import DirectoryOrganization, DirectoryService
from corespond.followups.models import FollowUp
from corespond.people.models import Consent, ConsentShare, Contact, Person, Referral
from tests import program
from tests.conftest import Source, make_key
from tests.program import CABELL, KANAWHA

NY = ZoneInfo("America/New_York")


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY).astimezone(UTC)


async def _met(
    session: AsyncSession,
    source: str,
    peer_id: uuid.UUID,
    when: datetime,
    county: str,
    agency: str,
    person: Person | None,
) -> Contact:
    call = await program.call(session, source, county=county, agency_name=agency)
    call.opened_at = when - timedelta(minutes=20)
    request = PeerRequest(call_id=call.id, trigger="dispatcher", requested_by="test")
    session.add(request)
    await session.flush()
    assignment = Assignment(
        request_id=request.id,
        call_id=call.id,
        peer_id=peer_id,
        provider_id="wvsl",
        status="cleared",
        offered_at=when - timedelta(minutes=19),
        accepted_at=when - timedelta(minutes=18),
        en_route_at=when - timedelta(minutes=15),
        on_scene_at=when,
        ended_at=when + timedelta(minutes=40),
        outcome="contact_made",
    )
    session.add(assignment)
    await session.flush()
    contact = Contact(
        assignment_id=assignment.id,
        provider_id="wvsl",
        peer_id=peer_id,
        county_fips=county,
        person_id=person.id if person else None,
        met_at=when,
    )
    session.add(contact)
    await session.flush()
    return contact


async def _person(
    session: AsyncSession, name: str, county: str, signed: datetime, revoked: datetime | None
) -> Person:
    person = Person(
        provider_id="wvsl", name=name, contact="304-555-0000", county_fips=county, created_at=signed
    )
    session.add(person)
    await session.flush()
    consent = Consent(
        person_id=person.id,
        statement_version="2026-11",
        signed_name=name,
        signed_at=signed,
        witnessed_by="test",
        purposes=["follow_up"],
        fields=["name", "contact", "county"],
        expires_at=signed + timedelta(days=365),
        revoked_at=revoked,
        revoked_by="test" if revoked else None,
    )
    session.add(consent)
    await session.flush()
    session.add(
        ConsentShare(
            consent_id=consent.id, kind="police", recipient="CHARLESTON PD", recipient_name="x"
        )
    )
    return person


def _task(
    person: Person,
    contact: Contact,
    due: datetime,
    done: datetime | None,
    outcome: str | None,
    state: str = "open",
) -> FollowUp:
    return FollowUp(
        person_id=person.id,
        provider_id="wvsl",
        contact_id=contact.id,
        step="x",
        due_at=due,
        overdue_at=due + timedelta(days=1),
        state="done" if outcome else state,
        outcome=outcome,
        done_at=done,
    )


async def seed_year(db: Database, source: str) -> None:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, counties={KANAWHA: "primary", CABELL: "primary"})
        for name, county in (
            ("CHARLESTON PD", KANAWHA),
            ("HUNTINGTON PD", CABELL),
            ("KANAWHA COUNTY SHERIFF", KANAWHA),
        ):
            await program.agency(session, name, county)
        peer = await program.peer(session, "Ana")
        session.add(DirectoryOrganization(id="org-1", name="Thomas Memorial"))
        await session.flush()
        service = DirectoryService(
            hsds_id="svc-1",
            organization_id="org-1",
            name="Everything",
            kinds=["detox", "inpatient", "mat"],
            counties=[KANAWHA, CABELL],
        )
        session.add(service)
        await session.flush()

        p1_met = at(2025, 1, 10, 10)
        p1 = await _person(session, "Jo Doe", KANAWHA, p1_met, None)
        c1 = await _met(session, source, peer.id, p1_met, KANAWHA, "CHARLESTON PD", p1)
        session.add_all(
            [
                _task(p1, c1, at(2025, 1, 11, 10), at(2025, 1, 11, 15), "reached"),
                _task(p1, c1, at(2025, 2, 9, 10), at(2025, 2, 12, 9), "not_reached"),
                _task(p1, c1, at(2025, 4, 10, 10), None, None),
                _task(p1, c1, at(2025, 5, 1, 10), at(2025, 5, 1, 16), "in_treatment"),
                _task(p1, c1, at(2025, 6, 10, 10), None, None, state="cancelled"),
                Referral(
                    contact_id=c1.id,
                    service_id=service.id,
                    kind="inpatient",
                    made_at=p1_met,
                    made_by="Ana",
                    arrival="did_not_arrive",
                    arrival_at=p1_met + timedelta(days=1),
                    arrival_by="Ana",
                ),
                Referral(
                    contact_id=c1.id,
                    service_id=service.id,
                    kind="mat",
                    made_at=p1_met,
                    made_by="Ana",
                ),
            ]
        )
        anon_met = at(2025, 6, 1, 14)
        anon = await _met(session, source, peer.id, anon_met, CABELL, "HUNTINGTON PD", None)
        session.add(
            Referral(
                contact_id=anon.id,
                service_id=service.id,
                kind="detox",
                made_at=anon_met,
                made_by="Ana",
                arrival="arrived",
                arrival_at=anon_met + timedelta(hours=2),
                arrival_by="Ana",
            )
        )
        p2_met = at(2025, 12, 31, 23, 30)
        p2 = await _person(session, "Kim Roe", KANAWHA, p2_met, at(2026, 1, 5))
        await _met(session, source, peer.id, p2_met, KANAWHA, "KANAWHA COUNTY SHERIFF", p2)
        p0_met = at(2024, 12, 31, 23, 30)
        p0 = await _person(session, "Al Poe", KANAWHA, p0_met, None)
        await _met(session, source, peer.id, p0_met, KANAWHA, "CHARLESTON PD", p0)


EXPECTED = {
    "contacts": 3,
    "contacts_identified": 2,
    "contacts_deidentified": 1,
    "consents": 2,
    "consents_revoked": 1,
    "followups": {
        "due": 4,
        "on_time": 2,
        "late": 1,
        "missed": 1,
        "open": 0,
        "on_time_share": 0.5,
    },
    "people_first_met": 2,
    "engaged": {"30": 1, "90": 1, "365": 0},
}


async def test_the_year_after_the_call_in_figures(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    await seed_year(db, source.id)
    supervisor = await make_key(db, "supervisor")
    response = await client.get(
        "/v1/reports/program",
        params={"year": "2025"},
        headers={"Authorization": f"Bearer {supervisor}"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    total = report["after"]["total"]
    assert {k: total[k] for k in EXPECTED} == EXPECTED
    made = {k: v for k, v in total["service_referrals"].items() if v["made"]}
    assert made == {
        "detox": {"made": 1, "arrived": 1, "did_not_arrive": 0},
        "inpatient": {"made": 1, "arrived": 0, "did_not_arrive": 1},
        "mat": {"made": 1, "arrived": 0, "did_not_arrive": 0},
    }
    counties = {c["name"]: c for c in report["after"]["by_county"]}
    assert (counties["Kanawha"]["contacts"], counties["Cabell"]["contacts"]) == (2, 1)
    assert counties["Cabell"]["service_referrals"]["detox"]["arrived"] == 1
    assert sum(w["contacts"] for w in report["after"]["weeks"]) == 3
    # The last contact counts in the year's last week (Dec 29-31) on the program's clock.
    assert report["after"]["weeks"][-1]["contacts"] == 1
    assert report["total"]["callouts"] == 3
    agencies = {a["agency"]: a["callouts"] for a in report["by_agency"]}
    assert agencies == {"CHARLESTON PD": 1, "HUNTINGTON PD": 1, "KANAWHA COUNTY SHERIFF": 1}

    # Reproducible: the same request gives the same numbers.
    again = await client.get(
        "/v1/reports/program",
        params={"year": "2025"},
        headers={"Authorization": f"Bearer {supervisor}"},
    )
    assert {k: v for k, v in again.json().items() if k != "generated_at"} == {
        k: v for k, v in report.items() if k != "generated_at"
    }
    # De-identified: no name, no phone, no person in the answer.
    for name in ("Jo Doe", "Kim Roe", "304-555"):
        assert name not in response.text

    as_csv = await client.get(
        "/v1/reports/program",
        params={"year": "2025"},
        headers={"Authorization": f"Bearer {supervisor}", "accept": "text/csv"},
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["breakdown"] == "total"
    assert (rows[0]["contacts"], rows[0]["followups_on_time"], rows[0]["engaged_90"]) == (
        "3",
        "2",
        "1",
    )
    assert (rows[0]["service_referral_detox"], rows[0]["service_referral_detox_arrived"]) == (
        "1",
        "1",
    )
    assert "Jo Doe" not in as_csv.text

    # 2024 holds P0 only, though his contact was on New Year's Day in UTC.
    last_year = await client.get(
        "/v1/reports/program",
        params={"year": "2024"},
        headers={"Authorization": f"Bearer {supervisor}"},
    )
    assert last_year.json()["after"]["total"]["contacts"] == 1
