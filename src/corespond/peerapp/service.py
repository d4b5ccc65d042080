"""Signing a peer in on a phone, and what the peer's page shows.

The peer's provider admin or an admin makes a one-time link for a peer (the API, or
``corespond peers sign-in-link``), sent to the peer's phone by SMS where the peer has one;
the peer opens it on the phone and taps Sign in. A supervisor never makes one: a link is
the peer's identity, and with it the provider's people. The link
works once and for ``LINK_MINUTES``. Signing in makes a peer key (role ``peer``, scope the
peer, expiring with the session; the link's row keeps who made it and which key it
opened, and the sign-in's audit entry names both) that nobody ever sees, and a browser
session bound to it:
the same session rules as the supervisor page (hashed token, HttpOnly, SameSite, Secure
outside development), and revoking the key, signing out or the expiry end it.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments.models import Assignment
from corespond.auth.service import (
    Principal,
    Scope,
    create_key,
    hash_key,
    open_session,
    principal_of,
)
from corespond.errors import Conflict, Forbidden, NotFound
from corespond.followups import service as followups
from corespond.notify import service as notify
from corespond.peerapp import repository
from corespond.peerapp.models import PeerSignIn
from corespond.roster import service as roster
from corespond.roster.models import Peer

LINK_MINUTES = 15
SESSION_HOURS = 12
TOKEN_PREFIX = "psi_"  # noqa: S105 - marks a sign-in token, not a secret


@dataclass(frozen=True)
class SignInLink:
    token: str
    peer: Peer
    expires_at: datetime
    sent_to_phone: bool = False


async def create_link(
    session: AsyncSession,
    principal: Principal,
    peer_id: uuid.UUID,
    now: datetime,
    *,
    by_sms: bool = False,
) -> SignInLink:
    """A one-time sign-in link for a peer, made only by the peer's provider admin or an
    admin: a link is the peer's identity (the people of its provider, consents it
    witnesses), so no other role (a supervisor, a dispatcher) may make one. With
    ``by_sms`` the link is sent to the peer's own phone, when the peer has one."""
    if principal.role not in ("provider_admin", "admin"):
        raise Forbidden("a sign-in link is made by the peer's provider admin, for its own peer")
    peer = await roster.get_peer(session, peer_id, principal)
    roster.require_provider_access(principal, peer.provider_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(minutes=LINK_MINUTES)
    session.add(
        PeerSignIn(
            token_hash=hash_key(token),
            peer_id=peer.id,
            created_by=roster.actor(principal),
            expires_at=expires_at,
        )
    )
    await session.flush()
    sent = by_sms and await notify.sign_in_link_made(
        session, peer, f"/peer/sign-in?token={token}", expires_at, now
    )
    return SignInLink(token, peer, expires_at, sent)


class LinkRefused(Conflict):
    """The link cannot sign anyone in (used, expired, or never made)."""

    slug = "sign-in-link-refused"
    title = "This sign-in link cannot be used"


@dataclass(frozen=True)
class SignedIn:
    cookie: str
    peer: Peer
    key_id: uuid.UUID
    link_by: str  # who made the link the session came from


async def sign_in(session: AsyncSession, token: str, now: datetime) -> SignedIn:
    """Use a link: the browser session's token, the peer, the session's key id and who
    made the link. Each link works once."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise LinkRefused("this is not a sign-in link; ask your provider for a new one")
    link = await session.get(PeerSignIn, hash_key(token), with_for_update=True)
    if link is None:
        raise LinkRefused("this sign-in link is not known; ask your provider for a new one")
    if link.used_at is not None:
        raise LinkRefused("this sign-in link has been used; ask your provider for a new one")
    if link.expires_at <= now:
        raise LinkRefused("this sign-in link has expired; ask your provider for a new one")
    link.used_at = now
    peer = await session.get(Peer, link.peer_id)
    if peer is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound("peer not found")
    key, _ = await create_key(
        session,
        role="peer",
        scope=Scope("peer", str(peer.id)),
        name=f"peer app: {peer.display_name}",
        expires_at=now + timedelta(hours=SESSION_HOURS),
        now=now,
    )
    cookie = await open_session(session, principal_of(key), timedelta(hours=SESSION_HOURS), now)
    link.key_id = key.id
    return SignedIn(cookie, peer, key.id, link.created_by)


def own_peer_id(principal: Principal) -> uuid.UUID:
    """The peer a peer app session belongs to (its key's scope)."""
    if principal.scope is None or principal.scope.kind != "peer":
        raise Forbidden("a peer app session belongs to one peer")
    return uuid.UUID(principal.scope.value)


async def change_stamp(session: AsyncSession, peer_id: uuid.UUID) -> tuple[object, ...]:
    """What changes when anything on the peer's page does: their assignments' history, a
    scene reported secure, their status history, their follow-ups and their team's. The
    event stream compares it each second."""
    own = await repository.change_stamp(session, peer_id)
    peer = await roster.peer_by_id(session, peer_id)
    tasks = await followups.change_stamp(session, peer.provider_id, peer_id) if peer else ()
    return (*own, *tasks)


async def cleared_recently(
    session: AsyncSession, peer_id: uuid.UUID, now: datetime
) -> list[Assignment]:
    """The peer's calls cleared in the last day: whom they met is recorded after the call."""
    return list(await repository.cleared_since(session, peer_id, now - timedelta(hours=24), 5))


async def recent_assignments(
    session: AsyncSession, peer_id: uuid.UUID, now: datetime
) -> list[Assignment]:
    """The peer's live assignments, and those that ended in the last hour (an offer that
    expired or was cancelled is shown as such), newest first."""
    return list(await repository.recent_assignments(session, peer_id, now - timedelta(hours=1), 5))
