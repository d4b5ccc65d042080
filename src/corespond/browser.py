"""What every page a person signs in to shares: its security headers, the same-site check on
posts, and the session cookie (hashed token server-side; here HttpOnly, SameSite=Strict,
Secure outside development)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.service import (
    Principal,
    authenticate,
    end_session,
    open_session,
    session_principal,
)
from corespond.db import database_of
from corespond.errors import Forbidden, Unauthorized

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def same_site(request: Request) -> bool:
    """A post from this site: the browser says so (Sec-Fetch-Site), or the Origin (or
    Referer) is this host. Refuses another site's page posting a sign-in, sign-out or action."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # not a browser (curl, tests): no cross-site form to fear
    return urlsplit(origin).netloc == request.headers.get("host", "")


def secure(request: Request) -> bool:
    """``Secure`` over TLS (direct or behind a proxy saying so), and always outside
    development and tests, where a proxy that forgot ``X-Forwarded-Proto`` must not make
    the cookie travel in clear."""
    if request.app.state.settings.environment not in ("development", "test"):
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def set_session_cookie(
    response: Response, request: Request, name: str, token: str, path: str, hours: int
) -> None:
    response.set_cookie(
        name,
        token,
        max_age=hours * 3600,
        path=path,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def clear_session_cookie(response: Response, request: Request, name: str, path: str) -> None:
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=secure(request)
    )


STREAM_POLL_SECONDS = 1.0
STREAM_HEARTBEAT_SECONDS = 15.0
STREAM_LIFETIME_SECONDS = 30 * 60.0  # then the browser reconnects (EventSource does)


def change_stream(
    request: Request,
    stamp: Callable[[AsyncSession], Awaitable[object]],
    still_signed_in: Callable[[AsyncSession], Awaitable[bool]],
) -> StreamingResponse:
    """Server-Sent Events for a signed-in page: ``data: changed`` whenever ``stamp`` (read
    every second) changes, a comment every 15 s to keep the connection open; the stream
    ends when ``still_signed_in`` says the session is over, or after half an hour."""
    database = database_of(request)

    async def stream() -> AsyncIterator[str]:
        last: object = None
        first = True
        quiet = lived = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected() and lived < STREAM_LIFETIME_SECONDS:
            async with database.sessionmaker() as check:
                now = await stamp(check)
                if quiet >= STREAM_HEARTBEAT_SECONDS and not await still_signed_in(check):
                    return
            if first or now != last:
                if not first:
                    yield "data: changed\n\n"
                last, first, quiet = now, False, 0.0
            elif quiet >= STREAM_HEARTBEAT_SECONDS:
                yield ": still here\n\n"
                quiet = 0.0
            await asyncio.sleep(STREAM_POLL_SECONDS)
            quiet += STREAM_POLL_SECONDS
            lived += STREAM_POLL_SECONDS

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@dataclass(frozen=True)
class KeySignIn:
    """A page signed in to with an API key: its cookie, who may open it, and how it answers
    a refusal (its sign-in form with the error)."""

    page: str  # "/dispatch": the page, the cookie's path, where sign-in and -out go back to
    cookie: str
    allowed: tuple[str, ...]
    hours: int
    refuse: Callable[[int, str], Response]
    what: str = "page"

    async def sign_in(
        self,
        request: Request,
        session: AsyncSession,
        key: str,
        check: Callable[[Principal], str | None] | None = None,
    ) -> Response:
        """Open a session for a valid key of an allowed role (``check`` may refuse it with
        a sentence), set the cookie and go to the page; else the form, saying why."""
        if not same_site(request):
            return self.refuse(403, "Sign in from this page.")
        try:
            principal = await authenticate(session, key.strip(), request.app.state.clock())
        except Unauthorized:
            return self.refuse(401, "That key is not valid or has been revoked.")
        if principal.role not in self.allowed:
            return self.refuse(403, f"A {principal.role} key cannot open this {self.what}.")
        refused = check(principal) if check else None
        if refused:
            return self.refuse(403, refused)
        clock = request.app.state.clock
        token = await open_session(session, principal, timedelta(hours=self.hours), clock())
        response = RedirectResponse(self.page, status_code=303)
        set_session_cookie(response, request, self.cookie, token, self.page, self.hours)
        return response

    async def signed_in(self, request: Request, session: AsyncSession) -> Principal | None:
        """Who holds this page's session cookie, if its key is live and of an allowed role."""
        token = request.cookies.get(self.cookie)
        if not token:
            return None
        principal = await session_principal(session, token, request.app.state.clock())
        return principal if principal is not None and principal.role in self.allowed else None

    async def require(
        self, request: Request, session: AsyncSession, *, post: bool = False
    ) -> Principal:
        """The signed-in principal, else ``Unauthorized``; an action (``post``) only from
        this site."""
        if post and not same_site(request):
            raise Forbidden("use this page")
        principal = await self.signed_in(request, session)
        if principal is None:
            raise Unauthorized(f"sign in at {self.page}")
        return principal

    async def sign_out(self, request: Request, session: AsyncSession) -> Response:
        """End the session of the cookie (from this page only) and go back to the form."""
        if not same_site(request):
            return self.refuse(403, "Sign out from this page.")
        token = request.cookies.get(self.cookie)
        if token:
            await end_session(session, token, request.app.state.clock())
        response = RedirectResponse(self.page, status_code=303)
        clear_session_cookie(response, request, self.cookie, self.page)
        return response
