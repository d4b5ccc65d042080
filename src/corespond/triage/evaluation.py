"""Measuring the rules against labelled calls: confusion matrix, precision and recall.

A labelled file is JSON Lines, one call a line:
``{"id", "split", "label", "danger", "category", "call": {...}, "note"}`` (see
``tests/data/README.md``). ``danger`` marks calls that carry a danger signal; the safety
target is that none of them is ever classified ``eligible``.
"""

from __future__ import annotations

import json
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

    def targets(self) -> list[tuple[str, bool, str]]:
        """(target, met, figure) for the product's triage targets."""

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1%}"

        recall, kept, precision = (
            self.recall("eligible"),
            self.eligible_kept(),
            self.precision("eligible"),
        )
        return [
            (
                "danger calls classified eligible = 0",
                not self.danger_eligible,
                str(len(self.danger_eligible)),
            ),
            ("eligible recall >= 95%", recall is not None and recall >= 0.95, pct(recall)),
            (
                "eligible kept (eligible or review) >= 99%",
                kept is not None and kept >= 0.99,
                pct(kept),
            ),
            (
                "precision of eligible >= 97%",
                precision is not None and precision >= 0.97,
                pct(precision),
            ),
        ]


def evaluate(calls: Iterable[LabelledCall], rules: RuleSet) -> Report:
    report = Report()
    for call in calls:
        decision = classify(call.inputs, rules)
        report.matrix[call.label][decision.decision] += 1
        if call.danger and decision.decision == "eligible":
            report.danger_eligible.append(call.id)
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
    for target, met, figure in report.targets():
        lines.append(f"{'ok  ' if met else 'MISS'} {target}: {figure}")
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
