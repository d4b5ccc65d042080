"""Writing what dispatch must hear into the outbox, inside the transaction of the change.

The payload carries operational status only: which peer, when, in what state. Outcomes,
referrals and anything about treatment stay in corespond (42 CFR Part 2 limits the
redisclosure of substance-use records).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import Assignment
from corespond.calls.models import Call
from corespond.dispatch import repository
from corespond.dispatch.models import OutboxMessage
from corespond.roster.models import Peer, Provider

# NOTIFY'd in the transaction that adds a message: the relay, and the notifier that wakes
# peers' phones for offers, listen on it.
CHANNEL = repository.NOTIFY_CHANNEL

EVENT_TYPES = (
    "assignment.offered",
    "assignment.accepted",
    "assignment.declined",
    "assignment.expired",
    "assignment.scene_secure",
    "assignment.en_route",
    "assignment.on_scene",
    "assignment.cleared",
    "assignment.cancelled",
    "assignment.unfilled",
)


def payload(
    event_type: str,
    at: datetime,
    assignment: Assignment,
    call: Call,
    peer: Peer | None,
    provider: Provider | None,
    sequence: int,
) -> dict[str, Any]:
    """The message body: ``{"type", "timestamp", "data": {sequence, assignment, call,
    peer}}``; ``sequence`` numbers the call's messages 1, 2, … so a receiver can tell an
    older state (a redelivery) from a newer one."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "type": event_type,
        "timestamp": at.isoformat(),
        "data": {
            "sequence": sequence,
            "assignment": {
                "id": str(assignment.id),
                "status": assignment.status,
                "offered_at": iso(assignment.offered_at),
                "expires_at": iso(assignment.expires_at),
                "accepted_at": iso(assignment.accepted_at),
                "en_route_at": iso(assignment.en_route_at),
                "on_scene_at": iso(assignment.on_scene_at),
                "ended_at": iso(assignment.ended_at),
                "scene_secure_required": assignment.scene_secure_required,
                "scene_secured_at": iso(assignment.scene_secured_at),
                "cancel_reason": assignment.cancel_reason,
                "next_available_at": iso(assignment.next_available_at),
                "fallback": assignment.fallback,
            },
            "call": {
                "id": str(call.id),
                "source": call.source_id,
                "incident_number": call.incident_number,
            },
            "peer": (
                {
                    "id": str(peer.id),
                    "display_name": peer.display_name,
                    "provider": provider.name if provider is not None else peer.provider_id,
                    "phone": peer.phone,
                }
                if peer is not None
                else None
            ),
        },
    }


async def enqueue(
    session: AsyncSession,
    event_type: str,
    at: datetime,
    assignment: Assignment,
    call: Call,
    peer: Peer | None,
) -> OutboxMessage:
    """Add a message for the call's CAD source, next in the call's order.

    The caller holds the call's row lock, so the sequence number cannot be taken twice.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown dispatch event type {event_type!r}")
    provider = await session.get(Provider, peer.provider_id) if peer is not None else None
    seq = await repository.next_seq(session, call.id)
    message = OutboxMessage(
        source_id=call.source_id,
        call_id=call.id,
        seq=seq,
        event_type=event_type,
        payload=payload(event_type, at, assignment, call, peer, provider, seq),
    )
    session.add(message)
    await session.flush()
    await repository.notify_relay(session)
    return message


async def messages_of_call(session: AsyncSession, call_id: Any) -> list[OutboxMessage]:
    rows = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.call_id == call_id).order_by(OutboxMessage.seq)
    )
    return list(rows)
