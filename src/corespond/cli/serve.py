"""The service's processes: the HTTP API, and the background jobs on their own."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import httpx
import typer

from corespond.cli.common import database_url, err, load_settings, settings_with_database
from corespond.cli.demo import print_demo, seed_demo_data
from corespond.config import ENV_FILE_VARIABLE, bind_refusal, env_file
from corespond.crypto import secret_box
from corespond.db import Database, resolve_migration_url
from corespond.metrics import MULTIPROCESS_VARIABLE, multiprocess_directory


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    run_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Upgrade the schema first.")
    ] = False,
    demo: Annotated[bool, typer.Option(help="Seed demo data and print its credentials.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Serve from this many processes (uvicorn workers). Above 1 the background "
            "jobs run in `corespond worker` only: set CORESPOND_WORKER_ENABLED=false. Rate "
            "limits are then per process; /metrics counts every process (kept in "
            "PROMETHEUS_MULTIPROC_DIR, else a temporary directory).",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (and the event worker) with uvicorn. Outside production it
    listens on a loopback address only."""
    import uvicorn

    from corespond.app import create_app
    from corespond.logging import configure_logging
    from corespond.migrate import upgrade_to_head
    from corespond.triage.ruleset import RuleFileError

    configured = load_settings()
    refusal = bind_refusal(configured, host if host is not None else configured.host)
    if refusal is not None:
        err.print(f"[red]cannot start:[/red] {refusal}", highlight=False)
        raise typer.Exit(2)
    if workers > 1 and configured.worker_enabled:
        # Each process would run every job: N relays, N sweeps, N retention runs.
        err.print(
            f"[red]cannot start:[/red] --workers {workers} serves the API from {workers} "
            "processes, and the background jobs must run in one place: set "
            "CORESPOND_WORKER_ENABLED=false and run `corespond worker` beside it",
            highlight=False,
        )
        raise typer.Exit(2)
    # First, so that migrations, the embedded server and uvicorn all log in one format.
    configure_logging(configured.log_level, json=configured.log_json)
    migration_url = database_url(resolve_migration_url, configured) if run_migrations else None
    settings, url = settings_with_database()
    try:
        # Built here even for --workers N, whose processes each build their own: a broken
        # rule file refuses to start before any of them does.
        application = create_app(settings)
    except RuleFileError as exc:
        err.print(f"[red]cannot start: invalid triage rules[/red]\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    if migration_url is not None:
        upgrade_to_head(settings.migrations_dir, migration_url)
    if demo:
        print_demo(seed_demo_data(), settings, host, port)
    if workers > 1:
        _serve_from_processes(
            workers,
            host or settings.host,
            port or settings.port,
            embedded_url=url if configured.database_url is None else None,
        )
        return
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


def _serve_from_processes(workers: int, host: str, port: int, *, embedded_url: str | None) -> None:
    """uvicorn's ``workers`` processes, each building the app with
    ``create_app_from_environment``. They are handed, in the environment, what this process
    read: its environment file, the embedded database it started (``embedded_url``; the
    server stays this process's, stopped when it exits) and the directory of their metrics.
    uvicorn stops them on SIGTERM or SIGINT and starts a new one when one dies."""
    import uvicorn

    path, named = env_file()
    if named:
        os.environ[ENV_FILE_VARIABLE] = str(path.resolve())
    if embedded_url is not None:
        os.environ["DATABASE_URL"] = embedded_url
    with multiprocess_directory() as directory:
        # This process's own metrics were made before (in memory, or in files just emptied):
        # only the API processes count into the directory.
        os.environ[MULTIPROCESS_VARIABLE] = str(directory)
        uvicorn.run(
            "corespond.app:create_app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # as above: CORESPOND_TRUSTED_PROXIES only
        )


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

    configured = load_settings()
    if configured.worker_http_port is not None:
        refusal = bind_refusal(configured, configured.host)
        if refusal is not None:
            err.print(f"[red]cannot start:[/red] {refusal}", highlight=False)
            raise typer.Exit(2)
    configure_logging(configured.log_level, json=configured.log_json)
    settings, url = settings_with_database()

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
