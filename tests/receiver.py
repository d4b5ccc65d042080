"""A real HTTP receiver on 127.0.0.1 for delivery tests: verifies Standard Webhooks
signatures with the ``standardwebhooks`` library and answers as each test scripts it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Given the number of the request (1, 2, …), what to answer.
Script = Callable[[int], Awaitable[Response]]


async def ok(_: int) -> Response:
    return Response(status_code=204)


@dataclass
class Received:
    webhook_id: str
    event: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    secret: str
    script: Script = ok
    port: int = 0
    hits: int = 0
    received: list[Received] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cad/callback"

    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.verified]

    async def _receive(self, request: Request) -> Response:
        self.hits += 1
        number = self.hits
        body = await request.body()
        try:
            event = Webhook(self.secret).verify(body, dict(request.headers))
            verified = True
        except Exception:
            event, verified = json.loads(body or b"{}"), False
        answer = await self.script(number)
        if 200 <= answer.status_code < 300:
            self.received.append(Received(request.headers.get("webhook-id", ""), event, verified))
        return answer

    async def start(self) -> Receiver:
        app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                break
            await asyncio.sleep(0.01)
        sockets = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        self._server = None
        self._task = None
