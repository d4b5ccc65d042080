"""A push service on 127.0.0.1 for tests and the benchmark: it checks each request's VAPID
JWT (RFC 8292) against the key it names, decrypts the payload (RFC 8291, aes128gcm) with the
subscription's private key and auth secret (``http_ece``), and keeps what it got."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import served


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscriber:
    """A browser's side of a subscription: its key pair and auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def keys(self) -> dict[str, str]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"p256dh": b64(public), "auth": b64(self.auth)}


@dataclass
class Received:
    path: str
    payload: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class PushService:
    url: str = ""
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    answer: int = 201
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(self, name: str) -> dict[str, Any]:
        subscriber = self.subscribers.setdefault(name, Subscriber())
        return {"endpoint": f"{self.url}/push/{name}", "keys": subscriber.keys()}

    async def push(self, request: Request) -> Response:
        name = request.path_params["name"]
        problem = self._check_vapid(request.headers.get("authorization", ""))
        subscriber = self.subscribers.get(name)
        if problem or subscriber is None:
            self.refused.append(problem or "unknown subscription")
            return Response(status_code=401 if problem else 410)
        body = await request.body()
        plain = http_ece.decrypt(
            body,
            private_key=subscriber.private_key,
            auth_secret=subscriber.auth,
            version="aes128gcm",
        )
        self.received.append(
            Received(name, json.loads(plain), dict(request.headers), time.perf_counter())
        )
        self.arrived.set()
        return Response(status_code=self.answer)

    def _check_vapid(self, header: str) -> str | None:
        if not header.startswith("vapid "):
            return "no vapid authorization"
        fields = dict(part.strip().split("=", 1) for part in header[6:].split(","))
        token, key = fields.get("t", ""), fields.get("k", "")
        try:
            head, claims, signature = token.split(".")
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
            raw = unb64(signature)
            der = utils.encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except Exception as exc:  # any malformed or forged token
            return f"vapid token does not verify: {type(exc).__name__}"
        content = json.loads(unb64(claims))
        if content.get("aud") != self.url:
            return f"aud {content.get('aud')!r} is not {self.url!r}"
        if content.get("exp", 0) <= time.time() or not content.get("sub"):
            return "expired or no sub"
        return None


@asynccontextmanager
async def push_service() -> AsyncIterator[PushService]:
    service = PushService()
    app = Starlette(routes=[Route("/push/{name}", service.push, methods=["POST"])])
    async with served(app) as url:
        service.url = url
        yield service
