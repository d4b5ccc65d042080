"""Writing and checking the audit log.

Entries are chained: each one's hash covers the previous hash and its own content, taken
under a transaction-scoped advisory lock so the chain has one order. ``verify`` recomputes
the chain and names the first entry that does not match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import repository
from corespond.audit.models import AuditEntry
from corespond.auth.service import Principal

CHAIN_LOCK = "corespond-audit-chain"

# The chain is an HMAC under a key derived from CORESPOND_SECRET_KEY, which never enters the
# database: someone who can write rows cannot forge a chain that verifies.
_chain_key: bytes = b""


def use_chain_key(key: bytes) -> None:
    """Set the HMAC key of the chain (the application and the CLI do, from the secret key)."""
    global _chain_key
    _chain_key = key


def canonical(entry: AuditEntry) -> bytes:
    """The content an entry's hash covers (everything but its id and hashes)."""
    content = {
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "key_id": str(entry.key_id) if entry.key_id else None,
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "record_type": entry.record_type,
        "record_id": entry.record_id,
        "request_id": entry.request_id,
        "detail": entry.detail or {},
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev: bytes | None, entry: AuditEntry) -> bytes:
    return hmac.new(_chain_key, (prev or b"") + canonical(entry), hashlib.sha256).digest()


async def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    record_type: str,
    record_id: str | uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction (it stands or falls with what it records)."""
    await repository.lock_chain(session, CHAIN_LOCK)
    prev = await repository.last_hash(session)
    entry = AuditEntry(
        at=datetime.now(UTC),
        key_id=principal.key_id if principal else None,
        actor=actor or (principal.name if principal else "corespond"),
        role=principal.role if principal else None,
        action=action,
        record_type=record_type,
        record_id=str(record_id) if record_id is not None else None,
        request_id=structlog.contextvars.get_contextvars().get("request_id"),
        detail=detail or {},
        prev_hash=prev,
    )
    entry.hash = chain_hash(prev, entry)
    await repository.add(session, entry)
    return entry


@dataclass(frozen=True)
class Verification:
    entries: int
    broken_at: int | None  # id of the first entry whose hash does not match
    last_hash: bytes | None = None  # keep it outside the database to notice a cut tail

    @property
    def intact(self) -> bool:
        return self.broken_at is None


async def verify(session: AsyncSession, batch: int = 5000) -> Verification:
    """Recompute the chain from the first entry."""
    prev: bytes | None = None
    count = 0
    last_id = 0
    while True:
        rows = await repository.entries_after(session, last_id, batch)
        if not rows:
            return Verification(count, None, prev)
        for entry in rows:
            if entry.prev_hash != prev or entry.hash != chain_hash(prev, entry):
                return Verification(count, entry.id)
            prev = entry.hash
            count += 1
            last_id = entry.id


async def list_entries(
    session: AsyncSession, where: repository.AuditFilter, *, limit: int
) -> Sequence[AuditEntry]:
    """Entries newest first."""
    return await repository.list_entries(session, where, limit=limit)
