"""Operating an installation: the retention purge, and moving the configuration to another
one (export, import)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import DryRunDone, err, out, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings
from corespond.crypto import secret_box


def retention(
    dry_run: Annotated[
        bool, typer.Option(help="Count what would be purged; change nothing.")
    ] = False,
    days: Annotated[
        float | None, typer.Option(min=0.01, help="Retention in days (default from settings).")
    ] = None,
    person_days: Annotated[
        float | None,
        typer.Option(
            min=30, help="People's retention in days (default CORESPOND_PERSON_RETENTION_DAYS)."
        ),
    ] = None,
) -> None:
    """Purge narratives, addresses and raw event text of calls past the retention period,
    and de-identify people with no live consent inactive past theirs (the service does this
    daily); outcomes and counts stay, de-identified."""
    from corespond.retention.service import RetentionReport, purge

    async def work(session: AsyncSession, settings: Settings) -> RetentionReport:
        keep = timedelta(days=days or settings.narrative_retention_days)
        people = timedelta(days=person_days or settings.person_retention_days)
        return await purge(session, system_clock(), keep, dry_run=dry_run, person_retention=people)

    report = run_in_session(work, None if dry_run else ("retention.purge", None))
    verb = "would purge" if report.dry_run else "purged"
    out.print(
        f"{verb} {report.calls} call(s) ended before {report.cutoff.isoformat(timespec='minutes')}"
        f" and {report.delivery_bodies} stored CAD answer(s)",
        markup=False,
    )
    if report.people_cutoff is not None:
        verb = "would de-identify" if report.dry_run else "de-identified"
        out.print(
            f"{verb} {report.people} person(s) with no live consent and nothing done since "
            f"{report.people_cutoff.isoformat(timespec='minutes')}",
            markup=False,
        )


def export_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: print it).")
    ] = None,
) -> None:
    """Export the configuration (agencies, providers and the counties they serve, CAD
    sources) as YAML, for another installation: no secrets, no people's data."""
    import yaml

    from corespond.ops.transfer import Configuration, export_configuration

    async def work(session: AsyncSession, settings: Settings) -> Configuration:
        return await export_configuration(session, system_clock())

    document = run_in_session(work).model_dump(mode="json")
    text = (
        "# corespond configuration: review it, then `corespond import FILE` elsewhere.\n"
        "# No secrets: each source imported new gets a new signing secret.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    if output is None:
        out.print(text, markup=False, highlight=False, end="")
        return
    output.write_text(text)
    err.print(f"wrote {output}", highlight=False)


def import_command(
    file: Annotated[Path, typer.Argument(help="A file `corespond export` wrote.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; change nothing.")
    ] = False,
) -> None:
    """Import a configuration export: add what is missing, bring what exists to what the
    file says; nothing absent from it is removed. All of it, or none. A source added gets
    a new signing secret, printed once."""
    import yaml

    from corespond.geo.service import geography_for
    from corespond.ops.transfer import Configuration, ImportReport, import_configuration

    try:
        configuration = Configuration.model_validate(yaml.safe_load(file.read_text("utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        err.print(f"[red]error:[/red] {file}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            err.print(f"[red]error:[/red] {file}: {where}: {problem['msg']}", highlight=False)
        raise typer.Exit(2) from None

    async def work(session: AsyncSession, settings: Settings) -> ImportReport:
        report = await import_configuration(
            session,
            configuration,
            atlas=geography_for(tuple(settings.geo_states)).atlas,
            box=secret_box(settings),
            environment=settings.environment,
            now=system_clock(),
        )
        if dry_run:
            raise DryRunDone(report)
        return report

    try:
        report = run_in_session(work, ("configuration.import", file.name))
    except DryRunDone as done:
        report = done.report
        for line in report.lines:
            out.print(line, markup=False, highlight=False)
        out.print("dry run: nothing changed", markup=False)
        return
    for line in report.lines:
        out.print(line, markup=False, highlight=False)
    for source_id, secret in report.new_secrets.items():
        out.print(f"signing secret of {source_id}: {secret}", markup=False, highlight=False)
    if report.new_secrets:
        out.print("Give each secret to its CAD's administrator now; it is not shown again.")
