"""docs/configuration.md, written from the Settings class: every variable, its type, its
default and what it does. ``corespond config-reference --check`` (and a test) fail when the
committed file and the class differ."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from corespond.config import DEVELOPMENT_DATA_DIR, PROJECT_ROOT, Settings

HEADER = """\
# Configuration reference

<!-- Generated from corespond.config.Settings by `corespond config-reference`; do not edit.
A test fails when this file and the class differ. -->

corespond reads its settings from environment variables and from one environment file: the
one named by `--env-file` on any command, else by `CORESPOND_ENV_FILE`, else `.env` in the
working directory. A variable set in the environment wins over the file. The service and
every command read the same file, so `corespond migrate` on a server sees what the service
sees (the systemd units set `CORESPOND_ENV_FILE=/etc/corespond/corespond.env`).

Values are read as pydantic reads them: `true`/`false` for switches, numbers as written, a
list as JSON (`["54", "39"]`) unless its row says comma-separated. A secret is never printed
or logged. In `production` the service refuses to start without `DATABASE_URL` and
`CORESPOND_SECRET_KEY`.

| variable | type | default | meaning |
|---|---|---|---|
"""

# Defaults that depend on where corespond is installed, said in words.
PLACE_DEFAULTS = {
    "data_dir": "`var/` of the checkout",
    "migrations_dir": "the migrations the package carries",
}
COMMA_SEPARATED = {"trusted_proxies"}


def variable_names(name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"CORESPOND_{name.upper()}"]


def type_text(annotation: Any, name: str) -> str:
    """A reader's name of a field's type."""
    origin = typing.get_origin(annotation)
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(a, name) for a in arguments)
    if origin is typing.Annotated:
        return type_text(arguments[0], name)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is tuple:
        kind = "comma-separated list" if name in COMMA_SEPARATED else "list"
        item = type_text(arguments[0], name) if arguments else "text"
        return f"{kind} of {item}"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type):
        return {
            "str": "text",
            "int": "integer",
            "float": "number",
            "bool": "true/false",
            "Path": "path",
            "IPv4Network": "IP or CIDR",
            "IPvAnyNetwork": "IP or CIDR",
        }.get(annotation.__name__, annotation.__name__)
    return str(annotation)


def default_text(name: str, field: FieldInfo) -> str:
    if name in PLACE_DEFAULTS:
        return PLACE_DEFAULTS[name]
    default = field.default
    if default is PydanticUndefined or default is None:
        return "unset"
    if isinstance(default, Path):
        if default.is_relative_to(PROJECT_ROOT):
            return f"`{default.relative_to(PROJECT_ROOT)}` of the checkout"
        return f"`{default}`"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, tuple):
        return "`" + ", ".join(str(d) for d in default) + "`" if default else "empty"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    return f"`{default}`"


def bounds_text(field: FieldInfo) -> str:
    words = []
    for rule in field.metadata:
        for attribute, say in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(rule, attribute, None)
            if value is not None:
                words.append(f"{say} {value:g}" if isinstance(value, float) else f"{say} {value}")
    return f" ({', '.join(words)})" if words else ""


def render() -> str:
    """The whole reference, in the order of the class."""
    rows = []
    for name, field in Settings.model_fields.items():
        variables = "<br>".join(f"`{v}`" for v in variable_names(name, field))
        described = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| {variables} | {type_text(field.annotation, name)}{bounds_text(field)} "
            f"| {default_text(name, field)} | {described} |"
        )
    footer = (
        "\nAn embedded PostgreSQL (no `DATABASE_URL`) is started only in development, from a "
        "checkout, with its data under "
        f"`{DEVELOPMENT_DATA_DIR.relative_to(PROJECT_ROOT)}/`; anywhere else the commands "
        "refuse and say to set `DATABASE_URL`.\n"
    )
    return HEADER + "\n".join(rows) + "\n" + footer
