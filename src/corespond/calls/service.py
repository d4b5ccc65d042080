"""Calls: creating the row an event belongs to, refolding it, and reading it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from corespond import pagination
from corespond.agencies import service as agencies
from corespond.agencies.names import agency_key
from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.calls import repository
from corespond.calls.filters import CallFilter, ScopeFilter
from corespond.calls.folding import CallState, FoldableEvent, Mark, fold_events, folds_onto
from corespond.calls.folding import fold_onto as fold_onto_state
from corespond.calls.models import Call
from corespond.errors import Conflict, Forbidden, NotFound
from corespond.geo.service import Geography, locate_call
from corespond.triage import service as triage
from corespond.triage.classifier import TriageDecision, TriageInput


async def id_of(session: AsyncSession, source_id: str, incident_number: str) -> uuid.UUID | None:
    """The id of the call for (source, incident number), if there is one."""
    return await repository.call_id_of(session, source_id, incident_number)


async def lock(session: AsyncSession, call_id: uuid.UUID) -> Call:
    """Take a call's row lock for this transaction, before reading what it will be rebuilt from."""
    call = await repository.lock_call(session, call_id)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


async def lock_many(session: AsyncSession, call_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Call]:
    """``lock`` for several calls in one statement, in the order of their ids (the order
    every worker takes them in, so that two never deadlock); a call that is gone is left out."""
    return {call.id: call for call in await repository.lock_calls(session, call_ids)}


def _state(call: Call) -> CallState:
    state = CallState(**{name: getattr(call, name) for name in _STATE_FIELDS})
    state.hazards = list(state.hazards or ())
    return state


def _hold(call: Call, state: CallState, now: datetime) -> None:
    for name in _STATE_FIELDS:
        value = getattr(state, name)
        if getattr(call, name) != value:
            setattr(call, name, value)
    call.folded_at = now


_STATE_FIELDS = tuple(f.name for f in fields(CallState))


def refold(call: Call, events: Iterable[FoldableEvent], now: datetime) -> None:
    """Rebuild a locked call (see ``lock``) from its events (written at the next flush)."""
    _hold(call, fold_events(events), now)


def fold_onto(
    call: Call,
    events: Sequence[FoldableEvent],
    folded_count: int,
    folded_last: Mark | None,
    now: datetime,
) -> bool:
    """Fold ``events`` onto what a locked call holds, when that is the fold of
    ``folded_count`` events, the last ``folded_last``, and these all come after them (see
    ``folding.folds_onto``): the same result as ``refold`` with every event, without reading
    them. False (nothing changed) otherwise, or for a purged call (its text is gone from it
    and from its events alike, so only a refold agrees with its events)."""
    if call.purged_at is not None or call.event_count != folded_count:
        return False
    if not folds_onto(folded_count, folded_last, events):
        return False
    _hold(call, fold_onto_state(_state(call), events), now)
    return True


def location_inputs(call: Call) -> tuple[object, ...]:
    """What ``locate`` reads of a call: it need not run again while these stay the same."""
    return (call.lat, call.lon, call.address, call.city, call.agency)


async def locate(session: AsyncSession, call: Call, geography: Geography) -> None:
    """Set the call's county from its point, else its place, else its agency's home; and
    the point it is placed at (see ``position``); written at the next flush."""
    finding = locate_call(
        geography, lat=call.lat, lon=call.lon, address=call.address, city=call.city
    )
    if finding.needs_agency:  # the agency is looked up only when nothing else says where
        home = await agencies.home_county(session, geography.atlas, call.agency)
        finding = locate_call(
            geography,
            lat=call.lat,
            lon=call.lon,
            address=call.address,
            city=call.city,
            agency=call.agency,
            agency_home=home,
        )
    call.county_fips = finding.fips
    call.county_name = finding.name
    call.county_method = finding.method
    call.county_detail = finding.detail
    call.located_lat = finding.lat
    call.located_lon = finding.lon


@dataclass(frozen=True)
class Position:
    """Where a call is placed, and what that point is ("the call", "the call's ZIP 25301")."""

    lat: float
    lon: float
    what: str


def position(call: Call, geography: Geography) -> Position | None:
    """The point the call was placed at when it was located (see ``locate``). A call without
    one, located before points were kept or placed nowhere, is placed now."""
    if call.located_lat is not None and call.located_lon is not None:
        lat, lon = call.located_lat, call.located_lon
        method, detail = call.county_method, call.county_detail
    else:
        finding = locate_call(
            geography, lat=call.lat, lon=call.lon, address=call.address, city=call.city
        )
        if finding.lat is None or finding.lon is None:
            return None
        lat, lon, method, detail = finding.lat, finding.lon, finding.method, finding.detail
    return Position(lat, lon, "the call" if method == "point" else f"the call's {detail}")


def triage_input(call: Call, not_hazards: Sequence[str] = ()) -> TriageInput:
    """What triage reads of a call. ``not_hazards``: flags the call's CAD uses for something
    else (the scene reported secure), left out of the hazards triage weighs."""
    ignored = {flag.strip().lower() for flag in not_hazards}
    return TriageInput(
        source=call.source_id,
        agency=call.agency,
        call_type=call.call_type,
        call_type_description=call.call_type_description,
        narrative=call.narrative,
        hazards=tuple(h for h in call.hazards or () if h.strip().lower() not in ignored),
    )


def record_decision(
    call: Call,
    decision: TriageDecision,
    turned_dangerous: bool,
    rules_version: str,
    now: datetime,
) -> None:
    """Make ``decision`` the call's current one (its history is kept by triage), written at
    the next flush. ``turned_dangerous_at`` is set once, and cleared only by a supervisor's
    override."""
    call.decision = decision.decision
    call.decision_summary = decision.summary
    call.decision_rules_version = rules_version
    call.decided_at = now
    if turned_dangerous and call.turned_dangerous_at is None:
        call.turned_dangerous_at = call.decided_at


async def needing_triage(session: AsyncSession, rules_version: str, limit: int) -> list[uuid.UUID]:
    """Folded calls with no decision, and open calls decided under other rules."""
    return await repository.needing_triage_ids(session, rules_version, limit)


def scope_filter(principal: Principal) -> ScopeFilter:
    """What a key's scope limits calls (and what comes of them: assignments, deliveries)
    to; provider scopes cannot read calls yet (403). Agencies compare by name key."""
    if principal.scope is None:
        return ScopeFilter()
    if principal.scope.kind == "agency":
        return ScopeFilter(agency=agency_key(principal.scope.value))
    if principal.scope.kind == "county":
        return ScopeFilter(county_fips=principal.scope.value)
    if principal.scope.kind == "source":
        return ScopeFilter(source=principal.scope.value)
    raise Forbidden(
        f"keys scoped to a {principal.scope.kind} cannot read calls until calls carry one; "
        "use an unscoped, agency- or county-scoped key"
    )


def visible(call: Call, principal: Principal) -> bool:
    """Whether a key's scope covers the call."""
    scope = scope_filter(principal)
    if scope.agency is not None and agency_key(call.agency or "") != scope.agency:
        return False
    if scope.source is not None and call.source_id != scope.source:
        return False
    return scope.county_fips is None or call.county_fips == scope.county_fips


async def ended_among(session: AsyncSession, call_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``call_ids`` that CAD has closed or cancelled."""
    return await repository.ended_among(session, call_ids)


async def get_call(session: AsyncSession, call_id: uuid.UUID, principal: Principal) -> Call:
    """A call the principal may see, else ``NotFound`` (no hint that it exists)."""
    scope_filter(principal)
    call = await repository.get_call(session, call_id)
    if call is None or not visible(call, principal):
        raise NotFound(f"call {call_id} not found")
    return call


async def list_calls(
    session: AsyncSession,
    where: CallFilter,
    principal: Principal,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Call], str | None]:
    """A page of calls, newest first, and the cursor of the next page (None at the end)."""
    after = pagination.decode_cursor(cursor) if cursor else None
    rows = await repository.list_calls(
        session, where, scope=scope_filter(principal), after=after, limit=limit + 1
    )
    page = rows[:limit]
    last = page[-1] if page else None
    next_cursor = (
        pagination.encode_cursor(last.created_at, last.id) if last and len(rows) > limit else None
    )
    return page, next_cursor


class NotDangerous(Conflict):
    slug = "not-turned-dangerous"
    title = "The call has not turned dangerous"


class PeerStillAssigned(Conflict):
    slug = "peer-still-assigned"
    title = "A peer is still assigned to the call"


async def override_danger(
    session: AsyncSession, principal: Principal, call_id: uuid.UUID, reason: str, now: datetime
) -> Call:
    """A supervisor overrides the danger a call turned to, after police reported it
    unfounded: the call goes back to ``review`` (a person decides whether a peer goes; no
    peer is sent by this), ``turned_dangerous_at`` is cleared, and the triage history and
    the audit log keep who and why. Only a call that turned dangerous (``409`` otherwise)."""
    await get_call(session, call_id, principal)
    call = await lock(session, call_id)
    if call.turned_dangerous_at is None or call.decision != "ineligible":
        what = f"it is {call.decision}" if call.decision else "it has not been triaged"
        raise NotDangerous(
            f"only a call that turned dangerous can be overridden; {what}",
            extra={"decision": call.decision},
        )
    by = f"{principal.name} ({principal.role})"
    record = await triage.override_danger(session, call.id, by, reason, now)
    was = call.turned_dangerous_at
    call.decision = record.decision
    call.decision_summary = record.summary
    call.decided_at = record.decided_at
    call.turned_dangerous_at = None
    await session.flush()
    await audit.record(
        session,
        principal,
        "call.danger_overridden",
        "call",
        call.id,
        {"reason": reason, "turned_dangerous_at": was.isoformat(), "now": record.decision},
    )
    return call
