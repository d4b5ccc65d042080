"""corespond keys: API keys for people and their tools."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import out, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings

app = typer.Typer(help="API keys for people and their tools.")


@app.command("create")
def keys_create(
    role: Annotated[
        str,
        typer.Option(
            help="dispatcher, peer, supervisor, provider_admin, auditor, admin or cad_integrator."
        ),
    ],
    scope: Annotated[
        str | None,
        typer.Option(
            help="Limit the key: 'agency:BLUEFIELD PD', 'county:Kanawha', 'provider:wvsl' "
            "(required for provider_admin), 'peer:<peer id>' (a peer's own key), "
            "'source:<id>' (required for cad_integrator)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Who or what holds the key.")] = None,
    expires_days: Annotated[
        float | None, typer.Option(min=0.01, help="Expire after this many days (default never).")
    ] = None,
) -> None:
    """Create an API key and print it (shown once)."""
    from corespond.auth.scopes import checked_scope
    from corespond.auth.service import create_key
    from corespond.geo.service import geography_for

    async def work(session: AsyncSession, settings: Settings) -> str:
        # Resolved to what it names: a county to its FIPS, an agency to its registered name.
        atlas = geography_for(tuple(settings.geo_states)).atlas
        parsed = await checked_scope(session, atlas, scope) if scope else None
        now = system_clock()
        expires = now + timedelta(days=expires_days) if expires_days else None
        _, token = await create_key(
            session, role=role, scope=parsed, name=name, expires_at=expires, now=now
        )
        return token

    token = run_in_session(work, ("key.create", name or role))
    out.print(f"{role} key: {token}")
    out.print("Send it as 'Authorization: Bearer <key>'. It is not shown again.")


@app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves): prefix, name, role, scope, expiry, last use."""
    from corespond.auth.service import list_keys

    async def work(session: AsyncSession, settings: Settings) -> list[tuple[str, ...]]:
        def when(value: datetime | None) -> str:
            return value.isoformat(timespec="minutes") if value else "-"

        return [
            (
                k.prefix,
                k.name,
                k.role,
                f"{k.scope_kind}:{k.scope_value}" if k.scope_kind else "-",
                when(k.expires_at),
                when(k.last_used_at),
                when(k.revoked_at),
            )
            for k in await list_keys(session)
        ]

    table = Table("prefix", "name", "role", "scope", "expires", "last used", "revoked")
    for row in run_in_session(work):
        table.add_row(*row)
    (out if out.is_terminal else Console(width=240)).print(table)


@app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (see keys list).")],
) -> None:
    """Revoke a key: refused from its next request on."""
    from corespond.auth.service import find_key, revoke_key

    async def work(session: AsyncSession, settings: Settings) -> str:
        found = await revoke_key(session, await find_key(session, key), system_clock())
        return f"revoked {found.prefix} ({found.name}, {found.role})"

    out.print(run_in_session(work, ("key.revoke", key)), markup=False)


@app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (see keys list).")],
    grace_hours: Annotated[
        float, typer.Option(min=0, max=168, help="Keep the old key working this long.")
    ] = 0,
) -> None:
    """Issue a new key with the same name, role and scope, and retire the old one (at once,
    or after --grace-hours)."""
    from corespond.auth.service import find_key, rotate_key

    async def work(session: AsyncSession, settings: Settings) -> str:
        new, token = await rotate_key(
            session, await find_key(session, key), system_clock(), timedelta(hours=grace_hours)
        )
        return f"{new.role} key: {token}"

    out.print(run_in_session(work, ("key.rotate", key)), markup=False)
    out.print("It is not shown again.")
