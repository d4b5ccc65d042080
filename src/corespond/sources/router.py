"""A CAD integrator's self-service: ``/v1/cad/{source}`` — the source's settings, its callback
and signing secret, its format or field mapping, a test delivery.

A ``cad_integrator`` key is scoped to one source (``source:ID``) and reaches only that source;
unscoped admin keys reach every source.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.audit import service as audit
from corespond.auth.deps import Authorized
from corespond.auth.service import Principal
from corespond.crypto import SecretBox
from corespond.db import SessionDep
from corespond.errors import Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.ingest.reading import validated_event
from corespond.ingest.validation import EventValidation, describe
from corespond.sources import service
from corespond.sources.mapping import TARGETS, FieldMapping, MappingFailed, apply_mapping
from corespond.sources.models import CadSource

router = APIRouter(tags=["CAD integration"])

Format = Literal["native", "eido", "mapped"]


class SecretOut(BaseModel):
    created_at: datetime
    expires_at: datetime | None = Field(description="null: valid until the next rotation.")


class SourceOut(BaseModel):
    """A CAD source as its integrator sees it (never its secrets)."""

    id: str
    display_name: str
    format: Format = Field(description="What `POST /v1/cad/{id}/events` reads.")
    timezone: str | None = Field(
        description="IANA zone of this CAD's offset-less times (null: the program's zone)."
    )
    program_timezone: str
    callback_url: str | None
    agencies: list[str]
    scene_secure_statuses: list[str]
    scene_secure_flags: list[str]
    field_mapping: dict[str, Any] | None
    secrets: list[SecretOut]
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, source: CadSource, program_timezone: str) -> SourceOut:
        return cls(
            id=source.id,
            display_name=source.display_name,
            format=source.format,  # type: ignore[arg-type]  # checked by the table
            timezone=source.timezone,
            program_timezone=program_timezone,
            callback_url=source.callback_url,
            agencies=list(source.agencies),
            scene_secure_statuses=list(source.scene_secure_statuses),
            scene_secure_flags=list(source.scene_secure_flags),
            field_mapping=source.field_mapping,
            secrets=[
                SecretOut(created_at=k.created_at, expires_at=k.expires_at) for k in source.secrets
            ],
            disabled=source.disabled_at is not None,
            created_at=source.created_at,
        )


class SourceUpdate(BaseModel):
    """Fields to change; an absent field stays as it is, `null` clears it."""

    model_config = {"extra": "forbid"}

    callback_url: str | None = Field(
        default=None, max_length=2000, description="https URL assignment events are sent to."
    )
    format: Format | None = None
    timezone: str | None = Field(default=None, max_length=64)


class SecretRotation(BaseModel):
    model_config = {"extra": "forbid"}

    grace_hours: float = Field(
        default=24, ge=0, le=24 * 14, description="How long the secrets in use keep verifying."
    )


class RotatedSecret(BaseModel):
    secret: str = Field(description="The new signing secret: shown once, never again.")
    old_secrets_valid_until: datetime


class MappingPreview(BaseModel):
    """A sample of the CAD's own JSON, and a mapping to try (the saved one when absent)."""

    model_config = {"extra": "forbid"}

    document: dict[str, Any] = Field(description="One export of the CAD, as it would post it.")
    mapping: FieldMapping | None = None


class MappingResult(BaseModel):
    """What a mapping makes of a sample: the native event, the call and triage's reading."""

    event: dict[str, Any] = Field(description="The native event document the mapping built.")
    valid: bool
    problems: list[str] = Field(description="What is wrong with the event, by field.")
    validation: EventValidation | None = Field(
        description="When valid: the call it would become and triage's reading; nothing is stored."
    )


class TestDelivery(BaseModel):
    webhook_id: str
    url: str | None
    delivered: bool = Field(description="The callback answered 2xx.")
    status_code: int | None
    latency_ms: float
    response_body: str | None
    error: str | None


TargetList = dict[str, str]

ERRORS = problems(Unauthorized, Forbidden, NotFound, InvalidPayload)


async def _source(
    session: AsyncSession, principal: Principal, source_id: str, *, settings: bool = False
) -> CadSource:
    return await service.reach_source(session, principal, source_id, settings=settings)


@router.get("/v1/cad/{source}", response_model=SourceOut, responses=ERRORS)
async def get_source(
    source: str, request: Request, session: SessionDep, principal: Authorized
) -> SourceOut:
    """The source's settings: format, time zone, callback, agencies, scene-secure signals,
    field mapping, and its signing secrets' dates (never the secrets)."""
    row = await _source(session, principal, source, settings=True)
    return SourceOut.of(row, request.app.state.settings.program_timezone)


@router.patch("/v1/cad/{source}", response_model=SourceOut, responses=ERRORS)
async def update_source(
    source: str,
    body: SourceUpdate,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> SourceOut:
    """Change the callback URL, the format (`native`, `eido`, or `mapped` once a mapping is
    saved) or the time zone of offset-less times. Audited."""
    settings = request.app.state.settings
    row = await _source(session, principal, source)
    sent = body.model_fields_set
    if "callback_url" in sent:
        row = await service.set_callback(session, source, body.callback_url, settings.environment)
    if "timezone" in sent:
        row = await service.set_timezone(session, source, body.timezone)
    if "format" in sent:
        if body.format is None:
            raise InvalidPayload("format cannot be cleared: choose native, eido or mapped")
        row = await service.set_format(session, source, body.format)
    await audit.record(
        session,
        principal,
        "source.updated",
        "cad_source",
        source,
        body.model_dump(mode="json", exclude_unset=True),
    )
    return SourceOut.of(row, settings.program_timezone)


@router.put("/v1/cad/{source}/mapping", response_model=SourceOut, responses=ERRORS)
async def put_mapping(
    source: str,
    body: dict[str, Any],
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> SourceOut:
    """Save the source's field mapping (checked: every target known, every expression
    JMESPath, the required fields there) and read its events with it from now on (format
    `mapped`). A 422 names what is wrong; nothing changes then."""
    await _source(session, principal, source)
    row = await service.set_format(session, source, "mapped", body)
    await audit.record(
        session, principal, "source.mapping_saved", "cad_source", source, {"mapping": body}
    )
    return SourceOut.of(row, request.app.state.settings.program_timezone)


@router.get("/v1/cad/{source}/mapping/targets", response_model=TargetList, responses=ERRORS)
async def mapping_targets(source: str, session: SessionDep, principal: Authorized) -> TargetList:
    """Every field a mapping may fill, with what it means."""
    await _source(session, principal, source)
    return dict(TARGETS)


@router.post("/v1/cad/{source}/mapping/preview", response_model=MappingResult, responses=ERRORS)
async def preview_mapping(
    source: str,
    body: MappingPreview,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> MappingResult:
    """Try a mapping (or the saved one) on a sample export: the event it builds, what is
    wrong with it, or the call it would become and triage's reading. Nothing is stored."""
    row = await _source(session, principal, source)
    mapping = body.mapping or (service.mapping_of(row) if row.field_mapping else None)
    if mapping is None:
        raise InvalidPayload("no mapping saved for this source: send one with the sample")
    zone = service.zone_of(row, request.app.state.settings.program_timezone)
    try:
        event, origins = apply_mapping(mapping, body.document)
    except MappingFailed as failed:
        return MappingResult(event={}, valid=False, problems=[str(failed)], validation=None)
    try:
        read = validated_event(event, zone, origins)
    except InvalidPayload as exc:
        params = exc.extra.get("invalid-params") or []
        found = [f"{p['name']}: {p['reason']}" for p in params] or [exc.detail or "not valid"]
        return MappingResult(event=event, valid=False, problems=found, validation=None)
    return MappingResult(
        event=event,
        valid=True,
        problems=[],
        validation=describe(read, {}, request.app.state.rulebook.rules),
    )


@router.post("/v1/cad/{source}/secrets", response_model=RotatedSecret, responses=ERRORS)
async def rotate_secret(
    source: str,
    body: SecretRotation,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> RotatedSecret:
    """Issue a new signing secret. The secrets in use keep verifying (inbound) and keep
    signing beside the new one (outbound) for `grace_hours`; then only the new one does."""
    await _source(session, principal, source)
    box: SecretBox = request.app.state.secret_box
    secret, until = await service.rotate_secret(
        session,
        box,
        source,
        grace=timedelta(hours=body.grace_hours),
        now=request.app.state.clock(),
    )
    await audit.record(
        session,
        principal,
        "source.secret_rotated",
        "cad_source",
        source,
        {"old_secrets_valid_until": until.isoformat()},
    )
    return RotatedSecret(secret=secret, old_secrets_valid_until=until)


@router.post("/v1/cad/{source}/test-delivery", response_model=TestDelivery, responses=ERRORS)
async def test_delivery(
    source: str, request: Request, session: SessionDep, principal: Authorized
) -> TestDelivery:
    """Send one signed `test` message to the callback now and say what it answered (not
    through the outbox: nothing is stored or retried)."""
    row = await _source(session, principal, source)
    if row.callback_url is None:
        raise InvalidPayload("this source has no callback URL: set one first (PATCH)")
    webhook_id, answer = await request.app.state.relay.test_delivery(row, request.app.state.clock())
    delivered = answer.status_code is not None and 200 <= answer.status_code < 300
    await audit.record(
        session,
        principal,
        "source.test_delivery",
        "cad_source",
        source,
        {"status_code": answer.status_code, "error": answer.error},
    )
    return TestDelivery(
        webhook_id=webhook_id,
        url=row.callback_url,
        delivered=delivered,
        status_code=answer.status_code,
        latency_ms=round(answer.latency_ms, 1),
        response_body=answer.body,
        error=answer.error,
    )
