"""Measuring the rules against labelled calls: confusion matrix, precision and recall.

A labelled file is JSON Lines, one call a line:
``{"id", "split", "label", "danger", "category", "call": {...}, "note"}`` (see
``tests/data/README.md``). ``danger`` marks calls that carry a danger signal; the safety
target is that none of them is ever classified ``eligible``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corespond.triage.classifier import TriageInput, classify
from corespond.triage.ruleset import RuleSet

LABELS = ("eligible", "review", "ineligible")


@dataclass(frozen=True)
class LabelledCall:
    id: str
    split: str
    label: str
    danger: bool
    category: str
    inputs: TriageInput


class LabelFileError(ValueError):
    """A labelled file that cannot be read, naming the line."""


def read_labelled(path: Path) -> list[LabelledCall]:
    """Read a labelled JSON Lines file; ``LabelFileError`` names the first bad line."""
    calls = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            call = row["call"]
            label = row["label"]
            if label not in LABELS:
                raise ValueError(f"label must be one of {', '.join(LABELS)}")
            calls.append(
                LabelledCall(
                    id=str(row.get("id", number)),
                    split=str(row.get("split", "dev")),
                    label=label,
                    danger=bool(row.get("danger", False)),
                    category=str(row.get("category", "")),
                    inputs=TriageInput(
                        source=call.get("source"),
                        agency=call.get("agency"),
                        call_type=call.get("call_type"),
                        call_type_description=call.get("call_type_description"),
                        narrative=call.get("narrative"),
                        hazards=tuple(call.get("hazards") or ()),
                    ),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LabelFileError(f"{path}:{number}: {exc}") from exc
    return calls


@dataclass
class Report:
    """Confusion matrix (label -> predicted -> count) and the misclassified calls."""

    matrix: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in LABELS})
    danger_eligible: list[str] = field(default_factory=list)
    errors: list[tuple[LabelledCall, str, str]] = field(default_factory=list)
    danger_total: int = 0
    # Every danger call decided eligible, in full: (call, the decision's summary).
    danger_cases: list[tuple[LabelledCall, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(row.values()) for row in self.matrix.values())

    def precision(self, label: str) -> float | None:
        predicted = sum(self.matrix[actual][label] for actual in LABELS)
        return self.matrix[label][label] / predicted if predicted else None

    def recall(self, label: str) -> float | None:
        actual = sum(self.matrix[label].values())
        return self.matrix[label][label] / actual if actual else None

    def eligible_kept(self) -> float | None:
        """Share of eligible calls classified eligible or review (not lost)."""
        row = self.matrix["eligible"]
        total = sum(row.values())
        return (row["eligible"] + row["review"]) / total if total else None

    def counts(self) -> dict[str, tuple[int, int]]:
        """The four target figures as (successes, trials)."""
        row = self.matrix["eligible"]
        actual = sum(row.values())
        predicted = sum(self.matrix[a]["eligible"] for a in LABELS)
        return {
            "danger": (len(self.danger_eligible), self.danger_total),
            "recall": (row["eligible"], actual),
            "kept": (row["eligible"] + row["review"], actual),
            "precision": (self.matrix["eligible"]["eligible"], predicted),
        }

    def targets(self) -> list[tuple[str, bool, str]]:
        """(target, met, figure with its 95 % Wilson interval) for the triage targets."""
        counts = self.counts()

        def met(name: str, floor: float) -> bool:
            hits, trials = counts[name]
            return trials > 0 and hits / trials >= floor

        danger, danger_trials = counts["danger"]
        return [
            (
                "danger calls classified eligible = 0",
                danger == 0,
                f"{danger} of {danger_trials} {interval(danger, danger_trials)}",
            ),
            ("eligible recall >= 0.90", met("recall", 0.90), figure(*counts["recall"])),
            (
                "eligible kept (eligible or review) >= 0.97",
                met("kept", 0.97),
                figure(*counts["kept"]),
            ),
            ("precision of eligible >= 0.97", met("precision", 0.97), figure(*counts["precision"])),
        ]


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion: 0 of 80 is not 0 %."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def interval(successes: int, trials: int) -> str:
    low, high = wilson(successes, trials)
    return f"[{low:.3f}, {high:.3f}]"


def figure(successes: int, trials: int) -> str:
    if trials == 0:
        return "n/a"
    return f"{successes / trials:.3f} ({successes}/{trials}) {interval(successes, trials)}"


def evaluate(calls: Iterable[LabelledCall], rules: RuleSet) -> Report:
    report = Report()
    for call in calls:
        decision = classify(call.inputs, rules)
        report.matrix[call.label][decision.decision] += 1
        report.danger_total += call.danger
        if call.danger and decision.decision == "eligible":
            report.danger_eligible.append(call.id)
            report.danger_cases.append((call, decision.summary))
        if decision.decision != call.label:
            report.errors.append((call, decision.decision, decision.summary))
    return report


def format_report(report: Report, title: str) -> str:
    """The report as text: matrix, per-class precision/recall, targets."""
    width = max(len(x) for x in LABELS) + 2
    lines = [f"{title}: {report.total} calls", ""]
    lines.append("actual \\ predicted".ljust(20) + "".join(x.rjust(width) for x in LABELS))
    for actual in LABELS:
        cells = "".join(str(report.matrix[actual][p]).rjust(width) for p in LABELS)
        lines.append(actual.ljust(20) + cells)
    lines.append("")
    lines.append("class".ljust(20) + "precision".rjust(12) + "recall".rjust(12))
    for label in LABELS:
        p, r = report.precision(label), report.recall(label)
        lines.append(
            label.ljust(20)
            + ("n/a" if p is None else f"{p:.1%}").rjust(12)
            + ("n/a" if r is None else f"{r:.1%}").rjust(12)
        )
    lines.append("")
    for target, met, shown in report.targets():
        lines.append(f"{'ok  ' if met else 'MISS'} {target}: {shown}")
    lines.append("(figures with their 95 % Wilson interval)")
    for call, summary in report.danger_cases:
        inputs = call.inputs
        lines.extend(
            [
                "",
                f"DANGER DECIDED ELIGIBLE: {call.id} ({call.category})",
                f"  call type:   {inputs.call_type or ''} / {inputs.call_type_description or ''}",
                f"  narrative:   {inputs.narrative or ''}",
                f"  hazards:     {', '.join(inputs.hazards) or '-'}",
                f"  decided:     {summary}",
            ]
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class CallTypeCheck:
    """Real call-type strings checked against the two rules of the reference file."""

    never_eligible_total: int
    never_eligible_violations: list[str]
    substance_total: int
    substance_violations: list[str]


def check_real_call_types(document: dict[str, Any], rules: RuleSet) -> CallTypeCheck:
    """Classify each real call type alone: never_eligible must not come out eligible,
    substance_not_ineligible must not come out ineligible."""

    def decide(row: dict[str, Any]) -> str:
        return classify(TriageInput(call_type=row["call_type"]), rules).decision

    never: Sequence[dict[str, Any]] = document.get("never_eligible", [])
    substance: Sequence[dict[str, Any]] = document.get("substance_not_ineligible", [])
    return CallTypeCheck(
        never_eligible_total=len(never),
        never_eligible_violations=[r["call_type"] for r in never if decide(r) == "eligible"],
        substance_total=len(substance),
        substance_violations=[r["call_type"] for r in substance if decide(r) == "ineligible"],
    )
