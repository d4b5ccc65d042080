"""Demo data for a first look: a CAD source, keys, and calls folded from real-looking events."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.assignments import lifecycle
from corespond.assignments import views as assignments
from corespond.assignments.lifecycle import Clearing
from corespond.assignments.policy import Context, MatchPolicy
from corespond.auth import service as auth
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.config import Settings
from corespond.crypto import SecretBox
from corespond.db import driver_connection
from corespond.demo_history import HISTORY_SOURCE, import_directory, seed_history
from corespond.errors import NotFound
from corespond.geo.atlas import CountyAtlas
from corespond.geo.service import geography_for
from corespond.ingest import service as ingest
from corespond.ingest.schemas import EXAMPLE_EVENT, CadEvent
from corespond.peerapp.service import create_link
from corespond.pipeline import flow
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
# Agencies whose eligible calls are matched without a dispatcher asking.
DEMO_AUTO_REQUEST = ("CHARLESTON PD",)
DEMO_ADMIN_KEY_NAME = "demo admin"
DEMO_DISPATCHER_KEY_NAME = "demo dispatcher (CHARLESTON PD)"
DEMO_SUPERVISOR_KEY_NAME = "demo supervisor"
DEMO_PEER_KEY_NAME = "demo peer ({name})"
DEMO_PEER_KEYS = ("Jordan Miller", "Casey Adkins")
# Who the demo acts as where it needs a principal (its sign-in link).
DEMO_ADMIN = Principal(key_id=uuid.UUID(int=0), name="demo", role="admin", scope=None)
# Demo peers are created with ids derived from their seed names, so a later run finds them
# by id however their names have been edited since.
DEMO_PEER_NAMESPACE = uuid.UUID("6f1d3b0e-5a47-4c1e-9a55-2f0c8e7d4b19")
# Printed where a credential could not be issued (the log says why).
NOT_ISSUED = "(not issued: see the log above)"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoCredentials:
    """What the demo prints once at start: enough to try every endpoint."""

    source_id: str
    source_secret: str
    admin_key: str
    dispatcher_key: str
    supervisor_key: str
    peer_keys: dict[str, str]
    events_accepted: int
    peer_sign_in: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> token


def demo_events(now: datetime) -> list[dict[str, Any]]:
    """The last few minutes' calls on the demo source, some out of order, one partial
    update: recent enough for automatic requests (``auto_request_max_age_seconds``)."""
    t = now.replace(microsecond=0) - timedelta(minutes=4)

    def at(step: int) -> str:
        return (t + timedelta(seconds=9 * step)).isoformat()

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
                "narrative": "MALE AT THE BUS STOP, APPEARS INTOX, ASKING FOR A RIDE TO DETOX",
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
    session: AsyncSession,
    box: SecretBox,
    now: datetime,
    policy: MatchPolicy | None = None,
) -> DemoCredentials:
    """Create (or reuse) the demo source, issue fresh demo keys and ingest the demo events.

    The events are fed one at a time, as a live feed would be, each followed up as the
    worker does: Charleston PD opted in to automatic requests, so its eligible calls are
    offered a peer at once; one is then routed end to end (accepted, scene secured by CAD,
    en route, on scene, cleared), one is cancelled when CAD closes it, one when a knife is
    reported. Kanawha County Sheriff's eligible call waits for a dispatcher to ask.

    Safe to run again: the source and its secret are reused, the demo peers are found by
    id (whatever they have been renamed to), old demo keys are revoked, and the events are
    seeded only once. The resource directory is imported (again: unchanged) and, once, a
    year of history before the first run (``demo_history``) so that the program's year in
    figures shows something real. Never raises for the demo's own data: each part is seeded
    in its own savepoint, and a part that fails is logged and left out, so the service still
    starts.
    """
    geography = geography_for()
    ctx = Context(policy or MatchPolicy.of(Settings()), geography, now)
    atlas = geography.atlas
    existing = await session.get(CadSource, DEMO_SOURCE)
    async with _part(session, "agencies"):
        await _register_agencies(session, atlas)
    secret = NOT_ISSUED
    async with _part(session, "source"):
        secret = await _source_secret(session, box, existing)
    peers: dict[str, uuid.UUID] = {}
    async with _part(session, "rosters"):
        peers = await _seed_rosters(session, atlas, now)
    keys = await _issue_keys(session, peers, now)

    accepted = 0
    if existing is None:  # seeded once: the events carry times relative to the first run
        async with _part(session, "calls"):
            fed = 0
            for document in demo_events(now):
                fed += await _feed(session, document, ctx)
            if "Jordan Miller" in peers:
                fed += await _route_end_to_end(session, peers["Jordan Miller"], now, ctx)
            accepted = fed
    async with _part(session, "resource directory"):
        await import_directory(session, geography, now)
    if peers and await session.get(CadSource, HISTORY_SOURCE) is None:
        async with _part(session, "a year of history"):
            await seed_history(session, box, geography, peers, now)
    links: dict[str, str] = {}
    async with _part(session, "peer sign-in link"):
        for name in ("Casey Adkins",):  # free: the next offer can be watched arriving
            if name in peers:
                link = await create_link(session, DEMO_ADMIN, peers[name], now)
                links[name] = link.token
    return DemoCredentials(
        DEMO_SOURCE,
        secret,
        keys.get("admin", NOT_ISSUED),
        keys.get("dispatcher", NOT_ISSUED),
        keys.get("supervisor", NOT_ISSUED),
        {name: keys[name] for name in DEMO_PEER_KEYS if name in keys},
        accepted,
        links,
    )


@contextlib.asynccontextmanager
async def _part(session: AsyncSession, part: str) -> AsyncIterator[None]:
    """One part of the demo in a savepoint of its own. A failure is logged and the part
    left out: demo data is never a reason for the service not to start."""
    try:
        async with session.begin_nested():
            yield
    except Exception:
        log.exception("demo_part_not_seeded", part=part)


async def _register_agencies(session: AsyncSession, atlas: CountyAtlas) -> None:
    for agency, county in DEMO_AGENCIES:
        if await agencies.find(session, agency) is None:
            await agencies.add_agency(session, atlas, name=agency, county=county)
            if agency in DEMO_AUTO_REQUEST:
                await agencies.configure(session, agency, auto_request=True)


async def _source_secret(session: AsyncSession, box: SecretBox, existing: CadSource | None) -> str:
    if existing is not None:
        return sources.stored_secret(existing, box)
    _, secret = await sources.create_source(
        session,
        box,
        source_id=DEMO_SOURCE,
        display_name="Kanawha County Metro 911 (demo)",
        agencies=["CHARLESTON PD", "KANAWHA COUNTY SHERIFF", "LOGAN COUNTY SHERIFF"],
    )
    return secret


async def _issue_keys(
    session: AsyncSession, peers: dict[str, uuid.UUID], now: datetime
) -> dict[str, str]:
    """Fresh demo keys (earlier demo keys are revoked), each issued on its own: one that
    cannot be issued is logged and missing from the result."""
    keys: dict[str, str] = {}
    wanted: list[tuple[str, str, str, auth.Scope | None]] = [
        ("admin", DEMO_ADMIN_KEY_NAME, "admin", None),
        (
            "dispatcher",
            DEMO_DISPATCHER_KEY_NAME,
            "dispatcher",
            auth.Scope("agency", "CHARLESTON PD"),
        ),
        ("supervisor", DEMO_SUPERVISOR_KEY_NAME, "supervisor", None),
    ]
    for name in DEMO_PEER_KEYS:
        key_name = DEMO_PEER_KEY_NAME.format(name=name)
        if name in peers:
            wanted.append((name, key_name, "peer", auth.Scope("peer", str(peers[name]))))
        else:
            await auth.revoke_keys_named(session, key_name, now)
    for label, key_name, role, scope in wanted:
        async with _part(session, f"{label} key"):
            await auth.revoke_keys_named(session, key_name, now)
            _, keys[label] = await auth.create_key(
                session, role=role, scope=scope, name=key_name, now=now
            )
    return keys


async def _feed(session: AsyncSession, document: dict[str, Any], ctx: Context) -> int:
    """Ingest one event, fold it and follow it up, as the worker would."""
    body = json.dumps(document).encode()
    event = CadEvent.model_validate(document)
    result = await ingest.ingest(
        await driver_connection(session), DEMO_SOURCE, event, body, webhook_id=event.event_id
    )
    folded: list[uuid.UUID] = []
    await flow.process_pending(session, 100, load_rules(), ctx.geography, folded, now=ctx.now)
    for call_id in await flow.calls_to_follow_up(session, ctx, folded):
        await flow.follow_up(session, call_id, ctx)
    return int(result.status == "accepted")


async def _route_end_to_end(
    session: AsyncSession, jordan: uuid.UUID, now: datetime, ctx: Context
) -> int:
    """DEMO-0001 from offer to clearing: the peer accepts, CAD reports the scene secure,
    the peer goes en route, arrives, and clears with a referral."""
    peer = Principal(
        key_id=uuid.UUID(int=0),
        name="Jordan Miller",
        role="peer",
        scope=auth.Scope("peer", str(jordan)),
    )
    call_id = await calls.id_of(session, DEMO_SOURCE, "DEMO-0001")
    live = await assignments.live_for_call(session, call_id) if call_id else None
    if live is None or live.peer_id != jordan:
        return 0
    await lifecycle.act(session, peer, live.id, "accept", ctx)
    secure = {
        "event_id": "demo-cad:1010",
        "event_type": "call.updated",
        "occurred_at": (now.replace(microsecond=0) - timedelta(minutes=2)).isoformat(),
        "call": {"incident_number": "DEMO-0001", "status": "scene_secure"},
    }
    fed = await _feed(session, secure, ctx)
    for action in ("en-route", "on-scene"):
        await lifecycle.act(session, peer, live.id, action, ctx)
    await lifecycle.act(
        session, peer, live.id, "clear", ctx, clearing=Clearing("referred", ("detox",))
    )
    return fed


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


async def _seed_rosters(
    session: AsyncSession, atlas: CountyAtlas, now: datetime
) -> dict[str, uuid.UUID]:
    """Providers with their counties, peers with credentials, and shifts around now: one
    peer whose credentials are about to expire and one whose have (never offered a call).
    Returns the demo peers' ids by their seed names (once seeded, found again by id)."""
    operator = Principal(key_id=uuid.UUID(int=0), name="demo", role="admin", scope=None)
    if await session.get(Provider, DEMO_PROVIDERS[0][0]) is not None:
        return await _seeded_peers(session, operator)
    ids: dict[str, uuid.UUID] = {}
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
            id=demo_peer_id(name),
            display_name=name,
            phone=phone,
            home_place=home,
            home_lat=place.lat if place else None,
            home_lon=place.lon if place else None,
            embedded_agency=agency,
            languages=["en"],
        )
        ids[name] = peer.id
        for kind in ("prss_certification", "cjis_background", "nda"):
            await roster.set_credential(
                session,
                operator,
                peer.id,
                kind,
                reference=f"{kind[:4].upper()}-{name.split()[1].upper()}",
                expires_at=now + timedelta(days=expires_in if kind == "nda" else 400),
                now=now,
            )
        await roster.set_status(session, operator, peer.id, "available", now)
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
    return ids


def demo_peer_id(name: str) -> uuid.UUID:
    """The id a demo peer is created with, from its seed name (not its display name)."""
    return uuid.uuid5(DEMO_PEER_NAMESPACE, name)


async def _seeded_peers(session: AsyncSession, operator: Principal) -> dict[str, uuid.UUID]:
    """The demo peers seeded before, by seed name: by id, else (a demo seeded before peers
    had fixed ids) by display name. One found neither way was renamed or removed before
    ids were fixed; it is logged and gets no key."""
    ids: dict[str, uuid.UUID] = {}
    for _, name, *_ in DEMO_PEERS:
        with contextlib.suppress(NotFound):
            ids[name] = (await roster.get_peer(session, demo_peer_id(name), operator)).id
    missing = [p[1] for p in DEMO_PEERS if p[1] not in ids]
    if missing:
        ids |= await roster.peer_ids_named(session, missing, [p[0] for p in DEMO_PROVIDERS])
    for name in missing:
        if name not in ids:
            log.warning("demo_peer_not_found", peer=name)
    return ids
