"""What assignment work runs with (the program's matching policy, the map, the time now),
and when a call may have a peer at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from corespond.alerts.service import AlertPolicy
from corespond.assignments.errors import CallNotRequestable
from corespond.assignments.models import Assignment
from corespond.calls.models import Call
from corespond.config import Settings
from corespond.geo.service import Geography


@dataclass(frozen=True)
class MatchPolicy:
    """The program's rules for matching (from the settings): how long an offer stands, how
    far a neighbouring county's peer may travel, the credentials a peer must hold."""

    ack_timeout: timedelta
    fallback_max_km: float
    required_credentials: tuple[str, ...]
    auto_request_max_age: timedelta = timedelta(minutes=5)
    # May a dispatcher widen an unfilled request to neighbouring counties' providers?
    neighbour_providers: bool = False
    # How supervisors are told when a request goes unfilled (and reminded).
    alerts: AlertPolicy = field(default_factory=AlertPolicy.default)

    @classmethod
    def of(cls, settings: Settings) -> MatchPolicy:
        return cls(
            ack_timeout=timedelta(seconds=settings.ack_timeout_seconds),
            fallback_max_km=settings.fallback_max_km,
            required_credentials=tuple(settings.required_credentials),
            auto_request_max_age=timedelta(seconds=settings.auto_request_max_age_seconds),
            neighbour_providers=settings.neighbour_providers,
            alerts=AlertPolicy.of(settings),
        )


@dataclass(frozen=True)
class Context:
    """The policy, the map and the time one piece of work runs with."""

    policy: MatchPolicy
    geography: Geography
    now: datetime


def dangerous(call: Call) -> bool:
    """The call was eligible or under review and then reported danger (sticky)."""
    return call.decision == "ineligible" and call.turned_dangerous_at is not None


def cancel_reason(call: Call, assignment: Assignment) -> str | None:
    """Why a live assignment must be cancelled now, if it must."""
    reason = cancel_reason_for_call(call)
    if reason == "call_closed" and assignment.status == "on_scene":
        return None  # a peer on scene clears it themselves, with the outcome
    return reason


def cancel_reason_for_call(call: Call) -> str | None:
    """Why no peer may be (or stay) on this call, if so: danger, or CAD ended it."""
    if dangerous(call):
        return "danger"
    if call.status == "cancelled":
        return "call_cancelled"
    if call.status == "closed":
        return "call_closed"
    return None


def refuse_unrequestable(call: Call) -> None:
    """Refuse (``CallNotRequestable``) a request for a call not triaged yet, ineligible or
    ended."""
    if call.decision is None:
        raise CallNotRequestable(
            "the call has not been triaged yet; try again in a moment",
            extra={"decision": None},
        )
    if call.decision == "ineligible":
        raise CallNotRequestable(
            f"the call is ineligible for a peer ({call.decision_summary})",
            extra={"decision": call.decision},
        )
    if call.status in ("closed", "cancelled"):
        raise CallNotRequestable(f"the call is {call.status}", extra={"decision": call.decision})
