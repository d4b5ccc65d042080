"""Retention: free text about a person's substance use is kept only as long as needed.

After ``narrative_retention_days`` from a call's end (or its last event, for a call CAD
never closed), its narrative is replaced by its triage summary (the reasons, without the
matched words), its address and coordinates are dropped (the county stays), the raw CAD
events lose their narrative and location, triage reasons lose their matched text, and CAD
callback answers kept in the delivery log are dropped. Assignments and their outcomes stay,
tied to a call that no longer says who or where: de-identified counts for program
evaluation. The audit log is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.retention import repository

PURGED = "[purged after the retention period] "


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    calls: int
    delivery_bodies: int
    dry_run: bool


async def purge(
    session: AsyncSession, now: datetime, retention: timedelta, *, dry_run: bool = False
) -> RetentionReport:
    """Purge what is past retention (or, with ``dry_run``, count it and change nothing)."""
    cutoff = now - retention
    call_ids = await repository.calls_due(session, cutoff)
    bodies = await repository.kept_answers(session, cutoff)
    if not dry_run:
        if call_ids:
            await repository.purge_calls(session, call_ids, now, PURGED)
        await repository.drop_answers(session, cutoff)
    return RetentionReport(cutoff, len(call_ids), bodies, dry_run)
