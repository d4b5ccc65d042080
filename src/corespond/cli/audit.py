"""corespond audit: verify the audit log's hash chain."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import err, out, run_in_session
from corespond.config import Settings

app = typer.Typer(help="The audit log: who read or changed what.", no_args_is_help=True)


def _last_hash(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = bytes.fromhex(value.strip())
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise typer.BadParameter(
            "not a last hash: give the 64 hexadecimal digits that 'corespond audit verify' "
            "printed as the last hash",
            param_hint="'--expect-last'",
        )
    return digest


@app.command("verify")
def audit_verify(
    expect_last: Annotated[
        str | None,
        typer.Option(
            "--expect-last",
            metavar="HEX",
            help="The last hash an earlier run printed, kept outside the database: fail "
            "unless an entry still has it (entries added after it are fine).",
        ),
    ] = None,
) -> None:
    """Recompute the audit log's hash chain; exit 1 naming the first entry that was altered,
    or that follows a removed one, or, with --expect-last, when the newest entries were
    removed."""
    from corespond.audit.service import Verification, verify

    expected = _last_hash(expect_last)

    async def work(session: AsyncSession, settings: Settings) -> Verification:
        return await verify(session, expect_last=expected)

    from corespond.crypto import UnreadableSecret

    try:
        result = run_in_session(work)
    except UnreadableSecret:
        err.print(
            "[red]cannot verify[/red]: a retired audit chain key cannot be decrypted by any "
            "key in CORESPOND_SECRET_KEY: it was sealed under a key since removed; put that "
            "key back (after the newest) and run `corespond secret-key rotate`",
            highlight=False,
        )
        raise typer.Exit(1) from None
    if result.rewritable:
        err.print(
            "[yellow]warning:[/yellow] the database role of DATABASE_URL may UPDATE, DELETE or "
            "TRUNCATE the audit log; run the service as a member of corespond_service and "
            "migrate with CORESPOND_MIGRATION_DATABASE_URL",
            highlight=False,
        )
    if result.key_mismatch:
        err.print(
            "[red]the key does not match the audit log[/red]: no entry verifies under "
            "CORESPOND_SECRET_KEY (nor under a chain key a rotation retired), so it is not the "
            "key the log was written with (unless every entry was altered); run with that key, "
            "from which the chain's key is derived",
            highlight=False,
        )
        raise typer.Exit(1)
    if result.entries == 0 and result.first_verifying not in (None, result.broken_at):
        err.print(
            f"[red]audit log broken[/red] at entry {result.broken_at}, the first: it does not "
            "verify under this CORESPOND_SECRET_KEY, while later entries do (from entry "
            f"{result.first_verifying}): the first entry was altered, or the key may not be "
            "the one the log was begun with",
            highlight=False,
        )
        raise typer.Exit(1)
    if not result.chain_intact:
        err.print(
            f"[red]audit log broken[/red] at entry {result.broken_at} "
            f"(after {result.entries} good entries): altered, or an entry before it was removed"
        )
        raise typer.Exit(1)
    if result.cut:
        err.print(
            "[red]audit log cut[/red]: no entry has the expected last hash "
            f"{(result.expected or b'').hex()}; "
            f"entries were removed from the end of the log (its {result.entries} entries "
            "verify), or that hash is from another database",
            highlight=False,
        )
        raise typer.Exit(1)
    out.print(f"audit log intact: {result.entries} entries, chain verified")
    if result.expected_at is not None:
        out.print(
            f"expected last hash found at entry {result.expected_at}; "
            f"{result.added_since_expected} entries added since"
        )
    if result.last_hash is None:
        out.print("the log has no entries yet: no last hash to keep")
        return
    last = result.last_hash.hex()
    out.print(f"last hash {last}", highlight=False)
    out.print(
        "Keep this last hash outside the database (with the date), and pass it next time as "
        f"--expect-last {last}: a log whose newest entries were removed still verifies "
        "without it.",
        highlight=False,
    )
