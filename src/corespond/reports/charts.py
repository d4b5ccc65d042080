"""Charts drawn on the server as SVG: grouped bars, horizontal bars and a line of points.

Pure functions of numbers to markup (escaped here, safe to put in a page as it is). Each chart
is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``; each bar or point carries its
value (``data-value``), what it is of (``data-key``, ``data-series``) and a ``<title>`` a
pointer or screen reader can read. Colours are the Okabe-Ito set (told apart with colour-blind
eyes) and every series is named in a legend drawn with the chart; the page puts the same
numbers in a table beside each chart. Nothing is scripted and nothing loads from elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 560.0
HEIGHT = 280.0
FONT = 12.0


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


SERIES = {
    "eligible": Series("eligible", "eligible", "#0072B2"),
    "requested": Series("requested", "requested", "#E69F00"),
    "filled": Series("filled", "filled", "#009E73"),
    "unfilled": Series("unfilled", "unfilled", "#D55E00"),
}
OUTCOME_COLOUR = "#56B4E9"
REFERRAL_COLOUR = "#CC79A7"
LINE_COLOUR = "#0072B2"


@dataclass(frozen=True)
class Category:
    key: str  # stable: a week's first day, a county's FIPS, a kind of outcome
    label: str
    short: str | None = None  # under the axis, where the label would be long ("Mar 2")

    @property
    def axis(self) -> str:
        return self.short or self.label


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _tag(name: str, attrs: dict[str, object], *children: Markup | str) -> Markup:
    rendered = "".join(
        f' {key.replace("_", "-")}="{escape(_n(value) if isinstance(value, float) else value)}"'
        for key, value in attrs.items()
        if value is not None
    )
    inner = Markup("").join(escape(c) for c in children)
    return Markup(f"<{name}{rendered}>{inner}</{name}>")  # noqa: S704 - every part escaped


def scale(top: float, *, whole: bool = True) -> tuple[float, float]:
    """A round axis maximum at or above ``top`` and its tick step (about four ticks)."""
    if top <= 0:
        return 1.0, 1.0
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, float(math.ceil(step)))
    return math.ceil(top / step - 1e-9) * step, step


def _frame(chart_id: str, title: str, desc: str, height: float, body: Sequence[Markup]) -> Markup:
    return _tag(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "id": chart_id,
            "class": "chart",
            "viewBox": f"0 0 {_n(WIDTH)} {_n(height)}",
            "role": "img",
            "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
            "font_size": FONT,
            "font_family": "system-ui, sans-serif",
        },
        _tag("title", {"id": f"{chart_id}-title"}, title),
        _tag("desc", {"id": f"{chart_id}-desc"}, desc),
        *body,
    )


def _y_axis(
    left: float, right: float, top: float, bottom: float, highest: float, step: float, unit: str
) -> list[Markup]:
    marks = []
    ticks = round(highest / step)
    for i in range(ticks + 1):
        value = i * step
        y = bottom - (bottom - top) * value / highest
        marks.append(
            _tag(
                "line",
                {"class": "grid", "x1": left, "y1": y, "x2": right, "y2": y, "stroke": "#ddd"},
            )
        )
        marks.append(
            _tag(
                "text",
                {"class": "tick", "x": left - 6, "y": y + FONT / 3, "text_anchor": "end"},
                _n(value),
            )
        )
    if unit:
        marks.append(_tag("text", {"class": "unit", "x": 4, "y": top - 4}, unit))
    return marks


def _x_labels(
    categories: Sequence[Category], left: float, slot: float, bottom: float
) -> list[Markup]:
    """A label under each group; with many groups every n-th, turned to fit."""
    turned = len(categories) > 8
    every = max(1, math.ceil(len(categories) / 27))
    out = []
    for i, category in enumerate(categories):
        if i % every:
            continue
        x = left + slot * (i + 0.5)
        y = bottom + FONT + 4
        attrs: dict[str, object] = {"class": "label", "x": x, "y": y, "text_anchor": "middle"}
        if turned:
            attrs |= {"text_anchor": "end", "transform": f"rotate(-40 {_n(x)} {_n(y)})"}
        out.append(_tag("text", attrs, category.axis if turned else category.label))
    return out


def _legend(series: Sequence[Series], right: float, y: float) -> list[Markup]:
    out = []
    x = right
    for s in reversed(series):
        x -= len(s.label) * FONT * 0.6 + 4
        out.append(_tag("text", {"class": "key-label", "x": x, "y": y + FONT - 1}, s.label))
        x -= FONT + 4
        out.append(
            _tag(
                "rect",
                {"class": "key", "x": x, "y": y, "width": FONT, "height": FONT, "fill": s.colour},
            )
        )
        x -= 10
    return out


def grouped_bars(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[Category],
    series: Sequence[Series],
    values: Sequence[Sequence[int]],
    unit: str = "calls",
) -> Markup:
    """For each category a group of bars, one per series: ``values[category][series]``."""
    turned = len(categories) > 8
    left, right, top = 44.0, WIDTH - 8, 30.0
    bottom = HEIGHT - (72.0 if turned else 26.0)
    highest, step = scale(max((v for row in values for v in row), default=0))
    slot = (right - left) / max(1, len(categories))
    width = slot * 0.8 / max(1, len(series))
    body = _y_axis(left, right, top, bottom, highest, step, unit)
    body += _legend(series, right, 4.0)
    for i, category in enumerate(categories):
        for j, s in enumerate(series):
            value = values[i][j]
            height = (bottom - top) * value / highest
            body.append(
                _tag(
                    "rect",
                    {
                        "class": f"bar s-{s.key}",
                        "x": left + slot * (i + 0.1) + width * j,
                        "y": bottom - height,
                        "width": width,
                        "height": height,
                        "fill": s.colour,
                        "data_key": category.key,
                        "data_series": s.key,
                        "data_value": str(value),
                    },
                    _tag("title", {}, f"{category.label}: {value} {s.label}"),
                )
            )
    body.append(
        _tag("line", {"x1": left, "y1": bottom, "x2": right, "y2": bottom, "stroke": "#333"})
    )
    body += _x_labels(categories, left, slot, bottom)
    return _frame(chart_id, title, desc, HEIGHT, body)


def horizontal_bars(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[Category],
    values: Sequence[int],
    colour: str,
) -> Markup:
    """One bar per category, its label on the left and its number at its end."""
    row = 26.0
    left, right, top = 150.0, WIDTH - 36, 8.0
    height = top + row * len(categories) + 8
    highest, _ = scale(max(values, default=0))
    body: list[Markup] = []
    for i, (category, value) in enumerate(zip(categories, values, strict=True)):
        y = top + row * i
        length = (right - left) * value / highest
        body.append(
            _tag(
                "text",
                {
                    "class": "label",
                    "x": left - 8,
                    "y": y + row / 2 + FONT / 3,
                    "text_anchor": "end",
                },
                category.label,
            )
        )
        body.append(
            _tag(
                "rect",
                {
                    "class": "bar",
                    "x": left,
                    "y": y + 4,
                    "width": length,
                    "height": row - 8,
                    "fill": colour,
                    "data_key": category.key,
                    "data_value": str(value),
                },
                _tag("title", {}, f"{category.label}: {value}"),
            )
        )
        body.append(
            _tag(
                "text",
                {"class": "value", "x": left + length + 6, "y": y + row / 2 + FONT / 3},
                str(value),
            )
        )
    body.append(
        _tag("line", {"x1": left, "y1": top, "x2": left, "y2": height - 8, "stroke": "#333"})
    )
    return _frame(chart_id, title, desc, height, body)


def points(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[Category],
    values: Sequence[float | None],
    notes: Sequence[str],
    unit: str = "minutes",
) -> Markup:
    """A point per category that has a value, joined by a line across neighbours (a
    category without a value breaks the line: nothing is drawn for it)."""
    turned = len(categories) > 8
    left, right, top = 44.0, WIDTH - 8, 30.0
    bottom = HEIGHT - (72.0 if turned else 26.0)
    highest, step = scale(max((v for v in values if v is not None), default=0), whole=False)
    slot = (right - left) / max(1, len(categories))
    body = _y_axis(left, right, top, bottom, highest, step, unit)
    dots: list[Markup] = []
    runs: list[list[tuple[float, float]]] = [[]]
    for i, (category, value, note) in enumerate(zip(categories, values, notes, strict=True)):
        if value is None:
            runs.append([])
            continue
        x = left + slot * (i + 0.5)
        y = bottom - (bottom - top) * value / highest
        runs[-1].append((x, y))
        dots.append(
            _tag(
                "circle",
                {
                    "class": "point",
                    "cx": x,
                    "cy": y,
                    "r": 4.0,
                    "fill": LINE_COLOUR,
                    "data_key": category.key,
                    "data_value": f"{value:g}",
                },
                _tag("title", {}, f"{category.label}: {note}"),
            )
        )
    for run in runs:
        if len(run) > 1:
            d = "M" + " L".join(f"{_n(x)},{_n(y)}" for x, y in run)
            body.append(
                _tag(
                    "path",
                    {
                        "class": "line",
                        "d": d,
                        "fill": "none",
                        "stroke": LINE_COLOUR,
                        "stroke_width": 2.0,
                    },
                )
            )
    body += dots
    body.append(
        _tag("line", {"x1": left, "y1": bottom, "x2": right, "y2": bottom, "stroke": "#333"})
    )
    body += _x_labels(categories, left, slot, bottom)
    return _frame(chart_id, title, desc, HEIGHT, body)
