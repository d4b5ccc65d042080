"""Every query of people, consents, contacts and referrals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.people.models import Consent, ConsentShare, Contact, Person, Referral


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _search(query: Select[Person], text: str | None) -> Select[Person]:
    if not text:
        return query
    return query.where(
        or_(
            Person.name.ilike(_like(text), escape="\\"),
            Person.contact.ilike(_like(text), escape="\\"),
        )
    )


async def persons_of_provider(
    session: AsyncSession,
    provider_id: str,
    *,
    text: str | None = None,
    county: str | None = None,
    limit: int = 10_000,
) -> Sequence[Person]:
    """A provider's people (not those merged into another), newest first."""
    query = select(Person).where(Person.provider_id == provider_id, Person.merged_into_id.is_(None))
    if county:
        query = query.where(Person.county_fips == county)
    query = _search(query, text).order_by(Person.created_at.desc(), Person.id).limit(limit)
    return (await session.scalars(query)).all()


async def persons_shared_with(
    session: AsyncSession,
    recipients: Sequence[tuple[str, str]],
    now: datetime,
    *,
    text: str | None = None,
    limit: int = 200,
) -> Sequence[Person]:
    """People with a live consent (not revoked, not expired) naming one of ``recipients``
    (kind, recipient)."""
    if not recipients:
        return []
    named = or_(*(and_(ConsentShare.kind == k, ConsentShare.recipient == r) for k, r in recipients))
    live = (
        exists()
        .where(
            Consent.person_id == Person.id,
            Consent.revoked_at.is_(None),
            Consent.expires_at > now,
            ConsentShare.consent_id == Consent.id,
        )
        .where(named)
    )
    query = select(Person).where(Person.merged_into_id.is_(None), live)
    query = _search(query, text).order_by(Person.created_at.desc(), Person.id).limit(limit)
    return (await session.scalars(query)).all()


async def consents_of(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[Consent, list[ConsentShare]]]]:
    """Each person's consents, newest first, with their shares."""
    out: dict[uuid.UUID, list[tuple[Consent, list[ConsentShare]]]] = {p: [] for p in person_ids}
    if not person_ids:
        return out
    consents = (
        await session.scalars(
            select(Consent)
            .where(Consent.person_id.in_(person_ids))
            .order_by(Consent.signed_at.desc(), Consent.id)
        )
    ).all()
    shares: dict[uuid.UUID, list[ConsentShare]] = {c.id: [] for c in consents}
    if consents:
        for share in await session.scalars(
            select(ConsentShare)
            .where(ConsentShare.consent_id.in_([c.id for c in consents]))
            .order_by(ConsentShare.id)
        ):
            shares[share.consent_id].append(share)
    for consent in consents:
        out[consent.person_id].append((consent, shares[consent.id]))
    return out


async def live_consents(
    session: AsyncSession, person_id: uuid.UUID, now: datetime
) -> Sequence[Consent]:
    return (
        await session.scalars(
            select(Consent)
            .where(
                Consent.person_id == person_id,
                Consent.revoked_at.is_(None),
                Consent.expires_at > now,
            )
            .with_for_update()
        )
    ).all()


async def contact_of_assignment(session: AsyncSession, assignment_id: uuid.UUID) -> Contact | None:
    found: Contact | None = await session.scalar(
        select(Contact).where(Contact.assignment_id == assignment_id)
    )
    return found


async def contacts_of_assignments(
    session: AsyncSession, assignment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Contact]:
    if not assignment_ids:
        return {}
    rows = await session.scalars(select(Contact).where(Contact.assignment_id.in_(assignment_ids)))
    return {c.assignment_id: c for c in rows}


async def contacts_of_person(session: AsyncSession, person_id: uuid.UUID) -> Sequence[Contact]:
    return (
        await session.scalars(
            select(Contact)
            .where(Contact.person_id == person_id)
            .order_by(Contact.met_at.desc(), Contact.id)
        )
    ).all()


async def last_met(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    if not person_ids:
        return {}
    out: dict[uuid.UUID, datetime] = {}
    for contact in await session.scalars(
        select(Contact).where(Contact.person_id.in_(person_ids)).order_by(Contact.met_at)
    ):
        if contact.person_id is not None:
            out[contact.person_id] = contact.met_at
    return out


async def referrals_of_contacts(
    session: AsyncSession, contact_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Referral]]:
    out: dict[uuid.UUID, list[Referral]] = {c: [] for c in contact_ids}
    if not contact_ids:
        return out
    for referral in await session.scalars(
        select(Referral)
        .where(Referral.contact_id.in_(contact_ids))
        .order_by(Referral.made_at, Referral.id)
    ):
        out[referral.contact_id].append(referral)
    return out


async def move_person(session: AsyncSession, duplicate: uuid.UUID, kept: uuid.UUID) -> None:
    """Contacts and consents of ``duplicate`` now belong to ``kept``."""
    await session.execute(
        update(Contact).where(Contact.person_id == duplicate).values(person_id=kept)
    )
    await session.execute(
        update(Consent).where(Consent.person_id == duplicate).values(person_id=kept)
    )
