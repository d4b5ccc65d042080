"""Rule files: validation with line numbers, overrides, and reloads that keep the last good."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corespond.triage.ruleset import RuleFileError, load_rules, parse_rule_file
from corespond.triage.service import RuleBook


def problems_of(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(RuleFileError) as caught:
        parse_rule_file(text, "local.yaml")
    return caught.value.problems


def test_yaml_syntax_error_names_its_line() -> None:
    [(line, why)] = problems_of('version: "1"\nrules:\n  - id: danger.x\n    phrases: [A, B\n')
    assert line == 5
    assert "not valid YAML" in why


def test_schema_errors_name_the_line_of_the_bad_field() -> None:
    text = (
        'version: "1"\n'
        "rules:\n"
        "  - id: danger.ok\n"
        "    label: fine\n"
        "  - id: Weapon\n"
        "    label: bad id\n"
        "    phrases: [GUN]\n"
        "    colour: red\n"
    )
    found = {why.split(":")[0]: line for line, why in problems_of(text)}
    assert found["rules.1.id"] == 5
    assert found["rules.1.colour"] == 8


def test_bad_phrase_and_duplicate_ids_are_refused() -> None:
    bad_phrase = 'version: "1"\nrules:\n  - id: danger.x\n    label: x\n    phrases: ["GUN!"]\n'
    [(line, why)] = problems_of(bad_phrase)
    assert line == 5
    assert "GUN!" in why
    twice = 'version: "1"\nrules:\n  - id: danger.x\n    label: x\n  - id: danger.x\n    label: y\n'
    [(line, why)] = problems_of(twice)
    assert line == 5
    assert "appears twice" in why


def test_no_and_yes_are_words_not_booleans() -> None:
    parsed = parse_rule_file(
        'version: "1"\nnegation:\n  before: [NO, YES, ON, OFF]\n', "local.yaml"
    )
    assert parsed.negation is not None
    assert parsed.negation.before == ["NO", "YES", "ON", "OFF"]


def test_override_naming_an_unknown_rule_is_refused(tmp_path: Path) -> None:
    override = tmp_path / "local.yaml"
    override.write_text('version: "l1"\ncodes:\n  default:\n    ZZ: [substance.unknown]\n')
    with pytest.raises(RuleFileError, match=r"unknown rule or kind 'substance\.unknown'"):
        load_rules(override)


def test_missing_override_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_packaged_rules_load_and_have_a_version() -> None:
    rules = load_rules()
    assert rules.version.startswith("2026.")
    assert {"danger.weapon", "substance.overdose", "risk.juvenile"} <= set(rules.rules)


def test_reload_swaps_good_rules_and_keeps_the_last_good_on_a_broken_file(
    tmp_path: Path,
) -> None:
    override = tmp_path / "local.yaml"
    override.write_text('version: "l1"\n')
    book = RuleBook(override)
    first = book.rules.version
    assert "+l1#" in first

    override.write_text('version: "l2"\n')
    os.utime(override, (1, 1))  # make the change visible whatever the clock resolution
    assert book.reload_if_changed()
    assert "+l2#" in book.rules.version

    override.write_text('version: "l3"\nrules: [\n')
    os.utime(override, (2, 2))
    assert not book.reload_if_changed()
    assert "+l2#" in book.rules.version  # still the last good rules
    assert not book.reload_if_changed()  # and it does not retry an unchanged broken file


def test_broken_override_refuses_to_start(tmp_path: Path) -> None:
    override = tmp_path / "local.yaml"
    override.write_text("rules: 3\n")
    with pytest.raises(RuleFileError):
        RuleBook(override)


def test_duplicate_keys_are_refused_with_their_line() -> None:
    text = (
        'version: "1"\ncodes:\n  default:\n    OD: [substance.overdose]\n    OD: [danger.weapon]\n'
    )
    [(line, why)] = problems_of(text)
    assert line == 5
    assert "duplicate key 'OD'" in why


def test_a_prefix_code_key_needs_two_characters() -> None:
    problems = problems_of('version: "1"\ncodes:\n  default:\n    "*": [substance.overdose]\n')
    assert any("at least 2 characters" in why for _, why in problems)


def test_override_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    override = tmp_path / "local.yaml"
    override.write_bytes(b'version: "\xff\xfe"\n')
    with pytest.raises(RuleFileError, match="not UTF-8"):
        load_rules(override)


def test_an_agency_override_can_add_danger_but_never_remove_it(tmp_path: Path) -> None:
    from corespond.triage.classifier import TriageInput, classify

    override = tmp_path / "local.yaml"
    override.write_text(
        'version: "l1"\ncodes:\n  by_agency:\n    LOGAN COUNTY SHERIFF:\n'
        "      WEAPON: [substance.alcohol]\n"
        '      "Disturb & Intox": [substance.alcohol, kind.intoxication]\n'
    )
    rules = load_rules(override)
    weapon = TriageInput(agency="Logan County Sheriff", call_type="WEAPON")
    assert classify(weapon, rules).decision == "ineligible"
    keyed = TriageInput(
        agency="LOGAN COUNTY SHERIFF", call_type="DISTURB AND INTOX", narrative="SUBJ DRUNK"
    )
    assert classify(keyed, rules).decision == "eligible"
