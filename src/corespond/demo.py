"""Demo data for a first look: a CAD source, keys, and calls folded from real-looking events."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.auth import service as auth
from corespond.auth.service import Principal
from corespond.crypto import SecretBox
from corespond.geo.atlas import CountyAtlas
from corespond.geo.service import geography_for
from corespond.ingest import service as ingest
from corespond.ingest.schemas import EXAMPLE_EVENT, CadEvent
from corespond.roster import service as roster
from corespond.roster.models import Provider
from corespond.sources import service as sources
from corespond.sources.models import CadSource
from corespond.triage.ruleset import load_rules

DEMO_SOURCE = "demo-cad"
# Agencies of the program and their home counties (PRODUCT.md); more join as data.
DEMO_AGENCIES = (
    ("CHARLESTON PD", "Kanawha"),
    ("KANAWHA COUNTY SHERIFF", "Kanawha"),
    ("HUNTINGTON PD", "Cabell"),
    ("LOGAN COUNTY SHERIFF", "Logan"),
    ("BLUEFIELD PD", "Mercer"),
    ("PRINCETON PD", "Mercer"),
    ("MORGANTOWN PD", "Monongalia"),
    ("BECKLEY PD", "Raleigh"),
    ("PARKERSBURG PD", "Wood"),
    ("FAYETTEVILLE PD", "Fayette"),
)
DEMO_ADMIN_KEY_NAME = "demo admin"
DEMO_DISPATCHER_KEY_NAME = "demo dispatcher (CHARLESTON PD)"


@dataclass(frozen=True)
class DemoCredentials:
    """What the demo prints once at start: enough to try every endpoint."""

    source_id: str
    source_secret: str
    admin_key: str
    dispatcher_key: str
    events_accepted: int


def demo_events(now: datetime) -> list[dict[str, Any]]:
    """A morning's worth of calls on the demo source, some out of order, one partial update."""
    t = now.replace(microsecond=0) - timedelta(minutes=30)

    def at(minutes: int) -> str:
        return (t + timedelta(minutes=minutes)).isoformat()

    return [
        {
            "event_id": "demo-cad:1001",
            "event_type": "call.created",
            "occurred_at": at(0),
            "call": {**copy.deepcopy(EXAMPLE_EVENT["call"]), "incident_number": "DEMO-0001"},
        },
        # The update is listed (and stored) before the create it follows: folding by
        # occurred_at still yields the in-order result.
        {
            "event_id": "demo-cad:1003",
            "event_type": "call.updated",
            "occurred_at": at(9),
            "call": {"incident_number": "DEMO-0002", "status": "onscene"},
        },
        {
            "event_id": "demo-cad:1002",
            "event_type": "call.created",
            "occurred_at": at(4),
            "call": {
                "incident_number": "DEMO-0002",
                "agency": "KANAWHA COUNTY SHERIFF",
                "call_type": "INTOX",
                "call_type_description": "INTOXICATED PERSON",
                "priority": 3,
                "location": {"address": "400 Washington St E", "city": "Charleston"},
                "narrative": "RP ADV MALE SUBJ ETOH, ASKING ABOUT DETOX, NOTHING PHYSICAL",
                "hazards": [],
                "status": "dispatched",
            },
        },
        {
            "event_id": "demo-cad:1004",
            "event_type": "call.created",
            "occurred_at": at(12),
            "call": {
                "incident_number": "DEMO-0003",
                "agency": "CHARLESTON PD",
                "call_type": "WELFARE",
                "call_type_description": "WELFARE CHECK",
                "priority": 3,
                "location": {
                    "address": "1000 Kanawha Blvd E",
                    "city": "Charleston",
                    "lat": 38.3416,
                    "lon": -81.6233,
                },
                "narrative": "SISTER REQ CHECK, BROTHER USING AGAIN SINCE RELEASE",
                "hazards": [],
                "status": "pending",
            },
        },
        {
            "event_id": "demo-cad:1005",
            "event_type": "call.closed",
            "occurred_at": at(25),
            "call": {"incident_number": "DEMO-0003"},
        },
        # Review: a juvenile subject.
        {
            "event_id": "demo-cad:1006",
            "event_type": "call.created",
            "occurred_at": at(14),
            "call": {
                "incident_number": "DEMO-0004",
                "agency": "KANAWHA COUNTY SHERIFF",
                "call_type": "23C01",
                "call_type_description": "OVERDOSE / POISONING",
                "priority": 2,
                "location": {"address": "5 Elk River Rd", "city": "Elkview"},
                "narrative": "16 YOA FEMALE TOOK PILLS AT PARTY, AWAKE AND TALKING",
                "hazards": [],
                "status": "dispatched",
            },
        },
        # No coordinates and no known place: the county is the agency's home county.
        {
            "event_id": "demo-cad:1009",
            "event_type": "call.created",
            "occurred_at": at(21),
            "call": {
                "incident_number": "DEMO-0006",
                "agency": "LOGAN COUNTY SHERIFF",
                "call_type": "WELFARE",
                "priority": 3,
                "location": {"address": "RT 10 NEAR MILE MARKER 12"},
                "narrative": "MALE SITTING ON GUARDRAIL, APPEARS INTOX, ASKING FOR A RIDE TO DETOX",
                "hazards": [],
                "status": "dispatched",
            },
        },
        # Eligible at first, then a weapon appears: the call turns dangerous.
        {
            "event_id": "demo-cad:1007",
            "event_type": "call.created",
            "occurred_at": at(16),
            "call": {
                "incident_number": "DEMO-0005",
                "agency": "CHARLESTON PD",
                "call_type": "113C_Disturb/Nuis Intoxicated",
                "priority": 3,
                "location": {"address": "800 Quarrier St", "city": "Charleston"},
                "narrative": "ETOH MALE YELLING AT PASSERSBY, VERBAL ONLY",
                "hazards": [],
                "status": "dispatched",
            },
        },
        {
            "event_id": "demo-cad:1008",
            "event_type": "call.updated",
            "occurred_at": at(19),
            "call": {
                "incident_number": "DEMO-0005",
                "narrative": "ETOH MALE YELLING AT PASSERSBY, NOW WAVING A KNIFE",
            },
        },
    ]


async def seed_demo(
    session: AsyncSession, box: SecretBox, now: datetime | None = None
) -> DemoCredentials:
    """Create (or reuse) the demo source, issue fresh demo keys and ingest the demo events.

    Safe to run again: the source and its secret are reused, old demo keys are revoked, and
    the events come back as duplicates.
    """
    now = now or datetime.now(UTC)
    existing = await session.get(CadSource, DEMO_SOURCE)
    if existing is None:
        _, secret = await sources.create_source(
            session,
            box,
            source_id=DEMO_SOURCE,
            display_name="Kanawha County Metro 911 (demo)",
            agencies=["CHARLESTON PD", "KANAWHA COUNTY SHERIFF"],
        )
    else:
        secret = sources.stored_secret(existing, box)

    for name in (DEMO_ADMIN_KEY_NAME, DEMO_DISPATCHER_KEY_NAME):
        await auth.revoke_keys_named(session, name)
    _, admin_key = await auth.create_key(session, role="admin", name=DEMO_ADMIN_KEY_NAME)
    _, dispatcher_key = await auth.create_key(
        session,
        role="dispatcher",
        scope=auth.Scope("agency", "CHARLESTON PD"),
        name=DEMO_DISPATCHER_KEY_NAME,
    )

    atlas = geography_for().atlas
    for agency, county in DEMO_AGENCIES:
        if await agencies.find(session, agency) is None:
            await agencies.add_agency(session, atlas, name=agency, county=county)

    await _seed_rosters(session, atlas, now)

    accepted = 0
    rules = load_rules()
    # Seeded once: the demo's events carry times relative to the first run.
    documents = demo_events(now) if existing is None else []
    for document in documents:
        body = json.dumps(document).encode()
        event = CadEvent.model_validate(document)
        result = await ingest.ingest(session, DEMO_SOURCE, event, body, webhook_id=event.event_id)
        accepted += result.status == "accepted"
        # One event at a time, as a live feed would be: each step is triaged and kept.
        await ingest.process_pending(session, batch_size=100, rules=rules)
    return DemoCredentials(DEMO_SOURCE, secret, admin_key, dispatcher_key, accepted)


DEMO_PROVIDERS = (
    ("wvsl", "West Virginia Sober Living", ("Kanawha", "Logan", "Mercer", "Raleigh")),
    ("recovery-point", "Recovery Point", ("Cabell", "Monongalia", "Wood")),
)
# (provider, name, phone, embedded agency, home place, counties, credentials expire in days)
DEMO_PEERS = (
    ("wvsl", "Jordan Miller", "304-555-0101", "CHARLESTON PD", "Charleston", ("Kanawha",), 300),
    ("wvsl", "Casey Adkins", "304-555-0102", None, "St. Albans", ("Kanawha", "Putnam"), 20),
    ("wvsl", "Sam Cole", "304-555-0103", None, "Logan", ("Logan",), -3),
    ("recovery-point", "Riley Hatfield", "304-555-0201", None, "Huntington", ("Cabell",), 200),
)


async def _seed_rosters(session: AsyncSession, atlas: CountyAtlas, now: datetime) -> None:
    """Providers with their counties, peers with credentials, and shifts around now: one
    peer whose credentials are about to expire and one whose have (never offered a call)."""
    if await session.get(Provider, DEMO_PROVIDERS[0][0]) is not None:
        return
    operator = Principal(key_id=uuid.UUID(int=0), name="demo", role="admin", scope=None)
    for provider_id, name, counties in DEMO_PROVIDERS:
        await roster.create_provider(session, provider_id, name)
        await roster.set_counties(session, atlas, provider_id, [(c, "primary") for c in counties])
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for provider_id, name, phone, agency, home, covers, expires_in in DEMO_PEERS:
        place = geography_for().gazetteer.by_city(home)
        peer = await roster.create_peer(
            session,
            operator,
            provider_id,
            display_name=name,
            phone=phone,
            home_place=home,
            home_lat=place.lat if place else None,
            home_lon=place.lon if place else None,
            embedded_agency=agency,
            languages=["en"],
        )
        for kind in ("prss_certification", "cjis_background", "nda"):
            await roster.set_credential(
                session,
                operator,
                peer.id,
                kind,
                reference=f"{kind[:4].upper()}-{name.split()[1].upper()}",
                expires_at=now + timedelta(days=expires_in if kind == "nda" else 400),
            )
        await roster.set_status(session, operator, peer.id, "available")
        for day in range(3):
            await roster.create_shift(
                session,
                operator,
                roster.ShiftInput(
                    peer_id=peer.id,
                    starts_at=start + timedelta(days=day),
                    ends_at=start + timedelta(days=day, hours=12),
                    counties=roster.resolve_counties(atlas, covers),
                ),
            )
