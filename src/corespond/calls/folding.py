"""Folding a call's CAD events into its current state: pure, order-independent.

Events are applied in ``occurred_at`` order (receipt order breaks ties), each carrying only
the fields it sets. A call's history is refolded whole whenever an event arrives out of that
order, so an update that arrives before its create, or twice, yields the same call as
in-order delivery would; events that come after everything folded so far are folded onto the
state the call holds (``fold_onto``), which is the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OPEN_STATUS = "open"
ENDING_EVENTS = {"call.closed": "closed", "call.cancelled": "cancelled"}
SCALAR_FIELDS = ("agency", "call_type", "call_type_description", "priority", "narrative", "status")
LOCATION_FIELDS = ("address", "city", "lat", "lon")


@dataclass(frozen=True)
class FoldableEvent:
    """One stored event, reduced to what folding needs."""

    event_type: str
    occurred_at: datetime
    sequence: int
    changes: Mapping[str, Any]


@dataclass
class CallState:
    """Everything a call's events say about it."""

    agency: str | None = None
    call_type: str | None = None
    call_type_description: str | None = None
    priority: int | None = None
    address: str | None = None
    city: str | None = None
    lat: float | None = None
    lon: float | None = None
    narrative: str | None = None
    hazards: list[str] = field(default_factory=list)
    status: str | None = None
    opened_at: datetime | None = None
    ended_at: datetime | None = None
    last_event_at: datetime | None = None
    event_count: int = 0


Mark = tuple[datetime, int]
"""Where an event falls in folding order: ``(occurred_at, sequence)``."""


def mark_of(event: FoldableEvent) -> Mark:
    return (event.occurred_at, event.sequence)


def fold_events(events: Iterable[FoldableEvent]) -> CallState:
    """The state of a call after all ``events``, whatever order they arrived in."""
    state = CallState()
    ordered = sorted(events, key=mark_of)
    for event in ordered:
        _apply(state, event)
    state.event_count = len(ordered)
    if ordered:
        created = [e.occurred_at for e in ordered if e.event_type == "call.created"]
        state.opened_at = created[0] if created else ordered[0].occurred_at
        state.last_event_at = ordered[-1].occurred_at
    return state


def folds_onto(
    folded_count: int, folded_last: Mark | None, events: Sequence[FoldableEvent]
) -> bool:
    """Whether ``events`` can be folded onto the state of ``folded_count`` events folded
    before them, the last of which is ``folded_last``, with the same result as folding them
    all again: each sorts after that last one, and none opens the call after others did
    (a late ``call.created`` moves ``opened_at``)."""
    if not events:
        return True
    if folded_count == 0:
        return True
    if folded_last is None or min(mark_of(e) for e in events) <= folded_last:
        return False
    return all(e.event_type != "call.created" for e in events)


def fold_onto(state: CallState, events: Iterable[FoldableEvent]) -> CallState:
    """``state``, the fold of earlier events, after ``events`` too (see ``folds_onto``)."""
    ordered = sorted(events, key=mark_of)
    if not ordered:
        return state
    for event in ordered:
        _apply(state, event)
    if state.event_count == 0:
        created = [e.occurred_at for e in ordered if e.event_type == "call.created"]
        state.opened_at = created[0] if created else ordered[0].occurred_at
    state.event_count += len(ordered)
    state.last_event_at = ordered[-1].occurred_at
    return state


def _apply(state: CallState, event: FoldableEvent) -> None:
    changes = event.changes
    for name in SCALAR_FIELDS:
        if name in changes:
            setattr(state, name, changes[name])
    location = changes.get("location")
    if "location" in changes and location is None:
        state.address = state.city = state.lat = state.lon = None
    elif isinstance(location, Mapping):
        for name in LOCATION_FIELDS:
            if name in location:
                setattr(state, name, location[name])
    if "hazards" in changes:
        state.hazards = list(changes["hazards"] or [])

    if event.event_type in ENDING_EVENTS:
        state.status = ENDING_EVENTS[event.event_type]
    elif state.status is None:
        state.status = OPEN_STATUS
    if state.status in ENDING_EVENTS.values():
        # Ended by a close/cancel event or by an update carrying that status; a later
        # event that keeps the status does not move the time.
        state.ended_at = state.ended_at or event.occurred_at
    else:
        state.ended_at = None
