"""The ``corespond`` command line: run the service, migrate, manage CAD sources and keys.

This module only assembles the commands; each lives with the others of its domain. The
order of registration below is the order ``corespond --help`` lists them in.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corespond.cli import (
    agencies,
    audit,
    cad,
    demo,
    documents,
    keys,
    ops,
    peers,
    roster,
    secret_key,
    serve,
    setup,
    sources,
    triage,
)
from corespond.config import ENV_FILE_VARIABLE, use_env_file

app = typer.Typer(
    help="corespond: route nonviolent substance-use 911 calls to on-duty peer recovery "
    "specialists.\n\nEvery command reads the service's environment file (--env-file, or "
    "CORESPOND_ENV_FILE; else .env here). With no DATABASE_URL set, in development from a "
    "checkout, commands start (or join) the embedded PostgreSQL under the checkout's "
    "var/pgdata; anywhere else they refuse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            envvar=ENV_FILE_VARIABLE,
            help="The environment file the service reads, e.g. /etc/corespond/corespond.env "
            "(default: $CORESPOND_ENV_FILE, else .env in this directory). Variables set in "
            "the environment win over the file.",
            show_default=False,
        ),
    ] = None,
) -> None:
    use_env_file(env_file)


app.command("migrate")(setup.migrate)
app.command("init")(setup.init)
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("demo")(demo.demo_command)
app.command("retention")(ops.retention)
app.command("dispatch-sink")(cad.dispatch_sink)
app.command("openapi")(documents.openapi)
app.command("export")(ops.export_command)
app.command("import")(ops.import_command)
app.command("config-reference")(documents.config_reference)

app.add_typer(sources.app, name="sources")
app.add_typer(keys.app, name="keys")
app.add_typer(cad.app, name="cad")
app.add_typer(triage.app, name="triage")
app.add_typer(agencies.app, name="agencies")
app.add_typer(roster.app, name="roster")
app.add_typer(peers.app, name="peers")
app.add_typer(audit.app, name="audit")
app.add_typer(secret_key.app, name="secret-key")


def main() -> None:
    """Entry point of the ``corespond`` script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
