"""Ingest: store a verified CAD event exactly once and hand it to the worker.

The request path only stores: the event row, the (possibly new, still empty) call it belongs
to, and a NOTIFY, all in one transaction. Folding and everything after it run in the worker,
so a crash between the 202 and processing loses nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.calls import service as calls
from corespond.calls.folding import FoldableEvent
from corespond.calls.models import Call
from corespond.geo.service import Geography, geography_for
from corespond.ingest import repository
from corespond.ingest.models import CadEvent as StoredEvent
from corespond.ingest.schemas import CadEvent
from corespond.metrics import EVENT_FOLD_FAILURES
from corespond.sources.models import CadSource
from corespond.triage import service as triage
from corespond.triage.ruleset import RuleSet
from corespond.triage.service import Outcome

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class IngestResult:
    event_id: str
    status: Literal["accepted", "duplicate"]
    call_id: uuid.UUID | None


@dataclass(frozen=True)
class EventSummary:
    """An event in a call's history, without its payload (which may hold the narrative)."""

    event_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    processed: bool


async def ingest(
    session: AsyncSession,
    source_id: str,
    event: CadEvent,
    body: bytes,
    webhook_id: str,
    ignored: dict[str, Any] | None = None,
) -> IngestResult:
    """Store ``event`` from ``source_id`` unless it is a repeat; answers which it was. The
    fields the contract does not know are kept with it under ``ignored``."""
    payload = event.model_dump(mode="json", exclude_unset=True)
    if ignored:
        payload["ignored"] = ignored
    digest = hashlib.sha256(body).hexdigest()
    stored = await repository.store_event(
        session,
        source_id=source_id,
        event_id=event.event_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        incident_number=event.call.incident_number,
        webhook_id=webhook_id,
        payload=payload,
        payload_sha256=digest,
    )
    if stored is None:
        existing = await repository.existing_event(session, source_id, event.event_id)
        if existing is not None and existing.payload_sha256 != digest:
            log.warning(
                "cad_event_id_reused",
                source=source_id,
                event_id=event.event_id,
                note="same event_id with a different body; the first one stands",
            )
        return IngestResult(
            event.event_id, "duplicate", existing.call_id if existing is not None else None
        )
    event_pk, call_id = stored
    if call_id is None:  # another first event of this call made it a moment ago
        call_id = await calls.ensure_call(session, source_id, event.call.incident_number)
        await repository.attach_call(session, event_pk, call_id)
    return IngestResult(event.event_id, "accepted", call_id)


def foldable(stored: StoredEvent) -> FoldableEvent:
    """A stored event as the folding function wants it.

    The payload was validated before it was stored and saved with only the fields the CAD
    sent, so its ``call`` object (less the incident number) is exactly the event's changes.
    """
    changes = {k: v for k, v in stored.payload["call"].items() if k != "incident_number"}
    return FoldableEvent(
        event_type=stored.event_type,
        occurred_at=stored.occurred_at,
        sequence=stored.id,
        changes=changes,
    )


async def process_pending(
    session: AsyncSession,
    batch_size: int,
    rules: RuleSet,
    geography: Geography | None = None,
    folded: list[uuid.UUID] | None = None,
) -> int:
    """Fold one batch of stored, unprocessed events into their calls; returns how many.
    The ids of the calls folded are appended to ``folded`` (for the follow-up on
    assignments, which runs after this transaction commits).

    The batch is tried in one savepoint; if any call fails, each call is retried in its own
    savepoint, so one event that cannot be folded is recorded with its error (and retried
    later with backoff) without holding back the others.
    """
    geography = geography or geography_for()
    claimed = await repository.claim_pending(session, batch_size)
    by_call: dict[uuid.UUID, list[int]] = {}
    for stored in claimed:
        if stored.call_id is not None:
            by_call.setdefault(stored.call_id, []).append(stored.id)
    orphans = [e.id for e in claimed if e.call_id is None]
    if orphans:
        await repository.mark_processed(session, orphans)
    # Calls are locked in one global order so that two workers can never deadlock.
    batch = sorted(by_call.items())
    if not batch:
        return len(claimed)

    try:
        async with session.begin_nested():
            outcomes = [
                await _fold_call(session, call_id, rules, geography) for call_id, _ in batch
            ]
            await repository.mark_processed(session, [pk for _, pks in batch for pk in pks])
    except Exception:  # noqa: S110 - retried call by call below, where failures are recorded
        pass
    else:
        for outcome in outcomes:
            triage.announce(outcome)
        if folded is not None:
            folded.extend(call_id for call_id, _ in batch)
        return len(claimed)

    for call_id, event_pks in batch:
        try:
            async with session.begin_nested():
                outcome = await _fold_call(session, call_id, rules, geography)
                await repository.mark_processed(session, event_pks)
        except Exception as exc:
            reason = _safe_reason(exc)
            log.error("cad_event_fold_failed", call_id=str(call_id), reason=reason)
            EVENT_FOLD_FAILURES.inc()
            await repository.mark_failed(session, event_pks, reason)
        else:
            triage.announce(outcome)
            if folded is not None:
                folded.append(call_id)
    return len(claimed)


async def _fold_call(
    session: AsyncSession, call_id: uuid.UUID, rules: RuleSet, geography: Geography
) -> Outcome:
    # Lock first, then read: a history read before the lock could miss an event another
    # worker folds meanwhile, and this fold would then overwrite that one.
    call = await calls.lock(session, call_id)
    history = await repository.events_of_call(session, call_id)
    await calls.refold(session, call, [foldable(e) for e in history])
    await calls.locate(session, call, geography)
    return await _triage_locked(session, call, rules)


async def _triage_locked(session: AsyncSession, call: Call, rules: RuleSet) -> Outcome:
    source = await session.get(CadSource, call.source_id)
    flags = source.scene_secure_flags if source is not None else ()
    outcome = await triage.triage(session, call.id, calls.triage_input(call, flags), rules)
    stale = (
        call.decision != outcome.decision.decision or call.decision_rules_version != rules.version
    )
    if outcome.changed or stale:
        await calls.record_decision(
            session, call, outcome.decision, outcome.turned_dangerous, rules.version
        )
    return outcome


async def retriage(
    session: AsyncSession, rules: RuleSet, geography: Geography | None = None, limit: int = 100
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
                outcome = await _triage_locked(session, call, rules)
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


async def event_history(session: AsyncSession, call_id: uuid.UUID) -> Sequence[EventSummary]:
    """The events of a call in the order they are folded."""
    return [
        EventSummary(
            event_id=e.event_id,
            event_type=e.event_type,
            occurred_at=e.occurred_at,
            received_at=e.received_at,
            processed=e.processed_at is not None,
        )
        for e in await repository.events_of_call(session, call_id)
    ]


async def unprocessed_counts(session: AsyncSession) -> tuple[int, int]:
    """(pending, dead) counts of events not yet folded."""
    return await repository.unprocessed_counts(session)
