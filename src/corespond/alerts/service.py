"""Alerts for supervisors: raised, told, repeated until acknowledged, resolved.

Three kinds, each about one subject with at most one unresolved alert at a time:

* ``unfilled`` — a call no peer could be offered (subject: the call). Raised in the
  transaction that records the request unfilled; resolved when the call is offered to a
  peer, ends, or is 12 hours old.
* ``deliveries_failing`` — a CAD source with dead letters in the outbox (messages that will
  not be retried) or failing for longer than the alert threshold (subject: the source).
  Statewide. Resolved when nothing is dead or failing; a message that dies after the alert
  was acknowledged is news, and raises a new one.
* ``credential_expiring`` — a peer's required credential expiring within the alert window,
  or expired (subject: the peer, the kind, the expiry, and whether it has passed, so the
  day it lapses is news again). Resolved when renewed.

The supervisors in scope (unscoped keys, and keys of the alert's counties) are told at once
on their channels (``notify``), then again every ``repeat`` until one of them acknowledges
it or it resolves; an acknowledged alert is never sent again, and its notices still queued
are withdrawn. Alerts are rows, so a restart loses none and two sweeps never double one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts import repository
from corespond.alerts.models import Alert
from corespond.alerts.repository import AlertFilter
from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.calls import service as calls
from corespond.config import Settings
from corespond.dispatch.service import source_status
from corespond.errors import Conflict, Forbidden, NotFound
from corespond.notify import service as notify
from corespond.roster import service as roster

log = structlog.get_logger(__name__)

# A request unfilled this long ago is history, not something to act on.
UNFILLED_LIFETIME = timedelta(hours=12)
# Expiring credentials are slow news: told once a day until acknowledged.
CREDENTIAL_REPEAT = timedelta(days=1)
# A notice not sent within this long is dropped (the next reminder will say it again).
NOTICE_LIFETIME = timedelta(hours=1)
CREDENTIAL_NAMES = {
    "prss_certification": "PRSS certification",
    "cjis_background": "CJIS background check",
    "nda": "NDA",
}


@dataclass(frozen=True)
class AlertPolicy:
    repeat: timedelta
    credential_window: timedelta
    deliveries_after: timedelta
    required_credentials: tuple[str, ...]
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: Settings) -> AlertPolicy:
        return cls(
            repeat=timedelta(minutes=settings.alert_repeat_minutes),
            credential_window=timedelta(days=settings.credential_alert_days),
            deliveries_after=timedelta(seconds=settings.delivery_alert_after_seconds),
            required_credentials=tuple(settings.required_credentials),
            zone=ZoneInfo(settings.program_timezone),
        )

    @classmethod
    def default(cls) -> AlertPolicy:
        """The settings' defaults (for code run without settings: tests, the demo)."""
        return cls(
            repeat=timedelta(minutes=10),
            credential_window=timedelta(days=30),
            deliveries_after=timedelta(minutes=5),
            required_credentials=("prss_certification", "cjis_background", "nda"),
            zone=ZoneInfo("America/New_York"),
        )

    def repeat_of(self, kind: str) -> timedelta:
        return CREDENTIAL_REPEAT if kind == "credential_expiring" else self.repeat


class AlertAcknowledged(Conflict):
    slug = "alert-acknowledged"
    title = "The alert has been acknowledged already"


# --- raising, telling, resolving -----------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """What an alert's push or SMS says: one line, nothing of a call's content."""

    title: str
    body: str
    tag: str


async def _raise(
    session: AsyncSession,
    policy: AlertPolicy,
    now: datetime,
    *,
    kind: str,
    subject: str,
    counties: Sequence[str] | None,
    title: str,
    detail: str,
    notice: Notice,
    call_id: uuid.UUID | None = None,
    assignment_id: uuid.UUID | None = None,
    source_id: str | None = None,
    peer_id: uuid.UUID | None = None,
) -> Alert | None:
    """Raise an alert and tell its supervisors, unless one is unresolved for the subject
    (None then: it goes on as it is)."""
    alert = await repository.insert_unless_open(
        session,
        {
            "id": uuid.uuid4(),
            "kind": kind,
            "subject": subject,
            "counties": list(counties) if counties is not None else None,
            "title": title,
            "detail": detail,
            "notice": {"title": notice.title, "body": notice.body, "tag": notice.tag},
            "raised_at": now,
            "call_id": call_id,
            "assignment_id": assignment_id,
            "source_id": source_id,
            "peer_id": peer_id,
        },
    )
    if alert is None:
        return None
    await _tell(session, alert, policy, now)
    log.warning("supervisor_alert", kind=kind, alert_id=str(alert.id), subject=subject)
    return alert


async def _tell(session: AsyncSession, alert: Alert, policy: AlertPolicy, now: datetime) -> int:
    """One round of notices, and when the next is due."""
    repeat = policy.repeat_of(alert.kind)
    notice = alert.notice
    title = notice["title"] if alert.notices == 0 else f"{notice['title']} (reminder)"
    count = await notify.tell_supervisors(
        session,
        alert.counties,
        {"title": title, "body": notice["body"], "url": "/supervisor", "tag": notice["tag"]},
        now,
        now + min(repeat, NOTICE_LIFETIME),
        alert_id=alert.id,
        assignment_id=alert.assignment_id,
    )
    alert.notices += 1
    alert.last_notice_at = now
    alert.next_notice_at = now + repeat
    await session.flush()
    return count


async def _resolve(session: AsyncSession, alert: Alert, why: str, now: datetime) -> None:
    alert.resolved_at = now
    alert.resolved_reason = why
    alert.next_notice_at = None
    await session.flush()
    await notify.withdraw(session, alert.id, f"the alert was resolved: {why}")
    log.info("supervisor_alert_resolved", kind=alert.kind, alert_id=str(alert.id), why=why)


async def request_unfilled(
    session: AsyncSession,
    policy: AlertPolicy,
    now: datetime,
    *,
    call_id: uuid.UUID,
    call_label: str,
    county_fips: str | None,
    county_name: str | None,
    assignment_id: uuid.UUID,
    why: str,
    next_available_at: datetime | None,
) -> Alert | None:
    """A request went unfilled: the call's alert, unless it has one unresolved (a
    dispatcher asking again for the same call is not news). Called in the transaction that
    recorded the request unfilled."""
    where = f"in {county_name} County" if county_name else "outside the counties served"
    nxt = (
        f"; next peer on shift {next_available_at.astimezone(policy.zone):%a %H:%M}"
        if next_available_at
        else "; no shift ahead with a peer who could take it"
    )
    return await _raise(
        session,
        policy,
        now,
        kind="unfilled",
        subject=str(call_id),
        counties=[county_fips] if county_fips else None,
        title=f"No peer for {call_label} {where}",
        detail=f"{why}{nxt}",
        notice=Notice(
            "Request unfilled",
            f"No peer could be offered a call {where}",
            f"unfilled-{assignment_id}",
        ),
        call_id=call_id,
        assignment_id=assignment_id,
    )


async def call_offered(session: AsyncSession, call_id: uuid.UUID, now: datetime) -> None:
    """A peer was offered the call: its unfilled alert (if any) is resolved."""
    for alert in await repository.unresolved(session, "unfilled", [str(call_id)]):
        await _resolve(session, alert, "a peer was offered the call", now)


async def still_open(session: AsyncSession, alert_id: uuid.UUID) -> bool:
    """Whether the alert's notices should still go out (neither acknowledged nor resolved)."""
    return await repository.is_open(session, alert_id)


# --- what the sweep finds ------------------------------------------------------------------


async def check_unfilled(session: AsyncSession, policy: AlertPolicy, now: datetime) -> int:
    """Resolve the unfilled alerts of calls that ended, and of requests half a day old."""
    alerts = list(await repository.unresolved(session, "unfilled"))
    ended = await calls.ended_among(session, [a.call_id for a in alerts if a.call_id])
    done = 0
    for alert in alerts:
        if alert.call_id in ended:
            await _resolve(session, alert, "the call ended", now)
        elif now - alert.raised_at >= UNFILLED_LIFETIME:
            await _resolve(session, alert, "12 hours old", now)
        else:
            continue
        done += 1
    return done


async def check_deliveries(session: AsyncSession, policy: AlertPolicy, now: datetime) -> int:
    """Raise or resolve each CAD source's alert: dead letters in the outbox, or failing for
    longer than the threshold."""
    done = 0
    open_by_source = {
        a.subject: a for a in await repository.unresolved(session, "deliveries_failing")
    }
    for source in await source_status(session, now, policy.deliveries_after):
        alert = open_by_source.get(source.source_id)
        failing = source.dead > 0 or source.alert
        if not failing:
            if alert is not None:
                await _resolve(session, alert, "deliveries recovered, nothing dead", now)
                done += 1
            continue
        parts = []
        if source.dead:
            parts.append(f"{source.dead} message(s) dead: not delivered, not retried")
        if source.pending:
            parts.append(f"{source.pending} waiting")
        if source.failing_since is not None:
            since = source.failing_since.astimezone(policy.zone)
            parts.append(f"failing since {since:%a %H:%M}")
        if source.callback_url is None:
            parts.append("no callback URL set")
        detail = "; ".join(parts) + ". Redeliver from the delivery log once fixed."
        if alert is not None:
            died_since = (
                alert.acknowledged_at is not None
                and source.last_dead_at is not None
                and source.last_dead_at > alert.acknowledged_at
            )
            if not died_since:
                alert.detail = detail
                continue
            await _resolve(session, alert, "more messages died after it was acknowledged", now)
        raised = await _raise(
            session,
            policy,
            now,
            kind="deliveries_failing",
            subject=source.source_id,
            counties=None,
            title=f"Dispatch is not hearing from us: CAD source {source.source_id}",
            detail=detail,
            notice=Notice(
                "CAD deliveries failing",
                f"{source.source_id}: assignment events are not reaching dispatch",
                f"deliveries-{source.source_id}",
            ),
            source_id=source.source_id,
        )
        done += raised is not None
    await session.flush()
    return done


async def check_credentials(session: AsyncSession, policy: AlertPolicy, now: datetime) -> int:
    """Raise an alert for each required credential expiring within the window (or expired);
    resolve those renewed."""
    done = 0
    found: dict[str, tuple[str, str, uuid.UUID, list[str]]] = {}
    served: dict[str, list[str]] = {}
    for credential, peer in await roster.credentials_expiring_by(
        session, now + policy.credential_window
    ):
        if credential.kind not in policy.required_credentials or credential.expires_at is None:
            continue
        expired = credential.expires_at <= now
        day = f"{credential.expires_at.astimezone(policy.zone):%Y-%m-%d}"
        # By the day it runs out: a renewal moves it (the alert resolves), re-entering the
        # same expiry does not.
        subject = f"{peer.id}/{credential.kind}/{day}/{'expired' if expired else 'expiring'}"
        if peer.provider_id not in served:
            served[peer.provider_id] = sorted(
                pc.county_fips for pc in await roster.provider_counties(session, peer.provider_id)
            )
        name = CREDENTIAL_NAMES.get(credential.kind, credential.kind)
        if expired:
            title = f"{peer.display_name}: {name} expired {day}"
            detail = "Offered no call until it is renewed."
        else:
            title = f"{peer.display_name}: {name} expires {day}"
            detail = "From then on offered no call until it is renewed."
        found[subject] = (title, detail, peer.id, served[peer.provider_id])
    for alert in await repository.unresolved(session, "credential_expiring"):
        if alert.subject not in found:
            lapsed = alert.subject.replace("/expiring", "/expired") in found
            await _resolve(session, alert, "it has now expired" if lapsed else "renewed", now)
            done += 1
    for subject, (title, detail, peer_id, counties) in found.items():
        raised = await _raise(
            session,
            policy,
            now,
            kind="credential_expiring",
            subject=subject,
            counties=counties,
            title=title,
            detail=detail,
            notice=Notice(
                "Credential expired" if subject.endswith("/expired") else "Credential expiring",
                title,
                f"credential-{peer_id}",
            ),
            peer_id=peer_id,
        )
        done += raised is not None
    return done


async def repeat_due(
    session: AsyncSession, policy: AlertPolicy, now: datetime, limit: int = 100
) -> int:
    """Tell again the supervisors of every alert still neither acknowledged nor resolved
    whose reminder is due."""
    due = await repository.due_notices(session, now, limit)
    for alert in due:
        await _tell(session, alert, policy, now)
    return len(due)


# --- reading and acknowledging -------------------------------------------------------------


def scoped_counties(principal: Principal) -> list[str] | None:
    """The counties whose alerts a key sees: a county-scoped key its county's; unscoped
    every alert (statewide ones too). Other scopes do not describe a part of the map."""
    if principal.scope is None:
        return None
    if principal.scope.kind == "county":
        return [principal.scope.value]
    raise Forbidden(
        f"alerts are by county; a key scoped to a {principal.scope.kind} cannot read them "
        "(use an unscoped or county-scoped supervisor key)"
    )


def _visible(alert: Alert, counties: list[str] | None) -> bool:
    if counties is None:
        return True
    return bool(alert.counties) and any(c in counties for c in alert.counties or ())


async def list_alerts(
    session: AsyncSession,
    principal: Principal,
    where: AlertFilter = AlertFilter(),
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Alert]:
    """The alerts a key may see (all of them, unless ``where`` narrows them), newest first."""
    counties = scoped_counties(principal)
    return await repository.list_alerts(session, where, counties=counties, after=after, limit=limit)


async def get_alert(session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    """An alert the key may see, else ``NotFound`` (no hint that it exists)."""
    counties = scoped_counties(principal)
    alert = await session.get(Alert, alert_id)
    if alert is None or not _visible(alert, counties):
        raise NotFound(f"alert {alert_id} not found")
    return alert


async def acknowledge(
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    note: str | None,
    now: datetime,
) -> Alert:
    """A supervisor has seen to it: who and when are kept, the alert is never told again,
    and its notices not yet sent are withdrawn. ``AlertAcknowledged`` (409) if someone
    already had, saying who and when."""
    await get_alert(session, principal, alert_id)
    by = f"{principal.name} ({principal.role})"
    alert = await repository.acknowledge_if_not(
        session,
        alert_id,
        {
            "acknowledged_at": now,
            "acknowledged_by": by,
            "acknowledged_key_id": principal.key_id,
            "acknowledged_note": note,
            "next_notice_at": None,
        },
    )
    if alert is None:
        current = await repository.lock(session, alert_id)
        who = current.acknowledged_by if current else None
        when = current.acknowledged_at if current else None
        raise AlertAcknowledged(
            f"acknowledged by {who} at {when.isoformat() if when else '?'}",
            extra={
                "acknowledged_by": who,
                "acknowledged_at": when.isoformat() if when else None,
            },
        )
    withdrawn = await notify.withdraw(session, alert.id, f"the alert was acknowledged by {by}")
    await audit.record(
        session,
        principal,
        "alert.acknowledged",
        "alert",
        alert.id,
        {"kind": alert.kind, "note": note, "notices_withdrawn": withdrawn},
    )
    log.info("supervisor_alert_acknowledged", alert_id=str(alert.id), by=by)
    return alert


async def notices_of(
    session: AsyncSession, alert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """What became of each alert's notices, in words ("push sent", "SMS skipped")."""
    told: dict[uuid.UUID, list[str]] = {}
    for notice in await notify.alert_notices(session, alert_ids):
        if notice.alert_id is None:
            continue
        channel = "push" if notice.channel == "webpush" else "SMS"
        told.setdefault(notice.alert_id, []).append(
            f"{channel} {notice.delivery_status or notice.state}"
        )
    return told


async def latest_for_calls(
    session: AsyncSession, call_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Alert]:
    """Each call's latest unfilled alert."""
    return {a.call_id: a for a in await repository.latest_for_calls(session, call_ids) if a.call_id}


async def change_stamp(session: AsyncSession) -> object:
    return await repository.change_stamp(session)


def state_of(alert: Alert) -> str:
    if alert.resolved_at is not None:
        return "resolved"
    return "acknowledged" if alert.acknowledged_at is not None else "open"
