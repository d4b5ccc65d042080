"""corespond roster: providers and the counties they serve, shifts from CSV or iCalendar."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import err, out, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings

app = typer.Typer(help="Rosters: providers, and importing shifts from CSV or iCalendar.")


@app.command("import")
def roster_import(
    file: Annotated[Path, typer.Argument(help="Shifts as .csv, or .ics (iCalendar).")],
    provider: Annotated[str, typer.Option(help="Provider whose roster this is.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, apply nothing.")
    ] = False,
    window_days: Annotated[
        int, typer.Option(min=1, max=400, help="Expand iCalendar recurrences this far ahead.")
    ] = 60,
) -> None:
    """Import a provider's shifts: a report per row; all rows are applied, or none."""
    from rich.progress import Progress

    from corespond.auth.service import Principal
    from corespond.geo.service import geography_for
    from corespond.roster.imports import default_window, run_import

    fmt: Literal["csv", "ics"] = "ics" if file.suffix.lower() in (".ics", ".ical") else "csv"
    try:
        text = file.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[red]error:[/red] {file}: {getattr(exc, 'strerror', None) or exc}")
        raise typer.Exit(2) from None
    operator = Principal(key_id=uuid.UUID(int=0), name="command line", role="admin", scope=None)

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"importing {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def work(session: AsyncSession, settings: Settings) -> Any:
            now = system_clock()
            return await run_import(
                session,
                operator,
                geography_for(tuple(settings.geo_states)).atlas,
                provider_id=provider,
                fmt=fmt,
                text=text,
                dry_run=dry_run,
                timezone=settings.program_timezone,
                now=now,
                window=default_window(now, days=window_days),
                progress=progress,
            )

        report = run_in_session(work, None if dry_run else ("roster.import", provider))
    for row in report.rows:
        if row.result == "error":
            out.print(f"{file}:{row.line}: {row.key}: {row.reason}", markup=False, highlight=False)
    counts = report.counts()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    verdict = (
        "dry run, nothing applied"
        if dry_run
        else "applied"
        if report.applied
        else "NOT applied (fix the errors above)"
    )
    out.print(f"{len(report.rows)} rows: {summary} - {verdict}", markup=False)
    for note in report.notes:
        out.print(note, markup=False, highlight=False)
    if report.errors:
        raise typer.Exit(1)


@app.command("add-provider")
def roster_add_provider(
    provider_id: Annotated[str, typer.Argument(help="Short id, e.g. recovery-point.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    county: Annotated[
        list[str] | None,
        typer.Option(help="County served, 'Kanawha' or 'Kanawha:backup' (repeatable)."),
    ] = None,
) -> None:
    """Register a provider and the counties it serves."""
    from corespond.geo.service import geography_for
    from corespond.roster.service import create_provider, set_counties

    async def work(session: AsyncSession, settings: Settings) -> str:
        await create_provider(session, provider_id, name)
        served = [(c.partition(":")[0], c.partition(":")[2] or "primary") for c in county or []]
        atlas = geography_for(tuple(settings.geo_states)).atlas
        rows = await set_counties(session, atlas, provider_id, served)
        return ", ".join(f"{r.county_fips} ({r.role})" for r in rows) or "no counties yet"

    out.print(
        f"provider {provider_id}: {run_in_session(work, ('provider.create', provider_id))}",
        markup=False,
    )
