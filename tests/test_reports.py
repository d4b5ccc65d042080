"""The program reports: periods and weeks on the program's clock, what each figure counts,
the API (JSON and CSV) and the page's charts on a month seeded with figures known by hand
(tests/reports_month.py), the key's scope, and bad input answered 4xx, never 500. The
browser test is test_reports_browser.py."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from corespond.db import Database
from corespond.errors import InvalidPayload
from corespond.reports import charts, periods
from corespond.reports.figures import CallRecord, Offer, request_result, tally
from tests.conftest import Source, make_key
from tests.reports_month import COUNTIES, MONTH, TOTAL, WEEKS, seed_march
from tests.test_assignments import auth
from tests.test_coverage_api import session_token
from tests.test_ingest_api import assert_problem

NEW_YORK = ZoneInfo("America/New_York")
SVG = "{http://www.w3.org/2000/svg}"
FIGURES = ("eligible", "requested", "filled", "unfilled", "cancelled", "open", "callouts")


# --- periods and weeks (pure) ----------------------------------------------------------------


def _choose(today: date = date(2026, 11, 29), **given: str | None) -> periods.Period:
    fields: dict[str, str | None] = dict.fromkeys(
        ("period", "month", "quarter", "year", "start", "end")
    )
    fields.update(given)
    return periods.choose(today=today, **fields)  # type: ignore[arg-type]


def test_a_month_is_its_whole_days_on_the_program_clock_across_the_dst_change() -> None:
    march = _choose(month="2026-03")
    assert (march.first, march.last, march.label) == (
        date(2026, 3, 1),
        date(2026, 3, 31),
        "March 2026",
    )
    start, end = march.bounds(NEW_YORK)
    assert start == datetime(2026, 3, 1, 5, tzinfo=UTC)  # EST
    assert end == datetime(2026, 4, 1, 4, tzinfo=UTC)  # EDT: the month is an hour short
    weeks = march.weeks()
    assert [(w.first.day, w.last.day) for w in weeks] == [
        (1, 1), (2, 8), (9, 15), (16, 22), (23, 29), (30, 31),
    ]  # fmt: skip
    assert [w.iso_week for w in weeks][:2] == ["2026-W09", "2026-W10"]
    assert [w.label for w in weeks][:2] == ["Mar 1", "Mar 2\u20138"]
    assert march.week_of(date(2026, 3, 8)) == date(2026, 3, 2)
    assert march.week_of(date(2026, 3, 1)) == date(2026, 3, 1)  # cut at the period's start


def test_quarters_years_dates_and_the_default() -> None:
    q4 = _choose(quarter="2026-q4")
    assert (q4.first, q4.last) == (date(2026, 10, 1), date(2026, 12, 31))
    assert q4.label == "2026 Q4 (October\u2013December)"
    leap = _choose(year="2028")
    assert (leap.days, len(leap.weeks())) == (366, 53)
    span = _choose(start="2026-12-28", end="2027-01-03")
    assert [w.iso_week for w in span.weeks()] == ["2026-W53"]
    assert span.query() == {"period": "dates", "from": "2026-12-28", "to": "2027-01-03"}
    assert _choose().label == "November 2026"  # nothing given: the current month
    # The page's chooser sends every field; the kind says which is read.
    assert _choose(period="year", month="", quarter="2025-Q1", year="2025").label == "2025"


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"month": "2026-13"}, "query.month", "no month 13"),
        ({"month": "March"}, "query.month", "YYYY-MM"),
        ({"quarter": "2026-Q5"}, "query.quarter", "YYYY-Qn"),
        ({"year": "1999"}, "query.year", "between 2000 and 2100"),
        ({"start": "2026-02-30", "end": "2026-03-01"}, "query.from", "no such day"),
        ({"start": "2026-03-10"}, "query.to", "from and to go together"),
        ({"start": "2026-03-10", "end": "2026-03-01"}, "query.from", "after 'to'"),
        ({"start": "2025-01-01", "end": "2026-01-02"}, "query.to", "at most 366 days"),
        ({"month": "2026-03", "year": "2026"}, "query.month", "give one period"),
        ({"period": "decade"}, "query.period", "not a kind of period"),
        ({"period": "month", "month": ""}, "query.month", "give the month"),
    ],
)
def test_a_period_that_cannot_be_read_says_which_field_and_why(
    given: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(InvalidPayload) as refused:
        _choose(**given)
    assert words in (refused.value.detail or "")
    assert field in [p["name"] for p in refused.value.extra["invalid-params"]]


# --- what a call counts as (pure) ----------------------------------------------------------


def _offer(status: str, accepted: bool = False) -> Offer:
    at = datetime(2026, 3, 2, tzinfo=UTC)
    return Offer(status, at, at + timedelta(minutes=1) if accepted else None, None, None)


def test_a_calls_requests_end_filled_open_unfilled_or_cancelled_in_that_order() -> None:
    assert request_result([]) is None
    assert request_result([_offer("unfilled"), _offer("cancelled", accepted=True)]) == "filled"
    assert request_result([_offer("unfilled"), _offer("offered")]) == "open"
    assert request_result([_offer("expired"), _offer("unfilled"), _offer("cancelled")]) == (
        "unfilled"
    )
    assert request_result([_offer("declined"), _offer("cancelled")]) == "cancelled"


def test_tally_refuses_a_call_outside_the_period() -> None:
    march = _choose(month="2026-03")
    late = CallRecord(datetime(2026, 4, 1, 4, tzinfo=UTC), None, True)
    with pytest.raises(ValueError, match="outside March 2026"):
        tally([late], march, NEW_YORK)
    last = CallRecord(datetime(2026, 4, 1, 3, 59, tzinfo=UTC), None, True)
    assert tally([last], march, NEW_YORK).weeks[date(2026, 3, 30)].eligible == 1


def test_axes_are_round() -> None:
    assert charts.scale(0) == (1.0, 1.0)
    assert charts.scale(3) == (3.0, 1.0)
    assert charts.scale(5) == (6.0, 2.0)
    assert charts.scale(37) == (40.0, 10.0)
    assert charts.scale(3.5, whole=False) == (4.0, 1.0)


# --- the API on a seeded month ---------------------------------------------------------------


def _figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[f] for f in FIGURES)


async def test_the_seeded_month_over_the_api(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await seed_march(session, source.id)
    supervisor = await make_key(db, "supervisor")
    response = await client.get(
        "/v1/reports/program", params={"month": MONTH}, headers=auth(supervisor)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {
        "kind": "month",
        "label": "March 2026",
        "first_day": "2026-03-01",
        "last_day": "2026-03-31",
        "starts_at": "2026-03-01T00:00:00-05:00",
        "ends_at": "2026-04-01T00:00:00-04:00",
        "timezone": "America/New_York",
    }
    assert body["counties"] is None
    assert body["total"] == TOTAL
    assert [
        (w["first_day"], *_figures(w), w["median_minutes_offer_to_accept"]) for w in body["weeks"]
    ] == WEEKS
    assert [(c["fips"], c["name"], *_figures(c)) for c in body["by_county"]] == COUNTIES
    assert [k["label"] for k in body["referral_kinds"]][3] == "MOUD / MAT"
    assert "opening time" in body["definitions"]["week"]

    kanawha = await client.get(
        "/v1/reports/program",
        params={"period": "dates", "from": "2026-03-01", "to": "2026-03-31", "county": "Kanawha"},
        headers=auth(supervisor),
    )
    assert kanawha.status_code == 200, kanawha.text
    assert kanawha.json()["counties"] == [{"fips": "54039", "name": "Kanawha"}]
    assert _figures(kanawha.json()["total"]) == COUNTIES[1][2:]
    assert [c["name"] for c in kanawha.json()["by_county"]] == ["Kanawha"]
    # The week of 2 March alone: its three calls (K2 to K4).
    week = await client.get(
        "/v1/reports/program",
        params={"from": "2026-03-02", "to": "2026-03-08"},
        headers=auth(supervisor),
    )
    assert _figures(week.json()["total"]) == WEEKS[1][1:8]
    assert week.json()["total"]["median_minutes_offer_to_accept"] == 3.5


async def test_the_seeded_month_as_csv(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await seed_march(session, source.id)
    supervisor = await make_key(db, "supervisor")
    response = await client.get(
        "/v1/reports/program",
        params={"month": MONTH},
        headers={**auth(supervisor), "accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="corespond-report-2026-03.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    breakdowns = [r["breakdown"] for r in rows]
    assert breakdowns[:10] == ["total"] + ["week"] * 6 + ["county"] * 3
    assert set(breakdowns[10:]) == {"agency"}
    # Calls by the agency CAD named: every call counted once there too.
    agencies = rows[10:]
    assert sum(int(r["eligible"]) for r in agencies) == TOTAL["eligible"]
    assert {r["contacts"] for r in agencies} == {""}  # not the agency's figures
    total = rows[0]
    assert total["label"] == "March 2026, all counties"
    assert [int(total[f]) for f in FIGURES] == [TOTAL[f] for f in FIGURES]
    assert (total["median_minutes_offer_to_accept"], total["referral_detox"]) == ("3.0", "2")
    assert (total["outcome_referred"], total["referral_mat"]) == ("2", "1")
    weeks = rows[1:7]
    assert [(w["key"], w["first_day"], w["last_day"]) for w in weeks][1] == (
        "2026-W10",
        "2026-03-02",
        "2026-03-08",
    )
    assert [w["median_minutes_offer_to_accept"] for w in weeks] == [
        "3.0",
        "3.5",
        "",
        "2.0",
        "4.0",
        "",
    ]
    assert [(r["key"], r["label"]) for r in rows[7:10]] == [
        ("54011", "Cabell"),
        ("54039", "Kanawha"),
        ("", "no county found"),
    ]
    assert sum(int(r["eligible"]) for r in rows[7:10]) == TOTAL["eligible"]


async def test_a_county_scoped_key_sees_its_county_only(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await seed_march(session, source.id)
    cabell = await make_key(db, "supervisor", "county:54011")
    own = await client.get("/v1/reports/program", params={"month": MONTH}, headers=auth(cabell))
    assert own.status_code == 200, own.text
    assert own.json()["counties"] == [{"fips": "54011", "name": "Cabell"}]
    assert _figures(own.json()["total"]) == COUNTIES[0][2:]
    assert [c["name"] for c in own.json()["by_county"]] == ["Cabell"]
    assert_problem(
        await client.get("/v1/reports/program", params={"county": "Kanawha"}, headers=auth(cabell)),
        403,
        "Kanawha is outside this key's scope",
    )
    agency = await make_key(db, "supervisor", "agency:CHARLESTON PD")
    assert_problem(
        await client.get("/v1/reports/program", headers=auth(agency)), 403, "reports are by county"
    )


async def test_bad_input_is_a_precise_problem_never_a_500(
    client: httpx.AsyncClient, db: Database
) -> None:
    supervisor = await make_key(db, "supervisor")
    dispatcher = await make_key(db, "dispatcher")
    assert_problem(await client.get("/v1/reports/program"), 401)
    assert_problem(await client.get("/v1/reports/program", headers=auth(dispatcher)), 403)
    bad = [
        ({"month": "2026-13"}, "no month 13"),
        ({"month": "2026-3"}, "query.month"),
        ({"from": "2026-03-31", "to": "2026-03-01"}, "after 'to'"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "no such day"),
        ({"from": "2026-03-01"}, "from and to go together"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "at most 366 days"),
        ({"month": "2026-03", "quarter": "2026-Q1"}, "give one period"),
        ({"period": "week"}, "query.period"),
        ({"county": "Atlantis"}, "unknown county 'Atlantis'"),
        ({"year": "1899"}, "between 2000 and 2100"),
    ]
    for params, words in bad:
        problem = assert_problem(
            await client.get("/v1/reports/program", params=params, headers=auth(supervisor)),
            422,
            words,
        )
        assert problem["invalid-params"], params


async def test_the_current_month_by_default(client: httpx.AsyncClient, db: Database) -> None:
    supervisor = await make_key(db, "supervisor")
    response = await client.get("/v1/reports/program", headers=auth(supervisor))
    assert response.status_code == 200, response.text
    today = datetime.now(NEW_YORK).date()
    assert response.json()["period"]["first_day"] == today.replace(day=1).isoformat()
    assert response.json()["total"]["eligible"] == 0


# --- the page and its charts -----------------------------------------------------------------


async def _signed_in(client: httpx.AsyncClient, db: Database, scope: str | None = None) -> None:
    key = await make_key(db, "supervisor", scope)
    signed = await client.post("/supervisor/login", data={"key": key})
    assert signed.status_code == 303
    client.cookies.set("corespond_supervisor", session_token(signed), path="/supervisor")


def svgs(page: str) -> dict[str, ET.Element]:
    """Each chart of the page, parsed as the XML it must be, by id."""
    found = re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)
    charts = [ET.fromstring(s) for s in found]  # noqa: S314 - our own page
    return {c.get("id", ""): c for c in charts}


def bars(chart: ET.Element, kind: str = "rect") -> list[ET.Element]:
    return [
        e for e in chart.iter(f"{SVG}{kind}") if e.get("class", "").split()[0] in ("bar", "point")
    ]


async def test_the_page_draws_the_seeded_month(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    async with db.sessionmaker() as session, session.begin():
        await seed_march(session, source.id)
    assert (await client.get("/supervisor/reports")).headers["location"] == "/supervisor"
    await _signed_in(client, db)
    page = await client.get("/supervisor/reports", params={"period": "month", "month": MONTH})
    assert page.status_code == 200, page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    charts_ = svgs(page.text)
    assert set(charts_) == {
        "chart-weeks", "chart-counties", "chart-accept", "chart-outcomes", "chart-referrals",
        "chart-services",
    }  # fmt: skip
    for chart in charts_.values():  # accessible: a title and a description, named by the svg
        assert chart.get("role") == "img"
        title, desc = chart.find(f"{SVG}title"), chart.find(f"{SVG}desc")
        assert title is not None
        assert desc is not None
        assert chart.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"

    weekly = bars(charts_["chart-weeks"])
    assert len(weekly) == 6 * 4
    drawn = {
        (b.get("data-key"), b.get("data-series")): int(b.get("data-value", "")) for b in weekly
    }
    for first_day, eligible, requested, filled, unfilled, *_ in WEEKS:
        assert [drawn[(first_day, s)] for s in ("eligible", "requested", "filled", "unfilled")] == [
            eligible,
            requested,
            filled,
            unfilled,
        ]
    # Taller is more: the week of 2 March's three requests stand above the one of 1 March.
    height = {(b.get("data-key"), b.get("data-series")): float(b.get("height", "")) for b in weekly}
    one = height[("2026-03-01", "requested")]
    assert one > 0
    assert height[("2026-03-02", "requested")] == pytest.approx(3 * one, abs=0.2)
    assert height[("2026-03-09", "requested")] == 0

    by_county = bars(charts_["chart-counties"])
    assert len(by_county) == 3 * 4
    assert {
        (b.get("data-key"), b.get("data-series")): int(b.get("data-value", "")) for b in by_county
    } == {
        (fips or "none", series): row[2 + i]
        for fips, _, *rest in COUNTIES
        for row in [(fips, None, *rest)]
        for i, series in enumerate(("eligible", "requested", "filled", "unfilled"))
    }

    points = bars(charts_["chart-accept"], "circle")
    assert [(p.get("data-key"), float(p.get("data-value", ""))) for p in points] == [
        (first_day, median) for first_day, *_, median in WEEKS if median is not None
    ]
    outcomes = {
        b.get("data-key"): int(b.get("data-value", "")) for b in bars(charts_["chart-outcomes"])
    }
    assert outcomes == TOTAL["outcomes"]
    referrals = {
        b.get("data-key"): int(b.get("data-value", "")) for b in bars(charts_["chart-referrals"])
    }
    assert referrals == TOTAL["referrals"]

    # The same numbers in the table beside the chart, and the words for each figure.
    assert re.search(
        r'<tr data-key="2026-03-02"><th scope="row">Mar 2.8</th>'
        r"<td>2</td><td>3</td><td>2</td><td>1</td>",
        page.text,
    )
    assert "How these are counted" in page.text
    assert 'href="/supervisor/reports.csv?period=month&amp;month=2026-03"' in page.text

    download = await client.get(
        "/supervisor/reports.csv", params={"period": "month", "month": MONTH}
    )
    assert download.status_code == 200
    assert download.text.splitlines()[1].startswith(
        'total,,"March 2026, all counties",2026-03-01,2026-03-31,8,8,5,1,1,1,4,5,3.0,4,'
    )


async def test_the_page_says_what_is_wrong_and_the_download_answers_a_problem(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert_problem(await client.get("/supervisor/reports.csv"), 401, "sign in")
    await _signed_in(client, db, "county:54011")
    page = await client.get(
        "/supervisor/reports", params={"period": "dates", "from": "2026-03-31", "to": "2026-03-01"}
    )
    assert page.status_code == 422
    assert "after &#39;to&#39;" in page.text
    assert 'id="chooser"' in page.text  # with the chooser, to put it right
    outside = await client.get("/supervisor/reports", params={"county": "Kanawha"})
    assert outside.status_code == 403
    assert "outside this key" in outside.text
    assert_problem(
        await client.get("/supervisor/reports.csv", params={"county": "Nowhere"}),
        422,
        "unknown county",
    )
    own = await client.get("/supervisor/reports")
    assert own.status_code == 200
    assert "All counties" not in own.text  # a county-scoped key has one county to show
    assert '<option value="54011" selected>Cabell</option>' in own.text


async def test_the_supervisor_page_links_to_the_reports(
    client: httpx.AsyncClient, db: Database
) -> None:
    await _signed_in(client, db)
    assert 'href="/supervisor/reports"' in (await client.get("/supervisor")).text
    css = await client.get("/supervisor/reports/static/reports.css")
    assert "@media print" in css.text
    assert (await client.get("/supervisor/reports/static/nope.js")).status_code == 404
