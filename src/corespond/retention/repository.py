"""Every query of retention: finding what is past its time, and purging it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.calls.models import Call
from corespond.dispatch.models import DeliveryAttempt

# Summaries quote the matched words in parentheses: "drug use (FENTANYL in narrative)".
QUOTED = r"\s*\([^)]*\)"


async def calls_due(session: AsyncSession, cutoff: datetime) -> Sequence[uuid.UUID]:
    """Calls that ended before ``cutoff`` and still hold text: never purged, or refolded
    since (late events brought text back)."""
    return (
        await session.scalars(
            select(Call.id).where(
                or_(Call.purged_at.is_(None), Call.folded_at > Call.purged_at),
                func.coalesce(Call.ended_at, Call.last_event_at, Call.created_at) < cutoff,
            )
        )
    ).all()


async def kept_answers(session: AsyncSession, cutoff: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(DeliveryAttempt)
        .where(DeliveryAttempt.attempted_at < cutoff, DeliveryAttempt.response_body.is_not(None))
    )
    return int(count or 0)


async def purge_calls(
    session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime, marker: str
) -> None:
    """Narrative (kept as the triage reasons without the matched words), address,
    coordinates, located point and located detail of the calls; their raw events' narrative
    and location; their triage reasons' matched text. The county and the outcomes stay."""
    ids = list(ids)
    reasons_only = func.regexp_replace(func.coalesce(Call.decision_summary, ""), QUOTED, "", "g")
    await session.execute(
        update(Call)
        .where(Call.id.in_(ids))
        .values(
            narrative=func.concat(marker, reasons_only),
            decision_summary=reasons_only,
            address=None,
            city=None,
            lat=None,
            lon=None,
            located_lat=None,
            located_lon=None,
            county_detail=None,  # it may quote the coordinates or the address
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
            "summary = regexp_replace(summary, :quoted, '', 'g') "
            "WHERE call_id = ANY(:ids)"
        ),
        {"ids": ids, "quoted": QUOTED},
    )


async def drop_answers(session: AsyncSession, cutoff: datetime) -> None:
    """CAD callback answers kept in the delivery log (they may echo anything)."""
    await session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.attempted_at < cutoff, DeliveryAttempt.response_body.is_not(None))
        .values(response_body=None)
        .execution_options(synchronize_session=False)
    )
