"""FastAPI dependencies that authenticate a bearer key and check its role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from corespond.auth.service import Principal, authenticate
from corespond.db import database_of
from corespond.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer csk_...`")


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys whose role is one of ``roles`` (``admin`` always is)."""
    allowed = {*roles, "admin"}

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        if credentials is None:
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
        # A separate short session: authentication must not share the endpoint's transaction.
        async with database_of(request).sessionmaker() as session, session.begin():
            principal = await authenticate(session, credentials.credentials)
        if principal.role not in allowed:
            needed = ", ".join(sorted(allowed))
            raise Forbidden(f"role {principal.role!r} may not do this; needs one of {needed}")
        request.state.principal = principal
        return principal

    return dependency
