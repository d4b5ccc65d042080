"""The documents generated from the code and kept in the checkout: the OpenAPI document
and the configuration reference (make check fails when either is stale)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from corespond.cli.common import err, out
from corespond.config import IN_CHECKOUT, PROJECT_ROOT


def openapi(
    output: Annotated[Path, typer.Option(help="Where to write it.")] = (
        PROJECT_ROOT / "openapi" / "openapi.json" if IN_CHECKOUT else Path("openapi.json")
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs from what the app makes.")
    ] = False,
) -> None:
    """Write the OpenAPI document (or, with --check, verify it is current)."""
    from corespond.app import create_app

    document = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if check:
        current = output.read_text() if output.exists() else ""
        if current != document:
            err.print(f"[red]{output} is out of date[/red]; run `make openapi` and commit it")
            raise typer.Exit(1)
        out.print(f"{output} is current")
        return
    output.write_text(document)
    out.print(f"wrote {output}")


def config_reference(
    output: Annotated[Path, typer.Option(help="Where to write it.")] = (
        PROJECT_ROOT / "docs" / "configuration.md" if IN_CHECKOUT else Path("configuration.md")
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs from the settings class.")
    ] = False,
) -> None:
    """Write the configuration reference (docs/configuration.md) from the settings class,
    or, with --check, verify it is current."""
    from corespond.ops.configdoc import render

    document = render()
    if check:
        current = output.read_text() if output.exists() else ""
        if current != document:
            err.print(f"[red]{output} is out of date[/red]; run `make docs` and commit it")
            raise typer.Exit(1)
        out.print(f"{output} is current")
        return
    output.write_text(document)
    out.print(f"wrote {output}")
