"""Building a small program in the database for matching tests: providers and the counties
they serve, peers with credentials and shifts, and triaged calls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies.models import Agency
from corespond.calls.models import Call
from corespond.roster.models import Credential, Peer, Provider, ProviderCounty, Shift

KANAWHA, PUTNAM, CABELL, BOONE = "54039", "54079", "54011", "54005"
CHARLESTON = (38.3498, -81.6326)  # Kanawha
SOUTH_CHARLESTON = (38.3684, -81.6996)  # Kanawha, ~6 km west
ST_ALBANS = (38.3857, -81.8362)  # Kanawha, ~18 km west
WINFIELD = (38.5334, -81.8932)  # Putnam, ~31 km from Charleston
HUNTINGTON = (38.4192, -82.4452)  # Cabell, ~71 km from Charleston
CREDENTIALS = ("prss_certification", "cjis_background", "nda")


async def provider(
    session: AsyncSession, provider_id: str = "wvsl", counties: dict[str, str] | None = None
) -> Provider:
    row = Provider(id=provider_id, name=f"{provider_id.upper()} Recovery")
    session.add(row)
    await session.flush()
    for fips, role in (counties or {KANAWHA: "primary"}).items():
        session.add(ProviderCounty(provider_id=provider_id, county_fips=fips, role=role))
    await session.flush()
    return row


async def peer(
    session: AsyncSession,
    name: str,
    *,
    provider_id: str = "wvsl",
    counties: tuple[str, ...] = (KANAWHA,),
    home: tuple[float, float] | None = None,
    embedded: str | None = None,
    status: str = "available",
    now: datetime | None = None,
    shift_hours: tuple[float, float] = (-1, 8),
    credentials: dict[str, datetime | None] | None = None,
    languages: tuple[str, ...] = ("en",),
) -> Peer:
    """A peer on shift around ``now`` with every credential valid (unless told otherwise)."""
    now = now or datetime.now(UTC)
    row = Peer(
        provider_id=provider_id,
        display_name=name,
        phone="+1 304 555 0100",
        home_place="home" if home else None,
        home_lat=home[0] if home else None,
        home_lon=home[1] if home else None,
        embedded_agency=embedded,
        status=status,
        languages=list(languages),
    )
    session.add(row)
    await session.flush()
    held = credentials if credentials is not None else dict.fromkeys(CREDENTIALS)
    for kind, expires in held.items():
        session.add(Credential(peer_id=row.id, kind=kind, expires_at=expires))
    start, end = shift_hours
    session.add(
        Shift(
            peer_id=row.id,
            provider_id=provider_id,
            starts_at=now + timedelta(hours=start),
            ends_at=now + timedelta(hours=end),
            counties=list(counties),
            created_by="test",
        )
    )
    await session.flush()
    return row


async def shift(
    session: AsyncSession, who: Peer, starts_at: datetime, hours: float, counties: tuple[str, ...]
) -> Shift:
    row = Shift(
        peer_id=who.id,
        provider_id=who.provider_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=hours),
        counties=list(counties),
        created_by="test",
    )
    session.add(row)
    await session.flush()
    return row


async def agency(
    session: AsyncSession,
    name: str = "CHARLESTON PD",
    county: str = KANAWHA,
    *,
    auto_request: bool = False,
    scene_gate: bool = True,
) -> Agency:
    row = await session.scalar(select(Agency).where(Agency.name == name))
    if row is None:  # a CAD source's agencies are registered with it (tests.conftest)
        row = Agency(name=name)
        session.add(row)
    row.home_county_fips = county
    row.auto_request = auto_request
    row.scene_gate = scene_gate
    await session.flush()
    return row


async def call(
    session: AsyncSession,
    source_id: str,
    *,
    at: tuple[float, float] | None = CHARLESTON,
    county: str | None = KANAWHA,
    agency_name: str = "CHARLESTON PD",
    decision: str | None = "eligible",
    status: str = "dispatched",
    **fields: Any,
) -> Call:
    """A call as if folded, located and triaged (no events behind it)."""
    now = datetime.now(UTC)
    row = Call(
        source_id=source_id,
        incident_number=fields.pop("incident_number", f"26-{uuid.uuid4().hex[:8]}"),
        agency=agency_name,
        call_type="OD",
        call_type_description="OVERDOSE",
        lat=at[0] if at else None,
        lon=at[1] if at else None,
        address="1 Capitol St",
        city="Charleston",
        narrative=fields.pop("narrative", "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN"),
        status=status,
        county_fips=county,
        county_name={KANAWHA: "Kanawha", PUTNAM: "Putnam", CABELL: "Cabell"}.get(county or ""),
        county_method="point" if at else "unknown",
        decision=decision,
        decision_summary=f"{decision}: test" if decision else None,
        decided_at=now if decision else None,
        opened_at=now,
        **fields,
    )
    session.add(row)
    await session.flush()
    return row


async def triaged(session: AsyncSession, call: Call) -> None:
    """Record the triage decision the rules make of the call (its facts, for the peer)."""
    from dataclasses import asdict

    from corespond.triage.classifier import TriageInput, classify
    from corespond.triage.models import TriageDecisionRecord
    from corespond.triage.ruleset import load_rules

    decision = classify(
        TriageInput(call_type=call.call_type, narrative=call.narrative), load_rules()
    )
    session.add(
        TriageDecisionRecord(
            call_id=call.id,
            decision=call.decision or decision.decision,
            summary=decision.summary,
            reasons=[asdict(r) for r in decision.reasons],
            rules_version=decision.rules_version,
            inputs_sha256=decision.inputs_sha256,
            danger=decision.danger,
        )
    )
    await session.flush()
