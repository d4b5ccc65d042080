"""The resource directory over HTTP: search it, read a service, import HSDS files."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from corespond.audit.deps import audited, created
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.directory import imports, service
from corespond.directory.imports import DirectoryFileError
from corespond.directory.schemas import (
    ImportReportOut,
    ImportRow,
    Kind,
    ServiceOut,
    ServicePage,
    service_out,
)
from corespond.errors import (
    Forbidden,
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from corespond.errors import problem_responses as problems
from corespond.geo.service import require_county
from corespond.kit.bodies import read_body_limited
from corespond.people import service as people

router = APIRouter(tags=["directory"])

IMPORT_LIMIT = 20 * 1024 * 1024
FORMATS: dict[str, Literal["json", "csv"]] = {
    "application/json": "json",
    "application/zip": "csv",
    "application/x-zip-compressed": "csv",
}


@router.get(
    "/v1/directory/services",
    response_model=ServicePage,
    responses=problems(Unauthorized, Forbidden, InvalidPayload),
)
async def search_services(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    county: Annotated[
        str | None, Query(max_length=40, pattern=r"^[^\x00]*$", description="Name or FIPS")
    ] = None,
    kind: Kind | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100, pattern=r"^[^\x00]*$", description="In the name, organization or town"
        ),
    ] = None,
    organization: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    include_inactive: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ServicePage:
    """Services people can be referred to, serving a county, of a kind (detox, inpatient,
    mat, outpatient, recovery_housing, start, qrt, va, harm_reduction), by name. Active
    services only unless `include_inactive`."""
    atlas = request.app.state.geography.atlas
    fips = require_county(atlas, county, "query.county").fips if county and county.strip() else None
    found = await service.search(
        session,
        county=fips,
        kind=kind,
        text=q.strip() if q and q.strip() else None,
        organization_id=organization,
        include_inactive=include_inactive,
        limit=limit,
    )
    return ServicePage(items=[service_out(s, o, atlas) for s, o in found])


@router.get(
    "/v1/directory/services/{service_id}",
    response_model=ServiceOut,
    responses=problems(Unauthorized, Forbidden, NotFound, InvalidPayload),
)
async def get_service(
    service_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> ServiceOut:
    """One service of the directory."""
    found, organization = await service.get_service(session, service_id)
    return service_out(found, organization, request.app.state.geography.atlas)


@router.post(
    "/v1/directory/import",
    dependencies=[audited("directory")],
    response_model=ImportReportOut,
    responses=problems(
        Unauthorized, Forbidden, InvalidPayload, PayloadTooLarge, UnsupportedMediaType
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "description": "HSDS 3.0 services: a list, a page "
                        '{"contents": [...]}, or one service object',
                    }
                },
                "application/zip": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "An HSDS tabular data package: service.csv, "
                    "organization.csv, location.csv, service_at_location.csv, address.csv, "
                    "phone.csv, service_area.csv, attribute.csv, taxonomy_term.csv",
                },
            },
        }
    },
)
async def import_directory(
    request: Request, session: SessionDep, principal: Authorized, dry_run: bool = False
) -> ImportReportOut | JSONResponse:
    """Import services from an Open Referral HSDS file: JSON (`application/json`) or the
    CSV tables of a tabular data package zipped (`application/zip`); a report per row. A
    service's kinds come from its taxonomy terms, its counties from its location and service
    areas. All rows or none are applied: any row with an error answers `422` with the report
    (a dry run too, storing nothing)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = FORMATS.get(content_type)
    if fmt is None:
        raise UnsupportedMediaType(
            "send HSDS JSON as application/json, or the CSV tables zipped as application/zip"
        )
    data = await read_body_limited(request, IMPORT_LIMIT)
    now = request.app.state.clock()
    report = await imports.run_import(
        session,
        request.app.state.geography,
        fmt=fmt,
        data=data,
        dry_run=dry_run,
        now=now,
    )
    if report.applied:
        # A share stays with the organization the consent named: a service that moved to
        # another one ends the shares made through it (each on the audit log).
        moved = [r.service_id for r in report.rows if r.moved and r.service_id is not None]
        await people.end_shares_to_moved_services(session, principal, moved, now)
    out = ImportReportOut(
        format=fmt,
        dry_run=report.dry_run,
        applied=report.applied,
        counts=report.counts(),
        rows=[
            ImportRow(
                file=r.file,
                line=r.line,
                key=r.key,
                result=r.result,
                reason=r.reason,
                service_id=r.service_id,
            )
            for r in report.rows
        ],
    )
    created(request, "directory", counts=report.counts(), dry_run=dry_run)
    if report.errors:
        problem = InvalidPayload(f"{len(report.errors)} row(s) have errors; nothing was applied")
        document = problem.document(request.url.path)
        document["report"] = out.model_dump(mode="json")
        return JSONResponse(document, status_code=422, media_type="application/problem+json")
    return out


__all__ = ["DirectoryFileError", "router"]
