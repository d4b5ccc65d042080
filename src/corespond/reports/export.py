"""The report as one CSV table for a spreadsheet: a row for the whole period, one per week and
one per county, every row with the same columns (the figures, then one column per kind of
outcome and of referral)."""

from __future__ import annotations

import csv
import io
import re

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


def columns(report: Report) -> list[str]:
    return [
        *KEY_COLUMNS,
        *FIGURE_COLUMNS,
        *(f"outcome_{k}" for k in report.outcome_kinds),
        *(f"referral_{k}" for k in report.referral_kinds),
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
        ]
    )
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
