"""corespond secret-key: make a new CORESPOND_SECRET_KEY, bring what it protects under
the newest."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import DryRunDone, err, out, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings
from corespond.crypto import secret_box

app = typer.Typer(
    help="CORESPOND_SECRET_KEY: make a new key; bring what it protects under the newest.",
    no_args_is_help=True,
)


@app.command("generate")
def secret_key_generate() -> None:
    """Print a new key (a Fernet key) and its fingerprint. To rotate, put it in front of
    the key in use: CORESPOND_SECRET_KEY=NEW,OLD (docs/operations.md)."""
    from cryptography.fernet import Fernet

    from corespond.crypto import fingerprint

    key = Fernet.generate_key()
    out.print(key.decode(), markup=False, highlight=False)
    err.print(f"fingerprint {fingerprint(key)}", highlight=False)


@app.command("rotate")
def secret_key_rotate(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; change nothing.")
    ] = False,
    accept_late_entries: Annotated[
        str,
        typer.Option(
            help="Audit entry ids written under a retired key after its rotation that you "
            "have checked and keep as genuine, comma-separated (never accepted otherwise)."
        ),
    ] = "",
) -> None:
    """Bring everything CORESPOND_SECRET_KEY protects under its newest key: re-encrypt the
    CAD signing secrets, pin the push key, roll the audit chain over (older chain keys kept,
    sealed, for the entries they wrote). Run it once every corespond process has the new key
    first in CORESPOND_SECRET_KEY; then the older keys can be removed. Runs as the schema's
    owner (CORESPOND_MIGRATION_DATABASE_URL, else DATABASE_URL); safe to run again."""
    from corespond.audit.service import LateChainEntries
    from corespond.crypto import UnreadableSecret
    from corespond.ops.secret_key import RotationReport, rotate_secret_key

    try:
        accepted = [int(i) for i in accept_late_entries.split(",") if i.strip()]
    except ValueError:
        err.print("error: --accept-late-entries takes audit entry ids, e.g. 1207,1208")
        raise typer.Exit(2) from None

    async def work(session: AsyncSession, settings: Settings) -> RotationReport:
        report = await rotate_secret_key(
            session,
            secret_box(settings),
            system_clock(),
            actor=f"cli ({getpass.getuser()})",
            accept_late=accepted,
        )
        if dry_run:
            raise DryRunDone(report)
        return report

    try:
        report = run_in_session(work, as_owner=True)
    except DryRunDone as done:
        for line in done.report.lines(dry_run=True):
            out.print(line, markup=False, highlight=False)
        out.print("dry run: nothing changed", markup=False)
        return
    except (UnreadableSecret, LateChainEntries) as exc:
        err.print(f"[red]refused:[/red] {exc}; nothing was changed", highlight=False)
        raise typer.Exit(1) from None
    for line in report.lines():
        out.print(line, markup=False, highlight=False)
    if report.keys > 1:
        out.print(
            "Everything stored is now under the newest key. Remove the older key(s) from "
            "CORESPOND_SECRET_KEY everywhere and restart; keep a copy of them with the "
            "backups taken before today.",
            markup=False,
        )
    else:
        out.print("One key configured: everything stored is under it.", markup=False)
