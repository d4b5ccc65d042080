"""The report as one CSV table for a spreadsheet: a row for the whole period, one per week, one
per county and one per agency, every row with the same columns (the figures, one column per
kind of outcome and of referral, then the figures after the call, which agency rows leave
empty: contacts, consents and follow-ups are not the agency's)."""

from __future__ import annotations

import csv
import io
import re

from corespond.reports.aftercall import ENGAGED_DAYS, SERVICE_KINDS, AfterFigures
from corespond.reports.figures import Figures
from corespond.reports.service import Report

FIGURE_COLUMNS = (
    "eligible",
    "requested",
    "filled",
    "unfilled",
    "cancelled",
    "open",
    "callouts",
    "accepted_offers",
    "median_minutes_offer_to_accept",
    "cleared",
)
KEY_COLUMNS = ("breakdown", "key", "label", "first_day", "last_day")
AFTER_COLUMNS = (
    "contacts",
    "contacts_identified",
    "contacts_deidentified",
    "consents",
    "consents_revoked",
    "followups_due",
    "followups_on_time",
    "followups_late",
    "followups_missed",
    "followups_open",
    "people_first_met",
    *(f"engaged_{d}" for d in ENGAGED_DAYS),
    *(c for k in SERVICE_KINDS for c in (f"service_referral_{k}", f"service_referral_{k}_arrived")),
)


def columns(report: Report) -> list[str]:
    return [
        *KEY_COLUMNS,
        *FIGURE_COLUMNS,
        *(f"outcome_{k}" for k in report.outcome_kinds),
        *(f"referral_{k}" for k in report.referral_kinds),
        *AFTER_COLUMNS,
    ]


def _after(figures: AfterFigures | None) -> list[object]:
    if figures is None:
        return [""] * len(AFTER_COLUMNS)
    return [
        figures.contacts,
        figures.identified,
        figures.deidentified,
        figures.consents,
        figures.consents_revoked,
        figures.followups_due,
        figures.on_time,
        figures.late,
        figures.missed,
        figures.open,
        figures.people,
        *(figures.engaged[d] for d in ENGAGED_DAYS),
        *(
            n
            for k in SERVICE_KINDS
            for n in (figures.referrals.get(k, 0), figures.arrived.get(k, 0))
        ),
    ]


def _figures(report: Report, figures: Figures) -> list[object]:
    median = figures.median_minutes_to_accept
    return [
        figures.eligible,
        figures.requested,
        figures.filled,
        figures.unfilled,
        figures.cancelled,
        figures.open,
        figures.callouts,
        figures.accepted_offers,
        "" if median is None else median,
        figures.cleared,
        *(figures.outcomes.get(k, 0) for k in report.outcome_kinds),
        *(figures.referrals.get(k, 0) for k in report.referral_kinds),
    ]


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns(report))
    first, last = report.period.first.isoformat(), report.period.last.isoformat()
    writer.writerow(
        [
            "total",
            "",
            f"{report.period.label}, {report.county_label}",
            first,
            last,
            *_figures(report, report.total),
            *_after(report.after.total),
        ]
    )
    after_weeks = {row.week.first: row.figures for row in report.after.weeks}
    after_counties = {row.fips: row.figures for row in report.after.by_county}
    for row in report.weeks:
        week = row.week
        writer.writerow(
            [
                "week",
                week.iso_week,
                week.label,
                week.first.isoformat(),
                week.last.isoformat(),
                *_figures(report, row.figures),
                *_after(after_weeks.get(week.first)),
            ]
        )
    for county in report.by_county:
        writer.writerow(
            [
                "county",
                county.fips or "",
                county.name,
                first,
                last,
                *_figures(report, county.figures),
                *_after(after_counties.get(county.fips)),
            ]
        )
    # A county with only after-the-call figures (a contact, no counted call) has its row too.
    for fips, figures in after_counties.items():
        if fips not in {c.fips for c in report.by_county}:
            name = next(r.name for r in report.after.by_county if r.fips == fips)
            writer.writerow(
                [
                    "county",
                    fips or "",
                    name,
                    first,
                    last,
                    *_figures(report, Figures()),
                    *_after(figures),
                ]
            )
    for agency in report.by_agency:
        writer.writerow(
            [
                "agency",
                agency.name,
                agency.name,
                first,
                last,
                *_figures(report, agency.figures),
                *_after(None),
            ]
        )
    return out.getvalue()


def filename(report: Report) -> str:
    """``corespond-report-2026-03.csv``, ``…-2026-Q1-kanawha.csv``,
    ``…-2026-03-01_2026-03-10.csv``."""
    period = report.period
    name = {
        "month": f"{period.first:%Y-%m}",
        "quarter": f"{period.first.year}-Q{(period.first.month - 1) // 3 + 1}",
        "year": str(period.first.year),
        "dates": f"{period.first.isoformat()}_{period.last.isoformat()}",
    }[period.kind]
    if report.counties is not None and len(report.counties) > 3:
        name += f"-{len(report.counties)}-counties"
    elif report.counties is not None:
        name += "-" + "-".join(re.sub(r"[^a-z0-9]+", "-", n.lower()) for _, n in report.counties)
    return f"corespond-report-{name}.csv"
