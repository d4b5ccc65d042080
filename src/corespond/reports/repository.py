"""Every query of the reports: calls that opened in a period (only those a figure can count:
eligible now, or a peer requested) and the offers made on them. Only the columns a figure
needs are read: never a narrative, an address or a peer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from corespond.assignments.models import Assignment
from corespond.calls.models import Call
from corespond.followups.models import FollowUp
from corespond.people.models import Consent, Contact, Person, Referral

# When a call opened: CAD's time for it, else when corespond first stored it.
OPENED = func.coalesce(Call.opened_at, Call.created_at)


def _counted(query: Any, start: datetime, end: datetime, counties: Sequence[str] | None) -> Any:
    """``query`` (over ``call``) limited to calls that opened in ``[start, end)``, in
    ``counties`` (None: any county or none), that some figure counts."""
    other = aliased(Assignment)  # the outer query may select assignments itself
    requested = exists().where(other.call_id == Call.id)
    query = query.where(
        and_(OPENED >= start, OPENED < end), or_(Call.decision == "eligible", requested)
    )
    if counties is not None:
        query = query.where(Call.county_fips.in_(counties))
    return query


async def calls_opened(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(id, opened_at, county_fips, decision, agency)`` of each counted call."""
    rows = await session.execute(
        _counted(
            select(
                Call.id, OPENED.label("opened_at"), Call.county_fips, Call.decision, Call.agency
            ),
            start,
            end,
            counties,
        )
    )
    return rows.all()


async def offers_on_calls_opened(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """Every assignment row of the counted calls: ``(call_id, status, offered_at,
    accepted_at, en_route_at, outcome, referrals)``, oldest first."""
    rows = await session.execute(
        _counted(
            select(
                Assignment.call_id,
                Assignment.status,
                Assignment.offered_at,
                Assignment.accepted_at,
                Assignment.en_route_at,
                Assignment.outcome,
                Assignment.referrals,
            ).join(Call, Call.id == Assignment.call_id),
            start,
            end,
            counties,
        ).order_by(Assignment.created_at, Assignment.id)
    )
    return rows.all()


# --- after the call: only times, counties, kinds and states; never a name or a contact ---


def _in(column: Any, counties: Sequence[str] | None) -> Any:
    return column.in_(counties) if counties is not None else true()


async def contacts_met(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(met_at, county_fips, identified)`` of each contact met in ``[start, end)``."""
    rows = await session.execute(
        select(Contact.met_at, Contact.county_fips, Contact.person_id.is_not(None)).where(
            Contact.met_at >= start, Contact.met_at < end, _in(Contact.county_fips, counties)
        )
    )
    return rows.all()


async def consents_signed(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(signed_at, person's county, revoked)`` of each consent signed in the period."""
    rows = await session.execute(
        select(Consent.signed_at, Person.county_fips, Consent.revoked_at.is_not(None))
        .join(Person, Person.id == Consent.person_id)
        .where(
            Consent.signed_at >= start, Consent.signed_at < end, _in(Person.county_fips, counties)
        )
    )
    return rows.all()


async def service_referrals(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(made_at, call's county, kind, arrival)`` of each referral made in the period."""
    rows = await session.execute(
        select(Referral.made_at, Contact.county_fips, Referral.kind, Referral.arrival)
        .join(Contact, Contact.id == Referral.contact_id)
        .where(
            Referral.made_at >= start, Referral.made_at < end, _in(Contact.county_fips, counties)
        )
    )
    return rows.all()


async def followups_due(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(due_at, person's county, overdue_at, done_at)`` of each follow-up due in the
    period, cancelled ones left out."""
    rows = await session.execute(
        select(FollowUp.due_at, Person.county_fips, FollowUp.overdue_at, FollowUp.done_at)
        .join(Person, Person.id == FollowUp.person_id)
        .where(
            FollowUp.due_at >= start,
            FollowUp.due_at < end,
            FollowUp.state != "cancelled",
            _in(Person.county_fips, counties),
        )
    )
    return rows.all()


async def people_first_met(
    session: AsyncSession, start: datetime, end: datetime, counties: Sequence[str] | None
) -> Sequence[Any]:
    """``(person id, first met at, county)`` of each person first met in the period."""
    first = func.min(Contact.met_at)
    rows = await session.execute(
        select(Person.id, first.label("first_met_at"), Person.county_fips)
        .join(Contact, Contact.person_id == Person.id)
        .where(Person.merged_into_id.is_(None), _in(Person.county_fips, counties))
        .group_by(Person.id, Person.county_fips)
        .having(and_(first >= start, first < end))
    )
    return rows.all()


async def reached_times(
    session: AsyncSession, person_ids: Sequence[Any], outcomes: Sequence[str]
) -> Sequence[Any]:
    """``(person id, done_at)`` of the follow-ups of these people done with these outcomes."""
    if not person_ids:
        return []
    rows = await session.execute(
        select(FollowUp.person_id, FollowUp.done_at).where(
            FollowUp.person_id.in_(person_ids),
            FollowUp.outcome.in_(outcomes),
            FollowUp.done_at.is_not(None),
        )
    )
    return rows.all()
