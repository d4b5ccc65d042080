"""The resource directory as the API shows it, and its import report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from corespond.directory.models import DirectoryOrganization, DirectoryService
from corespond.geo.atlas import CountyAtlas

Kind = Literal[
    "detox",
    "inpatient",
    "mat",
    "outpatient",
    "recovery_housing",
    "start",
    "qrt",
    "va",
    "harm_reduction",
]


class CountyRef(BaseModel):
    fips: str
    name: str


class OrganizationRef(BaseModel):
    id: str = Field(description="The HSDS organization id (a partner key's `organization:` scope).")
    name: str


class ServiceOut(BaseModel):
    """A service people can be referred to."""

    id: uuid.UUID
    hsds_id: str = Field(description="The service's id in the HSDS file it came from.")
    name: str
    organization: OrganizationRef
    kinds: list[Kind]
    counties: list[CountyRef]
    status: Literal["active", "inactive", "defunct", "temporarily closed"]
    address: str | None
    city: str | None
    postal_code: str | None
    lat: float | None
    lon: float | None
    phone: str | None
    url: str | None
    description: str | None
    updated_at: datetime


class ServicePage(BaseModel):
    items: list[ServiceOut]


class ImportRow(BaseModel):
    file: str = Field(description="`service.csv` (or another table of the package), or `json`.")
    line: int = Field(description="The CSV line, or the service's position in the JSON list.")
    key: str = Field(description="The HSDS id of the row.")
    result: Literal["created", "updated", "unchanged", "error"]
    reason: str | None = None
    service_id: uuid.UUID | None = Field(
        default=None, description="The stored service (null when nothing was stored)."
    )


class ImportReportOut(BaseModel):
    format: Literal["json", "csv"]
    dry_run: bool
    applied: bool = Field(description="False on a dry run or when any row has an error.")
    counts: dict[str, int] = Field(description="Rows by result.")
    rows: list[ImportRow]


def service_out(
    service: DirectoryService, organization: DirectoryOrganization, atlas: CountyAtlas
) -> ServiceOut:
    return ServiceOut(
        id=service.id,
        hsds_id=service.hsds_id,
        name=service.name,
        organization=OrganizationRef(id=organization.id, name=organization.name),
        kinds=list(service.kinds),  # type: ignore[arg-type]
        counties=[
            CountyRef(fips=f, name=atlas.by_fips[f].name if f in atlas.by_fips else f)
            for f in service.counties
        ],
        status=service.status,  # type: ignore[arg-type]
        address=service.address,
        city=service.city,
        postal_code=service.postal_code,
        lat=service.lat,
        lon=service.lon,
        phone=service.phone,
        url=service.url,
        description=service.description,
        updated_at=service.updated_at,
    )
