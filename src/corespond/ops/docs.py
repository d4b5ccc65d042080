"""The API reference: ``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), their
scripts and styles served by this process (from the ``fastapi-offline`` package), never from
a CDN.

Development and test serve them to anyone. Production serves them only with
``CORESPOND_DOCS=true``, and then the document itself needs an API key of any role: the
pages hold no API description of their own, and fetch it with the key they ask for.
"""

from __future__ import annotations

from html import escape
from string import Template

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from corespond.auth.service import authenticate
from corespond.db import database_of
from corespond.errors import Unauthorized

STATIC_PATH = "/docs/static"
SECURITY_HEADERS = {
    # Nothing from another site: the rendered document may not load or call anything
    # outside this service. ReDoc injects its styles and runs its search in a worker.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
VIEWERS = {
    "swagger": ("swagger-ui-bundle.js", "swagger-ui.css"),
    "redoc": ("redoc.standalone.js", None),
}
PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<link rel="icon" type="image/png" href="$static/favicon.png">
$stylesheet
</head>
<body>
<form id="key-form" hidden>
<p><label for="key">API key (the API description is shown to API keys only)</label>
<input id="key" type="password" autocomplete="off" required>
<button type="submit">Show</button></p>
<p id="key-error" role="alert"></p>
</form>
<div id="reference" data-viewer="$viewer" data-openapi="$openapi"></div>
<script src="$static/$script"></script>
<script src="$static/docs.js"></script>
</body>
</html>
""")


def install_docs(app: FastAPI) -> None:
    """Add the reference's routes, unless this is production without ``CORESPOND_DOCS``."""
    settings = app.state.settings
    if settings.environment == "production" and not settings.docs:
        return
    app.add_route("/openapi.json", openapi_document, include_in_schema=False)
    app.add_route("/docs", swagger_page, include_in_schema=False)
    app.add_route("/redoc", redoc_page, include_in_schema=False)
    app.mount(
        STATIC_PATH,
        StaticFiles(packages=[("corespond.ops", "static"), ("fastapi_offline", "static")]),
        name="docs-static",
    )


async def openapi_document(request: Request) -> Response:
    if request.app.state.settings.environment == "production":
        await _require_key(request)
    return JSONResponse(request.app.openapi(), headers={"Cache-Control": "no-store"})


async def swagger_page(request: Request) -> Response:
    return _page(request, "swagger", "Swagger UI")


async def redoc_page(request: Request) -> Response:
    return _page(request, "redoc", "ReDoc")


def _page(request: Request, viewer: str, name: str) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    script, stylesheet = VIEWERS[viewer]
    static = escape(root + STATIC_PATH)
    body = PAGE.substitute(
        title=escape(f"{request.app.title} API: {name}"),
        static=static,
        stylesheet=f'<link rel="stylesheet" href="{static}/{stylesheet}">' if stylesheet else "",
        viewer=viewer,
        openapi=escape(root + "/openapi.json"),
        script=script,
    )
    return HTMLResponse(body, headers=SECURITY_HEADERS)


async def _require_key(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    # A short session of its own, as for every key check.
    async with database_of(request).sessionmaker() as session, session.begin():
        await authenticate(session, token.strip(), request.app.state.clock())
