"""What the program's figures count, as plain functions of calls and their offers (no
database): each call counts once, in the week (in the program's time zone) and the county it
opened in, and everything about it (its requests, offers, outcome) counts with it.

``DEFINITIONS`` is the wording the page, the API and the README give for each figure.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from corespond.reports.periods import Period

# The four a chart of calls shows, in the order of the program's funnel.
CALL_SERIES = ("eligible", "requested", "filled", "unfilled")

DEFINITIONS: dict[str, str] = {
    "week": "A call belongs to the week (Monday to Sunday) and the county it opened in: its "
    "opening time as CAD gave it (the call.created event's occurred_at; else when corespond "
    "first stored it), on the program's clock. Weeks at the period's ends count only their "
    "days inside it. Everything else about a call (its requests, offers, outcome) counts "
    "with the call, even if it happened after the period ended.",
    "eligible": "Calls whose triage decision is eligible now (a call that turned dangerous "
    "is no longer eligible, whatever it was first).",
    "requested": "Calls a peer was requested for, automatically or by a dispatcher, "
    "whatever their triage decision (a review call may be requested with a reason). "
    "requested = filled + unfilled + cancelled + open.",
    "filled": "Requested calls a peer accepted (an offer was accepted, whatever happened after).",
    "unfilled": "Requested calls no peer accepted where a request ran out of peers to offer "
    "(the supervisor was alerted).",
    "cancelled": "Requested calls called off before any peer accepted and never unfilled "
    "(call closed or cancelled by CAD, danger reported, or called off by a dispatcher).",
    "open": "Requested calls with an offer still waiting for an answer.",
    "callouts": "Calls a peer went out to: an accepted peer reported en route.",
    "accepted_offers": "Offers accepted on these calls (the offers the median is taken over).",
    "median_minutes_offer_to_accept": "Median of the minutes from each accepted offer being "
    "made to the peer accepting it (offers declined or left to expire first are not in it; "
    "GET /v1/coverage/summary times from the request instead). Empty when nothing was "
    "accepted.",
    "cleared": "Assignments a peer cleared, each with its outcome.",
    "outcomes": "Cleared assignments by the outcome the peer recorded.",
    "referrals": "Referrals peers recorded on clearing, by kind: one clearing may name "
    "several kinds, and each counts once.",
    "agency": "Calls by the agency CAD named on them (as CAD spells it); a call counts once, "
    "with everything about it, as for weeks and counties.",
}

OUTCOME_LABELS = {
    "contact_made": "contact made",
    "referred": "referred",
    "declined_services": "declined services",
    "no_contact": "no contact",
}
REFERRAL_LABELS = {
    "detox": "detox",
    "inpatient": "inpatient treatment",
    "outpatient": "outpatient treatment",
    "mat": "MOUD / MAT",
    "recovery_housing": "recovery housing",
    "other_services": "other services",
}


def label_of(kind: str, labels: dict[str, str]) -> str:
    return labels.get(kind, kind.replace("_", " "))


@dataclass(frozen=True)
class Offer:
    """One assignment row of a call: an offer to a peer, or a request ending unfilled."""

    status: str
    offered_at: datetime | None
    accepted_at: datetime | None
    en_route_at: datetime | None
    outcome: str | None
    referrals: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallRecord:
    opened_at: datetime
    county_fips: str | None
    eligible: bool
    offers: tuple[Offer, ...] = ()
    agency: str | None = None


def request_result(offers: Sequence[Offer]) -> str | None:
    """What came of a call's requests: filled, open, unfilled, cancelled (in that order of
    precedence), or None when no peer was ever requested."""
    if not offers:
        return None
    if any(o.accepted_at is not None for o in offers):
        return "filled"
    if any(o.status == "offered" for o in offers):
        return "open"
    if any(o.status == "unfilled" for o in offers):
        return "unfilled"
    return "cancelled"


@dataclass
class Figures:
    """The program's figures over a set of calls."""

    eligible: int = 0
    requested: int = 0
    filled: int = 0
    unfilled: int = 0
    cancelled: int = 0
    open: int = 0
    callouts: int = 0
    cleared: int = 0
    accept_minutes: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    referrals: Counter[str] = field(default_factory=Counter)

    def count(self, call: CallRecord) -> None:
        self.eligible += int(call.eligible)
        result = request_result(call.offers)
        if result is not None:
            self.requested += 1
            setattr(self, result, getattr(self, result) + 1)
        self.callouts += any(o.en_route_at is not None for o in call.offers)
        for offer in call.offers:
            if offer.accepted_at is not None and offer.offered_at is not None:
                waited = max(timedelta(0), offer.accepted_at - offer.offered_at)
                self.accept_minutes.append(waited.total_seconds() / 60)
            if offer.status == "cleared" and offer.outcome is not None:
                self.cleared += 1
                self.outcomes[offer.outcome] += 1
                self.referrals.update(offer.referrals)

    @property
    def accepted_offers(self) -> int:
        return len(self.accept_minutes)

    @property
    def median_minutes_to_accept(self) -> float | None:
        if not self.accept_minutes:
            return None
        # Adding 0.0 turns a median that rounds to -0.0 into 0.0.
        return round(statistics.median(self.accept_minutes), 2) + 0.0


@dataclass(frozen=True)
class Tally:
    total: Figures
    weeks: dict[date, Figures]  # by the week's first day in the period; every week present
    counties: dict[str | None, Figures]  # every county asked for, and any a call was in
    agencies: dict[str | None, Figures] = field(default_factory=dict)  # any a call named


def tally(
    calls: Iterable[CallRecord],
    period: Period,
    zone: ZoneInfo,
    counties: Sequence[str | None] = (),
) -> Tally:
    """Each call counted once in the total, once in its week and once in its county.
    Calls that did not open in the period are a caller's mistake and raise."""
    total = Figures()
    weeks = {week.first: Figures() for week in period.weeks()}
    by_county: dict[str | None, Figures] = {fips: Figures() for fips in counties}
    by_agency: dict[str | None, Figures] = {}
    for call in calls:
        day = call.opened_at.astimezone(zone).date()
        if not period.first <= day <= period.last:
            raise ValueError(f"a call opened on {day}, outside {period.label}")
        total.count(call)
        weeks[period.week_of(day)].count(call)
        by_county.setdefault(call.county_fips, Figures()).count(call)
        by_agency.setdefault(call.agency, Figures()).count(call)
    return Tally(total, weeks, by_county, by_agency)
