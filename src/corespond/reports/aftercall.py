"""The program's figures after the call, as plain functions of de-identified events (no
database, no names): contacts, consents, referrals to services by kind and whether the person
arrived, follow-ups done on time, and people still engaged 30, 90 and 365 days after they
were first met. Each event counts once, in the week (program clock) and the county it
belongs to; ``AFTER_DEFINITIONS`` says which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from corespond.reports.periods import Period

ENGAGED_DAYS = (30, 90, 365)
SERVICE_KINDS = (
    "detox",
    "inpatient",
    "mat",
    "outpatient",
    "recovery_housing",
    "start",
    "qrt",
    "va",
    "harm_reduction",
)

SERVICE_LABELS = {
    "detox": "detox",
    "inpatient": "inpatient treatment",
    "mat": "MOUD / MAT",
    "outpatient": "outpatient treatment",
    "recovery_housing": "recovery housing",
    "start": "START",
    "qrt": "Quick Response Team",
    "va": "VA",
    "harm_reduction": "harm reduction",
}

AFTER_DEFINITIONS: dict[str, str] = {
    "contacts": "People peers recorded meeting on a call (one contact per assignment), by "
    "when the peer was on scene, in the call's county: identified (the person consented and "
    "is known to the program) or de-identified (counted, nothing that identifies anyone).",
    "consents": "Consents people signed in the period, in the person's county; revoked: of "
    "those, the ones taken back since (nothing more is shared from the moment of revocation).",
    "service_referrals": "Referrals of contacts to services of the resource directory, by "
    "kind, made in the period, in the call's county; arrived: the person arrived (a warm "
    "hand-off confirmed); did not arrive; the rest are not confirmed yet. Different from the "
    "referral kinds peers name when clearing a call (referrals, above).",
    "followups": "Follow-ups due in the period (cancelled ones left out), in the person's "
    "county: done on time (an outcome recorded before it became overdue, the program's grace "
    "after it was due), done late, missed (overdue and still not done) and open (not done, "
    "not overdue yet).",
    "engaged": "People first met in the period (in their county) and, of them, those reached "
    "on a follow-up (reached, in treatment or relapse) at least 30, 90 or 365 days after "
    "that first meeting. A figure can still grow until a year after the period ends.",
}


@dataclass(frozen=True)
class ContactEvent:
    met_at: datetime
    county: str | None
    identified: bool


@dataclass(frozen=True)
class ConsentEvent:
    signed_at: datetime
    county: str | None
    revoked: bool


@dataclass(frozen=True)
class ReferralEvent:
    made_at: datetime
    county: str | None
    kind: str
    arrival: str  # pending, arrived, did_not_arrive


@dataclass(frozen=True)
class FollowUpEvent:
    due_at: datetime
    county: str | None
    overdue_at: datetime
    done_at: datetime | None


@dataclass(frozen=True)
class PersonEvent:
    first_met_at: datetime
    county: str | None
    reached_at: tuple[datetime, ...] = ()


@dataclass
class AfterFigures:
    contacts: int = 0
    identified: int = 0
    deidentified: int = 0
    consents: int = 0
    consents_revoked: int = 0
    referrals: Counter[str] = field(default_factory=Counter)
    arrived: Counter[str] = field(default_factory=Counter)
    did_not_arrive: Counter[str] = field(default_factory=Counter)
    followups_due: int = 0
    on_time: int = 0
    late: int = 0
    missed: int = 0
    open: int = 0
    people: int = 0
    engaged: dict[int, int] = field(default_factory=lambda: dict.fromkeys(ENGAGED_DAYS, 0))

    @property
    def referrals_made(self) -> int:
        return sum(self.referrals.values())

    @property
    def referrals_arrived(self) -> int:
        return sum(self.arrived.values())

    @property
    def on_time_share(self) -> float | None:
        """Of the follow-ups due whose time has come (done, or missed), the share done on
        time; None when none has."""
        decided = self.on_time + self.late + self.missed
        return round(self.on_time / decided, 3) if decided else None


@dataclass(frozen=True)
class AfterTally:
    total: AfterFigures
    weeks: dict[date, AfterFigures]
    counties: dict[str | None, AfterFigures]


def tally_after(
    *,
    contacts: Iterable[ContactEvent],
    consents: Iterable[ConsentEvent],
    referrals: Iterable[ReferralEvent],
    followups: Iterable[FollowUpEvent],
    people: Iterable[PersonEvent],
    period: Period,
    zone: ZoneInfo,
    counties: Sequence[str | None],
    now: datetime,
) -> AfterTally:
    """Each event once in the total, once in its week and once in its county. An event
    outside the period is a caller's mistake and raises."""
    total = AfterFigures()
    weeks = {week.first: AfterFigures() for week in period.weeks()}
    by_county: dict[str | None, AfterFigures] = {fips: AfterFigures() for fips in counties}

    def buckets(at: datetime, county: str | None) -> list[AfterFigures]:
        day = at.astimezone(zone).date()
        if not period.first <= day <= period.last:
            raise ValueError(f"an event on {day}, outside {period.label}")
        return [total, weeks[period.week_of(day)], by_county.setdefault(county, AfterFigures())]

    for contact in contacts:
        for figures in buckets(contact.met_at, contact.county):
            figures.contacts += 1
            figures.identified += contact.identified
            figures.deidentified += not contact.identified
    for consent in consents:
        for figures in buckets(consent.signed_at, consent.county):
            figures.consents += 1
            figures.consents_revoked += consent.revoked
    for referral in referrals:
        for figures in buckets(referral.made_at, referral.county):
            figures.referrals[referral.kind] += 1
            if referral.arrival == "arrived":
                figures.arrived[referral.kind] += 1
            elif referral.arrival == "did_not_arrive":
                figures.did_not_arrive[referral.kind] += 1
    for task in followups:
        for figures in buckets(task.due_at, task.county):
            figures.followups_due += 1
            if task.done_at is not None and task.done_at <= task.overdue_at:
                figures.on_time += 1
            elif task.done_at is not None:
                figures.late += 1
            elif task.overdue_at <= now:
                figures.missed += 1
            else:
                figures.open += 1
    for person in people:
        for figures in buckets(person.first_met_at, person.county):
            figures.people += 1
            for days in ENGAGED_DAYS:
                since = person.first_met_at + timedelta(days=days)
                figures.engaged[days] += any(at >= since for at in person.reached_at)
    return AfterTally(total, weeks, by_county)
