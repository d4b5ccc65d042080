"""corespond triage: evaluate the rules on labelled calls, check a rule file, try a call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from corespond.cli.common import err, load_settings, out
from corespond.triage.ruleset import RuleSet

app = typer.Typer(
    help="Triage rules: evaluate them on labelled calls, check a rule file, try a call."
)


RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules", help="Override file on top of the packaged rules (default: from settings)."
    ),
]


def _rules(override: Path | None) -> RuleSet:
    from corespond.triage.ruleset import RuleFileError, load_rules

    try:
        return load_rules(override or load_settings().triage_rules_file)
    except RuleFileError as exc:
        err.print(f"[red]invalid rule file[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


@app.command("eval")
def triage_eval(
    file: Annotated[Path, typer.Argument(help="Labelled calls, JSON Lines (tests/data/...).")],
    split: Annotated[str, typer.Option(help="Which split to score: dev, holdout or all.")] = "all",
    rules: RulesOption = None,
    show_errors: Annotated[
        bool, typer.Option("--show-errors", help="List every misclassified call.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a target is missed.")
    ] = False,
    without_model: Annotated[
        bool,
        typer.Option(
            "--without-model", help="Score the rules alone, without the learned second opinion."
        ),
    ] = False,
) -> None:
    """Confusion matrix, per-class precision/recall and Wilson intervals of triage on a
    labelled file; every danger call decided eligible is printed in full."""
    from corespond.triage.evaluation import (
        LabelFileError,
        evaluate,
        format_report,
        read_labelled,
    )

    ruleset = _rules(rules)
    if without_model:
        import dataclasses

        ruleset = dataclasses.replace(ruleset, second_opinion=None)
    try:
        calls = read_labelled(file)
    except (LabelFileError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    chosen = [c for c in calls if split == "all" or c.split == split]
    if not chosen:
        err.print(f"[red]error:[/red] no calls in split {split!r}")
        raise typer.Exit(2)
    report = evaluate(chosen, ruleset)
    out.print(
        format_report(report, f"{file.name} [{split}] rules {ruleset.version}"),
        highlight=False,
        markup=False,
    )
    dangerous = [e for e in report.errors if e[0].danger and e[1] == "eligible"]
    if dangerous:
        out.print("\ndanger calls decided eligible (in full):", markup=False)
        for call, _, summary in dangerous:
            inputs = call.inputs
            out.print(
                f"  {call.id} [{call.category}]\n"
                f"    call type:   {inputs.call_type} / {inputs.call_type_description}\n"
                f"    narrative:   {inputs.narrative}\n"
                f"    hazards:     {list(inputs.hazards)}\n"
                f"    decided:     {summary}",
                markup=False,
                highlight=False,
            )
    if show_errors and report.errors:
        out.print("\nmisclassified:", markup=False)
        for call, predicted, summary in report.errors:
            danger = " DANGER" if call.danger and predicted == "eligible" else ""
            out.print(
                f"  {call.id} [{call.category}] {call.label} -> {summary}{danger}",
                markup=False,
                highlight=False,
            )
    if strict and not all(met for _, met, _ in report.targets()):
        raise typer.Exit(1)


@app.command("real-call-types")
def triage_real_call_types(
    file: Annotated[Path, typer.Argument(help="real_call_types.json (call-type strings).")],
    rules: RulesOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on any violation.")] = False,
) -> None:
    """Classify real call-type strings alone and report any that break the two rules."""
    from corespond.triage.evaluation import check_real_call_types

    ruleset = _rules(rules)
    try:
        document = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {file}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    check = check_real_call_types(document, ruleset)
    never_ok = check.never_eligible_total - len(check.never_eligible_violations)
    substance_ok = check.substance_total - len(check.substance_violations)
    out.print(f"{file.name}, rules {ruleset.version}", markup=False)
    out.print(
        f"never_eligible not eligible:        {never_ok}/{check.never_eligible_total}",
        markup=False,
    )
    for call_type in check.never_eligible_violations:
        out.print(f"  came out eligible: {call_type}", markup=False, highlight=False)
    out.print(
        f"substance_not_ineligible kept:      {substance_ok}/{check.substance_total}",
        markup=False,
    )
    for call_type in check.substance_violations:
        out.print(f"  came out ineligible: {call_type}", markup=False, highlight=False)
    if strict and (check.never_eligible_violations or check.substance_violations):
        raise typer.Exit(1)


@app.command("check")
def triage_check(
    file: Annotated[Path, typer.Argument(help="A rule override file to validate.")],
) -> None:
    """Validate a rule file (as an override of the packaged rules) before deploying it."""
    ruleset = _rules(file)
    out.print(f"{file}: valid, rules version {ruleset.version}, {len(ruleset.rules)} rules")


@app.command("classify")
def triage_classify(
    call_type: Annotated[str | None, typer.Option(help="CAD call type or code.")] = None,
    description: Annotated[str | None, typer.Option(help="Call type description.")] = None,
    narrative: Annotated[str | None, typer.Option(help="Narrative text.")] = None,
    hazard: Annotated[
        list[str] | None, typer.Option("--hazard", help="A hazard flag (repeatable).")
    ] = None,
    agency: Annotated[str | None, typer.Option(help="Agency (for its code mappings).")] = None,
    source: Annotated[str | None, typer.Option(help="CAD source id (its code mappings).")] = None,
    rules: RulesOption = None,
) -> None:
    """Classify one call from the command line and show why."""
    from corespond.triage.classifier import TriageInput, classify

    decision = classify(
        TriageInput(
            source=source,
            agency=agency,
            call_type=call_type,
            call_type_description=description,
            narrative=narrative,
            hazards=tuple(hazard or ()),
        ),
        _rules(rules),
    )
    out.print(decision.summary, markup=False, highlight=False)
    for reason in decision.reasons:
        out.print(f"  {reason.kind:<9} {reason.rule:<28} {reason.detail}", markup=False)
    out.print(f"rules {decision.rules_version}", markup=False)
