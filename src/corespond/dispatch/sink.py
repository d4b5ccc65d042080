"""A small receiver of assignment events: verifies each signature and shows what dispatch
would see. For demos, and for CAD integrators testing their side (``corespond
dispatch-sink``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from corespond.clock import system_clock


def describe(event: dict[str, Any]) -> str:
    """One line a dispatcher would understand."""
    data = event.get("data", {})
    call = data.get("call") or {}
    assignment = data.get("assignment") or {}
    peer = data.get("peer") or {}
    who = (
        f"{peer.get('display_name')} ({peer.get('provider')}, {peer.get('phone')})" if peer else "-"
    )
    extra = ""
    if assignment.get("cancel_reason"):
        extra = f" reason={assignment['cancel_reason']}"
    if assignment.get("next_available_at"):
        extra += f" next_available_at={assignment['next_available_at']}"
    return (
        f"{event.get('type', '?'):<26} {call.get('source')}/{call.get('incident_number')}  "
        f"peer {who}{extra}"
    )


def sink_app(secret: str, *, fail_first: int = 0, say: Callable[[str], None] = print) -> Starlette:
    """The receiver: ``POST /`` (any path) with Standard Webhooks headers. Answers 204 to a
    verified event (and to a repeat, which it drops by ``webhook-id``), 401 to a bad
    signature; with ``fail_first`` it answers 503 to that many first deliveries."""
    verifier = Webhook(secret)
    seen: set[str] = set()
    failures = {"left": fail_first}

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            event = verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            say(f"REJECTED  bad signature ({exc})")
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        webhook_id = request.headers.get("webhook-id", "")
        stamp = system_clock().isoformat(timespec="seconds")
        if failures["left"] > 0:
            failures["left"] -= 1
            say(f"{stamp}  503 on purpose ({failures['left']} more to fail)  {webhook_id}")
            return Response(status_code=503, headers={"retry-after": "1"})
        if webhook_id in seen:
            say(f"{stamp}  repeat of {webhook_id}, dropped")
            return Response(status_code=204)
        seen.add(webhook_id)
        say(f"{stamp}  {describe(event if isinstance(event, dict) else json.loads(body))}")
        return Response(status_code=204)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
