"""API keys for admins: ``/v1/keys`` (create, list, revoke, rotate)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.auth import service
from corespond.auth.deps import Authorized
from corespond.auth.models import ApiKey
from corespond.auth.scopes import checked_scope
from corespond.auth.service import Scope
from corespond.db import SessionDep
from corespond.errors import Conflict, Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems

router = APIRouter(tags=["keys"])

Role = Literal["dispatcher", "peer", "supervisor", "provider_admin", "auditor", "admin", "partner"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scope: Annotated[str, StringConstraints(max_length=140, pattern=r"^[^\x00]*$")] | None = Field(
        default=None,
        description="KIND:VALUE, e.g. county:Kanawha, agency:BLUEFIELD PD; a partner key: "
        "agency:NAME (police) or organization:ID (a directory organization)",
    )
    expires_at: AwareDatetime | None = None


class KeyOut(BaseModel):
    id: uuid.UUID
    prefix: str = Field(description="Shown in the key after csk_; finds the key, proves nothing.")
    name: str
    role: str
    scope: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute.")
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            role=key.role,
            scope=f"{key.scope_kind}:{key.scope_value}" if key.scope_kind else None,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class IssuedKey(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


async def _scope(request: Request, session: AsyncSession, text: str | None) -> Scope | None:
    if text is None:
        return None
    return await checked_scope(session, request.app.state.geography.atlas, text)


WRITE = problems(Unauthorized, Forbidden, NotFound, Conflict, InvalidPayload)


@router.get("/v1/keys", response_model=list[KeyOut], responses=problems(Unauthorized, Forbidden))
async def list_keys(session: SessionDep, _: Authorized) -> list[KeyOut]:
    """Every key (never the key itself): role, scope, expiry, last use, revocation."""
    return [KeyOut.of(k) for k in await service.list_keys(session)]


@router.post("/v1/keys", status_code=201, response_model=IssuedKey, responses=WRITE)
async def create_key(
    body: KeyCreate, request: Request, session: SessionDep, principal: Authorized
) -> IssuedKey:
    """Issue a key; the response is the only time it is shown."""
    key, token = await service.create_key(
        session,
        role=body.role,
        scope=await _scope(request, session, body.scope),
        name=body.name,
        expires_at=body.expires_at,
        now=request.app.state.clock(),
    )
    await audit.record(session, principal, "key.create", "api_key", key.id, {"role": key.role})
    return IssuedKey(**KeyOut.of(key).model_dump(), key=token)


@router.post("/v1/keys/{key_id}/revoke", response_model=KeyOut, responses=WRITE)
async def revoke_key(
    key_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> KeyOut:
    """Revoke a key: refused from the next request on; its browser sessions end."""
    key = await service.find_key(session, str(key_id))
    await service.revoke_key(session, key, request.app.state.clock())
    await audit.record(session, principal, "key.revoke", "api_key", key.id)
    return KeyOut.of(key)


@router.post("/v1/keys/{key_id}/rotate", status_code=201, response_model=IssuedKey, responses=WRITE)
async def rotate_key(
    key_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    grace_hours: Annotated[float, Query(ge=0, le=168)] = 0,
) -> IssuedKey:
    """A new key with the same name, role and scope; the old one stops at once, or after
    `grace_hours` (at most a week) while its holder switches."""
    key = await service.find_key(session, str(key_id))
    new, token = await service.rotate_key(
        session, key, request.app.state.clock(), timedelta(hours=grace_hours)
    )
    await audit.record(session, principal, "key.rotate", "api_key", key.id, {"new": str(new.id)})
    return IssuedKey(**KeyOut.of(new).model_dump(), key=token)
