"""A key's scope as it is stored: each kind resolved to the record it names, so a key never
carries a scope that matches nothing or that matches by spelling alone."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.auth.service import Scope
from corespond.directory import service as directory
from corespond.errors import InvalidPayload
from corespond.geo.atlas import CountyAtlas
from corespond.geo.service import require_county
from corespond.roster.models import Peer, Provider
from corespond.sources.models import CadSource


async def checked_scope(session: AsyncSession, atlas: CountyAtlas, text: str) -> Scope:
    """``KIND:VALUE`` resolved: a county by name or FIPS to its FIPS, an agency by name (any
    spelling) or ORI to its registered name, a provider and a peer to one that exists.
    Anything else is ``InvalidPayload`` saying what matched nothing."""
    scope = Scope.parse(text)
    if scope.kind == "county":
        return Scope("county", require_county(atlas, scope.value, "scope").fips)
    if scope.kind == "agency":
        agency = await agencies.find(session, scope.value)
        if agency is None:
            raise InvalidPayload(
                f"scope {text!r}: no registered agency by that name or ORI (corespond agencies add)"
            )
        return Scope("agency", agency.name)
    if scope.kind == "provider":
        if await session.get(Provider, scope.value) is None:
            raise InvalidPayload(f"scope {text!r}: no provider with that id")
        return scope
    if scope.kind == "organization":
        if await directory.organization(session, scope.value) is None:
            raise InvalidPayload(
                f"scope {text!r}: no organization with that id in the directory "
                "(POST /v1/directory/import)"
            )
        return scope
    if scope.kind == "source":
        if await session.get(CadSource, scope.value) is None:
            raise InvalidPayload(f"scope {text!r}: no CAD source with that id")
        return scope
    try:
        peer_id = uuid.UUID(scope.value)
    except ValueError:
        raise InvalidPayload(f"scope {text!r}: a peer scope is peer:<peer id>") from None
    if await session.get(Peer, peer_id) is None:
        raise InvalidPayload(f"scope {text!r}: no peer with that id")
    return Scope("peer", str(peer_id))
