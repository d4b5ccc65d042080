"""Reading the delivery log, replaying a message, and how each CAD source is being served."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.calls.models import Call
from corespond.dispatch import repository
from corespond.dispatch.models import DeliveryAttempt, OutboxMessage
from corespond.dispatch.repository import DeliveryFilter
from corespond.errors import Conflict, Forbidden, NotFound
from corespond.sources.service import list_sources, reach_source


async def list_messages(
    session: AsyncSession,
    principal: Principal,
    where: DeliveryFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[OutboxMessage]:
    """Messages of the calls the key may see (deliveries are scoped like calls)."""
    await _integrator_live(session, principal)
    scope = calls.scope_filter(principal)
    return await repository.list_messages(session, where, scope=scope, after=after, limit=limit)


async def get_message(
    session: AsyncSession, principal: Principal, message_id: uuid.UUID
) -> OutboxMessage:
    """A message of a call the key may see, else ``NotFound`` (no hint that it exists)."""
    await _integrator_live(session, principal)
    message = await session.get(OutboxMessage, message_id)
    call = await session.get(Call, message.call_id) if message is not None else None
    if message is None or call is None or not calls.visible(call, principal):
        raise NotFound(f"delivery {message_id} not found")
    return message


async def _integrator_live(session: AsyncSession, principal: Principal) -> None:
    """An integrator key of a disabled source reads and resends nothing."""
    if principal.scope is not None and principal.scope.kind == "source":
        await reach_source(session, principal, principal.scope.value)


def require_statewide(principal: Principal) -> None:
    """Source health (callback URLs, every source's backlog) is for unscoped keys."""
    if principal.scope is not None:
        raise Forbidden("CAD sources' delivery health is statewide: use an unscoped supervisor key")


async def attempts(session: AsyncSession, message_id: uuid.UUID) -> Sequence[DeliveryAttempt]:
    return await repository.attempts_of(session, message_id)


async def redeliver(
    session: AsyncSession,
    principal: Principal,
    message_id: uuid.UUID,
    now: datetime,
    *,
    force: bool = False,
) -> OutboxMessage:
    """Send a message again (dead, delivered, or pending and waiting out a backoff): due
    now, with the same ``webhook-id`` (a receiver that has it can drop it) and a fresh retry
    horizon. Refused when a later message of the call has been delivered, since the CAD
    would then see an older state last, unless ``force`` (the payload's ``sequence`` lets
    the receiver put it in its place). A later message not yet delivered is no reason: it
    waits behind this one, as the relay keeps a call's order. Only a message of a call the
    key may see."""
    await get_message(session, principal, message_id)
    try:
        message = await repository.lock_message(session, message_id)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise Conflict("the message is being delivered right now; try again") from None
        raise
    if message is None:
        raise NotFound(f"delivery {message_id} not found")
    later = await repository.later_delivered(session, message)
    if later is not None and not force:
        delivered = f" at {later.delivered_at:%Y-%m-%d %H:%M:%S} UTC" if later.delivered_at else ""
        raise Conflict(
            f"message {later.seq} of this call was delivered{delivered}; sending message "
            f"{message.seq} now would show the CAD an older state last. Pass force=true to "
            "send it anyway (receivers can order by data.sequence)",
            extra={"later_delivery_id": str(later.id)},
        )
    if later is None:
        # A later message a relay is sending at this moment would land before this one.
        try:
            await repository.lock_later_pending(session, message)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == "55P03":
                raise Conflict(
                    "a later message of this call is being delivered right now; try again"
                ) from None
            raise
    message.state = "pending"
    message.next_attempt_at = now
    message.retry_from = now
    message.dead_at = None
    message.delivered_at = None
    await session.flush()
    await repository.notify_relay(session)
    return message


async def oldest_undelivered(session: AsyncSession) -> dict[str, datetime]:
    """Per CAD source with messages waiting, since when the oldest has waited."""
    return await repository.oldest_pending_by_source(session)


async def send_pending_now(session: AsyncSession, source_id: str, now: datetime) -> int:
    """Make a source's pending messages due now (its callback was just set or fixed)."""
    count = await repository.make_due(session, source_id, now)
    await repository.notify_relay(session)
    return count


@dataclass(frozen=True)
class SourceDelivery:
    source_id: str
    callback_url: str | None
    pending: int
    dead: int
    failing_since: datetime | None
    last_delivered_at: datetime | None
    alert: bool
    last_dead_at: datetime | None = None


async def source_status(
    session: AsyncSession, now: datetime, alert_after: timedelta
) -> list[SourceDelivery]:
    """Per CAD source: its callback, what waits, what died, since when it has been failing."""
    backlog = {b.source_id: b for b in await repository.backlog_by_source(session)}
    # The same test the relay's alert uses: no delivery since a failure (or events waiting
    # for a callback URL).
    failing = await repository.failing_since_by_source(session)
    out = []
    for source in await list_sources(session, now):
        b = backlog.get(source.id)
        failing_since = failing.get(source.id)
        out.append(
            SourceDelivery(
                source_id=source.id,
                callback_url=source.callback_url,
                pending=b.pending if b else 0,
                dead=b.dead if b else 0,
                failing_since=failing_since,
                last_delivered_at=b.last_delivered_at if b else None,
                alert=failing_since is not None and now - failing_since > alert_after,
                last_dead_at=b.last_dead_at if b else None,
            )
        )
    return out


async def changes_since(
    session: AsyncSession, source_id: str, since: int, limit: int
) -> Sequence[OutboxMessage]:
    """The resync feed: a source's assignment changes after position ``since``, in the
    order they happened (each call's in its sequence), whether delivered or not."""
    await repository.sequence_feed(session)
    return await repository.feed_after(session, source_id, since, limit)
