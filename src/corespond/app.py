"""The FastAPI application: ``create_app()``; the lifespan owns the engine, client and scheduler."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import corespond.models  # noqa: F401 - every table, so foreign keys resolve
from corespond import __version__
from corespond.alerts.router import router as alerts_router
from corespond.assignments.router import router as assignments_router
from corespond.audit import service as audit_log
from corespond.audit.deps import record_refused_read
from corespond.audit.router import router as audit_router
from corespond.auth.router import router as keys_router
from corespond.background import Background, settle_heap
from corespond.calls.router import router as calls_router
from corespond.clock import system_clock
from corespond.config import Settings, get_settings
from corespond.console.page import router as dispatch_console
from corespond.coverage.page import router as supervisor_page
from corespond.coverage.router import router as coverage_router
from corespond.crypto import secret_box
from corespond.db import Database, resolve_database_url
from corespond.directory.router import router as directory_router
from corespond.dispatch.router import router as dispatch_router
from corespond.dispatch.schemas import CallbackMessage
from corespond.errors import PROBLEM_MEDIA_TYPE, install_problem_handlers
from corespond.followups.router import router as followups_router
from corespond.geo.router import router as geo_router
from corespond.geo.service import geography_for
from corespond.ingest.router import IngestLane
from corespond.ingest.router import router as ingest_router
from corespond.ingest.schemas import CadEvent
from corespond.ingest.service import WorkerWake
from corespond.listen import Listener
from corespond.logging import configure_logging
from corespond.metrics import MULTIPROCESS_VARIABLE
from corespond.middleware import (
    BodyLimitMiddleware,
    OneAuthorizationMiddleware,
    RateLimitMiddleware,
    RequestContextMiddleware,
    TimeoutMiddleware,
    TokenBuckets,
    TrustedProxyMiddleware,
)
from corespond.migrate import head_revisions, known_revisions
from corespond.notify.router import router as notify_router
from corespond.ops.docs import install_docs
from corespond.ops.router import router as ops_router
from corespond.ops.signals import DatabaseGauges
from corespond.peerapp.page import api as peer_api
from corespond.peerapp.page import router as peer_app
from corespond.people.router import router as people_router
from corespond.provider.page import router as provider_page
from corespond.reports.page import router as reports_page
from corespond.reports.router import router as reports_router
from corespond.roster.router import router as roster_router
from corespond.sources.router import router as sources_router
from corespond.sources.service import CHANGED_CHANNEL, SourceCache
from corespond.triage.router import router as triage_router
from corespond.triage.service import RuleBook

log = structlog.get_logger(__name__)

DESCRIPTION = """\
corespond routes nonviolent substance-use 911 calls from computer-aided dispatch (CAD) to an
on-duty Peer Recovery Support Specialist.

* CAD systems post signed call events (Standard Webhooks) to `/v1/cad/{source}/events`.
* People and their tools authenticate with `Authorization: Bearer <api key>`.
* Errors are `application/problem+json` (RFC 9457); times are RFC 3339 with an offset.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    owned = app.state.database is None
    if owned:
        url = await asyncio.to_thread(resolve_database_url, settings)
        app.state.database = Database.connect(url)
    database: Database = app.state.database
    app.state.database_gauges = DatabaseGauges(
        database,
        app.state.geography.atlas,
        settings.required_credentials,
        lambda: app.state.clock(),  # tests move the clock after startup
    )
    app.state.http = httpx.AsyncClient(timeout=settings.outbound_timeout_seconds)
    background = Background.build(
        settings,
        database,
        app.state.http,
        app.state.secret_box,
        app.state.rulebook,
        app.state.geography,
        app.state.clock,
    )
    app.state.background = background
    app.state.call_follow_up = background.follow_up
    app.state.worker = background.worker
    app.state.relay = background.relay
    app.state.alert_jobs = background.alerts
    await background.start(jobs=settings.worker_enabled)
    app.state.worker_wake = WorkerWake(
        database, background.worker.wake if settings.worker_enabled else None
    )
    app.state.scheduler = background.scheduler
    # Sources are kept for receiving events only while this hears each change to them.
    sources_heard = Listener(database, CHANGED_CHANNEL, app.state.source_cache.clear)
    if settings.source_cache_seconds > 0:
        await sources_heard.start()
        app.state.source_cache.listening = sources_heard.alive
        background.scheduler.add_job(
            _relisten(sources_heard),
            "interval",
            seconds=settings.worker_sweep_seconds,
            id="source-cache-listen",
            max_instances=1,
            coalesce=True,
        )
    if owned:  # a process of its own (tests build many apps in one, on a database of theirs)
        settle_heap()
    log.info("started", version=__version__, worker=settings.worker_enabled)
    try:
        yield
    finally:
        await app.state.worker_wake.close()
        await background.stop()
        await sources_heard.close()
        await app.state.http.aclose()
        if owned:
            await database.dispose()
            app.state.database = None
        log.info("stopped")


def _relisten(listener: Listener) -> Callable[[], Awaitable[None]]:
    async def relisten() -> None:
        if not listener.alive():
            await listener.start()

    return relisten


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    metrics_directory: Path | None = None,
) -> FastAPI:
    """Build the application. ``database`` is for tests; otherwise the lifespan connects.
    ``metrics_directory``: where the processes of ``serve --workers N`` keep their metrics
    (``/metrics`` then answers for all of them)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="corespond",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by ops.docs instead: assets from this process, and off in production.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.metrics_directory = metrics_directory
    app.state.secret_box = secret_box(settings)
    audit_log.use_secret_box(app.state.secret_box)
    app.state.migration_heads = head_revisions(settings.migrations_dir)
    app.state.migration_revisions = known_revisions(settings.migrations_dir)
    # Loaded here, so a broken rule file stops the service from starting at all.
    app.state.rulebook = RuleBook(settings.triage_rules_file)
    app.state.geography = geography_for(tuple(settings.geo_states))
    app.state.clock = system_clock
    install_problem_handlers(app, on_refused=record_refused_read)
    # Inner first: CAD events past FastAPI's routing (every middleware below still applies).
    app.add_middleware(IngestLane)
    # The body limit runs inside the request context (id, access log).
    app.add_middleware(
        BodyLimitMiddleware,
        limit=max(settings.max_body_bytes, settings.max_event_bytes),
        exempt=("/v1/rosters/import", "/v1/directory/import"),
    )
    app.add_middleware(
        TimeoutMiddleware,
        seconds=settings.request_timeout_seconds,
        # An event stream stays open.
        exempt=(
            "/v1/rosters/import",
            "/v1/directory/import",
            "/peer/events",
            "/dispatch/events",
            "/supervisor/events",
            "/provider/events",
        ),
    )
    # Per CAD source (charged after the signature check, in the webhook), per client address
    # (writes other than CAD events, here), per key (the same writes, here), and failed CAD
    # posts per client address (here, after they fail; never a signed event's limit).
    app.state.source_cache = SourceCache(app.state.secret_box, settings.source_cache_seconds)
    app.state.source_limits = TokenBuckets(
        settings.rate_limit_cad_per_second, settings.rate_limit_cad_burst
    )
    app.add_middleware(
        RateLimitMiddleware,
        writes=TokenBuckets(
            settings.rate_limit_writes_per_second, settings.rate_limit_writes_burst
        ),
        addresses=TokenBuckets(
            5 * settings.rate_limit_writes_per_second, 5 * settings.rate_limit_writes_burst
        ),
        cad_failures=TokenBuckets(
            settings.rate_limit_cad_per_second, settings.rate_limit_cad_burst
        ),
    )
    # Before anything reads a key: the rate limit and authentication must see the same one.
    app.add_middleware(OneAuthorizationMiddleware)
    app.add_middleware(RequestContextMiddleware)
    if settings.trusted_proxies:
        # Outermost: every layer sees the client the proxy reported.
        app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxies)
    app.include_router(ops_router)
    app.include_router(ingest_router)
    app.include_router(sources_router)
    app.include_router(calls_router)
    app.include_router(triage_router)
    app.include_router(geo_router)
    app.include_router(roster_router)
    app.include_router(assignments_router)
    app.include_router(dispatch_router)
    app.include_router(coverage_router)
    app.include_router(alerts_router)
    app.include_router(reports_router)
    app.include_router(people_router)
    app.include_router(followups_router)
    app.include_router(directory_router)
    app.include_router(dispatch_console)
    app.include_router(supervisor_page)
    app.include_router(reports_page)
    app.include_router(peer_app)
    app.include_router(peer_api)
    app.include_router(provider_page)
    app.include_router(notify_router)
    app.include_router(audit_router)
    app.include_router(keys_router)
    install_docs(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def create_app_from_environment() -> FastAPI:
    """The application of one of the N processes of ``corespond serve --workers N``
    (uvicorn's app factory, called in each): the settings its parent read, from the
    environment and environment file the parent handed down; logging alike. The background
    jobs never run here, whatever the settings say: ``corespond worker`` runs them, once."""
    settings = get_settings().model_copy(update={"worker_enabled": False})
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings, metrics_directory=Path(os.environ[MULTIPROCESS_VARIABLE]))


def _problems_as_problem_json(schema: dict[str, Any]) -> None:
    """Error responses are served as application/problem+json; say so in the document."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = {
                        "schema": {"$ref": "#/components/schemas/ProblemDocument"}
                    }
                    del content["application/json"]
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the CAD event schema that the webhook reads by hand."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    event_schema = CadEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(event_schema.pop("$defs", {}))
    components["CadEvent"] = event_schema
    callback = CallbackMessage.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(callback.pop("$defs", {}))
    components["CallbackMessage"] = callback
    # What corespond sends to a CAD's callback URL (OpenAPI 3.1 webhooks).
    schema["webhooks"] = {
        "assignment-change": {
            "post": {
                "summary": "An assignment change, POSTed to the source's callback URL",
                "description": "Signed with the source's secret (Standard Webhooks headers "
                "webhook-id, webhook-timestamp, webhook-signature). Answer 2xx; see "
                "docs/integrating.md for retries and ordering.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CallbackMessage"}
                        }
                    },
                },
                "responses": {"204": {"description": "Received."}},
            }
        }
    }
    _problems_as_problem_json(schema)
    app.openapi_schema = schema
    return schema
