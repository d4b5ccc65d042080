"""Issuing and checking API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.auth import repository
from corespond.auth.models import ROLES, SCOPE_KINDS, ApiKey, WebSession
from corespond.errors import Conflict, InvalidPayload, NotFound, Unauthorized

KEY_PREFIX = "csk_"
LAST_USE_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class Scope:
    """What part of the program a key is limited to, e.g. ``agency:BLUEFIELD PD``, or for a
    peer's own key ``peer:<peer id>``."""

    kind: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, sep, value = text.partition(":")
        kind, value = kind.strip().lower(), value.strip()
        if not sep or kind not in SCOPE_KINDS or not value:
            raise InvalidPayload(
                f"scope must be KIND:VALUE with KIND one of {', '.join(SCOPE_KINDS)}: {text!r}"
            )
        return cls(kind, value)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name, role and scope."""

    key_id: uuid.UUID
    name: str
    role: str
    scope: Scope | None


def hash_key(token: str) -> bytes:
    # Keys are 32 random bytes, so a plain digest is enough (no password-style stretching).
    return hashlib.sha256(token.encode()).digest()


async def create_key(
    session: AsyncSession,
    *,
    role: str,
    scope: Scope | None = None,
    name: str | None = None,
    expires_at: datetime | None = None,
    now: datetime,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext key, which is never stored."""
    if expires_at is not None and expires_at <= now:
        raise InvalidPayload("a key's expiry must be in the future")
    if role not in ROLES:
        raise InvalidPayload(f"role must be one of {', '.join(ROLES)}: {role!r}")
    if role == "provider_admin" and (scope is None or scope.kind != "provider"):
        raise InvalidPayload("a provider_admin key needs a provider scope: provider:ID")
    if scope is not None and scope.kind == "peer" and role != "peer":
        raise InvalidPayload("a peer: scope is for peer keys")
    if role == "partner" and (scope is None or scope.kind not in ("agency", "organization")):
        raise InvalidPayload(
            "a partner key needs the scope of whom a person's consent may name: "
            "agency:NAME (a police agency) or organization:ID (a treatment provider or QRT "
            "in the directory)"
        )
    if scope is not None and scope.kind == "organization" and role != "partner":
        raise InvalidPayload("an organization: scope is for partner keys")
    if (role == "cad_integrator") != (scope is not None and scope.kind == "source"):
        raise InvalidPayload(
            "a cad_integrator key needs a source scope (source:ID), and a source: scope is "
            "for cad_integrator keys"
        )
    prefix = secrets.token_hex(4)
    token = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name or f"{role} key",
        prefix=prefix,
        key_hash=hash_key(token),
        role=role,
        scope_kind=scope.kind if scope else None,
        scope_value=scope.value if scope else None,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return key, token


async def create_first_admin_key(
    session: AsyncSession, name: str, now: datetime
) -> tuple[ApiKey, str]:
    """The installation's first admin key; ``Conflict`` once a live admin key exists (more
    are made with ``keys create``, by someone who already holds one)."""
    live = [
        key
        for key in await repository.list_keys(session)
        if key.role == "admin"
        and key.revoked_at is None
        and (key.expires_at is None or key.expires_at > now)
    ]
    if live:
        raise Conflict(
            f"already initialised: {len(live)} live admin key(s) exist (corespond keys list); "
            "make another with `corespond keys create --role admin --name NAME`"
        )
    return await create_key(session, role="admin", name=name, now=now)


async def revoke_keys_named(session: AsyncSession, name: str, now: datetime) -> int:
    """Revoke every live key with this name (the demo reissues its keys this way)."""
    return await repository.revoke_named(session, name, now)


async def authenticate(session: AsyncSession, token: str, now: datetime) -> Principal:
    """The principal of a live key, else ``Unauthorized``."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        raise Unauthorized("API key is not valid")
    key = await repository.live_key_by_hash(session, hash_key(token))
    if key is None:
        raise Unauthorized("API key is not valid or has been revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized(f"API key expired at {key.expires_at.isoformat(timespec='seconds')}")
    if key.last_used_at is None or now - key.last_used_at > LAST_USE_PRECISION:
        key.last_used_at = now  # at most once a minute: not a write per request
        await session.flush()
    return principal_of(key)


def scope_of(key: ApiKey) -> Scope | None:
    return Scope(key.scope_kind, key.scope_value) if key.scope_kind and key.scope_value else None


def principal_of(key: ApiKey) -> Principal:
    return Principal(key_id=key.id, name=key.name, role=key.role, scope=scope_of(key))


async def open_session(
    session: AsyncSession, principal: Principal, lifetime: timedelta, now: datetime
) -> str:
    """A browser sign-in for ``principal``: returns the token for its cookie (only a hash is
    stored)."""
    token = secrets.token_urlsafe(32)
    await repository.add_session(
        session,
        WebSession(token_hash=hash_key(token), key_id=principal.key_id, expires_at=now + lifetime),
    )
    return token


async def session_principal(session: AsyncSession, token: str, now: datetime) -> Principal | None:
    """Who a browser session belongs to, if it is open and its key is live."""
    if not token or len(token) > 100:
        return None
    key = await repository.key_of_open_session(session, hash_key(token), now)
    return principal_of(key) if key is not None else None


async def end_session(session: AsyncSession, token: str, now: datetime) -> None:
    await repository.end_session(session, hash_key(token), now)


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return await repository.list_keys(session)


async def find_key(session: AsyncSession, ref: str) -> ApiKey:
    """A key by id or by its prefix (the 8 characters after ``csk_``)."""
    key = await repository.key_by_ref(session, ref, KEY_PREFIX)
    if key is None:
        raise NotFound(f"no API key {ref!r}")
    return key


async def revoke_key(session: AsyncSession, key: ApiKey, at: datetime) -> ApiKey:
    """Revoke a key; it is refused from the next request on (and its browser sessions end)."""
    if key.revoked_at is None:
        key.revoked_at = at
        await session.flush()
    return key


async def rotate_key(
    session: AsyncSession, key: ApiKey, now: datetime, grace: timedelta = timedelta(0)
) -> tuple[ApiKey, str]:
    """A new key with the same name, role, scope and expiry; the old one stops working
    after ``grace`` (at once by default)."""
    if key.revoked_at is not None:
        raise Conflict("a revoked key cannot be rotated; create a new one")
    new, token = await create_key(
        session,
        role=key.role,
        scope=scope_of(key),
        name=key.name,
        expires_at=key.expires_at,
        now=now,
    )
    if grace > timedelta(0):
        key.expires_at = min(key.expires_at or now + grace, now + grace)
    else:
        key.revoked_at = now
    await session.flush()
    return new, token
