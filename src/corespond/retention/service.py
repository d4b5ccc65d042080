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

from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.calls.models import Call
from corespond.dispatch.models import DeliveryAttempt

PURGED = "[purged after the retention period] "


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    calls: int
    delivery_bodies: int
    dry_run: bool


def _due(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        # Not purged yet, or events arrived after the purge and brought text back.
        or_(Call.purged_at.is_(None), Call.folded_at > Call.purged_at),
        func.coalesce(Call.ended_at, Call.last_event_at, Call.created_at) < cutoff,
    )


async def purge(
    session: AsyncSession, now: datetime, retention: timedelta, *, dry_run: bool = False
) -> RetentionReport:
    """Purge what is past retention (or, with ``dry_run``, count it and change nothing)."""
    cutoff = now - retention
    call_ids = (await session.scalars(select(Call.id).where(*_due(cutoff)))).all()
    bodies = await session.scalar(
        select(func.count())
        .select_from(DeliveryAttempt)
        .where(DeliveryAttempt.attempted_at < cutoff, DeliveryAttempt.response_body.is_not(None))
    )
    if dry_run or not call_ids:
        if not dry_run and bodies:
            await _purge_bodies(session, cutoff)
        return RetentionReport(cutoff, len(call_ids), int(bodies or 0), dry_run)
    ids = list(call_ids)
    # Summaries quote the matched words in parentheses: "drug use (FENTANYL in narrative)".
    reasons_only = func.regexp_replace(
        func.coalesce(Call.decision_summary, ""), r"\s*\([^)]*\)", "", "g"
    )
    await session.execute(
        update(Call)
        .where(Call.id.in_(ids))
        .values(
            narrative=func.concat(PURGED, reasons_only),
            decision_summary=reasons_only,
            address=None,
            city=None,
            lat=None,
            lon=None,
            # The county stays; how it was found may quote the coordinates or the address.
            county_detail=None,
            purged_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        text(
            "UPDATE cad_event SET payload = jsonb_set(payload, '{call}', "
            "(payload->'call') - 'narrative' - 'location') "
            "WHERE call_id = ANY(:ids) AND payload ? 'call'"
        ),
        {"ids": ids},
    )
    await session.execute(
        text(
            "UPDATE triage_decision SET reasons = (SELECT coalesce(jsonb_agg(r - 'detail'), "
            "'[]'::jsonb) FROM jsonb_array_elements(reasons) AS r), "
            "summary = regexp_replace(summary, '\\s*\\([^)]*\\)', '', 'g') "
            "WHERE call_id = ANY(:ids)"
        ),
        {"ids": ids},
    )
    await _purge_bodies(session, cutoff)
    return RetentionReport(cutoff, len(ids), int(bodies or 0), dry_run)


async def _purge_bodies(session: AsyncSession, cutoff: datetime) -> None:
    await session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.attempted_at < cutoff, DeliveryAttempt.response_body.is_not(None))
        .values(response_body=None)
        .execution_options(synchronize_session=False)
    )
