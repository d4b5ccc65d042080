"""Every query of people, consents, contacts and referrals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.people.matching import MatchKeys
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
    limit: int = 200,
) -> Sequence[Person]:
    """A provider's people (not those merged into another, nor de-identified), newest
    first."""
    query = select(Person).where(
        Person.provider_id == provider_id,
        Person.merged_into_id.is_(None),
        Person.deidentified_at.is_(None),
    )
    if county:
        query = query.where(Person.county_fips == county)
    query = _search(query, text).order_by(Person.created_at.desc(), Person.id).limit(limit)
    return (await session.scalars(query)).all()


async def possible_matches(
    session: AsyncSession,
    provider_id: str,
    keys: MatchKeys,
    county_fips: str | None,
    *,
    exclude: uuid.UUID | None = None,
    limit: int = 10,
) -> Sequence[Person]:
    """The provider's people (in use) sharing a key a match rests on with ``keys``: the
    phone, the folded name, or the initial and last name in ``county_fips``; newest first,
    at most ``limit``. Each is an index lookup (``ix_person_match_*``)."""
    either: list[ColumnElement[bool]] = []
    if keys.phone is not None:
        either.append(Person.match_phone == keys.phone)
    if keys.name is not None:
        either.append(Person.match_name == keys.name)
    if keys.initial_last is not None and county_fips is not None:
        either.append(
            and_(Person.county_fips == county_fips, Person.match_initial_last == keys.initial_last)
        )
    if not either:
        return []
    query = select(Person).where(
        Person.provider_id == provider_id,
        Person.merged_into_id.is_(None),
        Person.deidentified_at.is_(None),
        or_(*either),
    )
    if exclude is not None:
        query = query.where(Person.id != exclude)
    query = query.order_by(Person.created_at.desc(), Person.id).limit(limit)
    return (await session.scalars(query)).all()


async def persons_shared_with(
    session: AsyncSession,
    recipients: Sequence[tuple[str, str]],
    purpose: str,
    now: datetime,
    *,
    text: str | None = None,
    county: str | None = None,
    limit: int = 200,
) -> Sequence[Person]:
    """People with a live consent (not revoked, not expired) naming one of ``recipients``
    (kind, recipient) for ``purpose``, whose name or contact holds ``text``, of ``county``
    (the caller narrows these to the fields each consent shares)."""
    if not recipients:
        return []
    named = or_(*(and_(ConsentShare.kind == k, ConsentShare.recipient == r) for k, r in recipients))
    live = (
        exists()
        .where(
            Consent.person_id == Person.id,
            Consent.revoked_at.is_(None),
            Consent.expires_at > now,
            Consent.purposes.contains([purpose]),
            ConsentShare.consent_id == Consent.id,
        )
        .where(named)
    )
    query = select(Person).where(
        Person.merged_into_id.is_(None), Person.deidentified_at.is_(None), live
    )
    if county:
        query = query.where(Person.county_fips == county)
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
    session: AsyncSession, person_id: uuid.UUID, now: datetime, *, to_share: bool = False
) -> Sequence[Consent]:
    """The person's live consents, locked: for update (to revoke them), or ``to_share``
    (a share made under them waits for a revocation under way, and is seen by it)."""
    return (
        await session.scalars(
            select(Consent)
            .where(
                Consent.person_id == person_id,
                Consent.revoked_at.is_(None),
                Consent.expires_at > now,
            )
            .with_for_update(read=to_share)
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
    rows = await session.execute(
        select(Contact.person_id, func.max(Contact.met_at))
        .where(Contact.person_id.in_(person_ids))
        .group_by(Contact.person_id)
    )
    return {row[0]: row[1] for row in rows.all() if row[0] is not None}


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


async def shared_referrals_of_person(
    session: AsyncSession, person_id: uuid.UUID
) -> Sequence[Referral]:
    """The person's referrals whose sharing with the service's organization has not ended,
    locked."""
    return (
        await session.scalars(
            select(Referral)
            .join(Contact, Contact.id == Referral.contact_id)
            .where(
                Contact.person_id == person_id,
                Referral.share_consent_id.is_not(None),
                Referral.share_ended_at.is_(None),
            )
            .order_by(Referral.made_at, Referral.id)
            .with_for_update(of=Referral)
        )
    ).all()


async def inactive_people(
    session: AsyncSession, cutoff: datetime, now: datetime, limit: int
) -> Sequence[uuid.UUID]:
    consent_recent = exists().where(
        Consent.person_id == Person.id,
        or_(
            and_(Consent.revoked_at.is_(None), Consent.expires_at > now),  # live
            Consent.signed_at >= cutoff,
            Consent.revoked_at >= cutoff,
            Consent.expires_at >= cutoff,
        ),
    )
    met_recently = exists().where(Contact.person_id == Person.id, Contact.met_at >= cutoff)
    referred_recently = exists().where(
        Contact.person_id == Person.id,
        Referral.contact_id == Contact.id,
        or_(Referral.made_at >= cutoff, Referral.arrival_at >= cutoff),
    )
    query = (
        select(Person.id)
        .where(
            Person.deidentified_at.is_(None),
            Person.created_at < cutoff,
            ~consent_recent,
            ~met_recently,
            ~referred_recently,
        )
        .order_by(Person.created_at, Person.id)
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def deidentify(
    session: AsyncSession, person_ids: Sequence[uuid.UUID], now: datetime, marker: str
) -> None:
    ids = list(person_ids)
    await session.execute(
        update(Person)
        .where(Person.id.in_(ids))
        .values(
            name=marker,
            contact=None,
            match_phone=None,
            match_name=None,
            match_initial_last=None,
            deidentified_at=now,
        )
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        update(Consent)
        .where(Consent.person_id.in_(ids))
        .values(signed_name=marker)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        update(Referral)
        .where(
            Referral.contact_id.in_(select(Contact.id).where(Contact.person_id.in_(ids))),
            Referral.share_consent_id.is_not(None),
            Referral.share_ended_at.is_(None),
        )
        .values(share_ended_at=now)
        .execution_options(synchronize_session="fetch")
    )


async def people_sharing_referrals(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> Sequence[uuid.UUID]:
    """People with a referral still shared, by id, after ``after`` (keyset pages)."""
    query = (
        select(Contact.person_id)
        .join(Referral, Referral.contact_id == Contact.id)
        .where(
            Contact.person_id.is_not(None),
            Referral.share_consent_id.is_not(None),
            Referral.share_ended_at.is_(None),
        )
        .distinct()
        .order_by(Contact.person_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Contact.person_id > after)
    return [p for p in (await session.scalars(query)).all() if p is not None]


async def people_sharing_with_services(
    session: AsyncSession, service_ids: Sequence[uuid.UUID]
) -> Sequence[uuid.UUID]:
    """People with a referral to one of ``service_ids`` still shared."""
    query = (
        select(Contact.person_id)
        .join(Referral, Referral.contact_id == Contact.id)
        .where(
            Contact.person_id.is_not(None),
            Referral.service_id.in_(list(service_ids)),
            Referral.share_consent_id.is_not(None),
            Referral.share_ended_at.is_(None),
        )
        .distinct()
        .order_by(Contact.person_id)
    )
    return [p for p in (await session.scalars(query)).all() if p is not None]
