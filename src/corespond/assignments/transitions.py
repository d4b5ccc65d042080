"""The assignment lifecycle as data: which action moves which status to which.

::

    offered ──accept──▶ accepted ──en-route──▶ en_route ──on-scene──▶ on_scene ──clear──▶ cleared
       │  └─decline──▶ declined      (waits for the scene         └────────clear───────▶ cleared
       └──(deadline)─▶ expired        to be reported secure)
    any live status ──cancel──▶ cancelled (dispatcher, danger, call cancelled or closed)

A request that finds no one ends in ``unfilled``. Every move is a compare-and-set on the
current status in one statement; the loser of a race gets a 409, never a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass

from corespond.assignments.models import LIVE_STATUSES


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    stamp: str  # the column that records when
    event: str  # what dispatch is told

    @property
    def ends(self) -> bool:
        return self.target not in LIVE_STATUSES


TRANSITIONS = {
    t.action: t
    for t in (
        Transition("accept", ("offered",), "accepted", "accepted_at", "assignment.accepted"),
        Transition("decline", ("offered",), "declined", "ended_at", "assignment.declined"),
        Transition("en-route", ("accepted",), "en_route", "en_route_at", "assignment.en_route"),
        Transition("on-scene", ("en_route",), "on_scene", "on_scene_at", "assignment.on_scene"),
        Transition("clear", ("en_route", "on_scene"), "cleared", "ended_at", "assignment.cleared"),
        Transition("cancel", LIVE_STATUSES, "cancelled", "ended_at", "assignment.cancelled"),
        Transition("expire", ("offered",), "expired", "ended_at", "assignment.expired"),
    )
}

PEER_ACTIONS = ("accept", "decline", "en-route", "on-scene", "clear")

# Statuses in which the peer is committed to the call (and shown as busy).
COMMITTED = ("accepted", "en_route", "on_scene")


def refusal(action: str, status: str) -> str:
    """Why ``action`` cannot be taken on an assignment that is ``status``."""
    transition = TRANSITIONS[action]
    allowed = " or ".join(transition.sources)
    if status not in LIVE_STATUSES:
        return f"the assignment is {status}; it can no longer {action}"
    return f"the assignment is {status}; {action} needs it to be {allowed}"
