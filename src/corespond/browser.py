"""What every page a person signs in to shares: its security headers, the same-site check on
posts, and the session cookie (hashed token server-side; here HttpOnly, SameSite=Strict,
Secure outside development)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

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
