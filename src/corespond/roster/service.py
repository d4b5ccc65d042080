"""Rosters: providers and their counties, peers and their credentials, shifts, status.

Who may change what: admins everything; a ``provider_admin`` key scoped to a provider only
that provider's peers and shifts. Shift times are stored in UTC; times without an offset are
wall-clock times in the program's time zone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.auth.service import Principal
from corespond.errors import Conflict, Forbidden, InvalidPayload, NotFound
from corespond.geo.atlas import CountyAtlas
from corespond.geo.service import require_county
from corespond.roster import repository
from corespond.roster.models import (
    CREDENTIAL_KINDS,
    PEER_STATUSES,
    SHIFT_KINDS,
    Credential,
    Peer,
    PeerStatusChange,
    Provider,
    ProviderCounty,
    Shift,
    ShiftChange,
)

PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def actor(principal: Principal) -> str:
    """How a change is attributed in history: the key's name and role."""
    return f"{principal.name} ({principal.role})"


def require_provider_access(principal: Principal, provider_id: str) -> None:
    """Provider admins act only on their own provider."""
    if principal.role == "provider_admin":
        if principal.scope is None or principal.scope.kind != "provider":
            raise Forbidden("a provider_admin key needs a provider scope")
        if principal.scope.value != provider_id:
            raise Forbidden(f"this key manages provider {principal.scope.value!r} only")


def visible_provider(principal: Principal) -> str | None:
    """The provider a key is limited to when reading rosters (None: all)."""
    if principal.scope is not None and principal.scope.kind == "provider":
        return principal.scope.value
    if principal.role == "provider_admin":
        raise Forbidden("a provider_admin key needs a provider scope")
    return None


async def peer_providers(session: AsyncSession, principal: Principal) -> frozenset[str] | None:
    """The providers whose peers a key may see (None: all). A provider scope: that
    provider; a county scope: the providers serving the county; an agency scope: those
    serving the agency's home county; a peer's own key: none (it reads its assignments)."""
    scope = principal.scope
    if principal.role == "provider_admin" and (scope is None or scope.kind != "provider"):
        raise Forbidden("a provider_admin key needs a provider scope")
    if scope is None:
        return None
    if scope.kind == "provider":
        return frozenset([scope.value])
    county = scope.value if scope.kind == "county" else None
    if scope.kind == "agency":
        agency = await agencies.find(session, scope.value)
        county = agency.home_county_fips if agency is not None else None
    if county is None:
        return frozenset()
    return frozenset(
        row.provider_id for row in await repository.county_provider_rows(session, county)
    )


def sees_private_fields(principal: Principal) -> bool:
    """Phone, home point and credential references: the peer's provider (its admin, within
    its scope), supervisors (within theirs) and admins; not auditors or dispatchers."""
    return principal.role in ("admin", "supervisor", "provider_admin")


# --- providers -----------------------------------------------------------------------------


async def create_provider(session: AsyncSession, provider_id: str, name: str) -> Provider:
    """Register a provider."""
    if not PROVIDER_ID.fullmatch(provider_id):
        raise InvalidPayload(f"provider id must be a lower-case slug: {provider_id!r}")
    if await session.get(Provider, provider_id) is not None:
        raise Conflict(f"provider {provider_id!r} already exists")
    provider = Provider(id=provider_id, name=name.strip())
    session.add(provider)
    await session.flush()
    return provider


async def get_provider(session: AsyncSession, provider_id: str) -> Provider:
    provider = await session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id!r} not found")
    return provider


async def list_providers(session: AsyncSession) -> Sequence[Provider]:
    return await repository.list_providers(session)


async def provider_counties(
    session: AsyncSession, provider_id: str | None = None
) -> Sequence[ProviderCounty]:
    return await repository.provider_counties(session, provider_id)


async def set_counties(
    session: AsyncSession,
    atlas: CountyAtlas,
    provider_id: str,
    counties: Sequence[tuple[str, str]],
) -> Sequence[ProviderCounty]:
    """Replace the counties a provider serves: (county name or FIPS, primary|backup)."""
    await get_provider(session, provider_id)
    resolved: list[tuple[str, str]] = []
    for county, role in counties:
        found = require_county(atlas, county)
        if found.fips in {fips for fips, _ in resolved}:
            raise InvalidPayload(f"county {found.name} is listed twice")
        if role not in ("primary", "backup"):
            raise InvalidPayload(f"role must be primary or backup: {role!r}")
        resolved.append((found.fips, role))
    for row in await provider_counties(session, provider_id):
        await session.delete(row)
    await session.flush()
    for fips, role in resolved:
        session.add(ProviderCounty(provider_id=provider_id, county_fips=fips, role=role))
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("a county has one primary provider; another provider is primary") from exc
    return await provider_counties(session, provider_id)


async def providers_serving(session: AsyncSession, county_fips: str) -> set[str]:
    """The providers serving a county, as primary or backup."""
    return {pc.provider_id for pc in await repository.county_provider_rows(session, county_fips)}


async def serving_by_county(session: AsyncSession) -> dict[str, dict[str, str]]:
    """County FIPS -> {provider id: role} for every provider serving it (primary or backup)."""
    out: dict[str, dict[str, str]] = {}
    for row in await repository.provider_counties(session):
        out.setdefault(row.county_fips, {})[row.provider_id] = row.role
    return out


def lead_provider(serving: dict[str, str]) -> str | None:
    """The provider shown for a county: its primary, else a backup."""
    primaries = [p for p, role in serving.items() if role == "primary"]
    candidates = primaries or sorted(serving)
    return candidates[0] if candidates else None


async def county_providers(session: AsyncSession) -> dict[str, str]:
    """County FIPS -> its primary provider's id."""
    return await repository.primary_providers(session)


# --- peers ---------------------------------------------------------------------------------


async def create_peer(
    session: AsyncSession, principal: Principal, provider_id: str, **fields: Any
) -> Peer:
    """Add a peer to a provider's roster."""
    require_provider_access(principal, provider_id)
    await get_provider(session, provider_id)
    peer = Peer(provider_id=provider_id, status="off_duty", **fields)
    session.add(peer)
    await session.flush()
    session.add(PeerStatusChange(peer_id=peer.id, status="off_duty", changed_by=actor(principal)))
    await session.flush()
    return peer


async def get_peer(session: AsyncSession, peer_id: uuid.UUID, principal: Principal) -> Peer:
    peer = await session.get(Peer, peer_id)
    allowed = await peer_providers(session, principal)
    if peer is None or (allowed is not None and peer.provider_id not in allowed):
        raise NotFound(f"peer {peer_id} not found")
    return peer


async def peer_by_id(session: AsyncSession, peer_id: uuid.UUID) -> Peer | None:
    """A peer by id, for a caller that decides itself who may know of it (a peer's own
    provider, from the peer's key)."""
    return await session.get(Peer, peer_id)


async def provider_peers(session: AsyncSession, provider_id: str) -> Sequence[Peer]:
    """A provider's peers, by name."""
    return await repository.peers_of_provider(session, provider_id)


async def peer_ids_named(
    session: AsyncSession, names: Sequence[str], providers: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Peers' ids by display name (the first of each name) among these providers' peers."""
    return await repository.peer_ids_named(session, names, providers)


async def update_peer(
    session: AsyncSession, principal: Principal, peer_id: uuid.UUID, **fields: Any
) -> Peer:
    peer = await get_peer(session, peer_id, principal)
    require_provider_access(principal, peer.provider_id)
    for name, value in fields.items():
        setattr(peer, name, value)
    await session.flush()
    return peer


async def list_peers(
    session: AsyncSession,
    principal: Principal,
    *,
    provider_id: str | None,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Peer]:
    return await repository.list_peers(
        session,
        allowed=await peer_providers(session, principal),
        provider_id=provider_id,
        status=status,
        after=after,
        limit=limit,
    )


async def set_status(
    session: AsyncSession, principal: Principal, peer_id: uuid.UUID, status: str, now: datetime
) -> Peer:
    """Set a peer's status (available, busy, off_duty); each change is kept. The peer
    (its own key), its provider's admin, a supervisor whose scope covers the peer's provider,
    or an admin."""
    if status not in PEER_STATUSES:
        raise InvalidPayload(f"status must be one of {', '.join(PEER_STATUSES)}")
    if principal.role == "peer" and (
        principal.scope is None
        or principal.scope.kind != "peer"
        or principal.scope.value != str(peer_id)
    ):
        raise Forbidden("a peer key sets only its own peer's status (scope peer:<id>)")
    if principal.role == "peer":
        own = await session.get(Peer, peer_id)
        if own is None:
            raise NotFound(f"peer {peer_id} not found")
        peer = own
    else:
        peer = await get_peer(session, peer_id, principal)
    require_provider_access(principal, peer.provider_id)
    if peer.status != status:
        peer.status = status
        peer.status_changed_at = now
        session.add(PeerStatusChange(peer_id=peer.id, status=status, changed_by=actor(principal)))
        await session.flush()
    return peer


async def change_status_if(
    session: AsyncSession,
    peer_id: uuid.UUID,
    expected: str,
    status: str,
    changed_by: str,
    at: datetime,
) -> bool:
    """Set a peer's status if it is still ``expected`` (one compare-and-set statement), with
    its history row; False if it had changed (a peer who went off duty stays off duty)."""
    if not await repository.set_status_if(session, peer_id, expected, status, at):
        return False
    session.add(PeerStatusChange(peer_id=peer_id, status=status, changed_by=changed_by))
    await session.flush()
    return True


async def credentials_of(
    session: AsyncSession, peer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Credential]]:
    found: dict[uuid.UUID, list[Credential]] = {peer_id: [] for peer_id in peer_ids}
    for credential in await repository.credentials_of(session, peer_ids):
        found[credential.peer_id].append(credential)
    return found


async def set_credential(
    session: AsyncSession,
    principal: Principal,
    peer_id: uuid.UUID,
    kind: str,
    *,
    reference: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> Credential:
    """Record a peer's credential of one kind (replacing the previous one)."""
    if kind not in CREDENTIAL_KINDS:
        raise InvalidPayload(f"credential kind must be one of {', '.join(CREDENTIAL_KINDS)}")
    peer = await get_peer(session, peer_id, principal)
    require_provider_access(principal, peer.provider_id)
    credential = await repository.credential(session, peer.id, kind)
    if credential is None:
        credential = Credential(peer_id=peer.id, kind=kind)
        session.add(credential)
    credential.reference = reference
    credential.expires_at = expires_at
    credential.updated_at = now
    await session.flush()
    return credential


def credential_problems(
    credentials: Sequence[Credential], required: Sequence[str], at: datetime
) -> list[str]:
    """What keeps a peer from being offered a call at ``at``: missing or expired kinds."""
    held = {c.kind: c for c in credentials}
    problems = []
    for kind in required:
        credential = held.get(kind)
        if credential is None:
            problems.append(f"{kind} missing")
        elif credential.expires_at is not None and credential.expires_at <= at:
            problems.append(f"{kind} expired {credential.expires_at:%Y-%m-%d}")
    return problems


def offerable_span(
    credentials: Sequence[Credential], required: Sequence[str], start: datetime, end: datetime
) -> tuple[datetime, datetime] | None:
    """The part of ``[start, end)`` at whose every instant ``credential_problems`` finds
    nothing: up to the first expiry of a required credential; None if one is missing or
    none of it is left."""
    held = {c.kind: c for c in credentials}
    until = end
    for kind in required:
        credential = held.get(kind)
        if credential is None:
            return None
        if credential.expires_at is not None:
            until = min(until, credential.expires_at)
    return (start, until) if until > start else None


async def credentials_expiring_by(
    session: AsyncSession, before: datetime
) -> Sequence[tuple[Credential, Peer]]:
    """Every credential that expires by ``before`` (or already has), soonest first, with its
    peer: for the supervisors' alerts, which are scoped by county, not by key."""
    return await repository.credentials_expiring_before(session, before, None)


async def expiring_credentials(
    session: AsyncSession, principal: Principal, within: timedelta, now: datetime
) -> Sequence[tuple[Credential, Peer]]:
    """Credentials that expire within ``within`` (or already have), soonest first."""
    return await repository.credentials_expiring_before(
        session, now + within, await peer_providers(session, principal)
    )


# --- shifts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftInput:
    peer_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    counties: tuple[str, ...]
    kind: str = "on_duty"
    external_key: str | None = None


def resolve_counties(atlas: CountyAtlas, counties: Sequence[str]) -> tuple[str, ...]:
    """County names or FIPS codes -> sorted FIPS codes; unknown names are refused."""
    if not counties:
        raise InvalidPayload("a shift covers at least one county")
    resolved = set()
    for county in counties:
        resolved.add(require_county(atlas, county, "counties").fips)
    return tuple(sorted(resolved))


def _snapshot(shift: Shift) -> dict[str, Any]:
    return {
        "peer_id": str(shift.peer_id),
        "starts_at": shift.starts_at.isoformat(),
        "ends_at": shift.ends_at.isoformat(),
        "counties": list(shift.counties),
        "kind": shift.kind,
    }


class ShiftOverlap(Conflict):
    """The peer already has a live shift overlapping this one."""


def _check_shift(data: ShiftInput) -> None:
    if data.kind not in SHIFT_KINDS:
        raise InvalidPayload(f"kind must be one of {', '.join(SHIFT_KINDS)}")
    if data.ends_at <= data.starts_at:
        raise InvalidPayload("a shift ends after it starts")
    if data.ends_at - data.starts_at > timedelta(hours=48):
        raise InvalidPayload("a shift lasts at most 48 hours")


async def _refuse_overlap(
    session: AsyncSession,
    shift_id: uuid.UUID,
    peer_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime,
) -> None:
    # Checked before the change is made so the answer can name the other shift; the
    # exclusion constraint still decides when two writers race.
    overlapping = await repository.overlapping_shift(session, shift_id, peer_id, starts_at, ends_at)
    if overlapping is not None:
        raise ShiftOverlap(
            "the peer already has a shift at that time "
            f"({overlapping.starts_at:%Y-%m-%d %H:%M} to {overlapping.ends_at:%H:%M} UTC)"
        )


async def _flush_guarded(session: AsyncSession) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == "23P01":
            raise ShiftOverlap("the peer already has a shift at that time") from exc
        raise


async def create_shift(session: AsyncSession, principal: Principal, data: ShiftInput) -> Shift:
    """Put a peer on a shift; an overlap with another of the peer's shifts is refused."""
    _check_shift(data)
    peer = await get_peer(session, data.peer_id, principal)
    require_provider_access(principal, peer.provider_id)
    shift_id = uuid.uuid4()
    await _refuse_overlap(session, shift_id, peer.id, data.starts_at, data.ends_at)
    shift = Shift(
        id=shift_id,
        peer_id=peer.id,
        provider_id=peer.provider_id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        counties=list(data.counties),
        kind=data.kind,
        external_key=data.external_key,
        created_by=actor(principal),
    )
    try:
        async with session.begin_nested():
            session.add(shift)
            await session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == "23P01":
            raise ShiftOverlap("the peer already has a shift at that time") from exc
        raise
    session.add(
        ShiftChange(
            shift_id=shift.id, action="created", changed_by=actor(principal), after=_snapshot(shift)
        )
    )
    await session.flush()
    return shift


async def get_shift(session: AsyncSession, shift_id: uuid.UUID, principal: Principal) -> Shift:
    shift = await session.get(Shift, shift_id)
    limit = visible_provider(principal)
    if shift is None or (limit is not None and shift.provider_id != limit):
        raise NotFound(f"shift {shift_id} not found")
    return shift


async def update_shift(
    session: AsyncSession, principal: Principal, shift: Shift, data: ShiftInput
) -> bool:
    """Change a shift (times, counties, kind); returns whether anything changed."""
    _check_shift(data)
    require_provider_access(principal, shift.provider_id)
    if shift.cancelled_at is not None:
        raise Conflict("the shift was cancelled")
    before = _snapshot(shift)
    await _refuse_overlap(session, shift.id, shift.peer_id, data.starts_at, data.ends_at)
    shift.starts_at, shift.ends_at = data.starts_at, data.ends_at
    shift.counties, shift.kind = list(data.counties), data.kind
    after = _snapshot(shift)
    if after == before:
        return False
    await _flush_guarded(session)
    session.add(
        ShiftChange(
            shift_id=shift.id,
            action="updated",
            changed_by=actor(principal),
            before=before,
            after=after,
        )
    )
    await session.flush()
    return True


async def cancel_shift(
    session: AsyncSession, principal: Principal, shift: Shift, now: datetime
) -> Shift:
    """Cancel a shift; it stays in the history with who cancelled it and when."""
    require_provider_access(principal, shift.provider_id)
    if shift.cancelled_at is None:
        shift.cancelled_at = now
        shift.cancelled_by = actor(principal)
        session.add(
            ShiftChange(
                shift_id=shift.id,
                action="cancelled",
                changed_by=actor(principal),
                before=_snapshot(shift),
            )
        )
        await session.flush()
    return shift


async def shift_history(session: AsyncSession, shift_id: uuid.UUID) -> Sequence[ShiftChange]:
    return await repository.shift_changes(session, shift_id)


async def list_shifts(
    session: AsyncSession,
    principal: Principal,
    *,
    peer_id: uuid.UUID | None,
    provider_id: str | None,
    county_fips: str | None,
    starts_from: datetime | None,
    starts_to: datetime | None,
    include_cancelled: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Shift]:
    where = repository.ShiftFilter(
        peer_id=peer_id,
        provider_id=provider_id,
        county_fips=county_fips,
        starts_from=starts_from,
        starts_to=starts_to,
        include_cancelled=include_cancelled,
    )
    return await repository.list_shifts(
        session, where, provider_scope=visible_provider(principal), after=after, limit=limit
    )


# --- who is on -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OnShift:
    """A peer on shift at an instant in a county, with what would keep them from a call."""

    peer: Peer
    shift: Shift
    credentials: list[Credential]
    credential_problems: list[str]

    @property
    def offerable(self) -> bool:
        return self.peer.status == "available" and not self.credential_problems


async def on_shift(
    session: AsyncSession, county_fips: str, at: datetime, required: Sequence[str]
) -> list[OnShift]:
    """Peers on a live shift covering ``county_fips`` at ``at``, with status and credentials.

    Uses the GiST range index and the GIN index on counties; a year of shifts for hundreds
    of peers stays a few index probes.
    """
    rows = await repository.live_shifts_at(session, county_fips, at)
    credentials = await credentials_of(session, [peer.id for _, peer in rows])
    return [
        OnShift(
            peer=peer,
            shift=shift,
            credentials=credentials[peer.id],
            credential_problems=credential_problems(credentials[peer.id], required, at),
        )
        for shift, peer in rows
    ]


async def next_offerable_start(
    session: AsyncSession,
    county_fips: str,
    after: datetime,
    required: Sequence[str],
    providers: set[str],
    look_ahead: int = 50,
) -> datetime | None:
    """When the next shift in a county starts whose peer could be offered a call then: of
    a provider serving the county, with every required credential valid at its start (a
    peer's status then cannot be known). None if none of the next ``look_ahead`` shifts
    qualifies."""
    rows = await repository.shifts_starting_after(session, county_fips, after, look_ahead)
    credentials = await credentials_of(session, list({peer.id for _, peer in rows}))
    for shift, peer in rows:
        if peer.provider_id not in providers:
            continue
        if not credential_problems(credentials[peer.id], required, shift.starts_at):
            return shift.starts_at
    return None


async def next_on_shift(
    session: AsyncSession, county_fips: str, after: datetime
) -> datetime | None:
    """The next instant after ``after`` at which a shift in ``county_fips`` begins."""
    return await repository.first_start_after(session, county_fips, after)
