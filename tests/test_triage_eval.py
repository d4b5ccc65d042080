"""The rules against the labelled set and real call types: the product's triage targets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corespond.cli import app
from corespond.config import PROJECT_ROOT
from corespond.triage.classifier import TriageInput, classify
from corespond.triage.evaluation import check_real_call_types, evaluate, read_labelled
from corespond.triage.ruleset import load_rules

LABELLED = PROJECT_ROOT / "tests" / "data" / "triage_calls.jsonl"
FRESH = PROJECT_ROOT / "tests" / "data" / "triage_calls_fresh.jsonl"
SHARED = PROJECT_ROOT.parent / "shared" / "data"
# The rules alone: what the learned second opinion adds is tested in test_triage_model.py.
RULES = dataclasses.replace(load_rules(), second_opinion=None)


def test_labelled_set_is_large_and_has_a_holdout() -> None:
    calls = read_labelled(LABELLED)
    assert len(calls) >= 300
    assert {c.split for c in calls} == {"dev", "holdout"}
    assert sum(c.danger for c in calls) >= 90


@pytest.mark.parametrize("path", [LABELLED, FRESH], ids=["labelled", "fresh"])
def test_no_danger_call_is_ever_classified_eligible(path: Path) -> None:
    report = evaluate(read_labelled(path), RULES)
    assert report.danger_eligible == []


def test_development_split_meets_the_safety_and_precision_targets() -> None:
    """Danger never eligible, precision and "kept" at target. Recall is what fail-closed
    triage gives up (a call with a word it cannot read goes to a dispatcher): it is held at
    its measured floor here so that it cannot silently fall further."""
    dev = [c for c in read_labelled(LABELLED) if c.split == "dev"]
    report = evaluate(dev, RULES)
    missed = [target for target, met, _ in report.targets() if not met]
    assert missed in ([], ["eligible recall >= 0.90"])
    recall = report.recall("eligible")
    assert recall is not None
    # 0.85 until the fourth attack: "HE WILL GET HIT" (by traffic, or by someone?) now goes
    # to review, and one dev call with it.
    assert recall >= 0.84


@pytest.mark.skipif(not (SHARED / "real_call_types.json").exists(), reason="shared data absent")
def test_real_call_types_never_eligible_and_substance_kept() -> None:
    document = json.loads((SHARED / "real_call_types.json").read_text())
    check = check_real_call_types(document, RULES)
    assert check.never_eligible_violations == []
    assert check.substance_violations == []
    assert check.never_eligible_total > 1000


@pytest.mark.skipif(not (SHARED / "apco_incident_types.json").exists(), reason="shared data absent")
def test_apco_codes_alone_are_decided_as_the_policy_says() -> None:
    codes = json.loads((SHARED / "apco_incident_types.json").read_text())
    decisions = {code: classify(TriageInput(call_type=code), RULES).decision for code in codes}
    # A call type alone never makes a call eligible: substance use must be stated.
    assert [c for c, d in decisions.items() if d == "eligible"] == []
    assert decisions["OD"] == decisions["INTOX"] == decisions["DRUGS"] == "review"
    assert decisions["SUICTHRT"] == "ineligible"  # a risk, but no substance named
    for danger in ("WEAPON", "SHOOT", "STABBING", "ROBBERY", "DUI", "MVA", "HOSTAGE", "DVA"):
        assert decisions[danger] == "ineligible", danger
    stated = classify(TriageInput(call_type="OD", narrative="REVIVED WITH NARCAN, ALERT"), RULES)
    assert stated.decision == "eligible"
    with_overdose = classify(
        TriageInput(call_type="SUICTHRT", narrative="TOOK A HANDFUL OF PILLS"), RULES
    )
    assert with_overdose.decision == "review"


def test_eval_command_prints_matrix_and_targets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["triage", "eval", str(LABELLED), "--split", "dev"])
    assert result.exit_code == 0, result.output
    assert "actual \\ predicted" in result.output
    assert "precision" in result.output
    assert "ok   danger calls classified eligible = 0: 0" in result.output


def test_eval_command_names_the_bad_line_of_a_labelled_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "eligible", "call": {}}\n{"label": "maybe", "call": {}}\n')
    result = CliRunner().invoke(app, ["triage", "eval", str(bad)])
    assert result.exit_code == 2
    assert "bad.jsonl:2" in result.output


def test_check_command_reports_a_broken_rule_file_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "local.yaml"
    broken.write_text('version: "x"\nrules:\n  - id: danger.bad\n    label: x\n    phrases: [A!]\n')
    result = CliRunner().invoke(app, ["triage", "check", str(broken)])
    assert result.exit_code == 2
    assert "local.yaml:5" in result.output


def test_wilson_interval_of_zero_is_not_zero() -> None:
    from corespond.triage.evaluation import wilson

    low, high = wilson(0, 80)
    assert low == 0.0
    assert 0.04 < high < 0.05
    low, high = wilson(90, 100)
    assert 0.82 < low < 0.83
    assert 0.94 < high < 0.95


def test_eval_prints_every_danger_call_decided_eligible_in_full(tmp_path: Path) -> None:
    labelled = tmp_path / "one.jsonl"
    row = {
        "id": "x-1",
        "label": "ineligible",
        "danger": True,
        "category": "mislabelled_on_purpose",
        "call": {"call_type": "OD", "narrative": "SUBJ REVIVED WITH NARCAN, ALERT"},
    }
    labelled.write_text(json.dumps(row) + "\n")
    result = CliRunner().invoke(app, ["triage", "eval", str(labelled), "--strict"])
    assert result.exit_code == 1
    assert "danger calls classified eligible = 0: 1 of 1 [0.207, 1.000]" in result.output
    assert "DANGER DECIDED ELIGIBLE: x-1 (mislabelled_on_purpose)" in result.output
    assert "narrative:   SUBJ REVIVED WITH NARCAN, ALERT" in result.output
