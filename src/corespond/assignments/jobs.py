"""Offer deadlines: an offer not accepted in time moves to the next candidate.

Timers are rows, not memory: an offer's deadline is its ``expires_at``, and the sweep reads
the offers past it. So a restart loses no timer (the sweep runs once at startup), and two
instances never both act on one: each expiry is a compare-and-set under the call's lock.
The sweep itself is the pipeline's (``corespond.pipeline.jobs``): a call's follow-up comes
before its offers' deadlines.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import structlog

from corespond.assignments import lifecycle
from corespond.assignments.policy import Context
from corespond.db import Database

log = structlog.get_logger(__name__)


async def expire_due_offers(database: Database, context: Callable[[], Context]) -> int:
    """Expire every offer past its deadline, each in its own transaction (the call goes to
    the next candidate); how many were expired."""
    async with database.sessionmaker() as session:
        due = await lifecycle.due_offers(session, context())
    done = 0
    for assignment_id in due:
        done += await _expire(database, assignment_id, context())
    return done


async def _expire(database: Database, assignment_id: uuid.UUID, ctx: Context) -> int:
    try:
        async with database.sessionmaker() as session, session.begin():
            expired = await lifecycle.expire_offer(session, assignment_id, ctx)
    except Exception as exc:
        log.error(
            "offer_expiry_failed",
            assignment_id=str(assignment_id),
            error_type=type(exc).__name__,
        )
        return 0
    if expired:
        log.info("offer_expired", assignment_id=str(assignment_id))
    return int(expired)
