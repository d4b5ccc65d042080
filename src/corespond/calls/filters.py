"""What a list of calls is narrowed to, and the part of the program a key may see of calls
(and of what comes of them): conditions any query that selects from or joins ``call`` can
apply in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corespond.agencies.names import agency_key_sql
from corespond.calls.models import Call


@dataclass(frozen=True)
class CallFilter:
    """What a list of calls is narrowed to."""

    source: str | None = None
    incident_number: str | None = None
    agency: str | None = None
    status: str | None = None
    decision: str | None = None
    county_fips: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None


@dataclass(frozen=True)
class ScopeFilter:
    """The part of the program a key may see (``agency`` as its name key)."""

    agency: str | None = None
    county_fips: str | None = None
    source: str | None = None  # a CAD integrator's key: its own source's calls


def scoped(query: Any, scope: ScopeFilter) -> Any:
    """``query`` (which selects from or joins ``call``) limited to what ``scope`` may see."""
    if scope.agency is not None:
        query = query.where(agency_key_sql(Call.agency) == scope.agency)
    if scope.county_fips is not None:
        query = query.where(Call.county_fips == scope.county_fips)
    if scope.source is not None:
        query = query.where(Call.source_id == scope.source)
    return query
