"""Demo data: a CAD source, keys and a few calls, and how to use them."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.cli.common import err, load_settings, out, program_name, run_in_session
from corespond.clock import system_clock
from corespond.config import Settings
from corespond.crypto import secret_box
from corespond.demo import DemoCredentials


def demo_command() -> None:
    """Seed demo data (a CAD source, keys, a few calls) and print how to use it."""
    settings = load_settings()
    print_demo(seed_demo_data(), settings, None, None)


def seed_demo_data() -> DemoCredentials:
    """Seed the demo data in one transaction (refused in production)."""
    from corespond.assignments.policy import MatchPolicy
    from corespond.demo import seed_demo

    if load_settings().environment == "production":
        # Demo keys and a demo CAD secret printed to a terminal have no place in production.
        err.print("[red]refused:[/red] no demo data in production (CORESPOND_ENVIRONMENT)")
        raise typer.Exit(2)

    async def work(session: AsyncSession, settings: Settings) -> DemoCredentials:
        return await seed_demo(
            session, secret_box(settings), system_clock(), policy=MatchPolicy.of(settings)
        )

    return run_in_session(work)


def print_demo(
    creds: DemoCredentials, settings: Settings, host: str | None, port: int | None
) -> None:
    """Print the demo's credentials and what to try, with URLs on the address served."""
    base = f"http://{host or settings.host}:{port or settings.port}"
    program = program_name()
    out.rule("[bold]corespond demo[/bold]")
    out.print(f"CAD source      [bold]{creds.source_id}[/bold]")
    out.print(f"  signing secret  {creds.source_secret}")
    out.print(f"admin key       {creds.admin_key}")
    out.print(f"dispatcher key  {creds.dispatcher_key}  (scope agency:CHARLESTON PD)")
    out.print(f"supervisor key  {creds.supervisor_key}")
    for name, key in creds.peer_keys.items():
        out.print(f"peer key        {key}  ({name})")
    out.print(f"demo events accepted this run: {creds.events_accepted}")
    out.print(f"supervisor page: {base}/supervisor (sign in with the supervisor key)")
    out.print(f"dispatch:        {base}/dispatch (sign in with the dispatcher key)")
    for name, token in creds.peer_sign_in.items():
        out.print(f"peer app:        {base}/peer/sign-in?token={token}  ({name}, once, 15 min)")
    out.print("\nTry (the README walks through the rest):")
    out.print(f"  export CORESPOND_KEY={creds.admin_key}")
    out.print(f"  export SUPERVISOR_KEY={creds.supervisor_key}")
    for name, key in creds.peer_keys.items():
        out.print(f"  export {name.split()[0].upper()}_KEY={key}")
    out.print(f"  export CORESPOND_CAD_SECRET={creds.source_secret}")
    out.print(f'  curl -s {base}/v1/calls -H "Authorization: Bearer $CORESPOND_KEY"')
    out.print(f"  {program} cad send examples/events/od-created.json --url {base}")
    out.print("These keys are shown once; running the demo again issues new ones.")
    out.rule()
