"""The ``corespond`` command line: run the service, migrate, manage CAD sources and keys."""

from __future__ import annotations

import asyncio
import binascii
import getpass
import json
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from corespond.config import (
    ENV_FILE_VARIABLE,
    IN_CHECKOUT,
    PROJECT_ROOT,
    EnvFileError,
    Settings,
    bind_refusal,
    get_settings,
    use_env_file,
)
from corespond.crypto import secret_box
from corespond.db import (
    Database,
    EmbeddedDatabaseRefused,
    resolve_database_url,
    resolve_migration_url,
)
from corespond.demo import DemoCredentials
from corespond.errors import Problem
from corespond.triage.ruleset import RuleSet

T = TypeVar("T")

app = typer.Typer(
    help="corespond: route nonviolent substance-use 911 calls to on-duty peer recovery "
    "specialists.\n\nEvery command reads the service's environment file (--env-file, or "
    "CORESPOND_ENV_FILE; else .env here). With no DATABASE_URL set, in development from a "
    "checkout, commands start (or join) the embedded PostgreSQL under the checkout's "
    "var/pgdata; anywhere else they refuse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sources_app = typer.Typer(help="CAD sources: the dispatch systems allowed to post call events.")
keys_app = typer.Typer(help="API keys for people and their tools.")
cad_app = typer.Typer(help="Tools for CAD integrators.")
roster_app = typer.Typer(help="Rosters: providers, and importing shifts from CSV or iCalendar.")
agencies_app = typer.Typer(help="Agencies: the names CAD uses and their home counties.")
triage_app = typer.Typer(
    help="Triage rules: evaluate them on labelled calls, check a rule file, try a call."
)
app.add_typer(sources_app, name="sources")
app.add_typer(keys_app, name="keys")
app.add_typer(cad_app, name="cad")
app.add_typer(triage_app, name="triage")
app.add_typer(agencies_app, name="agencies")
app.add_typer(roster_app, name="roster")
peers_app = typer.Typer(help="Peers: signing them in to the peer app on their phones.")
app.add_typer(peers_app, name="peers")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


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


def _settings() -> Settings:
    """The settings, or exit 2 saying what is wrong with them (a file, a value)."""
    try:
        return get_settings()
    except EnvFileError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            field = f"CORESPOND_{where.upper()}: " if where else ""
            message = problem["msg"].removeprefix("Value error, ")
            err.print(f"[red]invalid setting:[/red] {field}{message}", highlight=False)
        raise typer.Exit(2) from None


def _database_url(resolve: Callable[[Settings], str], settings: Settings) -> str:
    """A URL from ``resolve``, or exit 2 when it would start an embedded database where
    none may be started (saying how to name the real one)."""
    try:
        return resolve(settings)
    except EmbeddedDatabaseRefused as exc:
        err.print(f"[red]refused:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _settings_with_database() -> tuple[Settings, str]:
    settings = _settings()
    url = _database_url(resolve_database_url, settings)
    return settings.model_copy(update={"database_url": url}), url


def _run_in_session(
    work: Callable[[AsyncSession, Settings], Awaitable[T]],
    audit: tuple[str, str | None] | None = None,
    *,
    as_owner: bool = False,
) -> T:
    """Run ``work(session, settings)`` in one committed transaction. ``audit``: (action,
    record id) of a configuration change, put on the audit log in that transaction.
    ``as_owner``: as the schema's owner (CORESPOND_MIGRATION_DATABASE_URL, else
    DATABASE_URL), for what the service's role may not do."""
    settings, url = _settings_with_database()
    if as_owner:
        url = _database_url(resolve_migration_url, settings)

    async def runner() -> T:
        from corespond.audit import service as audit_log

        audit_log.use_secret_box(secret_box(settings))
        database = Database.connect(url)
        try:
            async with database.sessionmaker() as session, session.begin():
                result = await work(session, settings)
                if audit is not None:
                    action, record_id = audit
                    await audit_log.record(
                        session,
                        None,
                        action,
                        action.split(".")[0],
                        record_id,
                        actor=f"cli ({getpass.getuser()})",
                    )
                return result
        finally:
            await database.dispose()

    try:
        return asyncio.run(runner())
    except Problem as problem:
        err.print(f"[red]error:[/red] {problem.detail or problem.title}")
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration."""
    from corespond.logging import configure_logging
    from corespond.migrate import upgrade_to_head

    settings = _settings()
    configure_logging(settings.log_level, json=settings.log_json)
    upgrade_to_head(settings.migrations_dir, _database_url(resolve_migration_url, settings))
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


@app.command()
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
        _, token = await create_first_admin_key(session, name, datetime.now(UTC))
        return token

    token = _run_in_session(work, ("key.create_first_admin", name))
    out.print(f"admin key: {token}", highlight=False)
    out.print(
        "Keep it in a password manager: it is shown once, and stored only as a hash. "
        "Send it as 'Authorization: Bearer <key>'.\n",
        highlight=False,
    )
    out.print(NEXT_STEPS.format(cli=_program_name()), markup=False, highlight=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    run_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema first.")
    ] = False,
    demo: Annotated[bool, typer.Option(help="Seed demo data and print its credentials.")] = False,
) -> None:
    """Serve the HTTP API (and the event worker) with uvicorn. Outside production it
    listens on a loopback address only."""
    import uvicorn

    from corespond.app import create_app
    from corespond.logging import configure_logging
    from corespond.migrate import upgrade_to_head
    from corespond.triage.ruleset import RuleFileError

    configured = _settings()
    refusal = bind_refusal(configured, host if host is not None else configured.host)
    if refusal is not None:
        err.print(f"[red]cannot start:[/red] {refusal}", highlight=False)
        raise typer.Exit(2)
    # First, so that migrations, the embedded server and uvicorn all log in one format.
    configure_logging(configured.log_level, json=configured.log_json)
    migration_url = _database_url(resolve_migration_url, configured) if run_migrations else None
    settings, _ = _settings_with_database()
    try:
        application = create_app(settings)
    except RuleFileError as exc:
        err.print(f"[red]cannot start: invalid triage rules[/red]\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    if migration_url is not None:
        upgrade_to_head(settings.migrations_dir, migration_url)
    if demo:
        _print_demo(_seed_demo(), settings, host, port)
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit, that lets the
    # embedded PostgreSQL be stopped by its exit handler instead of being left running.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        # Forwarded headers are read by the application itself, only from the proxies in
        # CORESPOND_TRUSTED_PROXIES; uvicorn's own reading would trust 127.0.0.1 by default.
        proxy_headers=False,
    )


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def worker() -> None:
    """Run only the background jobs, no HTTP: fold CAD events, follow up assignments, keep
    offer deadlines, deliver to CAD callbacks, purge past the retention period (pair with
    CORESPOND_WORKER_ENABLED=false on serve). The same jobs as serve's own worker."""
    from corespond.background import Background, run_until_stopped
    from corespond.clock import system_clock
    from corespond.geo.service import geography_for
    from corespond.logging import configure_logging
    from corespond.ops.worker_http import start_worker_http
    from corespond.triage.service import RuleBook

    configured = _settings()
    if configured.worker_http_port is not None:
        refusal = bind_refusal(configured, configured.host)
        if refusal is not None:
            err.print(f"[red]cannot start:[/red] {refusal}", highlight=False)
            raise typer.Exit(2)
    configure_logging(configured.log_level, json=configured.log_json)
    settings, url = _settings_with_database()

    async def runner() -> None:
        from corespond.audit import service as audit_log

        box = secret_box(settings)
        audit_log.use_secret_box(box)
        database = Database.connect(url)
        http = httpx.AsyncClient(timeout=settings.outbound_timeout_seconds)
        listener = (
            await start_worker_http(settings, settings.host, settings.worker_http_port)
            if settings.worker_http_port is not None
            else None
        )
        try:
            await run_until_stopped(
                Background.build(
                    settings,
                    database,
                    http,
                    box,
                    RuleBook(settings.triage_rules_file),
                    geography_for(tuple(settings.geo_states)),
                    system_clock,
                )
            )
        finally:
            if listener is not None:
                listener.close()
                await listener.wait_closed()
            await http.aclose()
            await database.dispose()

    asyncio.run(runner())


@app.command("demo")
def demo_command() -> None:
    """Seed demo data (a CAD source, keys, a few calls) and print how to use it."""
    settings = _settings()
    _print_demo(_seed_demo(), settings, None, None)


def _seed_demo() -> DemoCredentials:
    from corespond.assignments.policy import MatchPolicy
    from corespond.demo import seed_demo

    if _settings().environment == "production":
        # Demo keys and a demo CAD secret printed to a terminal have no place in production.
        err.print("[red]refused:[/red] no demo data in production (CORESPOND_ENVIRONMENT)")
        raise typer.Exit(2)

    async def work(session: AsyncSession, settings: Settings) -> DemoCredentials:
        return await seed_demo(session, secret_box(settings), policy=MatchPolicy.of(settings))

    return _run_in_session(work)


def _print_demo(
    creds: DemoCredentials, settings: Settings, host: str | None, port: int | None
) -> None:
    base = f"http://{host or settings.host}:{port or settings.port}"
    program = _program_name()
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


def _program_name() -> str:
    """How the user ran us (``.venv/bin/corespond`` under make), for copy-paste hints."""
    invoked = Path(sys.argv[0])
    if invoked.name == "corespond" and invoked.exists():
        try:
            return str(invoked.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(invoked)
    return "corespond"


@sources_app.command("add")
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

    secret = _run_in_session(work, ("source.create", source_id))
    out.print(f"CAD source [bold]{source_id}[/bold] created.")
    out.print(f"signing secret: {secret}")
    out.print(
        f"It posts to /v1/cad/{source_id}/events. Store the secret now; it is not shown again."
    )


@sources_app.command("list")
def sources_list() -> None:
    """List CAD sources with their agencies and live secrets."""
    from corespond.sources.service import SourceSummary, list_sources

    async def work(session: AsyncSession, settings: Settings) -> list[SourceSummary]:
        return list(await list_sources(session))

    table = Table("id", "name", "agencies", "callback", "live secrets", "created")
    for s in _run_in_session(work):
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


@sources_app.command("set-callback")
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
        waiting = await send_pending_now(session, source.id, datetime.now(UTC))
        return f"{source.id}: callback {source.callback_url}; {waiting} waiting event(s) go now"

    out.print(_run_in_session(work, ("source.set_callback", source_id)), markup=False)


@sources_app.command("set-agencies")
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

    out.print(_run_in_session(work, ("source.set_agencies", source_id)), markup=False)


@sources_app.command("disable")
def sources_disable(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
) -> None:
    """Stop taking a CAD source's events: they are refused (403, saying the source is
    disabled, nothing stored) and nothing is delivered to it, until it is enabled."""
    from corespond.sources.service import set_disabled

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_disabled(session, source_id, True, datetime.now(UTC))
        return f"{source.id}: disabled since {source.disabled_at:%Y-%m-%d %H:%M} UTC"

    out.print(_run_in_session(work, ("source.disable", source_id)), markup=False)


@sources_app.command("enable")
def sources_enable(
    source_id: Annotated[str, typer.Argument(help="The CAD source.")],
) -> None:
    """Take a disabled CAD source's events again (and deliver what waited for it)."""
    from corespond.sources.service import set_disabled

    async def work(session: AsyncSession, settings: Settings) -> str:
        source = await set_disabled(session, source_id, False, datetime.now(UTC))
        return f"{source.id}: enabled"

    out.print(_run_in_session(work, ("source.enable", source_id)), markup=False)


@sources_app.command("scene-secure")
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

    out.print(_run_in_session(work, ("source.scene_secure", source_id)), markup=False)


@sources_app.command("rotate-secret")
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
        )

    secret, until = _run_in_session(work, ("source.rotate_secret", source_id))
    out.print(f"new signing secret: {secret}")
    out.print(f"old secret(s) accepted until {until.isoformat(timespec='seconds')}")


@keys_app.command("create")
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
        expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
        _, token = await create_key(session, role=role, scope=parsed, name=name, expires_at=expires)
        return token

    token = _run_in_session(work, ("key.create", name or role))
    out.print(f"{role} key: {token}")
    out.print("Send it as 'Authorization: Bearer <key>'. It is not shown again.")


@keys_app.command("list")
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
    for row in _run_in_session(work):
        table.add_row(*row)
    (out if out.is_terminal else Console(width=240)).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (see keys list).")],
) -> None:
    """Revoke a key: refused from its next request on."""
    from corespond.auth.service import find_key, revoke_key

    async def work(session: AsyncSession, settings: Settings) -> str:
        found = await revoke_key(session, await find_key(session, key))
        return f"revoked {found.prefix} ({found.name}, {found.role})"

    out.print(_run_in_session(work, ("key.revoke", key)), markup=False)


@keys_app.command("rotate")
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
            session, await find_key(session, key), timedelta(hours=grace_hours)
        )
        return f"{new.role} key: {token}"

    out.print(_run_in_session(work, ("key.rotate", key)), markup=False)
    out.print("It is not shown again.")


@cad_app.command("send")
def cad_send(
    files: Annotated[list[Path], typer.Argument(help="JSON event file(s), sent in order.")],
    source: Annotated[str, typer.Option(help="CAD source id.")] = "demo-cad",
    url: Annotated[str, typer.Option(help="Base URL of corespond.")] = "http://127.0.0.1:8000",
    secret: Annotated[
        str | None,
        typer.Option(help="Signing secret (whsec_...); default $CORESPOND_CAD_SECRET."),
    ] = None,
) -> None:
    """Sign event files the way a CAD system must (Standard Webhooks) and post them."""
    secret = secret or os.environ.get("CORESPOND_CAD_SECRET")
    if not secret:
        err.print("[red]error:[/red] give --secret or set CORESPOND_CAD_SECRET")
        raise typer.Exit(2)
    signer = _webhook(secret)
    failed = False
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in files:
            try:
                body = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                err.print(f"[red]error:[/red] {path}: {getattr(exc, 'strerror', None) or exc}")
                raise typer.Exit(2) from None
            try:
                response = _post_signed(client, source, body, signer)
            except httpx.HTTPError as exc:
                err.print(f"[red]error:[/red] cannot reach {url}: {exc}")
                raise typer.Exit(2) from None
            failed |= response.is_error
            out.print(f"{path}: {response.status_code}")
            try:
                out.print_json(json.dumps(response.json()))
            except ValueError:
                out.print(response.text)
    if failed:
        raise typer.Exit(1)


def _webhook(secret: str) -> Webhook:
    """A signer/verifier for a ``whsec_`` secret, or exit 2 saying what is wrong with it."""
    if not secret.startswith("whsec_"):
        err.print("[red]error:[/red] the secret is not a whsec_ secret")
        raise typer.Exit(2)
    try:
        return Webhook(secret)
    except (ValueError, binascii.Error, EmptyWebhookSecretError) as exc:
        err.print(f"[red]error:[/red] the secret is not a whsec_ base64 secret ({exc})")
        raise typer.Exit(2) from None


def _post_signed(client: httpx.Client, source: str, body: str, signer: Webhook) -> httpx.Response:
    message_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return client.post(
        f"/v1/cad/{source}/events",
        content=body.encode(),
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message_id, now, body),
        },
    )


RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules", help="Override file on top of the packaged rules (default: from settings)."
    ),
]


def _rules(override: Path | None) -> RuleSet:
    from corespond.triage.ruleset import RuleFileError, load_rules

    try:
        return load_rules(override or _settings().triage_rules_file)
    except RuleFileError as exc:
        err.print(f"[red]invalid rule file[/red]\n{exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


@roster_app.command("import")
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
            return await run_import(
                session,
                operator,
                geography_for(tuple(settings.geo_states)).atlas,
                provider_id=provider,
                fmt=fmt,
                text=text,
                dry_run=dry_run,
                timezone=settings.program_timezone,
                window=default_window(days=window_days),
                progress=progress,
            )

        report = _run_in_session(work, None if dry_run else ("roster.import", provider))
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


@roster_app.command("add-provider")
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
        f"provider {provider_id}: {_run_in_session(work, ('provider.create', provider_id))}",
        markup=False,
    )


@agencies_app.command("add")
def agencies_add(
    name: Annotated[str, typer.Argument(help="The agency as CAD names it, e.g. 'BLUEFIELD PD'.")],
    county: Annotated[str, typer.Option(help="Home county: name ('Mercer') or FIPS (54055).")],
    ori: Annotated[str | None, typer.Option(help="NCIC Originating Agency Identifier.")] = None,
    auto_request: Annotated[
        bool,
        typer.Option(
            "--auto-request/--no-auto-request",
            help="Offer a peer on eligible calls at once, without a dispatcher asking.",
        ),
    ] = False,
    scene_gate: Annotated[
        bool,
        typer.Option(
            "--scene-gate/--no-scene-gate",
            help="Peers wait for the scene to be reported secure (off: peers ride with the "
            "officer).",
        ),
    ] = True,
) -> None:
    """Register an agency and its home county (where its calls are placed when nothing
    else says where they are)."""
    from corespond.agencies.service import add_agency, configure
    from corespond.geo.service import geography_for

    async def work(session: AsyncSession, settings: Settings) -> str:
        atlas = geography_for(tuple(settings.geo_states)).atlas
        agency, home = await add_agency(session, atlas, name=name, county=county, ori=ori)
        await configure(session, agency.name, auto_request=auto_request, scene_gate=scene_gate)
        return f"{agency.name}: home county {home.name} ({home.fips}); {_matching(agency)}"

    out.print(_run_in_session(work, ("agency.create", name)), markup=False)


def _matching(agency: Any) -> str:
    requests = "automatic peer requests" if agency.auto_request else "requests by dispatcher"
    gate = "scene gate on" if agency.scene_gate else "scene gate off (peers ride along)"
    return f"{requests}, {gate}"


@agencies_app.command("configure")
def agencies_configure(
    name: Annotated[str, typer.Argument(help="The agency, by name or ORI.")],
    auto_request: Annotated[
        bool | None,
        typer.Option(
            "--auto-request/--no-auto-request",
            help="Offer a peer on eligible calls at once, without a dispatcher asking.",
            show_default=False,
        ),
    ] = None,
    scene_gate: Annotated[
        bool | None,
        typer.Option(
            "--scene-gate/--no-scene-gate",
            help="Peers wait for the scene to be reported secure before going en route.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Change how matching treats an agency's calls (only the options given change)."""
    from corespond.agencies.service import configure

    async def work(session: AsyncSession, settings: Settings) -> str:
        agency = await configure(session, name, auto_request=auto_request, scene_gate=scene_gate)
        return f"{agency.name}: {_matching(agency)}"

    out.print(_run_in_session(work, ("agency.configure", name)), markup=False)


@agencies_app.command("list")
def agencies_list() -> None:
    """List registered agencies with their home counties."""
    from corespond.agencies.service import list_agencies

    async def work(session: AsyncSession, settings: Settings) -> list[tuple[str, ...]]:
        return [
            (a.name, a.ori or "-", a.home_county_fips, _matching(a))
            for a in await list_agencies(session)
        ]

    from corespond.geo.service import geography_for

    atlas = geography_for(tuple(_settings().geo_states)).atlas
    table = Table("agency", "ORI", "home county", "FIPS", "matching")
    for name, ori, fips, matching in _run_in_session(work):
        county = atlas.by_fips.get(fips)
        table.add_row(name, ori, county.name if county else "?", fips, matching)
    (out if out.is_terminal else Console(width=240)).print(table)


@triage_app.command("eval")
def triage_eval(
    file: Annotated[Path, typer.Argument(help="Labelled calls, JSON Lines (tests/data/...).")],
    split: Annotated[str, typer.Option(help="Which split to score: dev, holdout or all.")] = "all",
    rules: RulesOption = None,
    show_errors: Annotated[
        bool, typer.Option("--show-errors", help="List every misclassified call.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a target is missed.")
    ] = False,
    without_model: Annotated[
        bool,
        typer.Option(
            "--without-model", help="Score the rules alone, without the learned second opinion."
        ),
    ] = False,
) -> None:
    """Confusion matrix, per-class precision/recall and Wilson intervals of triage on a
    labelled file; every danger call decided eligible is printed in full."""
    from corespond.triage.evaluation import (
        LabelFileError,
        evaluate,
        format_report,
        read_labelled,
    )

    ruleset = _rules(rules)
    if without_model:
        import dataclasses

        ruleset = dataclasses.replace(ruleset, second_opinion=None)
    try:
        calls = read_labelled(file)
    except (LabelFileError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    chosen = [c for c in calls if split == "all" or c.split == split]
    if not chosen:
        err.print(f"[red]error:[/red] no calls in split {split!r}")
        raise typer.Exit(2)
    report = evaluate(chosen, ruleset)
    out.print(
        format_report(report, f"{file.name} [{split}] rules {ruleset.version}"),
        highlight=False,
        markup=False,
    )
    dangerous = [e for e in report.errors if e[0].danger and e[1] == "eligible"]
    if dangerous:
        out.print("\ndanger calls decided eligible (in full):", markup=False)
        for call, _, summary in dangerous:
            inputs = call.inputs
            out.print(
                f"  {call.id} [{call.category}]\n"
                f"    call type:   {inputs.call_type} / {inputs.call_type_description}\n"
                f"    narrative:   {inputs.narrative}\n"
                f"    hazards:     {list(inputs.hazards)}\n"
                f"    decided:     {summary}",
                markup=False,
                highlight=False,
            )
    if show_errors and report.errors:
        out.print("\nmisclassified:", markup=False)
        for call, predicted, summary in report.errors:
            danger = " DANGER" if call.danger and predicted == "eligible" else ""
            out.print(
                f"  {call.id} [{call.category}] {call.label} -> {summary}{danger}",
                markup=False,
                highlight=False,
            )
    if strict and not all(met for _, met, _ in report.targets()):
        raise typer.Exit(1)


@triage_app.command("real-call-types")
def triage_real_call_types(
    file: Annotated[Path, typer.Argument(help="real_call_types.json (call-type strings).")],
    rules: RulesOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on any violation.")] = False,
) -> None:
    """Classify real call-type strings alone and report any that break the two rules."""
    from corespond.triage.evaluation import check_real_call_types

    ruleset = _rules(rules)
    try:
        document = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {file}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    check = check_real_call_types(document, ruleset)
    never_ok = check.never_eligible_total - len(check.never_eligible_violations)
    substance_ok = check.substance_total - len(check.substance_violations)
    out.print(f"{file.name}, rules {ruleset.version}", markup=False)
    out.print(
        f"never_eligible not eligible:        {never_ok}/{check.never_eligible_total}",
        markup=False,
    )
    for call_type in check.never_eligible_violations:
        out.print(f"  came out eligible: {call_type}", markup=False, highlight=False)
    out.print(
        f"substance_not_ineligible kept:      {substance_ok}/{check.substance_total}",
        markup=False,
    )
    for call_type in check.substance_violations:
        out.print(f"  came out ineligible: {call_type}", markup=False, highlight=False)
    if strict and (check.never_eligible_violations or check.substance_violations):
        raise typer.Exit(1)


@triage_app.command("check")
def triage_check(
    file: Annotated[Path, typer.Argument(help="A rule override file to validate.")],
) -> None:
    """Validate a rule file (as an override of the packaged rules) before deploying it."""
    ruleset = _rules(file)
    out.print(f"{file}: valid, rules version {ruleset.version}, {len(ruleset.rules)} rules")


@triage_app.command("classify")
def triage_classify(
    call_type: Annotated[str | None, typer.Option(help="CAD call type or code.")] = None,
    description: Annotated[str | None, typer.Option(help="Call type description.")] = None,
    narrative: Annotated[str | None, typer.Option(help="Narrative text.")] = None,
    hazard: Annotated[
        list[str] | None, typer.Option("--hazard", help="A hazard flag (repeatable).")
    ] = None,
    agency: Annotated[str | None, typer.Option(help="Agency (for its code mappings).")] = None,
    source: Annotated[str | None, typer.Option(help="CAD source id (its code mappings).")] = None,
    rules: RulesOption = None,
) -> None:
    """Classify one call from the command line and show why."""
    from corespond.triage.classifier import TriageInput, classify

    decision = classify(
        TriageInput(
            source=source,
            agency=agency,
            call_type=call_type,
            call_type_description=description,
            narrative=narrative,
            hazards=tuple(hazard or ()),
        ),
        _rules(rules),
    )
    out.print(decision.summary, markup=False, highlight=False)
    for reason in decision.reasons:
        out.print(f"  {reason.kind:<9} {reason.rule:<28} {reason.detail}", markup=False)
    out.print(f"rules {decision.rules_version}", markup=False)


@peers_app.command("sign-in-link")
def peers_sign_in_link(
    peer_id: Annotated[str, typer.Argument(help="The peer's id (GET /v1/peers).")],
    base_url: Annotated[
        str, typer.Option(help="Where peers reach corespond, e.g. https://corespond.example.org")
    ] = "",
) -> None:
    """Print a one-time link that signs a peer in to the peer app (/peer) on their phone:
    valid 15 minutes, once. Send it to the peer's phone (or show it as a QR code)."""
    import uuid

    from corespond.auth.service import Principal
    from corespond.peerapp.service import create_link

    try:
        peer = uuid.UUID(peer_id)
    except ValueError:
        err.print(f"error: not a peer id: {peer_id!r}")
        raise typer.Exit(2) from None
    cli_admin = Principal(key_id=uuid.UUID(int=0), name="cli", role="admin", scope=None)

    async def work(session: AsyncSession, settings: Settings) -> str:
        link = await create_link(session, cli_admin, peer, datetime.now(UTC))
        base = (base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        return (
            f"{base}/peer/sign-in?token={link.token}\n"
            f"for {link.peer.display_name}; works once, until {link.expires_at:%H:%M} UTC"
        )

    out.print(_run_in_session(work, ("peer.sign_in_link", peer_id)), markup=False)


audit_app = typer.Typer(help="The audit log: who read or changed what.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


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


@audit_app.command("verify")
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
        result = _run_in_session(work)
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


secret_key_app = typer.Typer(
    help="CORESPOND_SECRET_KEY: make a new key; bring what it protects under the newest.",
    no_args_is_help=True,
)
app.add_typer(secret_key_app, name="secret-key")


@secret_key_app.command("generate")
def secret_key_generate() -> None:
    """Print a new key (a Fernet key) and its fingerprint. To rotate, put it in front of
    the key in use: CORESPOND_SECRET_KEY=NEW,OLD (docs/operations.md)."""
    from cryptography.fernet import Fernet

    from corespond.crypto import fingerprint

    key = Fernet.generate_key()
    out.print(key.decode(), markup=False, highlight=False)
    err.print(f"fingerprint {fingerprint(key)}", highlight=False)


@secret_key_app.command("rotate")
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
            datetime.now(UTC),
            actor=f"cli ({getpass.getuser()})",
            accept_late=accepted,
        )
        if dry_run:
            raise _DryRunDone(report)
        return report

    try:
        report = _run_in_session(work, as_owner=True)
    except _DryRunDone as done:
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


@app.command()
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
        return await purge(
            session, datetime.now(UTC), keep, dry_run=dry_run, person_retention=people
        )

    report = _run_in_session(work, None if dry_run else ("retention.purge", None))
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


@app.command("dispatch-sink")
def dispatch_sink(
    secret: Annotated[
        str,
        typer.Option(
            envvar="CORESPOND_CAD_SECRET", help="The CAD source's whsec_ secret to verify with."
        ),
    ],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    fail_first: Annotated[
        int, typer.Option(min=0, help="Answer 503 to this many first deliveries (see retries).")
    ] = 0,
) -> None:
    """Receive assignment events like a CAD would: verify each signature (Standard
    Webhooks) and print what dispatch would see. Point a source at it with
    `corespond sources set-callback SOURCE http://127.0.0.1:9100/`."""
    import uvicorn

    from corespond.dispatch.sink import sink_app

    _webhook(secret)
    out.print(f"listening on http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(
        sink_app(secret, fail_first=fail_first, say=lambda line: out.print(line, markup=False)),
        host=host,
        port=port,
        log_level="warning",
    )


@app.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write it.")] = (
        PROJECT_ROOT / "openapi" / "openapi.json" if IN_CHECKOUT else Path("openapi.json")
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs from what the app makes.")
    ] = False,
) -> None:
    """Write the OpenAPI document (or, with --check, verify it is current)."""
    from corespond.app import create_app

    document = json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"
    if check:
        current = output.read_text() if output.exists() else ""
        if current != document:
            err.print(f"[red]{output} is out of date[/red]; run `make openapi` and commit it")
            raise typer.Exit(1)
        out.print(f"{output} is current")
        return
    output.write_text(document)
    out.print(f"wrote {output}")


@app.command("export")
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
        return await export_configuration(session, datetime.now(UTC))

    document = _run_in_session(work).model_dump(mode="json")
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


class _DryRunDone(Exception):
    """Carries a dry run's report out of its transaction, which is then rolled back."""

    def __init__(self, report: Any) -> None:
        super().__init__("dry run")
        self.report = report


@app.command("import")
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
        )
        if dry_run:
            raise _DryRunDone(report)
        return report

    try:
        report = _run_in_session(work, ("configuration.import", file.name))
    except _DryRunDone as done:
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


@app.command("config-reference")
def config_reference(
    output: Annotated[Path, typer.Option(help="Where to write it.")] = (
        PROJECT_ROOT / "docs" / "configuration.md" if IN_CHECKOUT else Path("configuration.md")
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs from the settings class.")
    ] = False,
) -> None:
    """Write the configuration reference (docs/configuration.md) from the settings class,
    or, with --check, verify it is current."""
    from corespond.ops.configdoc import render

    document = render()
    if check:
        current = output.read_text() if output.exists() else ""
        if current != document:
            err.print(f"[red]{output} is out of date[/red]; run `make docs` and commit it")
            raise typer.Exit(1)
        out.print(f"{output} is current")
        return
    output.write_text(document)
    out.print(f"wrote {output}")


def main() -> None:
    """Entry point of the ``corespond`` script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
