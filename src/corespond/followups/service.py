"""Follow-up tasks: scheduled after a contact with a person who consented, shown to the
peer and to the provider's queue, done with an outcome, escalated to the provider's admin
once overdue (and pushed to the admin: Web Push, SMS). Tasks belong to the person's peer
provider; nobody else sees them. A QRT visit made by a Quick Response Team of the
directory shares the person with it: it needs the person's consent naming it for
follow-up, and is cancelled as soon as the consent no longer does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.config import Settings
from corespond.directory import service as directory
from corespond.errors import Conflict, Forbidden, InvalidParam, InvalidPayload, NotFound
from corespond.followups import repository
from corespond.followups.models import ENDING, OUTCOMES, TASK_KINDS, FollowUp
from corespond.followups.repository import TaskFilter
from corespond.followups.schedule import Step, due_times, parse_schedule
from corespond.notify import service as notify
from corespond.people import service as people
from corespond.people.models import Person
from corespond.roster import service as roster

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FollowUpPolicy:
    """The program's schedule, how long a task may run late before it is overdue, and the
    clock days and months follow."""

    steps: tuple[Step, ...]
    grace: timedelta
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: Settings) -> FollowUpPolicy:
        return cls(
            parse_schedule(settings.followup_schedule),
            timedelta(hours=settings.followup_grace_hours),
            ZoneInfo(settings.program_timezone),
        )


class FollowUpDone(Conflict):
    slug = "follow-up-done"
    title = "The follow-up is not open"


async def schedule_after_contact(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    provider_id: str,
    contact_id: uuid.UUID,
    met_at: datetime,
    assignee: uuid.UUID | None,
    policy: FollowUpPolicy,
    now: datetime,
) -> list[FollowUp]:
    """The schedule's tasks after a contact (met again: the open tasks of an earlier
    schedule give way to the new one). A step that could no longer be done on time when the
    contact is recorded is left out."""
    for task in await repository.open_scheduled(session, person_id):
        task.state, task.cancelled_reason = "cancelled", "met again: a new schedule began"
    tasks = []
    for step, due_at in due_times(met_at, policy.steps, policy.zone):
        if due_at + policy.grace <= now:
            continue
        task = FollowUp(
            person_id=person_id,
            provider_id=provider_id,
            contact_id=contact_id,
            kind="follow_up",
            step=step.label,
            due_at=due_at,
            overdue_at=due_at + policy.grace,
            assignee_peer_id=assignee,
            created_at=now,
        )
        session.add(task)
        tasks.append(task)
    await session.flush()
    return tasks


async def list_tasks(
    session: AsyncSession,
    principal: Principal,
    *,
    state: str | None,
    due_before: datetime | None,
    escalated: bool | None,
    assignee: str | None,
    person_id: uuid.UUID | None,
    limit: int,
    now: datetime,
) -> list[tuple[FollowUp, Person]]:
    """A peer's follow-ups (theirs and the team's), or a provider's whole queue for its
    admin; soonest due first, each with its person (the read is on the audit log). A
    team's visit the consent in force no longer allows is not shown."""
    provider = await people.provider_of(session, principal)
    own = people.own_peer(principal)
    where = TaskFilter(
        provider_id=provider,
        state=state,
        due_before=due_before,
        escalated=escalated,
        peer_or_team=own if assignee is None else None,
        person_id=person_id,
    )
    if assignee == "team":
        where = TaskFilter(**{**where.__dict__, "team_only": True})
    elif assignee is not None:
        try:
            where = TaskFilter(**{**where.__dict__, "assignee": uuid.UUID(assignee)})
        except ValueError:
            raise InvalidPayload(
                "assignee: a peer id, or team",
                [InvalidParam(name="query.assignee", reason="a peer id, or team")],
            ) from None
    tasks = await repository.list_tasks(session, where, limit)
    unshared = await _visits_no_longer_shared(session, tasks, now)
    tasks = [t for t in tasks if t.id not in unshared]
    persons = await people.persons_of(session, [t.person_id for t in tasks])
    # A de-identified person has nobody left to follow up: their tasks stay for the
    # program's figures, off the queues.
    out = [
        (t, persons[t.person_id])
        for t in tasks
        if t.person_id in persons and persons[t.person_id].deidentified_at is None
    ]
    await audit.record(
        session,
        principal,
        "person.list",
        "person",
        None,
        {
            "ids": sorted({str(p.id) for _, p in out}),
            "how": "follow-ups",
            "follow_up_ids": [str(t.id) for t, _ in out],
        },
    )
    return out


async def tasks_of_person(
    session: AsyncSession, provider_id: str, person_id: uuid.UUID, now: datetime
) -> Sequence[FollowUp]:
    """A person's follow-ups (for a reader already allowed to see the person), but a
    team's visit the consent in force no longer allows."""
    tasks = await repository.list_tasks(
        session, TaskFilter(provider_id=provider_id, person_id=person_id), 500
    )
    unshared = await _visits_no_longer_shared(session, tasks, now)
    return [t for t in tasks if t.id not in unshared]


async def _task(session: AsyncSession, principal: Principal, task_id: uuid.UUID) -> FollowUp:
    provider = await people.provider_of(session, principal)
    task = await repository.lock(session, task_id)
    if task is None or task.provider_id != provider:
        raise NotFound(f"follow-up {task_id} not found")
    return task


async def record_outcome(
    session: AsyncSession, principal: Principal, task_id: uuid.UUID, outcome: str, now: datetime
) -> FollowUp:
    """What came of a follow-up (reached, not reached, in treatment, relapse, declined,
    deceased). Declined or deceased: the person's other open follow-ups are cancelled."""
    if outcome not in OUTCOMES:
        raise InvalidPayload(f"outcome: one of {', '.join(OUTCOMES)}")
    task = await _task(session, principal, task_id)
    if task.state != "open":
        raise FollowUpDone(
            f"this follow-up is {task.state}"
            + (f" ({task.outcome.replace('_', ' ')}, by {task.done_by})" if task.outcome else "")
        )
    task.state, task.outcome, task.done_at, task.done_by = (
        "done",
        outcome,
        now,
        roster.actor(principal),
    )
    if outcome in ENDING:
        reason = "the person declined follow-up" if outcome == "declined" else "the person died"
        for other in await repository.open_of_person(session, task.person_id):
            if other.id != task.id:
                other.state, other.cancelled_reason = "cancelled", reason
    await session.flush()
    await audit.record(
        session, principal, "follow_up.outcome", "follow_up", task.id, {"outcome": outcome}
    )
    return task


async def with_person(
    session: AsyncSession, principal: Principal, task: FollowUp, how: str
) -> tuple[FollowUp, Person]:
    """A follow-up with its person, as an answer shows them (their name, their contact):
    the read is on the audit log."""
    person = (await people.persons_of(session, [task.person_id]))[task.person_id]
    await audit.record(
        session,
        principal,
        "person.read",
        "person",
        person.id,
        {"as": "provider", "how": how, "follow_up_id": str(task.id)},
    )
    return task, person


async def assign(
    session: AsyncSession, principal: Principal, task_id: uuid.UUID, peer_id: uuid.UUID | None
) -> FollowUp:
    """Give a follow-up to one of the provider's peers, or to the team (None). A peer may
    take a team task, or hand their own back to the team; the provider's admin assigns any."""
    task = await _task(session, principal, task_id)
    if task.state != "open":
        raise FollowUpDone(f"this follow-up is {task.state}")
    own = people.own_peer(principal)
    if own is not None and peer_id not in (own, None):
        raise Forbidden("a peer takes a follow-up for themselves, or gives it back to the team")
    if own is not None and peer_id is None and task.assignee_peer_id not in (own, None):
        raise Forbidden("another peer's follow-up is reassigned by the provider's admin")
    if peer_id is not None:
        peer = await roster.peer_by_id(session, peer_id)
        if peer is None or peer.provider_id != task.provider_id:
            raise InvalidPayload(
                "peer_id: not a peer of this provider",
                [InvalidParam(name="peer_id", reason="not a peer of this provider")],
            )
    task.assignee_peer_id = peer_id
    await session.flush()
    await audit.record(
        session,
        principal,
        "follow_up.assign",
        "follow_up",
        task.id,
        {"peer_id": str(peer_id) if peer_id else "team"},
    )
    return task


async def add_task(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    *,
    kind: str,
    due_at: datetime,
    assignee: uuid.UUID | None,
    policy: FollowUpPolicy,
    now: datetime,
    organization: str | None = None,
) -> FollowUp:
    """A follow-up made by hand (a Quick Response Team visit, an extra call). A QRT visit
    made by a QRT of the directory (``organization``) shares the person with it: the
    consent in force must name it for follow-up, else ``ConsentRefused`` (on the audit
    log)."""
    if kind not in TASK_KINDS:
        raise InvalidPayload(f"kind: one of {', '.join(TASK_KINDS)}")
    if not now - timedelta(days=1) <= due_at <= now + timedelta(days=2 * 366):
        raise InvalidPayload(
            "due_at: from yesterday to two years ahead",
            [InvalidParam(name="due_at", reason="from yesterday to two years ahead")],
        )
    if organization is not None:
        await _require_qrt(session, kind, organization)
    read = await people.read_person(session, principal, person_id, now, how="add_follow_up")
    if read.access.as_ != "provider":
        raise NotFound(f"person {person_id} not found")
    people.require_identified(read.person)
    if organization is not None:
        await people.require_shared_with_organization(
            session,
            read.person.id,
            organization,
            "follow_up",
            now,
            action="follow_up.share_refused",
        )
    if assignee is not None:
        peer = await roster.peer_by_id(session, assignee)
        if peer is None or peer.provider_id != read.person.provider_id:
            raise InvalidPayload(
                "assignee_peer_id: not a peer of this provider",
                [InvalidParam(name="assignee_peer_id", reason="not a peer of this provider")],
            )
    task = FollowUp(
        person_id=read.person.id,
        provider_id=read.person.provider_id,
        kind=kind,
        step="added",
        due_at=due_at,
        overdue_at=due_at + policy.grace,
        assignee_peer_id=assignee,
        created_at=now,
        organization_id=organization,
    )
    session.add(task)
    await session.flush()
    await audit.record(
        session,
        principal,
        "follow_up.create",
        "follow_up",
        task.id,
        {"kind": kind, **({"organization": organization} if organization else {})},
    )
    return task


async def _require_qrt(session: AsyncSession, kind: str, organization: str) -> None:
    """``organization`` is a Quick Response Team of the directory, for a QRT visit."""
    reason = None
    if kind != "qrt_visit":
        reason = "only a QRT visit (kind qrt_visit) is made by an organization"
    elif await directory.organization(session, organization) is None:
        reason = f"no organization {organization!r} in the directory"
    elif not await directory.search(session, kind="qrt", organization_id=organization, limit=1):
        reason = f"{organization!r} has no Quick Response Team in the directory"
    if reason is not None:
        raise InvalidPayload(
            f"organization_id: {reason}", [InvalidParam(name="organization_id", reason=reason)]
        )


async def cancel_unshared_visits(
    session: AsyncSession,
    principal: Principal | None,
    person_id: uuid.UUID,
    allowed: frozenset[str],
    now: datetime,
    why: str,
) -> list[FollowUp]:
    """Open QRT visits of the person by an organization not in ``allowed`` (those the
    consent in force still shares them with for follow-up) are cancelled, saying why, each
    on the audit log: no visit shares them with a team their consent no longer names."""
    cancelled = []
    for task in await repository.open_of_person(session, person_id):
        if task.organization_id is None or task.organization_id in allowed:
            continue
        team = await directory.organization(session, task.organization_id)
        task.state = "cancelled"
        task.cancelled_reason = (
            f"{why}: no longer shared with {team.name if team else task.organization_id}"
        )
        cancelled.append(task)
        await audit.record(
            session,
            principal,
            "follow_up.cancel",
            "follow_up",
            task.id,
            {"person_id": str(person_id), "organization": task.organization_id, "why": why},
        )
    await session.flush()
    return cancelled


# How long a notice of overdue follow-ups is worth sending (a later sweep tells again of
# any that become overdue after it).
NOTICE_HOURS = 12


async def escalate_overdue(
    session: AsyncSession, now: datetime, limit: int = 500
) -> list[FollowUp]:
    """Open follow-ups past their overdue time go to the provider admin: the queue shows
    them first, marked escalated, and each admin of the provider who turned notices on is
    told, by Web Push or SMS, how many (never who); each task once."""
    tasks = list(await repository.claim_overdue(session, now, limit))
    by_provider: dict[str, list[FollowUp]] = {}
    for task in tasks:
        task.escalated_at = now
        by_provider.setdefault(task.provider_id, []).append(task)
        log.info(
            "follow_up_escalated",
            follow_up_id=str(task.id),
            provider_id=task.provider_id,
            due_at=task.due_at.isoformat(),
        )
    await session.flush()
    for provider_id, overdue in by_provider.items():
        provider = await roster.get_provider(session, provider_id)
        count = len(overdue)
        told = await notify.tell_provider_admins(
            session,
            provider_id,
            {
                "title": "Follow-ups overdue",
                "body": f"{count} follow-up{'s' if count != 1 else ''} of {provider.name} "
                f"{'are' if count != 1 else 'is'} overdue and now yours to see to",
                "url": "/provider",
                "tag": notify.FOLLOW_UPS_TAG,
            },
            now,
            now + timedelta(hours=NOTICE_HOURS),
        )
        log.info("follow_ups_overdue_told", provider_id=provider_id, tasks=count, notices=told)
    return tasks


async def move_person(session: AsyncSession, duplicate: uuid.UUID, kept: uuid.UUID) -> None:
    await repository.move_person(session, duplicate, kept)


async def change_stamp(
    session: AsyncSession, provider_id: str, peer_id: uuid.UUID | None = None
) -> tuple[object, ...]:
    """Changes when the provider's queue (or a peer's part of it: theirs and the team's)
    does."""
    return await repository.change_stamp(session, provider_id, peer_id)


async def people_active_since(
    session: AsyncSession, person_ids: Sequence[uuid.UUID], since: datetime
) -> set[uuid.UUID]:
    """Those of these people with a follow-up due, done or made since ``since``."""
    return await repository.people_active_since(session, person_ids, since)


async def people_with_team_visits(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """People with an open QRT visit by a team of the directory, by id, after ``after``
    (a page)."""
    return list(await repository.people_with_team_visits(session, after, limit))


async def _visits_no_longer_shared(
    session: AsyncSession, tasks: Sequence[FollowUp], now: datetime
) -> set[uuid.UUID]:
    """Open visits by a team the person's consent in force no longer shares them with for
    follow-up at ``now`` (it ran out since the last daily pass): decided when read, so that
    they are off every queue from the moment it does."""
    allowed: dict[uuid.UUID, frozenset[str]] = {}
    out = set()
    for task in tasks:
        if task.state != "open" or task.organization_id is None:
            continue
        if task.person_id not in allowed:
            allowed[task.person_id] = await people.organizations_shared_with(
                session, task.person_id, "follow_up", now
            )
        if task.organization_id not in allowed[task.person_id]:
            out.add(task.id)
    return out
