"""The call's workflow, in order: the one place that knows the order of the stations.

A CAD event is stored by ingest (the request path does nothing else); then, in the worker::

    1. fold       the call's events, in order, into the call                     calls
    2. locate     its county, and the point it is placed at (stored, once)       calls, geo
    3. triage     eligible, review or ineligible, recorded with the call          triage
       (one transaction, under the call's lock; then, each call in its own:)
    4. follow up  bring its assignment in step with what CAD and triage say      assignments
                  - a peer on a call that turned dangerous or ended is called off
                  - a scene CAD reports secure lets the staged peer go in
                  - an eligible call of an agency that opted in is matched (offered, or
                    unfilled with when the next peer comes on duty)

A dispatcher asks for a peer (step 4 on demand, for a triaged call); a supervisor overrides
a danger police found unfounded (step 3 by a person, once no peer is on the call). Offers
not answered in time move to the next candidate (``jobs``, after step 4: a call that turned
dangerous is settled before any of its offers moves on). Calls decided under other rules, or
not placed yet, are located and triaged again (steps 2 and 3) by the sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments import lifecycle, matching, scene
from corespond.assignments import views as assignments
from corespond.assignments.matching import RequestOutcome
from corespond.assignments.policy import Context, cancel_reason
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.models import Call
from corespond.calls.service import PeerStillAssigned
from corespond.errors import NotFound
from corespond.geo.service import Geography, geography_for
from corespond.ingest import service as ingest
from corespond.metrics import EVENT_FOLD_FAILURES
from corespond.sources import service as sources
from corespond.triage import service as triage
from corespond.triage.ruleset import RuleSet
from corespond.triage.service import Outcome

log = structlog.get_logger(__name__)


# --- 1 to 3: fold, locate, triage ----------------------------------------------------------


async def advance(
    session: AsyncSession,
    pending: Sequence[ingest.PendingCall],
    rules: RuleSet,
    geography: Geography,
    now: datetime,
) -> list[Outcome]:
    """Fold each call's claimed events into it, locate it and triage it, under the calls'
    locks (taken together, in id order); each call is written once, at the end.

    A call whose new events all come after those folded into it before takes them onto
    what it holds; otherwise it is refolded from its events. It is located again only if
    what locating reads of it changed (or it never was)."""
    # Lock first, then read: a history read before the lock could miss an event another
    # worker folds meanwhile, and this fold would then overwrite that one.
    locked = await calls.lock_many(session, [p.call_id for p in pending])
    gone = [p.call_id for p in pending if p.call_id not in locked]
    if gone:
        raise NotFound(f"call {gone[0]} not found")
    folded = await ingest.folded(session, list(locked))
    # Nothing is written until every call is folded, located and triaged: one UPDATE each.
    with session.no_autoflush:
        for claimed in pending:
            call = locked[claimed.call_id]
            where = calls.location_inputs(call) if call.county_method is not None else None
            before = folded.get(call.id, ingest.NONE_FOLDED)
            if not calls.fold_onto(call, claimed.events(), before.count, before.last, now):
                events = await ingest.events_to_fold(session, call.id, claimed.event_pks)
                calls.refold(call, events, now)
            if where is None or calls.location_inputs(call) != where:
                await calls.locate(session, call, geography)
        outcomes = await _triage(session, [locked[p.call_id] for p in pending], rules, now)
    await session.flush()
    return outcomes


async def _triage(
    session: AsyncSession, of: Sequence[Call], rules: RuleSet, now: datetime
) -> list[Outcome]:
    # The flags each call's CAD uses to report the scene secure are no hazard to weigh.
    signals = await sources.scene_secure_signals_of(session, {call.source_id for call in of})
    none = sources.SceneSecureSignals()
    inputs = {c.id: calls.triage_input(c, signals.get(c.source_id, none).flags) for c in of}
    outcomes = await triage.triage_many(session, inputs, rules)
    for call in of:
        outcome = outcomes[call.id]
        stale = (
            call.decision != outcome.decision.decision
            or call.decision_rules_version != rules.version
        )
        if outcome.changed or stale:
            calls.record_decision(
                call, outcome.decision, outcome.turned_dangerous, rules.version, now
            )
    return [outcomes[call.id] for call in of]


async def process_pending(
    session: AsyncSession,
    batch_size: int,
    rules: RuleSet,
    geography: Geography | None = None,
    folded: list[uuid.UUID] | None = None,
    *,
    now: datetime,
) -> int:
    """Fold, locate and triage the calls of one batch of stored events; returns how many
    events were handled. The ids of the calls advanced are appended to ``folded``: their
    follow-up (step 4) runs after this transaction commits.

    The batch is tried in one savepoint; if any call fails, each call is retried in its own
    savepoint, so one event that cannot be folded is recorded with its error (and retried
    later with backoff) without holding back the others.
    """
    geography = geography or geography_for()
    batch = await ingest.claim_pending(session, batch_size)
    if not batch.calls:
        return batch.size

    try:
        async with session.begin_nested():
            outcomes = await advance(session, batch.calls, rules, geography, now)
            await ingest.mark_processed(
                session, [pk for pending in batch.calls for pk in pending.event_pks]
            )
    except Exception:  # noqa: S110 - retried call by call below, where failures are recorded
        pass
    else:
        for outcome in outcomes:
            triage.announce(outcome)
        if folded is not None:
            folded.extend(pending.call_id for pending in batch.calls)
        return batch.size

    for pending in batch.calls:
        try:
            async with session.begin_nested():
                (outcome,) = await advance(session, [pending], rules, geography, now)
                await ingest.mark_processed(session, pending.event_pks)
        except Exception as exc:
            reason = _safe_reason(exc)
            log.error("cad_event_fold_failed", call_id=str(pending.call_id), reason=reason)
            EVENT_FOLD_FAILURES.inc()
            await ingest.mark_failed(session, pending.event_pks, reason)
        else:
            triage.announce(outcome)
            if folded is not None:
                folded.append(pending.call_id)
    return batch.size


async def retriage(
    session: AsyncSession,
    rules: RuleSet,
    geography: Geography | None = None,
    limit: int = 100,
    *,
    now: datetime,
) -> int:
    """Locate and triage calls that have no county or decision yet, and open calls decided
    under other rules (after a rules reload, or calls stored before these steps existed).
    One savepoint per call."""
    geography = geography or geography_for()
    done = 0
    for call_id in await calls.needing_triage(session, rules.version, limit):
        try:
            async with session.begin_nested():
                call = await calls.lock(session, call_id)
                await calls.locate(session, call, geography)
                (outcome,) = await _triage(session, [call], rules, now)
        except Exception as exc:
            log.error("retriage_failed", call_id=str(call_id), reason=_safe_reason(exc))
            continue
        triage.announce(outcome)
        done += 1
    return done


def _safe_reason(exc: Exception) -> str:
    """A failure reason fit for logs: never the exception text, which may quote a narrative."""
    if isinstance(exc, ValidationError):
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        return f"ValidationError at {', '.join(fields)}"
    return type(exc).__name__


# --- 4: follow up --------------------------------------------------------------------------


async def calls_to_follow_up(
    session: AsyncSession, ctx: Context, call_ids: Sequence[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Calls whose assignments are out of step with what CAD and triage now say: a live
    assignment on a call that turned dangerous or ended, a scene CAD reports secure, or an
    eligible call of an agency that opted in to automatic requests with no request yet."""
    cancel, secure = await lifecycle.out_of_step(session, call_ids)
    waiting = await matching.awaiting_automatic_request(session, ctx, call_ids)
    # Cancellations first: a peer heading into danger must hear before anyone is matched.
    return sorted(cancel) + sorted(secure) + [c for c in waiting if c not in cancel]


async def follow_up(session: AsyncSession, call_id: uuid.UUID, ctx: Context) -> str | None:
    """Bring one call's assignment in step (see ``calls_to_follow_up``); what was done."""
    call = await calls.lock(session, call_id)
    live = await assignments.live_for_call(session, call.id)
    if live is not None:
        reason = cancel_reason(call, live)
        if reason is not None:
            await lifecycle.call_off(session, call, live, reason, ctx)
            return f"cancelled ({reason})"
        if await scene.secure_by_cad(session, call, live, ctx):
            return "scene secure"
        return None
    if await matching.awaiting_automatic_request(session, ctx, [call.id], limit=1):
        result = await matching.request_automatically(session, call.id, ctx)
        return f"requested ({result.assignment.status})"
    return None


async def request_peer(
    session: AsyncSession,
    principal: Principal,
    call_id: uuid.UUID,
    ctx: Context,
    *,
    note: str | None = None,
    language: str | None = None,
    neighbouring_providers: bool = False,
) -> RequestOutcome:
    """A dispatcher asks for a peer: step 4 on demand. The call must be triaged (and not
    ineligible or ended); see ``assignments.matching.request_peer``."""
    return await matching.request_peer(
        session,
        principal,
        call_id,
        ctx,
        note=note,
        language=language,
        neighbouring_providers=neighbouring_providers,
    )


# --- 3 by a person: a danger police found unfounded ----------------------------------------


async def override_danger(
    session: AsyncSession, principal: Principal, call_id: uuid.UUID, reason: str, now: datetime
) -> Call:
    """A supervisor overrides the danger a call turned to (see ``calls.override_danger``),
    only once no peer is on it: the call-off for that danger comes first."""
    await calls.get_call(session, call_id, principal)
    live = await assignments.live_for_call(session, call_id)
    if live is not None:
        raise PeerStillAssigned(
            f"a peer is still {live.status} on this call: call them off first; the danger "
            "is overridden only on a call no peer is on",
            extra={"assignment_id": str(live.id), "assignment_status": live.status},
        )
    return await calls.override_danger(session, principal, call_id, reason, now)
