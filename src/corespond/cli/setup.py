"""Setting an installation up: the schema, then the first admin key."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import (
    database_url,
    err,
    load_settings,
    out,
    program_name,
    run_in_session,
)
from corespond.clock import system_clock
from corespond.config import Settings
from corespond.db import resolve_migration_url


def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    from corespond.logging import configure_logging
    from corespond.migrate import upgrade_to_head

    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    upgrade_to_head(settings.migrations_dir, database_url(resolve_migration_url, settings))
    out.print("[green]database at head[/green]")


NEXT_STEPS = """\
Next steps (each command reads the same environment file; see deploy/README.md):
  1. The agencies whose calls come in, with their home counties:
       {cli} agencies add "CHARLESTON PD" --county Kanawha [--auto-request]
  2. The peer providers and the counties each serves:
       {cli} roster add-provider wvsl --name "West Virginia Sober Living" --county Kanawha
  3. Each CAD source (its signing secret is printed once; give it to the CAD's
     administrator out of band), and where its assignment events go back:
       {cli} sources add kanawha-911 --name "Kanawha Metro 911" --agency "CHARLESTON PD"
       {cli} sources set-callback kanawha-911 https://cad.example.org/corespond/events
  4. Keys for people and tools, each scoped to what they may see:
       {cli} keys create --role supervisor --name "J. Doe" [--scope county:Kanawha]
       {cli} keys create --role provider_admin --scope provider:wvsl --name "WVSL rosters"
  5. Peers and shifts, by the providers' admins (API) or from a file:
       {cli} roster import shifts.csv --provider wvsl --dry-run
  6. Check it: GET /readyz answers 200; `{cli} audit verify` prints the audit log's last
     hash: keep it outside the database."""


def init(
    name: Annotated[
        str, typer.Option(help="Who holds the first admin key.")
    ] = "first administrator",
) -> None:
    """First run, after `corespond migrate`: create the first admin key (printed once) and
    say what to set up next. Refused once a live admin key exists."""
    from corespond.auth.service import create_first_admin_key
    from corespond.migrate import head_revisions, revisions_on

    async def work(session: AsyncSession, settings: Settings) -> str:
        current = await revisions_on(await session.connection())
        heads = head_revisions(settings.migrations_dir)
        if current != heads:
            have = ", ".join(sorted(current)) or "an empty schema"
            err.print(
                f"[red]not migrated:[/red] the database has {have}, this corespond needs "
                f"{', '.join(sorted(heads))}: run `corespond migrate` first",
                highlight=False,
            )
            raise typer.Exit(2)
        _, token = await create_first_admin_key(session, name, system_clock())
        return token

    token = run_in_session(work, ("key.create_first_admin", name))
    out.print(f"admin key: {token}", highlight=False)
    out.print(
        "Keep it in a password manager: it is shown once, and stored only as a hash. "
        "Send it as 'Authorization: Bearer <key>'.\n",
        highlight=False,
    )
    out.print(NEXT_STEPS.format(cli=program_name()), markup=False, highlight=False)
