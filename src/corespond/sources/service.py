"""CAD sources: registration, secret rotation, and the secrets a signature may be checked with."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies_service
from corespond.agencies.names import agency_key
from corespond.auth.service import Principal
from corespond.crypto import SecretBox, UnreadableSecret
from corespond.db import Database
from corespond.errors import (
    Conflict,
    Forbidden,
    InvalidPayload,
    NotFound,
    invalid_params_from_errors,
)
from corespond.sources.addresses import is_internal
from corespond.sources.mapping import FieldMapping
from corespond.sources.models import CadSource, CadSourceSecret

SOURCE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


def generate_secret() -> str:
    """A new Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class SourceSummary:
    id: str
    display_name: str
    callback_url: str | None
    agencies: list[str]
    created_at: datetime
    active_secrets: int
    disabled: bool


async def create_source(
    session: AsyncSession,
    box: SecretBox,
    *,
    source_id: str,
    display_name: str,
    callback_url: str | None = None,
    agencies: list[str] | None = None,
    environment: str = "development",
) -> tuple[CadSource, str]:
    """Register a CAD source; returns it with its signing secret (shown to the operator once)."""
    if not SOURCE_ID_PATTERN.fullmatch(source_id):
        raise InvalidPayload(
            "source id must be 1-63 lower-case letters, digits, '-' or '_', starting with a "
            f"letter or digit: {source_id!r}"
        )
    if callback_url is not None:
        callback_url = check_callback_url(callback_url, environment)
        await check_callback_host_resolves(callback_url, environment)
    if await session.get(CadSource, source_id) is not None:
        raise Conflict(f"CAD source {source_id!r} already exists")
    source = CadSource(
        id=source_id,
        display_name=display_name,
        callback_url=callback_url,
        agencies=await registered_agencies(session, agencies or []),
    )
    secret = generate_secret()
    source.secrets = [CadSourceSecret(ciphertext=box.seal(secret))]
    session.add(source)
    await session.flush()
    return source, secret


async def registered_agencies(session: AsyncSession, names: list[str]) -> list[str]:
    """The registered agencies' names for ``names`` (by name, any spelling, or ORI); at
    least one, each registered, else ``InvalidPayload`` naming what is not."""
    if not names:
        raise InvalidPayload("a CAD source needs at least one agency (--agency, repeatable)")
    found = []
    for name in names:
        agency = await agencies_service.find(session, name)
        if agency is None:
            raise InvalidPayload(
                f"agency {name!r} is not registered: add it first (corespond agencies add)"
            )
        found.append(agency.name)
    return sorted(set(found))


async def set_agencies(session: AsyncSession, source_id: str, names: list[str]) -> CadSource:
    """Replace the agencies a source may file calls for."""
    source = await get_source(session, source_id)
    source.agencies = await registered_agencies(session, names)
    await _changed(session, source.id)
    await session.flush()
    return source


def files_for_by_name(source: CadSource | ReceivingSource, agency: str | None) -> bool:
    """Whether the source files calls for ``agency`` by one of its agencies' names (or
    the event names none: an update of a call whose agency was checked when it was
    created). False only means a lookup is needed (``require_agency``): an ORI, say."""
    return agency is None or agency_key(agency) in source.agencies


async def require_agency(
    session: AsyncSession, source: CadSource | ReceivingSource, agency: str | None
) -> None:
    """A source files calls only for its own agencies (an event that names none is an
    update of a call whose agency was checked when it was created)."""
    if agency is None or files_for_by_name(source, agency):
        return
    own = set(source.agencies)
    registered = await agencies_service.find(session, agency)  # an ORI, say
    if registered is not None and registered.name in own:
        return
    raise Forbidden(
        f"CAD source {source.id!r} files calls for {', '.join(sorted(own)) or 'no agency'}, "
        f"not {agency!r}; nothing was stored"
    )


def check_callback_url(url: str, environment: str) -> str:
    """A callback URL the relay may post to, else ``InvalidPayload`` saying why.

    https outside development and tests; no credentials in the URL (the relay signs every
    message instead); no fragment. In production the host may not be a loopback, private,
    link-local or otherwise reserved address, so a mistyped or hostile URL cannot point the
    relay at internal services (redirects are never followed either).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidPayload(f"callback URL is not a valid URL: {exc}") from None
    if len(url) > 2000 or any(c.isspace() for c in url.strip()):
        raise InvalidPayload("callback URL must be one URL of at most 2000 characters")
    relaxed = environment in ("development", "test")
    allowed = ("https", "http") if relaxed else ("https",)
    if parts.scheme not in allowed:
        raise InvalidPayload(
            f"callback URL must use {' or '.join(allowed)}"
            + ("" if relaxed else " (http is allowed only in development)")
        )
    if not parts.hostname:
        raise InvalidPayload("callback URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidPayload("callback URL must not carry credentials; messages are signed")
    if parts.fragment:
        raise InvalidPayload("callback URL must not have a #fragment")
    if port == 0:
        raise InvalidPayload("callback URL port must not be 0")
    if not relaxed and _internal_host(parts.hostname):
        raise InvalidPayload(
            f"callback URL host {parts.hostname!r} is internal (loopback, private or reserved)"
        )
    return urlunsplit(parts)


async def check_callback_host_resolves(url: str, environment: str) -> None:
    """In production, the callback's name must resolve, and only to public addresses (a
    name pointing inside the network is refused like an internal address). Checked when the
    URL is set; the relay also never follows redirects."""
    if environment in ("development", "test"):
        return
    host = (urlsplit(url).hostname or "").rstrip(".")
    if _numeric_address(host) is not None:
        return  # already checked as an address
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, None)
    except OSError as exc:
        raise InvalidPayload(f"callback URL host {host!r} does not resolve ({exc})") from None
    for *_, sockaddr in infos:
        if is_internal(ipaddress.ip_address(sockaddr[0])):
            raise InvalidPayload(
                f"callback URL host {host!r} resolves to an internal address ({sockaddr[0]})"
            )


def _numeric_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names, in any spelling a resolver accepts (``127.1``,
    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``[::1]``), else None (a name)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _internal_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(
        (".localhost", ".local", ".internal")
    ):
        return True
    address = _numeric_address(host)
    return address is not None and is_internal(address)


async def set_callback(
    session: AsyncSession, source_id: str, url: str | None, environment: str
) -> CadSource:
    """Set (or, with None, remove) where assignment events for this CAD are delivered."""
    source = await get_source(session, source_id)
    if url:
        url = check_callback_url(url, environment)
        await check_callback_host_resolves(url, environment)
    source.callback_url = url or None
    await _changed(session, source.id)
    await session.flush()
    return source


async def set_scene_secure_signals(
    session: AsyncSession, source_id: str, *, statuses: list[str], flags: list[str]
) -> CadSource:
    """What in this CAD's events means police have secured the scene: call statuses, and
    flags in the call's hazards list (compared without regard to case). Replaces both."""
    source = await get_source(session, source_id)
    for value in (*statuses, *flags):
        if not value.strip() or len(value) > 64 or "\x00" in value:
            raise InvalidPayload(f"a status or flag must be 1-64 characters: {value!r}")
    source.scene_secure_statuses = sorted({s.strip() for s in statuses})
    source.scene_secure_flags = sorted({f.strip() for f in flags})
    await _changed(session, source.id)
    await session.flush()
    return source


def require_source_access(principal: Principal, source_id: str) -> None:
    """An integrator reaches only its own source; unscoped admins every source."""
    if principal.role == "admin" and principal.scope is None:
        return
    if principal.scope is not None and principal.scope.kind == "source":
        if principal.scope.value == source_id:
            return
        raise Forbidden(f"this key is for CAD source {principal.scope.value!r}, not {source_id!r}")
    raise Forbidden("a CAD source is reached with its integrator key or an unscoped admin key")


async def reach_source(
    session: AsyncSession, principal: Principal, source_id: str, *, settings: bool = False
) -> CadSource:
    """The source a key may reach (``require_source_access``). Of a disabled source only
    its settings are read (``settings``), to see that it is disabled: not its calls,
    deliveries, feed, secrets or mapping, until the program enables it (``Forbidden``)."""
    require_source_access(principal, source_id)
    source = await session.get(CadSource, source_id)
    if source is None:
        raise NotFound(f"unknown CAD source {source_id!r}")
    if source.disabled_at is not None and not settings:
        raise Forbidden(
            f"CAD source {source.id!r} is disabled (since {source.disabled_at:%Y-%m-%d %H:%M} "
            "UTC): only its settings can be read until the program enables it"
        )
    return source


SOURCE_FORMATS = ("native", "eido", "mapped")


async def set_format(
    session: AsyncSession,
    source_id: str,
    fmt: str,
    mapping: dict[str, Any] | None = None,
) -> CadSource:
    """What ``/v1/cad/{id}/events`` reads for this source: ``native``, ``eido``, or
    ``mapped`` with a field mapping (checked here, refused with 422 naming what is wrong).
    A saved mapping is kept when the source turns to another format."""
    if fmt not in SOURCE_FORMATS:
        raise InvalidPayload(f"format must be one of {', '.join(SOURCE_FORMATS)}, not {fmt!r}")
    source = await get_source(session, source_id)
    if mapping is not None:
        source.field_mapping = check_mapping(mapping).model_dump(mode="json")
    if fmt == "mapped" and source.field_mapping is None:
        raise InvalidPayload("format 'mapped' needs a field mapping: send one with it")
    source.format = fmt
    await _changed(session, source.id)
    await session.flush()
    return source


def check_mapping(mapping: Any) -> FieldMapping:
    """A declared field mapping, or a 422 naming each thing wrong with it."""
    try:
        return FieldMapping.model_validate(mapping)
    except ValidationError as exc:
        params = invalid_params_from_errors(exc.errors(include_input=False))
        raise InvalidPayload(
            "the field mapping is not valid: "
            + "; ".join(f"{p.name}: {p.reason}" if p.name else p.reason for p in params),
            params,
        ) from exc


def mapping_of(source: CadSource | ReceivingSource) -> FieldMapping:
    """The source's saved field mapping (checked when it was saved)."""
    return FieldMapping.model_validate(source.field_mapping)


async def set_timezone(session: AsyncSession, source_id: str, zone: str | None) -> CadSource:
    """The IANA zone of this CAD's offset-less times (None: the program's zone)."""
    source = await get_source(session, source_id)
    if zone:
        check_timezone(zone)
    source.timezone = zone or None
    await _changed(session, source.id)
    await session.flush()
    return source


def check_timezone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a folder
        raise InvalidPayload(f"{zone!r} is not an IANA time zone (e.g. America/New_York)") from exc


def zone_of(source: CadSource | ReceivingSource, program_zone: str) -> ZoneInfo:
    """The zone this source's offset-less times are read in."""
    return ZoneInfo(source.timezone or program_zone)


async def get_source(session: AsyncSession, source_id: str) -> CadSource:
    """The enabled source with this id, else ``NotFound``."""
    source = await session.get(CadSource, source_id)
    if source is None or source.disabled_at is not None:
        raise NotFound(f"unknown CAD source {source_id!r}")
    return source


@dataclass(frozen=True)
class SceneSecureSignals:
    """The call statuses and hazard flags by which a CAD source reports a scene secure."""

    statuses: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


async def scene_secure_signals(session: AsyncSession, source_id: str) -> SceneSecureSignals:
    """How a source reports a scene secure (nothing, for a source that is gone)."""
    return (await scene_secure_signals_of(session, [source_id])).get(
        source_id, SceneSecureSignals()
    )


async def scene_secure_signals_of(
    session: AsyncSession, source_ids: Iterable[str]
) -> dict[str, SceneSecureSignals]:
    """``scene_secure_signals`` of several sources in one query (a source that is gone is
    left out)."""
    rows = await session.execute(
        select(CadSource.id, CadSource.scene_secure_statuses, CadSource.scene_secure_flags).where(
            CadSource.id.in_(sorted(set(source_ids)))
        )
    )
    return {
        source_id: SceneSecureSignals(tuple(statuses or ()), tuple(flags or ()))
        for source_id, statuses, flags in rows
    }


CHANGED_CHANNEL = "corespond_source_changed"


async def _changed(session: AsyncSession, source_id: str) -> None:
    """Tell every process's ``SourceCache`` at commit that this source changed."""
    await session.execute(
        text("SELECT pg_notify(:channel, :source)"),
        {"channel": CHANGED_CHANNEL, "source": source_id},
    )


_RECEIVING_SOURCE = """
SELECT id, format, timezone, agencies, scene_secure_statuses, field_mapping::text AS field_mapping,
       disabled_at
FROM cad_source WHERE id = $1
"""
_RECEIVING_SECRETS = """
SELECT id, ciphertext, expires_at FROM cad_source_secret WHERE source_id = $1 ORDER BY id
"""


@dataclass(frozen=True)
class ReceivingSource:
    """What receiving an event needs of a source, read once and kept a few seconds (see
    ``SourceCache``): its settings and its secrets, already decrypted, with their expiries."""

    id: str
    format: str
    timezone: str | None
    agencies: tuple[str, ...]
    scene_secure_statuses: tuple[str, ...]
    field_mapping: dict[str, Any] | None
    disabled_at: datetime | None
    secrets: tuple[tuple[int, str, datetime | None], ...]  # (id, secret, expires_at)

    @classmethod
    async def read(
        cls, conn: asyncpg.Connection, source_id: str, box: SecretBox
    ) -> ReceivingSource | None:
        """The source with this id, enabled or not, on a plain connection; None if there
        is none."""
        row = await conn.fetchrow(_RECEIVING_SOURCE, source_id)
        if row is None:
            return None
        keys = await conn.fetch(_RECEIVING_SECRETS, source_id)
        mapping = row["field_mapping"]
        return cls(
            id=row["id"],
            format=row["format"],
            timezone=row["timezone"],
            agencies=tuple(row["agencies"] or ()),
            scene_secure_statuses=tuple(row["scene_secure_statuses"] or ()),
            field_mapping=json.loads(mapping) if mapping is not None else None,
            disabled_at=row["disabled_at"],
            secrets=tuple((k["id"], box.open(k["ciphertext"]), k["expires_at"]) for k in keys),
        )

    def live_secrets(self, now: datetime) -> list[str]:
        """The secrets a signature may match now, newest first."""
        live = [k for k in self.secrets if k[2] is None or k[2] > now]
        return [secret for _, secret, _ in sorted(live, reverse=True)]


class SourceCache:
    """Sources as ``POST /v1/cad/{source}/events`` reads them, kept ``seconds`` (so that a
    busy CAD costs no query and no decryption per event), and only while a listener hears
    every change to a source (``CHANGED_CHANNEL``, sent at commit by any process) and calls
    ``clear``. ``seconds`` 0: read every time."""

    def __init__(self, box: SecretBox, seconds: float, clock: Any = time.monotonic) -> None:
        self._box = box
        self._seconds = seconds
        self._clock = clock
        self._kept: dict[str, tuple[float, ReceivingSource]] = {}
        # Bumped by every ``clear``: a read that a change overtook is not kept.
        self._generation = 0
        self.listening: Callable[[], bool] = lambda: False

    async def get(self, database: Database, source_id: str) -> ReceivingSource:
        """The source, else ``NotFound``; read on a plain connection (``Database.plain``)
        when it is not kept."""
        now = self._clock()
        kept = self._kept.get(source_id)
        trusted = self._seconds > 0 and self.listening()
        if trusted and kept is not None and now - kept[0] < self._seconds:
            return kept[1]
        generation = self._generation
        async with database.plain() as conn:
            source = await ReceivingSource.read(conn, source_id, self._box)
        if source is None:
            raise NotFound(f"unknown CAD source {source_id!r}")
        if trusted and generation == self._generation:
            if len(self._kept) > 1000:  # sources are few; never let the map grow unbounded
                self._kept.clear()
            self._kept[source_id] = (now, source)
        return source

    def clear(self) -> None:
        self._generation += 1
        self._kept.clear()


def require_enabled(source: CadSource | ReceivingSource) -> None:
    """``Forbidden``, saying so, if the program has disabled the source (checked once its
    signature holds: only the CAD itself learns it)."""
    if source.disabled_at is not None:
        raise Forbidden(
            f"CAD source {source.id!r} is disabled (since {source.disabled_at:%Y-%m-%d %H:%M} "
            "UTC): its events are refused until the program enables it again"
        )


async def set_disabled(
    session: AsyncSession, source_id: str, disabled: bool, now: datetime
) -> CadSource:
    """Disable a source (its events refused with 403, its deliveries held) or enable it."""
    source = await session.get(CadSource, source_id)
    if source is None:
        raise NotFound(f"unknown CAD source {source_id!r}")
    if disabled and source.disabled_at is None:
        source.disabled_at = now
    elif not disabled:
        source.disabled_at = None
    await _changed(session, source.id)
    await session.flush()
    return source


async def enabled_source_ids(session: AsyncSession) -> list[str]:
    """The ids of the sources the program has not disabled."""
    query = select(CadSource.id).where(CadSource.disabled_at.is_(None)).order_by(CadSource.id)
    return list((await session.scalars(query)).all())


async def list_sources(session: AsyncSession, now: datetime) -> list[SourceSummary]:
    """Every source, with how many of its secrets are live at ``now``."""
    rows = (await session.scalars(select(CadSource).order_by(CadSource.id))).all()
    return [
        SourceSummary(
            id=s.id,
            display_name=s.display_name,
            callback_url=s.callback_url,
            agencies=list(s.agencies),
            created_at=s.created_at,
            active_secrets=sum(1 for k in s.secrets if _is_live(k, now)),
            disabled=s.disabled_at is not None,
        )
        for s in rows
    ]


async def rotate_secret(
    session: AsyncSession,
    box: SecretBox,
    source_id: str,
    *,
    grace: timedelta,
    now: datetime,
) -> tuple[str, datetime]:
    """Issue a new secret; the secrets in use keep verifying until ``now + grace``.

    Returns the new secret and when the old ones stop working.
    """
    source = await get_source(session, source_id)
    old_until = now + grace
    for key in source.secrets:
        if key.expires_at is None or key.expires_at > old_until:
            key.expires_at = old_until
    secret = generate_secret()
    source.secrets.append(CadSourceSecret(ciphertext=box.seal(secret)))
    await _changed(session, source.id)
    await session.flush()
    return secret, old_until


@dataclass(frozen=True)
class Resealed:
    resealed: int  # sealed again under the newest key
    current: int  # already under it


async def reseal_secrets(session: AsyncSession, box: SecretBox) -> Resealed:
    """Seal every stored signing secret (expired ones too: a source's secrets are read
    together) under the newest secret key. ``UnreadableSecret`` naming the sources whose
    secrets no configured key opens; then nothing is changed."""
    rows = (
        await session.scalars(
            select(CadSourceSecret).order_by(CadSourceSecret.id).with_for_update()
        )
    ).all()
    unreadable = sorted({row.source_id for row in rows if not _opens(box, row.ciphertext)})
    if unreadable:
        raise UnreadableSecret(
            f"signing secrets of CAD source(s) {', '.join(unreadable)} cannot be decrypted by "
            "any key in CORESPOND_SECRET_KEY: put the key they were sealed with back in it "
            "(after the newest) and run again"
        )
    stale = [row for row in rows if not box.is_current(row.ciphertext)]
    for row in stale:
        row.ciphertext = box.reseal(row.ciphertext)
    await session.flush()
    return Resealed(resealed=len(stale), current=len(rows) - len(stale))


def _opens(box: SecretBox, ciphertext: bytes) -> bool:
    try:
        box.open(ciphertext)
    except UnreadableSecret:
        return False
    return True


def verification_secrets(source: CadSource, box: SecretBox, now: datetime) -> list[str]:
    """The secrets a signature from this source may match now, newest first."""
    live = [k for k in source.secrets if _is_live(k, now)]
    return [box.open(k.ciphertext) for k in sorted(live, key=lambda k: k.id, reverse=True)]


def stored_secret(source: CadSource, box: SecretBox) -> str:
    """The newest secret of a source (for the demo and for outbound signing)."""
    newest = max(source.secrets, key=lambda k: k.id)
    return box.open(newest.ciphertext)


def _is_live(key: CadSourceSecret, now: datetime) -> bool:
    return key.expires_at is None or key.expires_at > now
