"""Typed domain errors and the one handler that renders them as RFC 9457 problem documents.

Every error a client can cause is a ``Problem`` subclass with its HTTP status; routes declare
them in ``responses=`` through :func:`problem_responses`. Anything else that escapes is a bug;
``middleware.RequestContextMiddleware`` answers it with a bare 500 problem that leaks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from asyncpg.exceptions import (
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    InternalClientError,
    PostgresConnectionError,
    TooManyConnectionsError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://corespond.dev/problems/"

log = structlog.get_logger(__name__)


class InvalidParam(BaseModel):
    """One field that failed validation."""

    name: str = Field(description="Dotted path of the field, e.g. `call.location.lat`.")
    reason: str


class ProblemDocument(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(
        default=None, serialization_alias="invalid-params", validation_alias="invalid-params"
    )


RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


@dataclass(frozen=True)
class AuditNote:
    """The audit entry a refusal is recorded as (``audit.deps.record_refused_read`` writes
    it in a transaction of its own: the refused request's rolls back)."""

    action: str
    record_type: str
    record_id: str | None
    detail: dict[str, Any]


class Problem(Exception):
    """Base of every error a client can cause; rendered as problem+json."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # True for a refusal that is itself recorded (a request that went unfilled): the
    # request's transaction is committed, not rolled back, before the problem is sent.
    keeps_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}
        # Set by a refusal that must be on the audit log as such, whatever the method.
        self.audit: AuditNote | None = None

    def document(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        clash = RESERVED_MEMBERS & self.extra.keys()
        if clash:  # a bug in the caller; never let it rewrite the standard members
            raise ValueError(f"problem extension members reuse standard names: {sorted(clash)}")
        body.update(self.extra)
        return body


class BadRequest(Problem):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="corespond"'})


class InvalidSignature(Problem):
    status = 401
    slug = "invalid-signature"
    title = "Webhook signature not valid"


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Not allowed for this key"


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(Problem):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(Problem):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class InvalidPayload(Problem):
    """422: the body parsed but a field is wrong; ``invalid-params`` names each field."""

    status = 422
    slug = "invalid-payload"
    title = "Request payload is not valid"

    def __init__(self, detail: str, params: Sequence[InvalidParam] = ()) -> None:
        extra: dict[str, Any] = {}
        if params:
            extra["invalid-params"] = [p.model_dump() for p in params]
        super().__init__(detail, extra=extra)


class RateLimited(Problem):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, wait: float, rate: float) -> None:
        seconds = max(1, math.ceil(wait))
        super().__init__(
            f"over the limit of {rate:g} requests a second; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class ServiceUnavailable(Problem):
    status = 503
    slug = "unavailable"
    title = "Service not ready"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached (down, restarting, a connection lost mid-request).
    Almost always nothing of the request was kept; only a connection lost with the commit
    on its way leaves that unknown. Either way the same request may be sent again (a CAD
    event sent again is answered ``duplicate`` if it was stored)."""

    def __init__(self) -> None:
        super().__init__(
            "the database cannot be reached: the request may not have been carried out; "
            "send it again",
            headers={"Retry-After": "2"},
        )


# Raised by the driver as they are (not wrapped by SQLAlchemy) when a connection cannot be
# opened or is lost: the server refuses, resets, is starting up or shutting down, is full.
# A connection the server terminated can also surface as the driver's "connection does not
# exist" or, caught mid-message, as an internal client error.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    CannotConnectNowError,
    PostgresConnectionError,
    TooManyConnectionsError,
    ConnectionDoesNotExistError,
    InternalClientError,
)
# SQLSTATE class 08 (connection exception), and admin shutdown, crash shutdown, cannot
# connect now, too many connections.
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is out of reach rather than that the request or the
    code is wrong."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        if sqlstate.startswith(_UNREACHABLE_SQLSTATES):
            return True
        return isinstance(exc.orig, UNREACHABLE) or isinstance(
            getattr(exc.orig, "__cause__", None), UNREACHABLE
        )
    return isinstance(exc, UNREACHABLE)


def invalid_params_from_errors(errors: Iterable[Any]) -> list[InvalidParam]:
    """Turn pydantic error dicts into named fields, dropping FastAPI's ``body`` prefix."""
    params: list[InvalidParam] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            params.append(InvalidParam(name="(body)", reason="body is not valid JSON"))
            continue
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        params.append(InvalidParam(name=".".join(loc) or "(body)", reason=str(err.get("msg", ""))))
    return params


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.document(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


_HTTP_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed for this key"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


RefusalHook = Callable[[Request, "Problem"], Awaitable[None]]


def install_problem_handlers(app: FastAPI, on_refused: RefusalHook | None = None) -> None:
    """Route every error path through problem+json; ``on_refused`` hears each problem
    answered (to put refused reads on the audit log)."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        if on_refused is not None:
            await on_refused(request, exc)
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        params = invalid_params_from_errors(exc.errors())
        names = ", ".join(p.name for p in params)
        return problem_response(InvalidPayload(f"invalid field(s): {names}", params), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_TITLES.get(exc.status_code, ("error", "Error"))
        body = {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": exc.status_code,
            "instance": request.url.path,
        }
        if isinstance(exc.detail, str) and exc.detail != title:
            body["detail"] = exc.detail
        return JSONResponse(
            body,
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
            media_type=PROBLEM_MEDIA_TYPE,
        )

    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        # Not a bug and not the client's doing: answered at once (no hanging until the
        # request's time limit), with a hint to retry, and logged without the text.
        log.warning("database_unreachable", error_type=type(exc).__name__)
        return problem_response(DatabaseUnavailable(), request)

    for kind in UNREACHABLE:
        app.add_exception_handler(kind, _unreachable)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unreachable(exc):
            return await _unreachable(request, exc)
        # SQLSTATE class 22 is "data exception": a value the database cannot hold. Fields are
        # validated before they get here; this is the backstop that keeps it a 4xx.
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        if sqlstate.startswith("22"):
            return problem_response(
                InvalidPayload("a value in the request cannot be stored or compared"), request
            )
        raise exc


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problems a route may answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        out[problem.status] = {
            "model": ProblemDocument,
            "description": problem.title,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
    return out
