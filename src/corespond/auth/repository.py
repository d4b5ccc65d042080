"""Every query of the auth domain: keys and browser sessions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth.models import ApiKey, WebSession


async def live_key_by_hash(session: AsyncSession, key_hash: bytes) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )


async def revoke_named(session: AsyncSession, name: str, at: datetime) -> int:
    result = await session.execute(
        update(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))).all()


async def key_by_ref(session: AsyncSession, ref: str, prefix: str) -> ApiKey | None:
    """By id, else by the prefix shown in the key."""
    try:
        return await session.get(ApiKey, uuid.UUID(ref))
    except ValueError:
        return await session.scalar(select(ApiKey).where(ApiKey.prefix == ref.removeprefix(prefix)))


async def add_session(session: AsyncSession, web_session: WebSession) -> None:
    session.add(web_session)
    await session.flush()


async def key_of_open_session(
    session: AsyncSession, token_hash: bytes, now: datetime
) -> ApiKey | None:
    """The live key of an open, unexpired browser session."""
    return (
        await session.execute(
            select(ApiKey)
            .join(WebSession, WebSession.key_id == ApiKey.id)
            .where(
                WebSession.token_hash == token_hash,
                WebSession.ended_at.is_(None),
                WebSession.expires_at > now,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
        )
    ).scalar_one_or_none()


async def end_session(session: AsyncSession, token_hash: bytes, now: datetime) -> None:
    await session.execute(
        update(WebSession)
        .where(WebSession.token_hash == token_hash, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
