"""The one dependency that authenticates a bearer key and applies the access table."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corespond.auth.policy import POLICY
from corespond.auth.service import Principal, authenticate
from corespond.db import database_of
from corespond.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer csk_...`")


def rule_key(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


async def authorized(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    """The caller's principal if their key's role may call this endpoint (see
    ``auth.policy.POLICY``; admins always may). An endpoint with no rule is refused."""
    rule = POLICY.get(rule_key(request))
    if rule is None or rule.public is not None:
        raise Forbidden("no access rule allows a key here")
    if credentials is None:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    # A separate short session: authentication must not share the endpoint's transaction.
    async with database_of(request).sessionmaker() as session, session.begin():
        principal = await authenticate(session, credentials.credentials, request.app.state.clock())
    request.state.principal = principal  # also for the audit entry of a refused read
    allowed = {*rule.roles, "admin"}
    if principal.role not in allowed:
        needed = ", ".join(sorted(allowed))
        raise Forbidden(f"role {principal.role!r} may not do this; needs one of {needed}")
    return principal


Authorized = Annotated[Principal, Depends(authorized)]
