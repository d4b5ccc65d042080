"""The program report over the API: ``GET /v1/reports/program`` (JSON, or CSV)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.auth.service import Principal
from corespond.db import SessionDep
from corespond.errors import Forbidden, InvalidPayload, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.reports import export, periods, service
from corespond.reports.schemas import ReportOut, report_out
from corespond.reports.service import Report

router = APIRouter(tags=["reports"])

PeriodKind = Annotated[
    Literal["month", "quarter", "year", "dates"] | None,
    Query(
        description="Which of the fields below names the period (the others are then "
        "ignored). Without it, give at most one of `month`, `quarter`, `year` or `from` and "
        "`to`; with none, the current month."
    ),
]
Month = Annotated[
    str | None,
    Query(
        max_length=7, pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM", examples=["2026-03"]
    ),
]
Quarter = Annotated[
    str | None,
    Query(
        max_length=7,
        pattern=r"^[0-9]{4}-?[Qq][1-4]$",
        description="YYYY-Qn: Q1 is January to March",
        examples=["2026-Q1"],
    ),
]
Year = Annotated[
    str | None, Query(max_length=4, pattern=r"^[0-9]{4}$", description="YYYY", examples=["2026"])
]
Day = Annotated[
    str | None,
    Query(
        max_length=10,
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="YYYY-MM-DD, a whole day in the program's time zone (`from` and `to` go "
        "together; both days are included; at most 366 days)",
    ),
]
Counties = Annotated[
    list[str] | None,
    Query(
        max_length=60,
        description="A county by name or FIPS, repeatable; default: every county the key "
        "may see (a county-scoped key: its own).",
    ),
]


def wants_csv(accept: str) -> bool:
    """``text/csv`` is acceptable (and not refused with ``q=0``)."""
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        if kind.lower() == "text/csv":
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00") for p in params)
    return False


def today(request: Request) -> date:
    zone = ZoneInfo(request.app.state.settings.program_timezone)
    moment = request.app.state.clock()
    day: date = moment.astimezone(zone).date()
    return day


def csv_response(report: Report) -> Response:
    return Response(
        export.report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename(report)}"',
            "Cache-Control": "no-store",
        },
    )


async def read_report(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    period: periods.Period,
    counties: list[str] | None,
    how: str,
) -> Report:
    """The report, its read on the audit log (outcomes are program records)."""
    settings = request.app.state.settings
    report = await service.program_report(
        session,
        request.app.state.geography.atlas,
        period,
        settings.program_timezone,
        counties,
        request.app.state.clock(),
    )
    await audit.record(
        session,
        principal,
        "outcome.report",
        "report",
        None,
        {
            "period": f"{period.first.isoformat()}/{period.last.isoformat()}",
            "counties": counties,
            "as": how,
        },
    )
    return report


@router.get(
    "/v1/reports/program",
    response_model=ReportOut,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or with `Accept: text/csv` one CSV table: a `total` row, a "
            "row per `week` and per `county`, every row with the same columns (`breakdown, "
            "key, label, first_day, last_day`, the figures, `outcome_<kind>`…, "
            "`referral_<kind>`…).",
        },
        **problems(Unauthorized, Forbidden, InvalidPayload),
    },
)
async def program_report(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    period: PeriodKind = None,
    month: Month = None,
    quarter: Quarter = None,
    year: Year = None,
    start: Annotated[Day, Query(alias="from")] = None,
    end: Annotated[Day, Query(alias="to")] = None,
    county: Counties = None,
) -> ReportOut | Response:
    """The figures the program publishes for the calls that opened in a period (a month,
    quarter, year, or from and to dates; days and weeks on the program's clock): calls
    eligible, requested, filled, unfilled (and cancelled, still open), callouts, median
    minutes from offer to acceptance, outcomes and referrals by kind; in total, per week
    (Monday to Sunday) and per county. `definitions` says what each figure counts.
    `Accept: text/csv` for one spreadsheet table."""
    chosen = periods.choose(
        period=period,
        month=month,
        quarter=quarter,
        year=year,
        start=start,
        end=end,
        today=today(request),
    )
    counties = service.counties_for(principal, request.app.state.geography.atlas, county or [])
    csv = wants_csv(request.headers.get("accept", ""))
    report = await read_report(
        request, session, principal, chosen, counties, "csv" if csv else "json"
    )
    if csv:
        return csv_response(report)
    return report_out(report)
