"""A year of plausible activity for the demo, so that the program's year in figures shows
something real: calls in Kanawha and Cabell answered by the demo's peers, whom they met (with
consent or de-identified), referrals to the demo's resource directory and whether people
arrived, and a year of follow-ups with their outcomes, some late, some missed, the newest
still to do.

Everything is made up (names, phones) and drawn from a seeded random generator, so every
fresh demo has the same year. The history ends a month before the demo's first run and is
filed under its own CAD source (``demo-history``): the live demo's calls, their month's
report and the last 30 days' coverage summary stay as the README walks through them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import Assignment, AssignmentChange, PeerRequest
from corespond.calls.models import Call
from corespond.crypto import SecretBox
from corespond.directory import imports as directory_imports
from corespond.directory import service as directory
from corespond.errors import InvalidPayload
from corespond.followups.models import ENDING, FollowUp
from corespond.followups.schedule import due_times, parse_schedule
from corespond.geo.service import Geography
from corespond.people.models import Consent, ConsentShare, Contact, Person, Referral
from corespond.sources import service as sources

HISTORY_SOURCE = "demo-history"
SEED = 20240125
# The history ends this long before the demo's first run (the coverage summary's 30 days
# and the current month's report show the live demo only) and runs a year before that.
GAP = timedelta(days=32)
SPAN = timedelta(days=365)
ZONE = ZoneInfo("America/New_York")
KANAWHA, CABELL = "54039", "54011"
GRACE = timedelta(hours=24)


def _service(
    service_id: str,
    name: str,
    organization: tuple[str, str],
    terms: Sequence[str],
    address: str,
    city: str,
    postal_code: str,
    phone: str,
    areas: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "id": service_id,
        "name": name,
        "status": "active",
        "organization": {"id": organization[0], "name": organization[1]},
        "phones": [{"id": f"{service_id}-phone", "number": phone}],
        "service_areas": [{"id": f"{service_id}-area-{i}", "name": a} for i, a in enumerate(areas)],
        "service_at_locations": [
            {
                "id": f"{service_id}-at",
                "location": {
                    "id": f"{service_id}-location",
                    "location_type": "physical",
                    "addresses": [
                        {
                            "id": f"{service_id}-address",
                            "address_1": address,
                            "city": city,
                            "state_province": "WV",
                            "postal_code": postal_code,
                            "country": "US",
                            "address_type": "physical",
                        }
                    ],
                },
            }
        ],
        "attributes": [
            {
                "id": f"{service_id}-term-{i}",
                "taxonomy_term": {"id": f"demo-{t}", "code": t, "name": t},
            }
            for i, t in enumerate(terms)
        ],
    }


# The demo's resource directory, as an HSDS 3.0 JSON file would give it (the same services as
# examples/directory/, the tabular CSV form). Made-up services, 304-555 numbers.
DEMO_ORGANIZATIONS = {
    "valley-recovery": ("demo-org-valley", "Valley Recovery Center (demo)"),
    "river-health": ("demo-org-river", "River City Behavioral Health (demo)"),
    "harbor-house": ("demo-org-harbor", "Harbor House Recovery Residences (demo)"),
    "kanawha-qrt": ("demo-org-kanawha-qrt", "Kanawha Quick Response Team (demo)"),
    "cabell-qrt": ("demo-org-cabell-qrt", "Cabell Quick Response Team (demo)"),
    "health-dept": ("demo-org-health", "County Health Department (demo)"),
    "veterans": ("demo-org-veterans", "Veterans Recovery Services (demo)"),
}
# (id, name, organization, taxonomy terms, address, town, ZIP, phone, service areas)
_DEMO_SERVICE_ROWS: tuple[tuple[Any, ...], ...] = (
    (
        "demo-svc-detox-kan",
        "Medically managed withdrawal",
        DEMO_ORGANIZATIONS["valley-recovery"],
        ["detoxification"],
        "100 Lee St E",
        "Charleston",
        "25301",
        "304-555-0140",
    ),
    (
        "demo-svc-inpatient-kan",
        "28-day residential treatment",
        DEMO_ORGANIZATIONS["valley-recovery"],
        ["residential treatment"],
        "100 Lee St E",
        "Charleston",
        "25301",
        "304-555-0141",
    ),
    (
        "demo-svc-moud-kan",
        "Buprenorphine clinic",
        DEMO_ORGANIZATIONS["river-health"],
        ["MOUD"],
        "500 Virginia St E",
        "Charleston",
        "25301",
        "304-555-0142",
    ),
    (
        "demo-svc-iop-kan",
        "Intensive outpatient, evenings",
        DEMO_ORGANIZATIONS["river-health"],
        ["intensive outpatient"],
        "500 Virginia St E",
        "Charleston",
        "25301",
        "304-555-0143",
    ),
    (
        "demo-svc-housing-kan",
        "Recovery residence for men",
        DEMO_ORGANIZATIONS["harbor-house"],
        ["recovery residence"],
        "22 Elk St",
        "St. Albans",
        "25177",
        "304-555-0144",
    ),
    (
        "demo-svc-qrt-kan",
        "Quick Response Team",
        DEMO_ORGANIZATIONS["kanawha-qrt"],
        ["QRT"],
        "1 Court St",
        "Charleston",
        "25301",
        "304-555-0145",
        ["Kanawha County"],
    ),
    (
        "demo-svc-naloxone-kan",
        "Naloxone and syringe services",
        DEMO_ORGANIZATIONS["health-dept"],
        ["naloxone", "syringe services"],
        "108 Lee St E",
        "Charleston",
        "25301",
        "304-555-0146",
        ["Kanawha County", "Cabell County"],
    ),
    (
        "demo-svc-detox-cab",
        "Detox unit",
        DEMO_ORGANIZATIONS["river-health"],
        ["detox"],
        "3100 5th Ave",
        "Huntington",
        "25702",
        "304-555-0150",
    ),
    (
        "demo-svc-inpatient-cab",
        "Residential treatment for women",
        DEMO_ORGANIZATIONS["harbor-house"],
        ["inpatient"],
        "900 8th St",
        "Huntington",
        "25701",
        "304-555-0151",
    ),
    (
        "demo-svc-moud-cab",
        "Opioid treatment program",
        DEMO_ORGANIZATIONS["river-health"],
        ["opioid treatment program"],
        "3100 5th Ave",
        "Huntington",
        "25702",
        "304-555-0152",
    ),
    (
        "demo-svc-qrt-cab",
        "Quick Response Team",
        DEMO_ORGANIZATIONS["cabell-qrt"],
        ["quick response team"],
        "800 5th Ave",
        "Huntington",
        "25701",
        "304-555-0153",
        ["Cabell County"],
    ),
    (
        "demo-svc-va",
        "Veterans' substance use program",
        DEMO_ORGANIZATIONS["veterans"],
        ["veterans", "outpatient"],
        "1540 Spring Valley Dr",
        "Huntington",
        "25704",
        "304-555-0154",
        ["Kanawha County", "Cabell County"],
    ),
)
DEMO_SERVICES = [_service(*row) for row in _DEMO_SERVICE_ROWS]

FIRST = ("Alex", "Jamie", "Taylor", "Morgan", "Avery", "Quinn", "Dakota", "Skyler",
         "Reese", "Rowan", "Emerson", "Hayden", "Parker", "Sage")  # fmt: skip
LAST = ("Adams", "Baker", "Carter", "Dawson", "Ellis", "Fischer", "Graham", "Hughes",
        "Irwin", "Jarvis", "Keller", "Lambert", "Meyers", "Nolan", "Osborne", "Porter")  # fmt: skip
AGENCIES = {KANAWHA: ("CHARLESTON PD", "KANAWHA COUNTY SHERIFF"), CABELL: ("HUNTINGTON PD",)}
CALL_TYPES = (
    ("OD", "OVERDOSE"),
    ("INTOX", "INTOXICATED PERSON"),
    ("WELFARE", "WELFARE CHECK"),
    ("ASSIST", "REQUEST FOR HELP WITH ADDICTION"),
)
CLEAR_REFERRALS = ("detox", "inpatient", "mat", "outpatient", "recovery_housing")
FOLLOW_UP_OUTCOMES = (
    ("reached", 46),
    ("not_reached", 28),
    ("in_treatment", 15),
    ("relapse", 8),
    ("declined", 2),
    ("deceased", 1),
)


async def import_directory(session: AsyncSession, geography: Geography, now: datetime) -> None:
    """The demo's resource directory (a service already imported is left as it is)."""
    report = await directory_imports.run_import(
        session,
        geography,
        fmt="json",
        data=json.dumps(DEMO_SERVICES).encode(),
        dry_run=False,
        now=now,
    )
    if report.errors:  # pragma: no cover - the demo's own data
        raise InvalidPayload(f"demo directory: {report.errors[0].reason}")


def _pick(rng: random.Random, weighted: Sequence[tuple[str, int]]) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


async def seed_history(
    session: AsyncSession,
    box: SecretBox,
    geography: Geography,
    peers: dict[str, uuid.UUID],
    now: datetime,
) -> int:
    """The demo's year before ``now`` (see the module's docstring); how many calls."""
    by_county = {
        KANAWHA: [peers[n] for n in ("Jordan Miller", "Casey Adkins") if n in peers],
        CABELL: [peers[n] for n in ("Riley Hatfield",) if n in peers],
    }
    if not by_county[KANAWHA] or not by_county[CABELL]:
        return 0
    await sources.create_source(
        session,
        box,
        source_id=HISTORY_SOURCE,
        display_name="Kanawha and Cabell 911: the demo's past year",
        agencies=[*AGENCIES[KANAWHA], *AGENCIES[CABELL]],
    )
    services: dict[tuple[str, str], list[tuple[uuid.UUID, str]]] = {}
    for county in (KANAWHA, CABELL):
        for kind in (*CLEAR_REFERRALS, "harm_reduction", "qrt"):
            found = await directory.search(session, county=county, kind=kind)
            services[(county, kind)] = [(s.id, o.id) for s, o in found]
    steps = parse_schedule("1d,72h,7d,30d,2m-12m")
    rng = random.Random(SEED)  # noqa: S311 - made-up demo data, never a secret
    end = now - GAP
    day = (end - SPAN).astimezone(ZONE).date()
    last = end.astimezone(ZONE).date()
    count = 0
    while day < last:
        for _ in range(rng.choices((0, 1, 2), (66, 30, 4))[0]):
            county = KANAWHA if rng.random() < 0.7 else CABELL
            minute = rng.randrange(7 * 60, 23 * 60)
            opened = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=ZONE)
            count += 1
            await _call(
                session, rng, count, county, opened, by_county[county], services, steps, now
            )
        day += timedelta(days=1)
    await session.flush()
    return count


async def _call(
    session: AsyncSession,
    rng: random.Random,
    number: int,
    county: str,
    opened: datetime,
    peers: list[uuid.UUID],
    services: dict[tuple[str, str], list[tuple[uuid.UUID, str]]],
    steps: Sequence[Any],
    now: datetime,
) -> None:
    agency = rng.choice(AGENCIES[county])
    call_type, description = rng.choice(CALL_TYPES)
    fate = rng.choices(("callout", "cancelled", "unfilled"), (86, 9, 5))[0]
    closed = opened + timedelta(minutes=rng.randrange(40, 150))
    call = Call(
        source_id=HISTORY_SOURCE,
        incident_number=f"H-{opened:%y%m%d}-{number:04d}",
        agency=agency,
        call_type=call_type,
        call_type_description=description,
        status="closed",
        opened_at=opened,
        ended_at=closed,
        last_event_at=closed,
        created_at=opened,
        folded_at=opened,
        county_fips=county,
        county_name="Kanawha" if county == KANAWHA else "Cabell",
        county_method="agency",
        county_detail=f"home county of {agency}",
        decision="eligible",
        decision_summary="eligible: substance use (demo history)",
        decided_at=opened + timedelta(seconds=2),
        purged_at=closed + timedelta(days=31),
    )
    session.add(call)
    await session.flush()
    request = PeerRequest(
        call_id=call.id,
        trigger="dispatcher",
        requested_by="demo history",
        created_at=opened + timedelta(minutes=1),
    )
    session.add(request)
    await session.flush()
    offered = opened + timedelta(minutes=1, seconds=5)
    if fate == "unfilled":
        session.add(
            Assignment(
                request_id=request.id,
                call_id=call.id,
                status="unfilled",
                county_fips=county,
                created_at=offered,
                ended_at=offered,
            )
        )
        return
    peer = rng.choice(peers)
    accepted = offered + timedelta(seconds=rng.randrange(20, 420))
    assignment = Assignment(
        request_id=request.id,
        call_id=call.id,
        peer_id=peer,
        provider_id="wvsl" if county == KANAWHA else "recovery-point",
        status="cancelled" if fate == "cancelled" else "cleared",
        county_fips=county,
        place=1,
        created_at=offered,
        offered_at=offered,
        expires_at=offered + timedelta(minutes=2),
        scene_secure_required=True,
    )
    if fate == "cancelled":
        assignment.cancel_reason = "call_closed"
        assignment.ended_at = offered + timedelta(minutes=1)
        session.add(assignment)
        await session.flush()
        _history(session, assignment, ("offered", "cancelled"), offered)
        return
    on_scene = accepted + timedelta(minutes=rng.randrange(10, 35))
    assignment.accepted_at = accepted
    assignment.scene_secured_at = accepted + timedelta(minutes=3)
    assignment.scene_secured_by = "CAD scene secure"
    assignment.en_route_at = accepted + timedelta(minutes=4)
    assignment.on_scene_at = on_scene
    assignment.ended_at = closed
    outcome = rng.choices(
        ("referred", "contact_made", "declined_services", "no_contact"), (52, 31, 11, 6)
    )[0]
    kinds: list[str] = []
    if outcome == "referred":
        kinds = rng.sample(
            CLEAR_REFERRALS, rng.choices((1, 2), (70, 30))[0], counts=(30, 38, 14, 15, 6)
        )
        kinds = list(dict.fromkeys(kinds))
    assignment.outcome, assignment.referrals = outcome, kinds
    session.add(assignment)
    await session.flush()
    _history(
        session, assignment, ("offered", "accepted", "en_route", "on_scene", "cleared"), offered
    )
    if outcome == "no_contact":
        return
    person = None
    if rng.random() < 0.62:
        person = await _person(session, rng, county, assignment, on_scene, agency, services)
    contact = Contact(
        assignment_id=assignment.id,
        provider_id=assignment.provider_id,
        peer_id=peer,
        county_fips=county,
        person_id=person.id if person else None,
        met_at=on_scene,
        recorded_at=closed,
    )
    session.add(contact)
    await session.flush()
    # Beyond treatment: naloxone for some, a Quick Response Team visit arranged for others.
    extra = [k for k, chance in (("harm_reduction", 0.18), ("qrt", 0.1)) if rng.random() < chance]
    for kind in (*kinds, *extra):
        options = services.get((county, kind)) or []
        if not options:
            continue
        service_id, _ = rng.choice(options)
        arrival = rng.choices(("arrived", "did_not_arrive", "pending"), (66, 22, 12))[0]
        session.add(
            Referral(
                contact_id=contact.id,
                service_id=service_id,
                kind=kind,
                made_at=on_scene + timedelta(minutes=20),
                made_by="demo history",
                arrival=arrival,
                arrival_at=None if arrival == "pending" else closed + timedelta(hours=3),
                arrival_by=None if arrival == "pending" else "demo history",
            )
        )
    if person is not None:
        _follow_ups(session, rng, person, contact, peer, steps, now)


def _history(
    session: AsyncSession, assignment: Assignment, statuses: Sequence[str], at: datetime
) -> None:
    stamps = {
        "offered": assignment.offered_at,
        "accepted": assignment.accepted_at,
        "en_route": assignment.en_route_at,
        "on_scene": assignment.on_scene_at,
        "cleared": assignment.ended_at,
        "cancelled": assignment.ended_at,
    }
    previous = None
    for status in statuses:
        session.add(
            AssignmentChange(
                assignment_id=assignment.id,
                from_status=previous,
                to_status=status,
                actor="demo history",
                changed_at=stamps[status] or at,
            )
        )
        previous = status


async def _person(
    session: AsyncSession,
    rng: random.Random,
    county: str,
    assignment: Assignment,
    met: datetime,
    agency: str,
    services: dict[tuple[str, str], list[tuple[uuid.UUID, str]]],
) -> Person:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    person = Person(
        provider_id=assignment.provider_id or "wvsl",
        name=name,
        contact=f"304-555-{rng.randrange(100, 200):04d}",
        county_fips=county,
        created_at=met,
        created_by_peer_id=assignment.peer_id,
    )
    session.add(person)
    await session.flush()
    consent = Consent(
        person_id=person.id,
        statement_version="2026-11",
        signed_name=name,
        signed_at=met + timedelta(minutes=15),
        witnessed_by_peer_id=assignment.peer_id,
        witnessed_by="demo history",
        purposes=["follow_up", "care_coordination"],
        fields=["name", "contact", "county"],
        expires_at=met + timedelta(days=365),
    )
    if rng.random() < 0.05:
        consent.revoked_at = met + timedelta(days=rng.randrange(5, 120))
        consent.revoked_by = "demo history"
    session.add(consent)
    await session.flush()
    if rng.random() < 0.5:
        session.add(
            ConsentShare(
                consent_id=consent.id, kind="police", recipient=agency, recipient_name=agency
            )
        )
    treatment = services.get((county, "detox")) or []
    if treatment and rng.random() < 0.5:
        _, organization = rng.choice(treatment)
        session.add(
            ConsentShare(
                consent_id=consent.id,
                kind="treatment",
                recipient=organization,
                recipient_name=organization,
            )
        )
    return person


def _follow_ups(
    session: AsyncSession,
    rng: random.Random,
    person: Person,
    contact: Contact,
    peer: uuid.UUID,
    steps: Sequence[Any],
    now: datetime,
) -> None:
    """The schedule after the contact: past steps done (mostly on time), late or missed;
    future ones open, still to do."""
    ended: str | None = None
    keeps_up = rng.random()  # some people are reached month after month, some drift away
    for step, due in due_times(contact.met_at, steps, ZONE):
        task = FollowUp(
            person_id=person.id,
            provider_id=person.provider_id,
            contact_id=contact.id,
            step=step.label,
            due_at=due,
            overdue_at=due + GRACE,
            assignee_peer_id=peer,
            created_at=contact.recorded_at,
        )
        session.add(task)
        if ended is not None:
            task.state, task.cancelled_reason = "cancelled", ended
            continue
        if due + GRACE > now:
            continue  # still to do
        late = rng.random() < 0.15
        if rng.random() < 0.08:
            # Missed: escalated to the provider's admin, who (for the older ones) called
            # and could not reach them; the newest are still in the admin's queue.
            task.escalated_at = due + GRACE + timedelta(minutes=1)
            if due > now - timedelta(days=60):
                continue
            late, outcome = True, "not_reached"
        else:
            outcome = _pick(rng, FOLLOW_UP_OUTCOMES)
            if outcome in ("reached", "in_treatment") and rng.random() > 0.35 + 0.65 * keeps_up:
                outcome = "not_reached"
        delay = rng.randrange(26, 72) if late else rng.randrange(0, 20)
        task.state, task.outcome, task.done_by = "done", outcome, "demo history"
        task.done_at = due + timedelta(hours=delay)
        if late:
            task.escalated_at = due + GRACE + timedelta(minutes=1)
        if outcome in ENDING:
            ended = "the person declined follow-up" if outcome == "declined" else "the person died"
