"""Configuration moved between installations (staging to production, an old database to a
new one): agencies, providers and the counties they serve, CAD sources. Never a secret: an
imported source gets a new signing secret, printed once, for its CAD's administrator; never
people's data (peers, shifts, keys), which belong to the installation that holds them.

The document is plain data (YAML), reviewed by a person before it is imported; an import
runs in one transaction: all of it, or none."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.crypto import SecretBox
from corespond.geo.atlas import CountyAtlas
from corespond.roster import service as roster
from corespond.sources import service as sources

FORMAT_VERSION: Literal[1] = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgencyConfig(_Strict):
    name: str
    ori: str | None = None
    home_county: str = Field(description="FIPS code (or county name)")
    auto_request: bool = False
    scene_gate: bool = True


class ServedCounty(_Strict):
    county: str
    role: Literal["primary", "backup"] = "primary"


class ProviderConfig(_Strict):
    id: str
    name: str
    counties: list[ServedCounty] = []


class SourceConfig(_Strict):
    id: str
    name: str
    agencies: list[str] = []
    callback_url: str | None = None
    scene_secure_statuses: list[str] = []
    scene_secure_flags: list[str] = []
    format: str = "native"
    field_mapping: dict[str, Any] | None = None
    timezone: str | None = None
    disabled: bool = False


class Configuration(_Strict):
    """What ``corespond export`` writes and ``corespond import`` reads."""

    version: Literal[1] = FORMAT_VERSION
    exported_at: datetime | None = None
    agencies: list[AgencyConfig] = []
    providers: list[ProviderConfig] = []
    sources: list[SourceConfig] = []


async def export_configuration(session: AsyncSession, now: datetime) -> Configuration:
    """The installation's configuration, without secrets."""
    served: dict[str, list[ServedCounty]] = {}
    for row in await roster.provider_counties(session):
        served.setdefault(row.provider_id, []).append(
            ServedCounty(
                county=row.county_fips, role="backup" if row.role == "backup" else "primary"
            )
        )
    exported_sources = []
    for summary in await sources.list_sources(session, now):
        source = await sources.get_source(session, summary.id)
        exported_sources.append(
            SourceConfig(
                id=source.id,
                name=source.display_name,
                agencies=list(source.agencies),
                callback_url=source.callback_url,
                scene_secure_statuses=list(source.scene_secure_statuses),
                scene_secure_flags=list(source.scene_secure_flags),
                format=source.format,
                field_mapping=source.field_mapping,
                timezone=source.timezone,
                disabled=source.disabled_at is not None,
            )
        )
    return Configuration(
        exported_at=now,
        agencies=[
            AgencyConfig(
                name=a.name,
                ori=a.ori,
                home_county=a.home_county_fips,
                auto_request=a.auto_request,
                scene_gate=a.scene_gate,
            )
            for a in await agencies.list_agencies(session)
        ],
        providers=[
            ProviderConfig(id=p.id, name=p.name, counties=served.get(p.id, []))
            for p in await roster.list_providers(session)
        ],
        sources=exported_sources,
    )


@dataclass
class ImportReport:
    """What an import did, line by line, and the new sources' secrets (shown once)."""

    lines: list[str] = field(default_factory=list)
    new_secrets: dict[str, str] = field(default_factory=dict)


async def import_configuration(
    session: AsyncSession,
    configuration: Configuration,
    *,
    atlas: CountyAtlas,
    box: SecretBox,
    environment: str,
    now: datetime,
) -> ImportReport:
    """Create what is missing and bring what exists to what the document says (agencies'
    matching, providers' counties, sources' agencies, callback, scene signals, format,
    zone, disabled). Nothing absent from the document is removed."""
    report = ImportReport()
    for agency in configuration.agencies:
        existing = await agencies.find(session, agency.name)
        if existing is None:
            existing, _ = await agencies.add_agency(
                session, atlas, name=agency.name, county=agency.home_county, ori=agency.ori
            )
            verb = "added"
        else:
            verb = "updated"
        await agencies.configure(
            session, existing.name, auto_request=agency.auto_request, scene_gate=agency.scene_gate
        )
        report.lines.append(f"agency {existing.name}: {verb}")
    known_providers = {p.id for p in await roster.list_providers(session)}
    for provider in configuration.providers:
        if provider.id not in known_providers:
            await roster.create_provider(session, provider.id, provider.name)
            verb = "added"
        else:
            verb = "updated"
        await roster.set_counties(
            session, atlas, provider.id, [(c.county, c.role) for c in provider.counties]
        )
        report.lines.append(
            f"provider {provider.id}: {verb}, {len(provider.counties)} county(ies) served"
        )
    known_sources = {s.id for s in await sources.list_sources(session, now)}
    for source in configuration.sources:
        if source.id not in known_sources:
            _, secret = await sources.create_source(
                session,
                box,
                source_id=source.id,
                display_name=source.name,
                callback_url=source.callback_url,
                agencies=source.agencies,
                environment=environment,
            )
            report.new_secrets[source.id] = secret
            verb = "added, new signing secret"
        else:
            await sources.set_agencies(session, source.id, source.agencies)
            await sources.set_callback(session, source.id, source.callback_url, environment)
            verb = "updated (its signing secret kept)"
        await sources.set_scene_secure_signals(
            session,
            source.id,
            statuses=source.scene_secure_statuses,
            flags=source.scene_secure_flags,
        )
        await sources.set_format(session, source.id, source.format, source.field_mapping)
        await sources.set_timezone(session, source.id, source.timezone)
        await sources.set_disabled(session, source.id, source.disabled, now)
        report.lines.append(f"source {source.id}: {verb}")
    return report
