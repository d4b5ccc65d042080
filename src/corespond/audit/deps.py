"""A dependency that puts an endpoint's successful changes on the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Request

from corespond.audit import service
from corespond.db import SessionDep


def audited(record_type: str) -> Any:
    """Log ``<record_type>.<method>`` with the record id from the path, after the endpoint
    succeeds and in its transaction (a refused or failed change leaves no entry)."""

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
            next(iter(params.values()), None),
            {
                "route": route,
                **({"path": params} if params else {}),
                **({"query": dict(request.query_params)} if request.query_params else {}),
            },
        )

    # In the endpoint's own transaction: torn down before the session commits.
    return Depends(dependency, scope="function")
