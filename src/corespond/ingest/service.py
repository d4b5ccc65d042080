"""Ingest: store a verified CAD event exactly once and hand it to the worker.

The request path only stores: the event row and the (possibly new, still empty) call it
belongs to, in one statement; then it wakes the worker (``WorkerWake``). Folding and
everything after it run in the worker (``corespond.pipeline``), so a crash between the 202
and processing loses nothing; this module gives the worker its events: claimed in batches,
what each call was folded from so far, marked processed or failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.calls.folding import FoldableEvent
from corespond.db import Database
from corespond.errors import InvalidPayload
from corespond.ingest import repository
from corespond.ingest.models import CadEvent as StoredEvent
from corespond.ingest.schemas import CadEvent

log = structlog.get_logger(__name__)

# What the worker listens on: stored events are announced after they commit (``WorkerWake``).
EVENTS_CHANNEL = repository.NOTIFY_CHANNEL


class WorkerWake:
    """Wakes the worker (a NOTIFY on ``EVENTS_CHANNEL``) once events are committed: at most
    one NOTIFY in flight per process, and one more after it for everything committed while it
    was, so a burst costs a few NOTIFYs, not one per event (PostgreSQL commits notifying
    transactions one at a time). A wake is never the work itself: a NOTIFY lost to a crash
    or a dropped connection leaves the event to the worker's sweep."""

    def __init__(self, database: Database, here: Callable[[], None] | None = None) -> None:
        self._database = database
        # The worker of this process, if it runs one: woken at once, without a round trip.
        self._here = here
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Events were committed: make sure a NOTIFY is sent after this moment."""
        if self._here is not None:
            self._here()
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send(), name="cad-event-wake")

    async def _send(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._database.notify(EVENTS_CHANNEL)
            except Exception as exc:  # the sweep finds the events
                log.warning("cad_event_wake_failed", error_type=type(exc).__name__)
                return

    async def close(self) -> None:
        """Let the NOTIFY in flight, if any, go out."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


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
    conn: asyncpg.Connection,
    source_id: str,
    event: CadEvent,
    body: bytes,
    webhook_id: str,
    ignored: dict[str, Any] | None = None,
) -> IngestResult:
    """Store ``event`` from ``source_id`` unless it is a repeat; answers which it was. The
    fields the contract does not know are kept with it under ``ignored``. One statement on
    a plain connection (``db.Database.plain``): durable when this returns.

    ``InvalidPayload`` if a value cannot be stored (an ignored field holding NaN or a NUL):
    the database refuses it, nothing is stored."""
    # The payload is the event's own fields as sent (validated), and what it did not know.
    payload = event.model_dump_json(exclude_unset=True)
    if ignored:
        payload = f"{payload[:-1]},{json.dumps({'ignored': ignored})[1:]}"
    digest = hashlib.sha256(body).hexdigest()
    try:
        stored = await repository.store_event(
            conn,
            source_id=source_id,
            event_id=event.event_id,
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            incident_number=event.call.incident_number,
            webhook_id=webhook_id,
            payload=payload,
            payload_sha256=digest,
        )
    except asyncpg.PostgresError as exc:
        # SQLSTATE class 22, "data exception": a value the database cannot hold.
        if str(getattr(exc, "sqlstate", "") or "").startswith("22"):
            raise InvalidPayload("a value in the request cannot be stored or compared") from None
        raise
    if stored.event_pk is None:
        if stored.payload_sha256 is not None and stored.payload_sha256 != digest:
            log.warning(
                "cad_event_id_reused",
                source=source_id,
                event_id=event.event_id,
                note="same event_id with a different body; the first one stands",
            )
        return IngestResult(event.event_id, "duplicate", stored.call_id)
    return IngestResult(event.event_id, "accepted", stored.call_id)


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


@dataclass(frozen=True)
class PendingCall:
    """A call with stored events waiting to be folded into it: the claimed events."""

    call_id: uuid.UUID
    event_pks: list[int]
    stored: list[StoredEvent]

    def events(self) -> list[FoldableEvent]:
        """The claimed events as folding wants them (read here, in the call's own turn: an
        event that cannot be read fails its call only)."""
        return [foldable(e) for e in self.stored]


@dataclass(frozen=True)
class Claimed:
    """A batch of stored events one worker holds until its transaction ends: how many, and
    the calls they belong to, in one global order (so that two workers never deadlock)."""

    size: int
    calls: list[PendingCall]


async def claim_pending(session: AsyncSession, batch_size: int) -> Claimed:
    """Claim a batch of stored, unprocessed events, oldest first, skipping those another
    worker holds; an event that belongs to no call is marked processed at once."""
    claimed = await repository.claim_pending(session, batch_size)
    by_call: dict[uuid.UUID, list[StoredEvent]] = {}
    for stored in claimed:
        if stored.call_id is not None:
            by_call.setdefault(stored.call_id, []).append(stored)
    orphans = [e.id for e in claimed if e.call_id is None]
    if orphans:
        await repository.mark_processed(session, orphans)
    return Claimed(
        len(claimed),
        [
            PendingCall(call_id, [e.id for e in events], events)
            for call_id, events in sorted(by_call.items())
        ],
    )


@dataclass(frozen=True)
class Folded:
    """The events a call's state was folded from: how many, and where the last of them
    falls in folding order (``calls.folding.Mark``)."""

    count: int
    last: tuple[datetime, int] | None


NONE_FOLDED = Folded(0, None)


async def folded(session: AsyncSession, call_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Folded]:
    """For each call, the events folded into it so far (those marked processed). Read under
    the calls' locks, like ``events_to_fold``."""
    rows = await repository.processed_marks(session, call_ids)
    return {call_id: Folded(count, (at, pk)) for call_id, count, at, pk in rows}


async def events_to_fold(
    session: AsyncSession, call_id: uuid.UUID, claimed: Sequence[int]
) -> list[FoldableEvent]:
    """The events a call is folded from: those folded before (processed) and the ``claimed``
    ones, in the order they fold; not events stored since the claim, nor ones waiting out a
    failure (each is folded when it is claimed). Read under the call's lock: read before it,
    the history could miss an event another worker folds meanwhile."""
    return [foldable(e) for e in await repository.folded_and_claimed(session, call_id, claimed)]


async def mark_processed(session: AsyncSession, event_pks: Sequence[int]) -> None:
    """These events are folded into their call."""
    await repository.mark_processed(session, event_pks)


async def mark_failed(session: AsyncSession, event_pks: Sequence[int], reason: str) -> None:
    """These events could not be folded (``reason``, fit for logs); they are tried again
    later, with backoff, until they run out of attempts."""
    await repository.mark_failed(session, event_pks, reason)


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
