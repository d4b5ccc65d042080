"""A dependency that puts an endpoint's successful changes on the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Request

from corespond.audit import service
from corespond.db import SessionDep, database_of
from corespond.errors import Problem


def created(request: Request, record_id: object, **detail: Any) -> None:
    """Name the record an endpoint created or changed (and what of it), for its
    ``audited`` entry."""
    request.state.audit_record_id = str(record_id)
    request.state.audit_detail = detail


def audited(record_type: str) -> Any:
    """Log ``<record_type>.<method>`` with the record's id (from the path, or what the
    endpoint named with ``created``), after the endpoint succeeds and in its transaction (a
    refused or failed change leaves no entry)."""

    async def dependency(request: Request, session: SessionDep) -> AsyncIterator[None]:
        yield
        principal = getattr(request.state, "principal", None)
        params = dict(request.path_params)
        route = getattr(request.scope.get("route"), "path", request.url.path)
        await service.record(
            session,
            principal,
            f"{record_type}.{request.method.lower()}",
            record_type,
            getattr(request.state, "audit_record_id", None) or next(iter(params.values()), None),
            {
                "route": route,
                **({"path": params} if params else {}),
                **({"query": dict(request.query_params)} if request.query_params else {}),
                **getattr(request.state, "audit_detail", {}),
            },
        )

    # In the endpoint's own transaction: torn down before the session commits.
    return Depends(dependency, scope="function")


READS = ("GET", "HEAD")


async def record_refused_read(request: Request, problem: Problem) -> None:
    """A read refused to a known key (403, or 404 for what it may not see) goes on the
    audit log in a transaction of its own (the request's has rolled back). Requests without
    a valid key are not: they are counted in the access log and metrics instead, so that
    anonymous probing cannot fill the audit log. A refusal that names its own entry
    (``Problem.audit``: a read or share a person's consent does not allow) is recorded as
    that, whatever the method."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return
    note = problem.audit
    if note is not None:
        async with database_of(request).sessionmaker() as session, session.begin():
            await service.record(
                session,
                principal,
                note.action,
                note.record_type,
                note.record_id,
                {**note.detail, "route": getattr(request.scope.get("route"), "path", None)},
            )
        return
    if request.method not in READS or problem.status not in (403, 404):
        return
    route = getattr(request.scope.get("route"), "path", None)
    async with database_of(request).sessionmaker() as session, session.begin():
        await service.record(
            session,
            principal,
            "read.refused",
            "request",
            next(iter(request.path_params.values()), None),
            {"route": route, "path": request.url.path, "status": problem.status},
        )
