"""The program report as the API gives it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from corespond.reports.aftercall import (
    AFTER_DEFINITIONS,
    ENGAGED_DAYS,
    SERVICE_KINDS,
    SERVICE_LABELS,
    AfterFigures,
)
from corespond.reports.figures import (
    DEFINITIONS,
    OUTCOME_LABELS,
    REFERRAL_LABELS,
    Figures,
    label_of,
)
from corespond.reports.service import Report


class FiguresOut(BaseModel):
    """The program's figures over a set of calls (see `definitions` for what each counts)."""

    eligible: int = Field(description=DEFINITIONS["eligible"])
    requested: int = Field(description=DEFINITIONS["requested"])
    filled: int = Field(description=DEFINITIONS["filled"])
    unfilled: int = Field(description=DEFINITIONS["unfilled"])
    cancelled: int = Field(description=DEFINITIONS["cancelled"])
    open: int = Field(description=DEFINITIONS["open"])
    callouts: int = Field(description=DEFINITIONS["callouts"])
    accepted_offers: int = Field(description=DEFINITIONS["accepted_offers"])
    median_minutes_offer_to_accept: float | None = Field(
        description=DEFINITIONS["median_minutes_offer_to_accept"]
    )
    cleared: int = Field(description=DEFINITIONS["cleared"])
    outcomes: dict[str, int] = Field(
        description=DEFINITIONS["outcomes"] + " Every kind in `outcome_kinds`, 0 included."
    )
    referrals: dict[str, int] = Field(
        description=DEFINITIONS["referrals"] + " Every kind in `referral_kinds`, 0 included."
    )


class WeekOut(FiguresOut):
    iso_week: str = Field(description="ISO 8601 week of its Monday, e.g. `2026-W10`.")
    label: str
    first_day: date = Field(
        description="Its first day in the period (a Monday, or the period's first day)."
    )
    last_day: date = Field(
        description="Its last day in the period (a Sunday, or the period's last day)."
    )


class AgencyFiguresOut(FiguresOut):
    agency: str = Field(description=DEFINITIONS["agency"])


class CountyFiguresOut(FiguresOut):
    fips: str | None = Field(description="null: calls that could not be placed in a county.")
    name: str


class ServiceReferralsOut(BaseModel):
    made: int
    arrived: int = Field(description="The person arrived: the warm hand-off confirmed.")
    did_not_arrive: int


class FollowUpFiguresOut(BaseModel):
    due: int
    on_time: int
    late: int
    missed: int
    open: int
    on_time_share: float | None = Field(
        description="on_time / (on_time + late + missed); null when none of them is decided."
    )


class AfterFiguresOut(BaseModel):
    """What came after the calls (see `definitions`): de-identified counts only."""

    contacts: int = Field(description=AFTER_DEFINITIONS["contacts"])
    contacts_identified: int
    contacts_deidentified: int
    consents: int = Field(description=AFTER_DEFINITIONS["consents"])
    consents_revoked: int
    service_referrals: dict[str, ServiceReferralsOut] = Field(
        description=AFTER_DEFINITIONS["service_referrals"] + " Every kind, 0 included."
    )
    followups: FollowUpFiguresOut = Field(description=AFTER_DEFINITIONS["followups"])
    people_first_met: int = Field(description=AFTER_DEFINITIONS["engaged"])
    engaged: dict[str, int] = Field(
        description="Of the people first met, those reached at least this many days later "
        "(keys `30`, `90`, `365`)."
    )


class AfterWeekOut(AfterFiguresOut):
    iso_week: str
    label: str
    first_day: date
    last_day: date


class AfterCountyOut(AfterFiguresOut):
    fips: str | None
    name: str


class AfterOut(BaseModel):
    total: AfterFiguresOut
    weeks: list[AfterWeekOut]
    by_county: list[AfterCountyOut]


class PeriodOut(BaseModel):
    kind: Literal["month", "quarter", "year", "dates"]
    label: str
    first_day: date
    last_day: date = Field(description="Included.")
    starts_at: datetime = Field(description="Midnight starting the first day, program time.")
    ends_at: datetime = Field(description="Midnight ending the last day (excluded).")
    timezone: str = Field(
        description="CORESPOND_PROGRAM_TIMEZONE: the clock days and weeks follow."
    )


class CountyRef(BaseModel):
    fips: str
    name: str


class KindOut(BaseModel):
    key: str
    label: str


class ReportOut(BaseModel):
    """The figures the program publishes, for the calls that opened in a period."""

    period: PeriodOut
    counties: list[CountyRef] | None = Field(
        description="The counties asked for (a county-scoped key: its own); null: every "
        "county, and calls placed in none."
    )
    generated_at: datetime
    total: FiguresOut
    weeks: list[WeekOut] = Field(description="Every week of the period, Monday to Sunday.")
    by_county: list[CountyFiguresOut] = Field(
        description="The counties asked for; else every county a provider serves or a call "
        "opened in, by name (calls placed in no county last)."
    )
    by_agency: list[AgencyFiguresOut] = Field(
        description="Every agency a counted call named (as CAD spells it), by name."
    )
    outcome_kinds: list[KindOut]
    referral_kinds: list[KindOut]
    service_kinds: list[KindOut] = Field(description="The kinds of service in the directory.")
    after: AfterOut = Field(
        description="After the call: contacts, consents, referrals to services and arrivals, "
        "follow-ups on time, people still engaged at 30, 90 and 365 days; in total, per week "
        "and per county. Counts only: nothing that identifies anyone."
    )
    definitions: dict[str, str] = Field(description="What each figure counts, in words.")


def _figures(report: Report, figures: Figures) -> dict[str, object]:
    return {
        "eligible": figures.eligible,
        "requested": figures.requested,
        "filled": figures.filled,
        "unfilled": figures.unfilled,
        "cancelled": figures.cancelled,
        "open": figures.open,
        "callouts": figures.callouts,
        "accepted_offers": figures.accepted_offers,
        "median_minutes_offer_to_accept": figures.median_minutes_to_accept,
        "cleared": figures.cleared,
        "outcomes": {k: figures.outcomes.get(k, 0) for k in report.outcome_kinds},
        "referrals": {k: figures.referrals.get(k, 0) for k in report.referral_kinds},
    }


def after_figures(figures: AfterFigures) -> dict[str, object]:
    return {
        "contacts": figures.contacts,
        "contacts_identified": figures.identified,
        "contacts_deidentified": figures.deidentified,
        "consents": figures.consents,
        "consents_revoked": figures.consents_revoked,
        "service_referrals": {
            k: {
                "made": figures.referrals.get(k, 0),
                "arrived": figures.arrived.get(k, 0),
                "did_not_arrive": figures.did_not_arrive.get(k, 0),
            }
            for k in SERVICE_KINDS
        },
        "followups": {
            "due": figures.followups_due,
            "on_time": figures.on_time,
            "late": figures.late,
            "missed": figures.missed,
            "open": figures.open,
            "on_time_share": figures.on_time_share,
        },
        "people_first_met": figures.people,
        "engaged": {str(d): figures.engaged[d] for d in ENGAGED_DAYS},
    }


def report_out(report: Report) -> ReportOut:
    zone = ZoneInfo(report.timezone)
    period = report.period
    return ReportOut.model_validate(
        {
            "period": {
                "kind": period.kind,
                "label": period.label,
                "first_day": period.first,
                "last_day": period.last,
                "starts_at": report.starts_at.astimezone(zone),
                "ends_at": report.ends_at.astimezone(zone),
                "timezone": report.timezone,
            },
            "counties": [{"fips": f, "name": n} for f, n in report.counties]
            if report.counties is not None
            else None,
            "generated_at": report.generated_at.astimezone(zone),
            "total": _figures(report, report.total),
            "weeks": [
                {
                    "iso_week": row.week.iso_week,
                    "label": row.week.label,
                    "first_day": row.week.first,
                    "last_day": row.week.last,
                    **_figures(report, row.figures),
                }
                for row in report.weeks
            ],
            "by_county": [
                {"fips": row.fips, "name": row.name, **_figures(report, row.figures)}
                for row in report.by_county
            ],
            "outcome_kinds": [
                {"key": k, "label": label_of(k, OUTCOME_LABELS)} for k in report.outcome_kinds
            ],
            "referral_kinds": [
                {"key": k, "label": label_of(k, REFERRAL_LABELS)} for k in report.referral_kinds
            ],
            "by_agency": [
                {"agency": row.name, **_figures(report, row.figures)} for row in report.by_agency
            ],
            "service_kinds": [{"key": k, "label": SERVICE_LABELS[k]} for k in SERVICE_KINDS],
            "after": {
                "total": after_figures(report.after.total),
                "weeks": [
                    {
                        "iso_week": row.week.iso_week,
                        "label": row.week.label,
                        "first_day": row.week.first,
                        "last_day": row.week.last,
                        **after_figures(row.figures),
                    }
                    for row in report.after.weeks
                ],
                "by_county": [
                    {"fips": row.fips, "name": row.name, **after_figures(row.figures)}
                    for row in report.after.by_county
                ],
            },
            "definitions": {**DEFINITIONS, **AFTER_DEFINITIONS},
        }
    )
