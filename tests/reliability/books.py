"""The books of a scenario, balanced once the load has stopped and the service has settled:

* every event answered 2xx is stored exactly once (its body's digest), folded into its call
  exactly once (marked processed once, never failed) and counted by its call; at most one
  202 ``accepted`` per event, the rest ``duplicate``;
* every assignment change (``assignment_change``) has its outbox message, numbered 1, 2, …
  per call, every one delivered; each CAD's callback saw each of its messages at least once,
  in order per call (the arrival order of the requests it answered 2xx never goes back), and
  never one for another CAD;
* no peer ever held two live assignments: the history of changes, replayed in the order it
  was written, never has a peer in two live assignments at once; none is left busy;
* each call was requested automatically at most once.

``balance`` raises ``AssertionError`` listing every discrepancy (the first few of each kind).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from corespond.assignments.models import LIVE_STATUSES
from corespond.db import Database
from tests.reliability.cad import CadLoad, Callback

LIVE = tuple(LIVE_STATUSES)


@dataclass
class Ledger:
    """What a scenario came to, in figures."""

    events: int = 0
    calls: int = 0
    changes: int = 0
    messages: int = 0
    requests_to_callbacks: int = 0
    redeliveries: int = 0
    accepted_offers: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        return (
            f"{self.events} events, {self.calls} calls, {self.changes} assignment changes "
            f"({dict(self.statuses)}), {self.messages} messages, "
            f"{self.requests_to_callbacks} callback requests ({self.redeliveries} repeats)"
        )


async def _count(database: Database, sql: str) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def settle(database: Database, within: float = 60.0, logs: str = "") -> None:
    """Until no event waits to be folded, no assignment is live and no message waits to be
    delivered."""
    deadline = time.monotonic() + within
    live = ", ".join(f"'{s}'" for s in LIVE)
    waiting: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            waiting = {
                "events": await _count(
                    database, "SELECT count(*) FROM cad_event WHERE processed_at IS NULL"
                ),
                "live assignments": await _count(
                    database,
                    f"SELECT count(*) FROM assignment WHERE status IN ({live})",  # noqa: S608
                ),
                "messages": await _count(
                    database, "SELECT count(*) FROM outbox WHERE state = 'pending'"
                ),
            }
        except Exception as exc:  # the database may still be coming back
            waiting = {type(exc).__name__: 1}
        if not any(waiting.values()):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"not settled within {within} s: still waiting {waiting}\n{logs}")


async def _rows(database: Database, sql: str) -> list[Any]:
    async with database.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


def _first(items: list[str], n: int = 5) -> str:
    more = f" … and {len(items) - n} more" if len(items) > n else ""
    return "; ".join(items[:n]) + more


async def balance(
    database: Database,
    load: CadLoad,
    callbacks: dict[str, Callback],
    *,
    every_event_accepted_once: bool = True,
    answers_allowed: frozenset[int | None] = frozenset({503}),
) -> Ledger:
    """Check the books (see the module); ``every_event_accepted_once``: each event had
    exactly one ``accepted`` answer (false where a process died between commit and answer:
    then at most one); ``answers_allowed``: the answers other than 2xx a CAD may have seen
    (None: no HTTP answer at all)."""
    problems: dict[str, list[str]] = defaultdict(list)
    ledger = Ledger()

    # --- events ---------------------------------------------------------------------------
    for event in load.unanswered():
        problems["never answered 2xx"].append(
            f"{event.event_id}: {[(a.status, a.error) for a in event.attempts][-3:]}"
        )
    for event in load.events:
        for attempt in event.attempts:
            if attempt.status is not None and 200 <= attempt.status < 300:
                continue
            if attempt.status not in answers_allowed:
                problems[f"answered {attempt.status}"].append(
                    f"{event.event_id} from {attempt.target}: {attempt.error}"
                )
        receipts = Counter(event.receipts())
        accepted = receipts["accepted"]
        if accepted > 1 or (every_event_accepted_once and accepted != 1):
            problems["not accepted exactly once"].append(f"{event.event_id}: {dict(receipts)}")

    stored = {
        (r.source_id, r.event_id): r
        for r in await _rows(
            database,
            "SELECT source_id, event_id, payload_sha256, call_id, processed_at, attempts, "
            "last_error FROM cad_event",
        )
    }
    ledger.events = len(stored)
    sent = {(e.source, e.event_id): e for e in load.events}
    for key in sent.keys() - stored.keys():
        if sent[key].acknowledged:
            problems["acknowledged, not stored"].append(str(key))
    for key in stored.keys() - sent.keys():
        problems["stored, never sent"].append(str(key))
    events_per_call: Counter[Any] = Counter()
    for key, row in stored.items():
        events_per_call[row.call_id] += 1
        if key in sent and row.payload_sha256 != hashlib.sha256(sent[key].body).hexdigest():
            problems["stored with another body"].append(str(key))
        if row.call_id is None:
            problems["stored without its call"].append(str(key))
        if row.processed_at is None or row.attempts != 1 or row.last_error is not None:
            problems["not processed exactly once"].append(
                f"{key}: processed_at={row.processed_at} attempts={row.attempts} "
                f"error={row.last_error}"
            )

    calls = {
        r.id: r
        for r in await _rows(
            database, "SELECT id, source_id, incident_number, status, event_count FROM call"
        )
    }
    ledger.calls = len(calls)
    closed = {(e.source, e.incident) for e in load.events if e.event_type == "call.closed"}
    for call in calls.values():
        if call.event_count != events_per_call[call.id]:
            problems["events counted wrong"].append(
                f"{call.incident_number}: {call.event_count} counted, "
                f"{events_per_call[call.id]} stored"
            )
        if (call.source_id, call.incident_number) in closed and call.status != "closed":
            problems["closed by CAD, not closed"].append(f"{call.incident_number}: {call.status}")
    for row in await _rows(
        database,
        "SELECT call_id, count(*) AS n FROM peer_request WHERE trigger = 'auto' "
        "GROUP BY call_id HAVING count(*) > 1",
    ):
        problems["requested automatically more than once"].append(f"{row.call_id}: {row.n}")

    # --- assignment changes and their messages ---------------------------------------------
    changes = await _rows(
        database,
        "SELECT c.id, c.assignment_id, a.peer_id, a.call_id, c.from_status, c.to_status "
        "FROM assignment_change c JOIN assignment a ON a.id = c.assignment_id ORDER BY c.id",
    )
    ledger.changes = len(changes)
    ledger.statuses = Counter(c.to_status for c in changes)
    ledger.accepted_offers = ledger.statuses["accepted"]
    messages = await _rows(
        database, "SELECT id, call_id, source_id, seq, state, event_type FROM outbox"
    )
    ledger.messages = len(messages)
    changes_per_call = Counter(c.call_id for c in changes)
    messages_per_call: dict[Any, list[Any]] = defaultdict(list)
    for message in messages:
        messages_per_call[message.call_id].append(message)
        if message.state != "delivered":
            problems[f"message {message.state}"].append(
                f"{message.id} ({message.event_type}, seq {message.seq})"
            )
    for call_id in changes_per_call.keys() | messages_per_call.keys():
        seqs = sorted(m.seq for m in messages_per_call[call_id])
        if len(seqs) != changes_per_call[call_id]:
            problems["changes without their message"].append(
                f"call {call_id}: {changes_per_call[call_id]} changes, {len(seqs)} messages"
            )
        if seqs != list(range(1, len(seqs) + 1)):
            problems["messages not numbered 1, 2, …"].append(f"call {call_id}: {seqs}")

    # --- what each CAD's callback saw -----------------------------------------------------
    by_id = {str(m.id): m for m in messages}
    for source, callback in callbacks.items():
        if callback.unverified:
            problems["requests failing verification"].append(f"{source}: {callback.unverified}")
        delivered = callback.delivered()
        ledger.requests_to_callbacks += len(delivered)
        seen: dict[str, list[int]] = defaultdict(list)
        ids: set[str] = set()
        for delivery in delivered:
            stored_message = by_id.get(delivery.webhook_id)
            if stored_message is None or stored_message.source_id != source:
                problems["delivered, not in this CAD's outbox"].append(
                    f"{source}: {delivery.webhook_id}"
                )
                continue
            if delivery.sequence != stored_message.seq:
                problems["sequence differs from the outbox"].append(delivery.webhook_id)
            if delivery.webhook_id in ids:
                ledger.redeliveries += 1
            ids.add(delivery.webhook_id)
            seen[delivery.call_id].append(delivery.sequence)
        for call_id, seqs in seen.items():
            if seqs != sorted(seqs):
                problems["delivered out of order"].append(f"{source} call {call_id}: {seqs}")
        mine = {str(m.id) for m in messages if m.source_id == source}
        for missing in sorted(mine - ids):
            message = by_id[missing]
            problems["never delivered to the CAD"].append(
                f"{source}: {message.event_type} seq {message.seq} of call {message.call_id}"
            )

    # --- one live assignment per peer, ever -----------------------------------------------
    live_of: dict[Any, set[Any]] = defaultdict(set)
    for change in changes:
        if change.peer_id is None:
            continue
        held = live_of[change.peer_id]
        if change.to_status in LIVE:
            held.add(change.assignment_id)
        else:
            held.discard(change.assignment_id)
        if len(held) > 1:
            problems["a peer with two live assignments"].append(
                f"peer {change.peer_id} at change {change.id}: {sorted(map(str, held))}"
            )
    live = ", ".join(f"'{s}'" for s in LIVE)
    for row in await _rows(
        database,
        "SELECT p.id FROM peer p WHERE p.status = 'busy' AND NOT EXISTS ("  # noqa: S608
        f"SELECT 1 FROM assignment a WHERE a.peer_id = p.id AND a.status IN ({live}))",
    ):
        problems["a peer left busy"].append(str(row.id))

    if problems:
        report = "\n".join(
            f"- {kind} ({len(items)}): {_first(items)}" for kind, items in problems.items()
        )
        raise AssertionError(f"the books do not balance ({ledger.line()}):\n{report}")
    return ledger
