"""Rosters over HTTP: ``/v1/providers``, ``/v1/peers``, ``/v1/shifts``, ``/v1/rosters/import``."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from corespond.audit import service as audit
from corespond.audit.deps import audited, created
from corespond.auth.deps import Authorized
from corespond.auth.service import Principal
from corespond.config import Settings
from corespond.db import SessionDep
from corespond.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    problem_responses,
)
from corespond.geo.service import Geography, require_county
from corespond.kit.bodies import read_body_limited
from corespond.pagination import decode_cursor, encode_cursor
from corespond.roster import imports, service
from corespond.roster.models import Peer, Shift
from corespond.roster.schemas import (
    CountyServed,
    CountyServedOut,
    CredentialIn,
    CredentialKind,
    CredentialOut,
    ExpiringCredential,
    ImportReportOut,
    ImportRow,
    PeerCreate,
    PeerOut,
    PeerPage,
    PeerStatus,
    PeerUpdate,
    ProviderCreate,
    ProviderOut,
    ShiftChangeOut,
    ShiftCreate,
    ShiftOut,
    ShiftPage,
    ShiftUpdate,
    StatusIn,
)
from corespond.roster.times import to_utc

router = APIRouter(tags=["rosters"])

IMPORT_LIMIT = 5 * 1024 * 1024
READ = problem_responses(Unauthorized, Forbidden, NotFound, InvalidPayload, BadRequest)
WRITE = problem_responses(Unauthorized, Forbidden, NotFound, Conflict, InvalidPayload)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _geography(request: Request) -> Geography:
    geography: Geography = request.app.state.geography
    return geography


async def _provider_out(request: Request, session: SessionDep, provider_id: str) -> ProviderOut:
    provider = await service.get_provider(session, provider_id)
    atlas = _geography(request).atlas
    counties = [
        CountyServedOut(
            fips=row.county_fips,
            name=atlas.by_fips[row.county_fips].name
            if row.county_fips in atlas.by_fips
            else row.county_fips,
            role=row.role,  # type: ignore[arg-type]
        )
        for row in await service.provider_counties(session, provider.id)
    ]
    return ProviderOut(id=provider.id, name=provider.name, counties=counties)


@router.get("/v1/providers", response_model=list[ProviderOut], responses=READ)
async def list_providers(request: Request, session: SessionDep, _: Authorized) -> list[ProviderOut]:
    """Providers and the counties each serves (primary or backup)."""
    return [
        await _provider_out(request, session, p.id) for p in await service.list_providers(session)
    ]


@router.post(
    "/v1/providers",
    status_code=201,
    response_model=ProviderOut,
    responses=WRITE,
    dependencies=[audited("provider")],
)
async def create_provider(
    body: ProviderCreate, request: Request, session: SessionDep, _: Authorized
) -> ProviderOut:
    """Register a provider (admin)."""
    provider = await service.create_provider(session, body.id, body.name)
    created(request, provider.id)
    return await _provider_out(request, session, provider.id)


@router.get("/v1/providers/{provider_id}", response_model=ProviderOut, responses=READ)
async def get_provider(
    provider_id: str, request: Request, session: SessionDep, _: Authorized
) -> ProviderOut:
    """One provider with its counties."""
    return await _provider_out(request, session, provider_id)


@router.put(
    "/v1/providers/{provider_id}/counties",
    response_model=ProviderOut,
    responses=WRITE,
    dependencies=[audited("provider")],
)
async def set_provider_counties(
    provider_id: str,
    body: list[CountyServed],
    request: Request,
    session: SessionDep,
    _: Authorized,
) -> ProviderOut:
    """Replace the counties a provider serves (admin); one primary provider per county."""
    await service.set_counties(
        session, _geography(request).atlas, provider_id, [(c.county, c.role) for c in body]
    )
    return await _provider_out(request, session, provider_id)


async def _peer_out(
    request: Request, session: SessionDep, principal: Principal, peers: list[Peer]
) -> list[PeerOut]:
    """Peers as this key may see them: phone, home point and credential references only
    for their provider, supervisors and admins."""
    credentials = await service.credentials_of(session, [p.id for p in peers])
    required = _settings(request).required_credentials
    now = request.app.state.clock()
    return [
        PeerOut.of(
            p,
            credentials[p.id],
            service.credential_problems(credentials[p.id], required, now),
            private=service.sees_private_fields(principal),
        )
        for p in peers
    ]


@router.get("/v1/peers", response_model=PeerPage, responses=READ)
async def list_peers(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    provider_id: Annotated[str | None, Query(max_length=63)] = None,
    status: PeerStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PeerPage:
    """Peers (provider admins see their own provider's), oldest first."""
    after = decode_cursor(cursor) if cursor else None
    rows = list(
        await service.list_peers(
            session, principal, provider_id=provider_id, status=status, after=after, limit=limit + 1
        )
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    items = await _peer_out(request, session, principal, page)
    await audit.record(
        session, principal, "peer.list", "peer", None, {"ids": [str(p.id) for p in page]}
    )
    return PeerPage(items=items, next_cursor=next_cursor)


@router.post(
    "/v1/peers",
    status_code=201,
    response_model=PeerOut,
    responses=WRITE,
    dependencies=[audited("peer")],
)
async def create_peer(
    body: PeerCreate, request: Request, session: SessionDep, principal: Authorized
) -> PeerOut:
    """Add a peer to a provider (admin, or that provider's admin)."""
    home = body.home
    peer = await service.create_peer(
        session,
        principal,
        body.provider_id,
        display_name=body.display_name,
        phone=body.phone,
        home_place=home.place if home else None,
        home_lat=home.lat if home else None,
        home_lon=home.lon if home else None,
        embedded_agency=body.embedded_agency.upper() if body.embedded_agency else None,
        languages=body.languages,
        notify_channels=list(dict.fromkeys(body.notify_channels)),
    )
    created(request, peer.id)
    return (await _peer_out(request, session, principal, [peer]))[0]


@router.get(
    "/v1/peers/credentials/expiring", response_model=list[ExpiringCredential], responses=READ
)
async def expiring_credentials(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    days: Annotated[int, Query(ge=0, le=365)] = 30,
) -> list[ExpiringCredential]:
    """Credentials expiring within ``days`` (default 30), or already expired, soonest first."""
    now = request.app.state.clock()
    rows = await service.expiring_credentials(session, principal, timedelta(days=days), now)
    await audit.record(
        session,
        principal,
        "peer.credentials_expiring",
        "peer",
        None,
        {"ids": sorted({str(peer.id) for _, peer in rows})},
    )
    return [
        ExpiringCredential(
            peer_id=peer.id,
            display_name=peer.display_name,
            provider_id=peer.provider_id,
            kind=credential.kind,  # type: ignore[arg-type]
            expires_at=credential.expires_at,  # type: ignore[arg-type]
            expired=credential.expires_at is not None and credential.expires_at <= now,
        )
        for credential, peer in rows
    ]


@router.get("/v1/peers/{peer_id}", response_model=PeerOut, responses=READ)
async def get_peer(
    peer_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> PeerOut:
    """One peer with credentials and anything that keeps them from calls."""
    peer = await service.get_peer(session, peer_id, principal)
    out = (await _peer_out(request, session, principal, [peer]))[0]
    await audit.record(session, principal, "peer.read", "peer", peer.id)
    return out


@router.patch(
    "/v1/peers/{peer_id}",
    response_model=PeerOut,
    responses=WRITE,
    dependencies=[audited("peer")],
)
async def update_peer(
    peer_id: uuid.UUID,
    body: PeerUpdate,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> PeerOut:
    """Change a peer's details (only the fields sent)."""
    fields = body.model_dump(exclude_unset=True, exclude={"home"})
    if fields.get("embedded_agency"):
        fields["embedded_agency"] = fields["embedded_agency"].upper()
    if "home" in body.model_fields_set:
        home = body.home
        fields.update(
            home_place=home.place if home else None,
            home_lat=home.lat if home else None,
            home_lon=home.lon if home else None,
        )
    peer = await service.update_peer(session, principal, peer_id, **fields)
    return (await _peer_out(request, session, principal, [peer]))[0]


@router.put(
    "/v1/peers/{peer_id}/credentials/{kind}",
    response_model=CredentialOut,
    responses=WRITE,
    dependencies=[audited("peer")],
)
async def set_credential(
    peer_id: uuid.UUID,
    kind: CredentialKind,
    body: CredentialIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> CredentialOut:
    """Record a peer's credential (PRSS certification, CJIS background check, NDA)."""
    credential = await service.set_credential(
        session,
        principal,
        peer_id,
        kind,
        reference=body.reference,
        expires_at=body.expires_at,
        now=request.app.state.clock(),
    )
    return CredentialOut.of(credential)


@router.post(
    "/v1/peers/{peer_id}/status",
    response_model=PeerOut,
    responses=WRITE,
    dependencies=[audited("peer")],
)
async def set_status(
    peer_id: uuid.UUID,
    body: StatusIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> PeerOut:
    """Set a peer's status: available, busy or off_duty (each change is kept)."""
    peer = await service.set_status(
        session, principal, peer_id, body.status, request.app.state.clock()
    )
    return (await _peer_out(request, session, principal, [peer]))[0]


def _shift_input(
    request: Request,
    peer_id: uuid.UUID,
    starts_at: str,
    ends_at: str,
    counties: list[str],
    kind: str,
) -> service.ShiftInput:
    zone = _settings(request).program_timezone
    return service.ShiftInput(
        peer_id=peer_id,
        starts_at=to_utc(starts_at, zone, "starts_at"),
        ends_at=to_utc(ends_at, zone, "ends_at"),
        counties=service.resolve_counties(_geography(request).atlas, counties),
        kind=kind,
    )


@router.get("/v1/shifts", response_model=ShiftPage, responses=READ)
async def list_shifts(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    peer_id: uuid.UUID | None = None,
    provider_id: Annotated[str | None, Query(max_length=63)] = None,
    county: Annotated[str | None, Query(max_length=40)] = None,
    starts_from: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    starts_to: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    include_cancelled: bool = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ShiftPage:
    """Shifts overlapping [from, to), earliest first; filter by peer, provider, county."""
    zone = _settings(request).program_timezone
    atlas = _geography(request).atlas
    county_fips = require_county(atlas, county).fips if county is not None else None
    rows = list(
        await service.list_shifts(
            session,
            principal,
            peer_id=peer_id,
            provider_id=provider_id,
            county_fips=county_fips,
            starts_from=to_utc(starts_from, zone, "from") if starts_from else None,
            starts_to=to_utc(starts_to, zone, "to") if starts_to else None,
            include_cancelled=include_cancelled,
            after=decode_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].starts_at, page[-1].id) if len(rows) > limit else None
    return ShiftPage(items=[ShiftOut.of(s, zone) for s in page], next_cursor=next_cursor)


@router.post(
    "/v1/shifts",
    status_code=201,
    response_model=ShiftOut,
    responses=WRITE,
    dependencies=[audited("shift")],
)
async def create_shift(
    body: ShiftCreate, request: Request, session: SessionDep, principal: Authorized
) -> ShiftOut:
    """Put a peer on a shift; times without an offset are in the program's time zone."""
    data = _shift_input(
        request, body.peer_id, body.starts_at, body.ends_at, body.counties, body.kind
    )
    shift = await service.create_shift(session, principal, data)
    created(request, shift.id)
    return ShiftOut.of(shift, _settings(request).program_timezone)


@router.get("/v1/shifts/{shift_id}", response_model=ShiftOut, responses=READ)
async def get_shift(
    shift_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> ShiftOut:
    """One shift."""
    shift = await service.get_shift(session, shift_id, principal)
    return ShiftOut.of(shift, _settings(request).program_timezone)


@router.patch(
    "/v1/shifts/{shift_id}",
    response_model=ShiftOut,
    responses=WRITE,
    dependencies=[audited("shift")],
)
async def update_shift(
    shift_id: uuid.UUID,
    body: ShiftUpdate,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> ShiftOut:
    """Change a shift's times, counties or kind; the previous version is kept in history."""
    shift = await service.get_shift(session, shift_id, principal)
    zone = _settings(request).program_timezone
    data = _shift_input(
        request,
        shift.peer_id,
        body.starts_at or shift.starts_at.isoformat(),
        body.ends_at or shift.ends_at.isoformat(),
        body.counties or list(shift.counties),
        body.kind or shift.kind,
    )
    await service.update_shift(session, principal, shift, data)
    return ShiftOut.of(shift, zone)


@router.delete(
    "/v1/shifts/{shift_id}",
    response_model=ShiftOut,
    responses=WRITE,
    dependencies=[audited("shift")],
)
async def cancel_shift(
    shift_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> ShiftOut:
    """Cancel a shift (it stays, marked cancelled, with who and when)."""
    shift: Shift = await service.get_shift(session, shift_id, principal)
    await service.cancel_shift(session, principal, shift, request.app.state.clock())
    return ShiftOut.of(shift, _settings(request).program_timezone)


@router.get("/v1/shifts/{shift_id}/history", response_model=list[ShiftChangeOut], responses=READ)
async def shift_history(
    shift_id: uuid.UUID, session: SessionDep, principal: Authorized
) -> list[ShiftChangeOut]:
    """Who created, changed or cancelled the shift, and when."""
    shift = await service.get_shift(session, shift_id, principal)
    return [
        ShiftChangeOut(
            action=c.action,
            changed_by=c.changed_by,
            changed_at=c.changed_at,
            before=c.before,
            after=c.after,
        )
        for c in await service.shift_history(session, shift.id)
    ]


@router.post(
    "/v1/rosters/import",
    dependencies=[audited("roster")],
    response_model=ImportReportOut,
    responses={
        **WRITE,
        **problem_responses(PayloadTooLarge, UnsupportedMediaType),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "text/calendar": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_roster(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    provider: Annotated[str, Query(max_length=63, description="Provider whose roster this is.")],
    dry_run: bool = False,
    window_days: Annotated[int, Query(ge=1, le=400)] = 60,
) -> ImportReportOut | JSONResponse:
    """Import shifts from CSV or iCalendar; a report per row. All rows or none are applied:
    any row with an error answers `422` with the report (a dry run too, storing nothing)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    formats: dict[str, Literal["csv", "ics"]] = {"text/csv": "csv", "text/calendar": "ics"}
    fmt = formats.get(content_type)
    if fmt is None:
        raise UnsupportedMediaType("send text/csv or text/calendar")
    body = await read_body_limited(request, IMPORT_LIMIT)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidPayload("the file is not UTF-8 text") from exc
    now = request.app.state.clock()
    report = await imports.run_import(
        session,
        principal,
        _geography(request).atlas,
        provider_id=provider,
        fmt=fmt,
        text=text,
        dry_run=dry_run,
        timezone=_settings(request).program_timezone,
        now=now,
        window=(now - timedelta(days=1), now + timedelta(days=window_days)),
    )
    out = ImportReportOut(
        format=fmt,
        dry_run=report.dry_run,
        applied=report.applied,
        counts=report.counts(),
        rows=[
            ImportRow(line=r.line, key=r.key, result=r.result, reason=r.reason, shift_id=r.shift_id)
            for r in report.rows
        ],
        notes=report.notes,
    )
    created(request, provider, counts=report.counts())
    # A dry run answers what the import would: the same status and report.
    if report.errors:
        problem = InvalidPayload(
            f"{len(report.errors)} row(s) have errors; nothing was applied",
        )
        document = problem.document(request.url.path)
        document["report"] = out.model_dump(mode="json")
        return JSONResponse(document, status_code=422, media_type="application/problem+json")
    return out
