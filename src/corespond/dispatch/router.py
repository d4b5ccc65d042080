"""The delivery log: ``/v1/deliveries`` (supervisors and admins)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.dispatch import service
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.dispatch.relay import DeliveryPolicy
from corespond.dispatch.repository import DeliveryFilter
from corespond.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidPayload,
    NotFound,
    Unauthorized,
)
from corespond.errors import problem_responses as problems
from corespond.pagination import decode_cursor, encode_cursor
from corespond.sources import service as sources

router = APIRouter(tags=["deliveries"])

State = Literal["pending", "delivered", "dead"]


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    url: str | None
    status_code: int | None
    latency_ms: float | None
    response_body: str | None = Field(description="The first 1024 characters of the answer.")
    error: str | None
    outcome: Literal["delivered", "retry", "dead"]


class DeliveryOut(BaseModel):
    """One message for a CAD and where it stands. ``id`` is the ``webhook-id`` it is sent
    with, the same on every attempt."""

    id: uuid.UUID
    source: str
    call_id: uuid.UUID
    seq: int = Field(description="Its place in the call's order (1, 2, …).")
    event_type: str
    state: State
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    payload: dict[str, Any]


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
    order: Literal["newest_first"] = "newest_first"


class SourceDeliveryOut(BaseModel):
    source: str
    callback_url: str | None
    pending: int
    dead: int
    failing_since: datetime | None = Field(
        description="Created time of the oldest message still pending after a failed attempt."
    )
    last_delivered_at: datetime | None
    alert: bool = Field(description="Failing for longer than the alert threshold.")


def _out(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "source": message.source_id,
        "call_id": message.call_id,
        "seq": message.seq,
        "event_type": message.event_type,
        "state": message.state,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at if message.state == "pending" else None,
        "created_at": message.created_at,
        "delivered_at": message.delivered_at,
        "dead_at": message.dead_at,
        "last_attempt_at": message.last_attempt_at,
        "last_status_code": message.last_status_code,
        "last_error": message.last_error,
        "payload": message.payload,
    }


def _attempt(a: DeliveryAttempt) -> AttemptOut:
    return AttemptOut(
        attempt=a.attempt,
        attempted_at=a.attempted_at,
        url=a.url,
        status_code=a.status_code,
        latency_ms=a.latency_ms,
        response_body=a.response_body,
        error=a.error,
        outcome=a.outcome,  # type: ignore[arg-type]
    )


@router.get(
    "/v1/deliveries",
    response_model=DeliveryPage,
    responses=problems(BadRequest, Unauthorized, Forbidden, InvalidPayload),
)
async def list_deliveries(
    session: SessionDep,
    principal: Authorized,
    status: Annotated[State | None, Query(description="pending, delivered or dead")] = None,
    source: Annotated[str | None, Query(max_length=63, pattern=r"^[a-z0-9_-]+$")] = None,
    call: Annotated[uuid.UUID | None, Query(description="Messages of one call")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    """Messages to CAD callbacks, newest first: `?status=dead` is what dispatch never got.
    A scoped key sees the messages of the calls it may see."""
    after = decode_cursor(cursor) if cursor else None
    rows = await service.list_messages(
        session,
        principal,
        DeliveryFilter(state=status, source_id=source, call_id=call),
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    await audit.record(
        session, principal, "delivery.list", "delivery", None, {"ids": [str(m.id) for m in page]}
    )
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return DeliveryPage(items=[DeliveryOut(**_out(m)) for m in page], next_cursor=next_cursor)


@router.get(
    "/v1/deliveries/sources",
    response_model=list[SourceDeliveryOut],
    responses=problems(Unauthorized, Forbidden),
)
async def delivery_sources(
    request: Request, session: SessionDep, principal: Authorized
) -> list[SourceDeliveryOut]:
    """How each CAD source is being served: pending, dead, failing since when, alert
    (unscoped keys: it names every source's callback)."""
    service.require_statewide(principal)
    await audit.record(session, principal, "delivery.sources_read", "cad_source")
    policy = DeliveryPolicy.of(request.app.state.settings)
    rows = await service.source_status(session, request.app.state.clock(), policy.alert_after)
    return [
        SourceDeliveryOut(
            source=r.source_id,
            callback_url=r.callback_url,
            pending=r.pending,
            dead=r.dead,
            failing_since=r.failing_since,
            last_delivered_at=r.last_delivered_at,
            alert=r.alert,
        )
        for r in rows
    ]


@router.get(
    "/v1/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def get_delivery(
    delivery_id: uuid.UUID, session: SessionDep, principal: Authorized
) -> DeliveryDetail:
    """One message with every attempt: when, status code, latency, the answer, the error."""
    message = await service.get_message(session, principal, delivery_id)
    log = [_attempt(a) for a in await service.attempts(session, message.id)]
    await audit.record(session, principal, "delivery.read", "delivery", message.id)
    return DeliveryDetail(**_out(message), attempt_log=log)


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    responses=problems(Unauthorized, Forbidden, NotFound, Conflict, InvalidPayload),
)
async def redeliver(
    delivery_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    force: Annotated[
        bool, Query(description="Send it even though a later message of the call was delivered.")
    ] = False,
) -> DeliveryOut:
    """Send it again now, with the same `webhook-id` (receivers drop repeats by it) and a
    fresh retry horizon. `409` if a later message of the call has been delivered (the CAD
    would see an older state last) unless `force=true`, or if it (or a later message of the
    call) is being sent right now. A later message not yet delivered waits behind it."""
    now = request.app.state.clock()
    message = await service.redeliver(session, principal, delivery_id, now, force=force)
    await audit.record(
        session, principal, "delivery.redeliver", "delivery", message.id, {"force": force}
    )
    return DeliveryOut(**_out(message))


class Change(BaseModel):
    """One assignment change for a CAD, exactly as its callback got (or will get) it."""

    position: int = Field(description="Its place in the source's feed.")
    webhook_id: uuid.UUID = Field(description="The `webhook-id` it is delivered with.")
    call_id: uuid.UUID
    seq: int = Field(description="Its place in the call's order (1, 2, …).")
    type: str
    created_at: datetime
    delivery_state: State
    payload: dict[str, Any] = Field(description="The callback body (see docs/integrating.md).")


class ChangeFeed(BaseModel):
    items: list[Change]
    next_cursor: str = Field(description="Pass as `since` to read on (the same when empty).")
    has_more: bool


@router.get(
    "/v1/cad/{source}/changes",
    response_model=ChangeFeed,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
    tags=["CAD integration"],
)
async def changes(
    source: str,
    session: SessionDep,
    principal: Authorized,
    since: Annotated[
        str,
        Query(
            max_length=18,  # a position fits in a bigint
            pattern=r"^[0-9]+$",
            description="The cursor of the last change read (`0`: from the start).",
        ),
    ] = "0",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ChangeFeed:
    """The resync feed: every assignment change for this CAD after `since`, in the order
    they happened (each call's in its `seq` order), whether its callback delivery
    succeeded or not, so a CAD that was down catches up. Cursors survive restarts."""
    await sources.reach_source(session, principal, source)
    after = int(since)
    rows = await service.changes_since(session, source, after, limit + 1)
    page = rows[:limit]
    await audit.record(
        session, principal, "delivery.feed_read", "cad_source", source, {"since": after}
    )
    last = page[-1].feed_position if page else after
    return ChangeFeed(
        items=[
            Change(
                position=m.feed_position or 0,
                webhook_id=m.id,
                call_id=m.call_id,
                seq=m.seq,
                type=m.event_type,
                created_at=m.created_at,
                delivery_state=m.state,  # type: ignore[arg-type]
                payload=m.payload,
            )
            for m in page
        ],
        next_cursor=str(last or after),
        has_more=len(rows) > limit,
    )
