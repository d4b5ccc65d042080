"""Every query of the audit domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit.models import AuditEntry, RetiredChainKey


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    record_type: str | None = None
    record_id: str | None = None
    key_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None
    before: tuple[datetime, int] | None = None


async def lock_chain(session: AsyncSession, name: str) -> None:
    """One writer at a time on the chain, until this transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": name})


async def may_rewrite(session: AsyncSession) -> bool:
    """Whether the role of this session could change or remove entries (the owner, a
    superuser, a role granted more than the service is)."""
    found: bool = await session.scalar(
        text(
            "SELECT has_table_privilege('audit_log', 'UPDATE') "
            "OR has_table_privilege('audit_log', 'DELETE') "
            "OR has_table_privilege('audit_log', 'TRUNCATE')"
        )
    )
    return found


async def last_hash(session: AsyncSession) -> bytes | None:
    found: bytes | None = await session.scalar(
        select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    )
    return found


async def last_entry_id(session: AsyncSession) -> int | None:
    found: int | None = await session.scalar(
        select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)
    )
    return found


async def retired_keys(session: AsyncSession) -> Sequence[RetiredChainKey]:
    return (await session.scalars(select(RetiredChainKey).order_by(RetiredChainKey.id))).all()


async def add_retired_key(session: AsyncSession, row: RetiredChainKey) -> None:
    session.add(row)
    await session.flush()


async def add(session: AsyncSession, entry: AuditEntry) -> None:
    session.add(entry)
    await session.flush()


async def entries_after(session: AsyncSession, after_id: int, limit: int) -> Sequence[AuditEntry]:
    return (
        await session.scalars(
            select(AuditEntry).where(AuditEntry.id > after_id).order_by(AuditEntry.id).limit(limit)
        )
    ).all()


async def list_entries(
    session: AsyncSession, where: AuditFilter, *, limit: int
) -> Sequence[AuditEntry]:
    query = select(AuditEntry)
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    if where.record_type is not None:
        query = query.where(AuditEntry.record_type == where.record_type)
    if where.record_id is not None:
        query = query.where(AuditEntry.record_id == where.record_id)
    if where.key_id is not None:
        query = query.where(AuditEntry.key_id == where.key_id)
    if where.start is not None:
        query = query.where(AuditEntry.at >= where.start)
    if where.end is not None:
        query = query.where(AuditEntry.at < where.end)
    if where.before is not None:
        query = query.where(tuple_(AuditEntry.at, AuditEntry.id) < tuple_(*where.before))
    query = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    return (await session.scalars(query)).all()
