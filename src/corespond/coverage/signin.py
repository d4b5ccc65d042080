"""Signing in to the supervisor's pages: ``/supervisor`` and the reports page under it share
one session (see ``coverage.page`` for how the cookie is kept)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from corespond.browser import SECURITY_HEADERS, KeySignIn

COOKIE = "corespond_supervisor"
ALLOWED = ("supervisor", "admin")
COOKIE_PATH = "/supervisor"
SESSION_HOURS = 12

templates = Environment(
    loader=PackageLoader("corespond.coverage", "templates"),
    autoescape=select_autoescape(["html"]),
)


def html(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the supervisor's, rendered with the site's security headers."""
    body = templates.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


SIGN_IN = KeySignIn(
    page=COOKIE_PATH,
    cookie=COOKIE,
    allowed=ALLOWED,
    hours=SESSION_HOURS,
    refuse=lambda status, error: html("login.html", status, error=error),
)
