"""Opaque cursors for keyset pagination: (a timestamp, an id) in URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from corespond.errors import BadRequest


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a cursor stands for; ``BadRequest`` for one this service did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(at), uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadRequest("cursor is not one this service issued") from exc
    if parsed[0].tzinfo is None or not 1970 <= parsed[0].year < 2200:
        raise BadRequest("cursor is not one this service issued")
    return parsed
