"""Retention: free text about a person's substance use is kept only as long as needed.

After ``narrative_retention_days`` from a call's end (or its last event, for a call CAD
never closed), its narrative is replaced by its triage summary (the reasons, without the
matched words), its address and coordinates are dropped (the county stays), the raw CAD
events lose their narrative and location, triage reasons lose their matched text, and CAD
callback answers kept in the delivery log are dropped. Assignments and their outcomes stay,
tied to a call that no longer says who or where: de-identified counts for program
evaluation. The audit log is never touched.

People met after the call are kept only while they are part of the program: a person with
no live consent and nothing done with them (met, a consent signed, revoked or run out, a
referral, a follow-up due or done) for ``person_retention_days`` is de-identified: their
name, contact and the name they typed to sign are dropped; their county, dates and the
links of their contacts, referrals and follow-ups stay, so that the program's figures do
not change. And what a consent that ran out was
sharing (a referral carrying their identity, a QRT visit) stops, as revocation stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond import aftercall
from corespond.retention import repository

PURGED = "[purged after the retention period] "


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    calls: int
    delivery_bodies: int
    dry_run: bool
    people: int = 0
    people_cutoff: datetime | None = None


async def purge(
    session: AsyncSession,
    now: datetime,
    retention: timedelta,
    *,
    dry_run: bool = False,
    person_retention: timedelta | None = None,
) -> RetentionReport:
    """Purge what is past retention (or, with ``dry_run``, count it and change nothing):
    calls' text after ``retention``; with ``person_retention``, people inactive and without
    a live consent that long are de-identified."""
    cutoff = now - retention
    call_ids = await repository.calls_due(session, cutoff)
    bodies = await repository.kept_answers(session, cutoff)
    if not dry_run:
        if call_ids:
            await repository.purge_calls(session, call_ids, now, PURGED)
        await repository.drop_answers(session, cutoff)
    people = 0
    if person_retention is not None:
        if not dry_run:
            await aftercall.stop_expired_sharing(session, now)
        people = await aftercall.deidentify_inactive(
            session, now, person_retention, dry_run=dry_run
        )
    return RetentionReport(
        cutoff,
        len(call_ids),
        bodies,
        dry_run,
        people,
        now - person_retention if person_retention is not None else None,
    )
