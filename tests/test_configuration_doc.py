"""docs/configuration.md is what the settings class says, and says something of each."""

from __future__ import annotations

from typer.testing import CliRunner

from corespond.cli import app
from corespond.config import PROJECT_ROOT, Settings
from corespond.ops.configdoc import render, variable_names

REFERENCE = PROJECT_ROOT / "docs" / "configuration.md"


def test_the_committed_reference_is_the_settings_class() -> None:
    assert REFERENCE.read_text() == render(), "run `make docs` and commit docs/configuration.md"


def test_every_setting_is_described_and_listed() -> None:
    text = render()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} needs a description (it is the reference)"
        for variable in variable_names(name, field):
            assert f"`{variable}`" in text


def test_the_reference_names_no_machine_path() -> None:
    assert str(PROJECT_ROOT) not in render()


def test_check_mode_fails_on_drift(tmp_path: object) -> None:
    from pathlib import Path

    stale = Path(str(tmp_path)) / "configuration.md"
    stale.write_text("# old\n")
    result = CliRunner().invoke(app, ["config-reference", "--output", str(stale), "--check"])
    assert result.exit_code == 1
    assert "out of date" in result.output
    result = CliRunner().invoke(app, ["config-reference", "--check"])
    assert result.exit_code == 0, result.output
