"""The audit log for auditors: ``GET /v1/audit``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from corespond.audit import service
from corespond.audit.repository import AuditFilter
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.errors import BadRequest, Forbidden, InvalidPayload, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.kit.validators import QueryTimestamp
from corespond.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["audit"])

Slug = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")]


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    key_id: uuid.UUID | None
    role: str | None
    action: str
    record_type: str
    record_id: str | None
    request_id: str | None
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None
    order: Literal["newest_first"] = "newest_first"


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    responses=problems(BadRequest, Unauthorized, Forbidden, InvalidPayload),
)
async def list_audit(
    session: SessionDep,
    _: Authorized,
    action: Slug = None,
    record_type: Slug = None,
    record_id: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    key: Annotated[uuid.UUID | None, Query(description="Entries of one API key")] = None,
    start: Annotated[QueryTimestamp | None, Query(alias="from")] = None,
    end: Annotated[QueryTimestamp | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Who read or changed what, newest first (auditors and admins). `corespond audit
    verify` checks that no entry was altered or removed."""
    before = None
    if cursor:
        at, marker = decode_cursor(cursor)
        before = (at, marker.int)
    where = AuditFilter(
        action=action,
        record_type=record_type,
        record_id=record_id,
        key_id=key,
        start=start,
        end=end,
        before=before,
    )
    rows = await service.list_entries(session, where, limit=limit + 1)
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1].at, uuid.UUID(int=page[-1].id)) if len(rows) > limit else None
    )
    return AuditPage(
        items=[
            AuditEntryOut(
                id=e.id,
                at=e.at,
                actor=e.actor,
                key_id=e.key_id,
                role=e.role,
                action=e.action,
                record_type=e.record_type,
                record_id=e.record_id,
                request_id=e.request_id,
                detail=e.detail or {},
                hash=e.hash.hex(),
            )
            for e in page
        ],
        next_cursor=next_cursor,
    )
