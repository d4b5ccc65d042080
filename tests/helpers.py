"""Helpers shared by tests: signing CAD requests the way a CAD system does."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from corespond.ingest.schemas import EXAMPLE_EVENT


def signed_headers(
    secret: str,
    body: bytes | str,
    *,
    message_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` signed with ``secret`` at ``at`` (default now)."""
    text = body.decode() if isinstance(body, bytes) else body
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, text),
    }


def cad_event(
    event_id: str = "kanawha-911:884213",
    event_type: str = "call.created",
    occurred_at: str = "2026-11-23T04:12:09-05:00",
    **call: Any,
) -> dict[str, Any]:
    """A CAD event like the one in the API outline; keyword arguments override call fields."""
    body: dict[str, Any] = copy.deepcopy(EXAMPLE_EVENT["call"])
    if event_type != "call.created":
        body = {"incident_number": body["incident_number"]}
    body.update(call)
    return {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "call": body,
    }


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
