"""corespond sources: the CAD systems allowed to post call events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import err, out, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings
from corespond.crypto import secret_box

app = typer.Typer(help="CAD sources: the dispatch systems allowed to post call events.")


@app.command("add")
def sources_add(
    source_id: Annotated[str, typer.Argument(help="Short id used in the URL, e.g. kanawha-911.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    callback_url: Annotated[
        str | None, typer.Option(help="Where assignment events go back to this CAD.")
    ] = None,
    agency: Annotated[
        list[str] | None,
        typer.Option(
            "--agency", help="A registered agency this CAD serves (repeatable; at least one)."
        ),
    ] = None,
) -> None:
    """Register a CAD source and print its signing secret (shown once). It files calls
    only for its agencies, which must be registered first (corespond agencies add)."""
    from corespond.sources.service import create_source

    async def work(session: AsyncSession, settings: Settings) -> str:
        _, secret = await create_source(
            session,
            secret_box(settings),
            source_id=source_id,
            display_name=name,
            callback_url=callback_url,
            agencies=agency or [],
            environment=settings.environment,
        )
        return secret

    secret = run_in_session(work, ("source.create", source_id))
    out.print(f"CAD source [bold]{source_id}[/bold] created.")
    out.print(f"signing secret: {secret}")
    out.print(
        f"It posts to /v1/cad/{source_id}/events. Store the secret now; it is not shown again."
    )


@app.command("list")
def sources_list() -> None:
    """List CAD sources with their agencies and live secrets."""
    from corespond.sources.service import SourceSummary, list_sources

    async def work(session: AsyncSession, settings: Settings) -> list[SourceSummary]:
        return list(await list_sources(session, system_clock()))

    table = Table("id", "name", "agencies", "callback", "live secrets", "created")
    for s in run_in_session(work):
        table.add_row(
            s.id,
            s.display_name,
            ", ".join(s.agencies) or "-",
            s.callback_url or "-",
            str(s.active_secrets),
            s.created_at.isoformat(timespec="seconds"),
        )
    # Piped output is not cut to 80 columns: scripts and logs get whole rows.
    (out if out.is_terminal else Console(width=240)).print(table)


@app.command("set-callback")
def sources_set_callback(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
    url: Annotated[
        str | None,
        typer.Argument(help="Where assignment events go (https; omit with --remove)."),
    ] = None,
    remove: Annotated[bool, typer.Option(help="Stop delivering to this CAD.")] = False,
) -> None:
    """Set the URL assignment events are delivered to, signed with the source's secret.
    Checked now: https (http only in development), no credentials in the URL, and in
    production no internal address. Redirects are never followed."""
    from corespond.dispatch.service import send_pending_now
    from corespond.sources.service import set_callback

    if (url is None) == (not remove):
        err.print("give a URL, or --remove")
        raise typer.Exit(2)

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_callback(session, source_id, url, settings.environment)
        if source.callback_url is None:
            return f"{source.id}: no callback; assignment events are kept, not sent"
        waiting = await send_pending_now(session, source.id, system_clock())
        return f"{source.id}: callback {source.callback_url}; {waiting} waiting event(s) go now"

    out.print(run_in_session(work, ("source.set_callback", source_id)), markup=False)


@app.command("set-agencies")
def sources_set_agencies(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
    agency: Annotated[
        list[str],
        typer.Option("--agency", help="A registered agency this CAD serves (repeatable)."),
    ],
) -> None:
    """Replace the agencies a CAD source files calls for. Events naming any other agency
    are refused (403, nothing stored, counted as other_agency)."""
    from corespond.sources.service import set_agencies

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_agencies(session, source_id, agency)
        return f"{source.id}: files calls for {', '.join(source.agencies)}"

    out.print(run_in_session(work, ("source.set_agencies", source_id)), markup=False)


@app.command("disable")
def sources_disable(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
) -> None:
    """Stop taking a CAD source's events: they are refused (403, saying the source is
    disabled, nothing stored) and nothing is delivered to it, until it is enabled."""
    from corespond.sources.service import set_disabled

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_disabled(session, source_id, True, system_clock())
        return f"{source.id}: disabled since {source.disabled_at:%Y-%m-%d %H:%M} UTC"

    out.print(run_in_session(work, ("source.disable", source_id)), markup=False)


@app.command("enable")
def sources_enable(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
) -> None:
    """Take a disabled CAD source's events again (and deliver what waited for it)."""
    from corespond.sources.service import set_disabled

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_disabled(session, source_id, False, system_clock())
        return f"{source.id}: enabled"

    out.print(run_in_session(work, ("source.enable", source_id)), markup=False)


@app.command("scene-secure")
def sources_scene_secure(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="A call status meaning the scene is secure (repeatable)."),
    ] = None,
    flag: Annotated[
        list[str] | None,
        typer.Option("--flag", help="A flag in the call's hazards meaning the same (repeatable)."),
    ] = None,
) -> None:
    """Set what in this CAD's events means police have secured the scene (replaces the
    statuses and flags set before; a new source starts with the status 'scene_secure').
    A staged peer may go en route once a call shows one of them."""
    from corespond.sources.service import set_scene_secure_signals

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_scene_secure_signals(
            session, source_id, statuses=status or [], flags=flag or []
        )
        return (
            f"{source.id}: scene secure when status is "
            f"{', '.join(source.scene_secure_statuses) or '(none)'}; "
            f"or flagged {', '.join(source.scene_secure_flags) or '(none)'}"
        )

    out.print(run_in_session(work, ("source.scene_secure", source_id)), markup=False)


@app.command("rotate-secret")
def sources_rotate_secret(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
    grace_hours: Annotated[
        float | None,
        typer.Option(min=0, help="How long the old secret keeps working (default from settings)."),
    ] = None,
) -> None:
    """Issue a new signing secret; the old one stays valid for a grace period."""
    from corespond.sources.service import rotate_secret

    async def work(session: AsyncSession, settings: Settings) -> tuple[str, datetime]:
        hours = settings.secret_rotation_grace_hours if grace_hours is None else grace_hours
        return await rotate_secret(
            session,
            secret_box(settings),
            source_id,
            grace=timedelta(hours=hours),
            now=system_clock(),
        )

    secret, until = run_in_session(work, ("source.rotate_secret", source_id))
    out.print(f"new signing secret: {secret}")
    out.print(f"old secret(s) accepted until {until.isoformat(timespec='seconds')}")
