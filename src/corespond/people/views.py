"""Building the views of people, contacts, referrals and follow-ups from their rows, for the
API, the peer app and the provider's queue alike (one place decides what a view holds)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.directory import service as directory
from corespond.followups import service as followups
from corespond.followups.models import FollowUp
from corespond.geo.atlas import CountyAtlas
from corespond.people import service as people
from corespond.people.models import Consent, ConsentShare, Contact, Person, Referral
from corespond.people.schemas import (
    ConsentIn,
    ConsentOut,
    ContactIn,
    ContactOut,
    FollowUpOut,
    PersonOut,
    ReferralOut,
    ShareOut,
)
from corespond.people.service import (
    ConsentInput,
    ContactInput,
    PersonInput,
    PersonRead,
    ShareInput,
)
from corespond.roster import service as roster


def consent_out(
    consent: Consent,
    shares: Sequence[ConsentShare],
    now: datetime,
    *,
    partner: bool = False,
    only: Sequence[tuple[str, str]] = (),
) -> ConsentOut:
    return ConsentOut(
        id=consent.id,
        state=people.consent_state(consent, now),  # type: ignore[arg-type]
        signed_name=None if partner else consent.signed_name,
        signed_at=consent.signed_at,
        witnessed_by=None if partner else consent.witnessed_by,
        statement_version=consent.statement_version,
        purposes=list(consent.purposes),  # type: ignore[arg-type]
        fields=list(consent.fields),  # type: ignore[arg-type]
        expires_at=consent.expires_at,
        revoked_at=consent.revoked_at,
        revoked_by=None if partner else consent.revoked_by,
        shares=[
            ShareOut(kind=s.kind, recipient=s.recipient, name=s.recipient_name)  # type: ignore[arg-type]
            for s in shares
            if not partner or (s.kind, s.recipient) in only
        ],
    )


async def referral_outs(
    session: AsyncSession, referrals: Sequence[Referral], *, now: datetime
) -> list[ReferralOut]:
    """The referrals as shown at ``now``: shared with the organization only while the
    consent in force names the one stored when shared (``people.referral_shares_in_force``)."""
    services = await directory.services_by_id(session, [r.service_id for r in referrals])
    shared = await people.referral_shares_in_force(session, referrals, now)
    out = []
    for referral in referrals:
        service, organization = services[referral.service_id]
        out.append(
            ReferralOut(
                id=referral.id,
                contact_id=referral.contact_id,
                service_id=referral.service_id,
                service_name=service.name,
                organization=organization.name,
                kind=referral.kind,  # type: ignore[arg-type]
                made_at=referral.made_at,
                made_by=referral.made_by,
                arrival=referral.arrival,  # type: ignore[arg-type]
                arrival_at=referral.arrival_at,
                arrival_by=referral.arrival_by,
                shared_with_organization=referral.id in shared,
                share_ended_at=referral.share_ended_at,
            )
        )
    return out


async def contact_outs(
    session: AsyncSession, contacts: Sequence[Contact], *, now: datetime
) -> list[ContactOut]:
    referrals = await people.referrals_of(session, [c.id for c in contacts])
    return [
        ContactOut(
            id=contact.id,
            assignment_id=contact.assignment_id,
            met_at=contact.met_at,
            county_fips=contact.county_fips,
            identified=contact.person_id is not None,
            person_id=contact.person_id,
            referrals=await referral_outs(session, referrals[contact.id], now=now),
        )
        for contact in contacts
    ]


async def follow_up_outs(
    session: AsyncSession, tasks: Sequence[tuple[FollowUp, Person]], now: datetime
) -> list[FollowUpOut]:
    names: dict[uuid.UUID, str] = {}
    teams: dict[str, str] = {}
    for task, _ in tasks:
        if task.assignee_peer_id is not None and task.assignee_peer_id not in names:
            peer = await roster.peer_by_id(session, task.assignee_peer_id)
            names[task.assignee_peer_id] = peer.display_name if peer else "?"
        if task.organization_id is not None and task.organization_id not in teams:
            team = await directory.organization(session, task.organization_id)
            teams[task.organization_id] = team.name if team else task.organization_id
    return [
        FollowUpOut(
            id=task.id,
            person_id=person.id,
            person_name=person.name,
            kind=task.kind,  # type: ignore[arg-type]
            step=task.step,
            due_at=task.due_at,
            overdue_at=task.overdue_at,
            state=task.state,  # type: ignore[arg-type]
            overdue=task.state == "open" and task.overdue_at <= now,
            escalated_at=task.escalated_at,
            assignee_peer_id=task.assignee_peer_id,
            assignee=names.get(task.assignee_peer_id) if task.assignee_peer_id else None,
            organization_id=task.organization_id,
            organization=teams.get(task.organization_id) if task.organization_id else None,
            outcome=task.outcome,  # type: ignore[arg-type]
            done_at=task.done_at,
            done_by=task.done_by,
            cancelled_reason=task.cancelled_reason,
        )
        for task, person in tasks
    ]


async def person_out(
    session: AsyncSession, read: PersonRead, atlas: CountyAtlas, now: datetime
) -> PersonOut:
    """The person as ``read.access`` allows: the provider everything, a partner the fields
    and the consent that name it."""
    person, granted = read.person, read.access
    county = atlas.by_fips.get(person.county_fips)
    terms = granted.consent
    if granted.as_ == "partner" and terms is not None:
        named = [(x.kind, x.recipient) for x in granted.named]
        consent = next(
            consent_out(c, shares, now, partner=True, only=named)
            for c, shares in read.consents
            if c.id == terms.id
        )
        return PersonOut(
            id=person.id,
            view="partner",
            provider_id=person.provider_id,
            name=person.name if "name" in granted.fields else None,
            contact=person.contact if "contact" in granted.fields else None,
            county_fips=person.county_fips if "county" in granted.fields else None,
            county=county.name if county and "county" in granted.fields else None,
            created_at=None,
            consent=consent,
            consents=None,
            contacts=None,
            follow_ups=None,
        )
    consents = [consent_out(c, s, now) for c, s in read.consents]
    current = people.consent_in_force(read.consents, now)
    live = [c for c in consents if current is not None and c.id == current.id]
    contacts = await contact_outs(
        session, await people.contacts_of_person(session, person.id), now=now
    )
    tasks = await followups.tasks_of_person(session, person.provider_id, person.id, now)
    return PersonOut(
        id=person.id,
        view="provider",
        provider_id=person.provider_id,
        name=person.name,
        contact=person.contact,
        county_fips=person.county_fips,
        county=county.name if county else None,
        created_at=person.created_at,
        deidentified_at=person.deidentified_at,
        consent=live[0] if live else None,
        consents=consents,
        contacts=contacts,
        follow_ups=await follow_up_outs(session, [(t, person) for t in tasks], now),
    )


def consent_input(body: ConsentIn) -> ConsentInput:
    """A consent as the API received it, as the service takes it."""
    return ConsentInput(
        signed_name=body.signed_name,
        agreed=body.agreed,
        shares=tuple(ShareInput(s.to, s.agency, s.organization) for s in body.shares),
        purposes=tuple(body.purposes),
        fields=tuple(body.fields),
        expires_on=body.expires_on,
        statement_version=body.statement_version,
    )


def contact_input(body: ContactIn) -> ContactInput:
    """A contact as the API (or the peer app) received it, as the service takes it."""
    return ContactInput(
        person=PersonInput(body.person.name, body.person.contact, body.person.county)
        if body.person
        else None,
        consent=consent_input(body.consent) if body.consent else None,
        same_as=body.same_as,
        new_person=body.new_person,
    )
