"""After the call, in one place: the workflows that cross people and follow-ups.

Recording a contact is the people domain's (who was met, with what consent); what follows
from it, the program's follow-up schedule for a person who consented, is the follow-up
domain's. Merging two records of one person moves both domains' rows. Whenever what a
person's consent allows changes (revoked, signed again, merged, expired), what was being
shared with someone it no longer names stops at once: referrals stop carrying their
identity to the organization, QRT visits by a team it no longer names are cancelled, each
on the audit log. Each runs in the caller's transaction, so a change and what follows from
it stand or fall together.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.service import Principal
from corespond.followups import service as followups
from corespond.followups.models import FollowUp
from corespond.followups.service import FollowUpPolicy
from corespond.people import service as people
from corespond.people.models import Person
from corespond.people.service import (
    ConsentInput,
    ConsentPolicy,
    ContactInput,
    PersonRead,
    Recorded,
)


async def record_contact(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    data: ContactInput,
    *,
    consent_policy: ConsentPolicy,
    followup_policy: FollowUpPolicy,
    now: datetime,
    atlas: Any,
) -> tuple[Recorded, list[FollowUp]]:
    """The peer records whom they met; a person who consented is followed up on the
    program's schedule, by the peer who met them."""
    recorded = await people.record_contact(
        session, principal, assignment_id, data, consent_policy, now, atlas
    )
    tasks: list[FollowUp] = []
    if recorded.person is not None:
        tasks = await followups.schedule_after_contact(
            session,
            person_id=recorded.person.id,
            provider_id=recorded.contact.provider_id,
            contact_id=recorded.contact.id,
            met_at=recorded.contact.met_at,
            assignee=recorded.peer_id,
            policy=followup_policy,
            now=now,
        )
    if recorded.person is not None and recorded.consent is not None:
        # A person met again who signs anew may name fewer recipients.
        await stop_sharing(session, principal, recorded.person.id, now, "consent signed again")
    return recorded, tasks


async def stop_sharing(
    session: AsyncSession,
    principal: Principal | None,
    person_id: uuid.UUID,
    now: datetime,
    why: str,
) -> None:
    """What goes to organizations the person's consent in force no longer names (for that
    purpose) stops: their referrals' identity, their QRT visits. Idempotent."""
    await people.end_referral_shares(session, principal, person_id, now, why)
    visits = await people.organizations_shared_with(session, person_id, "follow_up", now)
    await followups.cancel_unshared_visits(session, principal, person_id, visits, now, why)


async def revoke_consent(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    now: datetime,
    reason: str | None,
) -> PersonRead:
    """The person takes their consent back: nothing more is shared with anyone it named,
    from this transaction on (reads, referrals, QRT visits), through this record or any
    record of the provider that may be the same person."""
    revocation = await people.revoke_consent(session, principal, person_id, now, reason)
    for person in (revocation.read.person.id, *revocation.duplicates):
        await stop_sharing(session, principal, person, now, "consent revoked")
    return revocation.read


async def sign_consent(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    data: ConsentInput,
    policy: ConsentPolicy,
    now: datetime,
) -> None:
    """A new consent, in force from now: what the older one shared and this one does not
    stops."""
    consent = await people.sign_consent(session, principal, person_id, data, policy, now)
    await stop_sharing(session, principal, consent.person_id, now, "consent signed again")


async def merge(
    session: AsyncSession,
    principal: Principal,
    kept_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    confirmed: bool,
    now: datetime,
) -> Person:
    """Two records found to be one person, on a person's confirmation: everything of the
    duplicate (contacts, consents, follow-ups) goes to the one kept."""
    kept = await people.merge(session, principal, kept_id, duplicate_id, confirmed, now)
    await followups.move_person(session, duplicate_id, kept_id)
    # The consents moved too: the newest live one of both is in force now.
    await stop_sharing(session, principal, kept_id, now, "records merged")
    return kept


async def stop_expired_sharing(session: AsyncSession, now: datetime, page: int = 500) -> int:
    """The daily pass for consents that ran out (reads already refuse them from the moment
    they do): of everyone still sharing something (a referral carrying their identity, a
    QRT visit by a team), paged through by id to the end, those whose consent in force is
    gone stop sharing, each on the audit log. How many people stopped."""
    stopped: set[uuid.UUID] = set()
    sources = (people.people_sharing_referrals, followups.people_with_team_visits)
    for sharing in sources:
        after: uuid.UUID | None = None
        while batch := await sharing(session, after, page):
            after = batch[-1]
            for person_id in await people.people_without_consent_in_force(session, batch, now):
                if person_id not in stopped:
                    await stop_sharing(session, None, person_id, now, "consent expired")
                    stopped.add(person_id)
    return len(stopped)


async def deidentify_inactive(
    session: AsyncSession, now: datetime, retention: timedelta, *, dry_run: bool = False
) -> int:
    """People with no live consent and nothing done with them (met, consent signed, revoked
    or ended, referred, arrived, a follow-up due or done) for ``retention`` are
    de-identified: what names them goes; counts, dates, the county and their follow-ups as
    they stand stay (a follow-up missed a year ago is still counted as missed), and the
    queues no longer show them. How many (with ``dry_run``: would be)."""
    cutoff = now - retention
    candidates = await people.inactive_people(session, cutoff, now)
    busy = await followups.people_active_since(session, candidates, cutoff)
    quiet = [p for p in candidates if p not in busy]
    if dry_run or not quiet:
        return len(quiet)
    await people.deidentify(session, quiet, now)
    return len(quiet)
