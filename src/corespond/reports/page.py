"""The program's reports at ``/supervisor/reports``: the figures the program publishes for a
month, quarter, year or any dates, drawn as charts on the server (SVG, each with its numbers
in a table beside it), downloadable as CSV (``/supervisor/reports.csv``) and printable.

Signed in like ``/supervisor`` (the same session cookie, which is limited to ``/supervisor``
and so reaches this page); not signed in, the page sends the browser to ``/supervisor`` to
sign in. What a key sees is what ``GET /v1/reports/program`` gives it: its counties only.
A period or county the page cannot read is said on the page (with the chooser to fix it);
the CSV download answers it with a problem document, as the API does.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from corespond.browser import SECURITY_HEADERS
from corespond.coverage.signin import COOKIE_PATH, SIGN_IN
from corespond.db import SessionDep
from corespond.errors import NotFound, Problem, Unauthorized
from corespond.reports import charts, periods, service
from corespond.reports.aftercall import (
    AFTER_DEFINITIONS,
    ENGAGED_DAYS,
    SERVICE_KINDS,
    SERVICE_LABELS,
)
from corespond.reports.charts import SERIES, Category, Series
from corespond.reports.figures import (
    CALL_SERIES,
    DEFINITIONS,
    OUTCOME_LABELS,
    REFERRAL_LABELS,
    Figures,
    label_of,
)
from corespond.reports.router import csv_response, read_report, today
from corespond.reports.service import Report

router = APIRouter(include_in_schema=False)

PAGE = f"{COOKIE_PATH}/reports"
STATIC = {"reports.css": "text/css", "reports.js": "text/javascript"}
# The program's yearly figures, in the order it publishes them.
HEADLINE_REFERRALS = ("detox", "inpatient", "mat", "outpatient")

templates = Environment(
    loader=PackageLoader("corespond.reports", "templates"),
    autoescape=select_autoescape(["html"]),
)

Text = Annotated[str | None, Query()]


def _html(status: int = 200, **context: Any) -> HTMLResponse:
    body = templates.get_template("reports.html").render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


@router.get(PAGE)
async def page(
    request: Request,
    session: SessionDep,
    period: Text = None,
    month: Text = None,
    quarter: Text = None,
    year: Text = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    county: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The report for the signed-in key's counties (else, to sign in first); a period or
    county it cannot read is said on the page, beside the chooser."""
    principal = await SIGN_IN.signed_in(request, session)
    if principal is None:
        return RedirectResponse(COOKIE_PATH, status_code=303)
    atlas = request.app.state.geography.atlas
    asked = {
        "period": period or "",
        "month": month or "",
        "quarter": quarter or "",
        "year": year or "",
        "from": start or "",
        "to": end or "",
        "county": next((c for c in county or [] if c.strip()), ""),
    }
    context: dict[str, Any] = {
        "who": principal.name,
        "timezone": request.app.state.settings.program_timezone,
        "definitions": DEFINITIONS | AFTER_DEFINITIONS,
    }
    try:
        context["choices"] = await service.county_choices(session, atlas, principal)
        chosen = periods.choose(
            period=period,
            month=month,
            quarter=quarter,
            year=year,
            start=start,
            end=end,
            today=today(request),
        )
        counties = service.counties_for(principal, atlas, county or [])
    except Problem as problem:
        context.setdefault("choices", [])
        return _html(problem.status, error=problem.detail, form=asked, report=None, **context)
    report = await read_report(request, session, principal, chosen, counties, "page")
    named = (counties or []) if any(c.strip() for c in county or []) else []
    query = urlencode([*chosen.query().items(), *(("county", c) for c in named)])
    zone = ZoneInfo(report.timezone)
    return _html(
        report=report,
        form=chosen.form() | {"county": report.counties[0][0] if report.counties else ""},
        download=f"{PAGE}.csv?{query}",
        api=f"/v1/reports/program?{query}",
        as_of=report.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        charts=_charts(report),
        headline=_headline(report.total),
        after_headline=_after_headline(report),
        service_kinds=SERVICE_KINDS,
        service_labels=SERVICE_LABELS,
        engaged_days=ENGAGED_DAYS,
        outcome_labels={k: label_of(k, OUTCOME_LABELS) for k in report.outcome_kinds},
        referral_labels={k: label_of(k, REFERRAL_LABELS) for k in report.referral_kinds},
        **context,
    )


@router.get(f"{PAGE}.csv")
async def download(
    request: Request,
    session: SessionDep,
    period: Text = None,
    month: Text = None,
    quarter: Text = None,
    year: Text = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    county: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The page's report as CSV (the same sign-in cookie)."""
    principal = await SIGN_IN.signed_in(request, session)
    if principal is None:
        raise Unauthorized(f"sign in at {COOKIE_PATH}")
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
    return csv_response(await read_report(request, session, principal, chosen, counties, "csv"))


@router.get(f"{PAGE}/static/{{name}}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise NotFound(f"no such file: {name}")
    text = resources.files("corespond.reports").joinpath(f"static/{name}").read_text()
    return Response(text, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


def _headline(total: Figures) -> list[tuple[str, str, str]]:
    """(id, figure, what) of the figures the program publishes each year."""
    median = total.median_minutes_to_accept
    out = [
        ("eligible", str(total.eligible), "calls eligible"),
        ("requested", str(total.requested), "peers requested"),
        ("filled", str(total.filled), "requests filled"),
        ("unfilled", str(total.unfilled), "unfilled"),
        ("callouts", str(total.callouts), "callouts"),
        (
            "median",
            "—" if median is None else f"{median:.1f}",
            "median minutes to accept",
        ),
    ]
    out += [
        (f"referral-{k}", str(total.referrals.get(k, 0)), f"referrals to {REFERRAL_LABELS[k]}")
        for k in HEADLINE_REFERRALS
    ]
    return out


def _after_headline(report: Report) -> list[tuple[str, str, str]]:
    """(id, figure, what) of the year after the call, counts only."""
    after = report.after.total
    share = after.on_time_share
    return [
        ("contacts", str(after.contacts), "contacts"),
        ("identified", str(after.identified), "with consent"),
        ("deidentified", str(after.deidentified), "de-identified"),
        ("consents", str(after.consents), "consents signed"),
        ("service-referrals", str(after.referrals_made), "referrals to services"),
        ("arrived", str(after.referrals_arrived), "arrived (warm hand-off)"),
        ("on-time", "—" if share is None else f"{share:.0%}", "follow-ups on time"),
        *(
            (f"engaged-{d}", f"{after.engaged[d]} / {after.people}", f"engaged at {d} days")
            for d in ENGAGED_DAYS
        ),
    ]


# Under the chart's axis, where the whole label would not fit.
SERVICE_SHORT = {
    "inpatient": "inpatient",
    "mat": "MOUD",
    "outpatient": "outpatient",
    "recovery_housing": "housing",
    "qrt": "QRT",
    "harm_reduction": "harm red.",
}

SERVICE_SERIES = (
    Series("made", "referred", "#CC79A7"),
    Series("arrived", "arrived", "#009E73"),
)


def _charts(report: Report) -> dict[str, Markup]:
    where = f"{report.period.label}, {report.county_label}"
    series = [SERIES[s] for s in CALL_SERIES]
    weeks = [
        Category(
            row.week.first.isoformat(), row.week.label, f"{row.week.first:%b} {row.week.first.day}"
        )
        for row in report.weeks
    ]
    total = report.total
    in_total = (
        f"In all: {total.eligible} eligible, {total.requested} requested, {total.filled} "
        f"filled, {total.unfilled} unfilled."
    )
    counties = [Category(row.fips or "none", row.name) for row in report.by_county]
    median = total.median_minutes_to_accept
    after = report.after.total
    return {
        "weeks": charts.grouped_bars(
            "chart-weeks",
            f"Calls per week, {where}",
            "Four bars a week, Monday to Sunday: calls eligible, peers requested, requests "
            f"filled and unfilled. {in_total} The table beside the chart has every number.",
            weeks,
            series,
            [[_call_figure(row.figures, s) for s in CALL_SERIES] for row in report.weeks],
        ),
        "counties": charts.grouped_bars(
            "chart-counties",
            f"Calls per county, {where}",
            "Four bars a county: calls eligible, peers requested, requests filled and "
            f"unfilled. {in_total} The table beside the chart has every number.",
            counties,
            series,
            [[_call_figure(row.figures, s) for s in CALL_SERIES] for row in report.by_county],
        ),
        "accept": charts.points(
            "chart-accept",
            f"Median minutes from offer to acceptance, per week, {where}",
            "A point for each week with an accepted offer, at the median of the minutes its "
            "offers waited to be accepted; no point where nothing was accepted. Over the "
            + (
                f"period: {median:.1f} minutes ({total.accepted_offers} offers accepted)."
                if median is not None
                else "period: no offer was accepted."
            ),
            weeks,
            [row.figures.median_minutes_to_accept for row in report.weeks],
            [
                f"median {row.figures.median_minutes_to_accept or 0:.1f} min over "
                f"{row.figures.accepted_offers} accepted offer(s)"
                for row in report.weeks
            ],
        ),
        "outcomes": _kinds_chart(
            "chart-outcomes",
            f"Outcomes of cleared assignments, {where}",
            "cleared assignments",
            report.outcome_kinds,
            OUTCOME_LABELS,
            total.outcomes,
            charts.OUTCOME_COLOUR,
        ),
        "services": charts.grouped_bars(
            "chart-services",
            f"Referrals to services and arrivals, {where}",
            "Two bars a kind of service: referrals made and people who arrived (a warm "
            "hand-off confirmed): "
            + "; ".join(
                f"{SERVICE_LABELS[k]} {after.referrals.get(k, 0)} referred, "
                f"{after.arrived.get(k, 0)} arrived"
                for k in SERVICE_KINDS
            )
            + ".",
            [Category(k, SERVICE_LABELS[k], SERVICE_SHORT.get(k)) for k in SERVICE_KINDS],
            SERVICE_SERIES,
            [[after.referrals.get(k, 0), after.arrived.get(k, 0)] for k in SERVICE_KINDS],
            unit="referrals",
        ),
        "referrals": _kinds_chart(
            "chart-referrals",
            f"Referrals by kind, {where}",
            "referrals",
            report.referral_kinds,
            REFERRAL_LABELS,
            total.referrals,
            charts.REFERRAL_COLOUR,
        ),
    }


def _call_figure(figures: Figures, series: str) -> int:
    value: int = getattr(figures, series)
    return value


def _kinds_chart(
    chart_id: str,
    title: str,
    what: str,
    kinds: tuple[str, ...],
    labels: dict[str, str],
    counts: Counter[str],
    colour: str,
) -> Markup:
    categories = [Category(k, label_of(k, labels)) for k in kinds]
    values = [counts.get(k, 0) for k in kinds]
    listed = "; ".join(f"{c.label} {v}" for c, v in zip(categories, values, strict=True))
    return charts.horizontal_bars(
        chart_id,
        title,
        f"A bar per kind, its length the number of {what}: {listed}.",
        categories,
        values,
        colour,
    )
