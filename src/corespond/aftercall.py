"""After the call, in one place: the workflows that cross people and follow-ups.

Recording a contact is the people domain's (who was met, with what consent); what follows
from it, the program's follow-up schedule for a person who consented, is the follow-up
domain's. Merging two records of one person moves both domains' rows. Each runs in the
caller's transaction, so a contact and its schedule stand or fall together.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.service import Principal
from corespond.followups import service as followups
from corespond.followups.models import FollowUp
from corespond.followups.service import FollowUpPolicy
from corespond.people import service as people
from corespond.people.models import Person
from corespond.people.service import ConsentPolicy, ContactInput, Recorded


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
    return recorded, tasks


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
    return kept
