"""Reading Open Referral HSDS files into services as corespond keeps them: pure (text in,
records and problems out), nothing stored.

Two forms of the same data (HSDS 3.0):

* **JSON**: a list of service objects, each with its ``organization``, ``service_at_locations``
  (each a ``location`` with ``addresses`` and coordinates), ``phones``, ``service_areas`` and
  ``attributes`` (taxonomy terms); or an HSDS API page ``{"contents": [...]}``; or one service.
* **CSV**: the tabular data package, a ZIP of one CSV file per table: ``service.csv``
  (required) and ``organization.csv``, ``location.csv``, ``service_at_location.csv``,
  ``address.csv``, ``phone.csv``, ``service_area.csv``, ``attribute.csv``,
  ``taxonomy_term.csv`` (the plural names of HSDS 2, ``services.csv`` …, are read too;
  ``datapackage.json`` and other files are ignored).

Each service becomes one ``HsdsService`` with the line (CSV) or position (JSON) it came
from; a row of another table that points at nothing is reported on its own line.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from corespond.directory.models import KINDS

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PACKAGE_BYTES = 50 * 1024 * 1024
MAX_SERVICES = 20_000
TABLES = (
    "service",
    "organization",
    "location",
    "service_at_location",
    "address",
    "phone",
    "service_area",
    "attribute",
    "taxonomy_term",
)
# The files of the package, by name (HSDS 3 names its files after its tables; HSDS 2 used
# plurals, and called addresses physical_addresses).
FILE_NAMES: dict[str, str] = {
    **{f"{t}.csv": t for t in TABLES},
    "services.csv": "service",
    "organizations.csv": "organization",
    "locations.csv": "location",
    "services_at_location.csv": "service_at_location",
    "physical_addresses.csv": "address",
    "addresses.csv": "address",
    "phones.csv": "phone",
    "service_areas.csv": "service_area",
    "attributes.csv": "attribute",
    "taxonomy_terms.csv": "taxonomy_term",
}
_NOT_WORD = re.compile(r"[^a-z0-9]+")

# The words of taxonomy terms (code, name) or attribute labels that name a kind of service
# corespond refers people to; compared folded (case and punctuation ignored).
KIND_WORDS: dict[str, str] = {
    **{k.replace("_", " "): k for k in KINDS},
    "detoxification": "detox",
    "withdrawal management": "detox",
    "medically managed withdrawal": "detox",
    "substance use disorder detoxification": "detox",
    "inpatient treatment": "inpatient",
    "residential treatment": "inpatient",
    "residential substance use treatment": "inpatient",
    "moud": "mat",
    "medication assisted treatment": "mat",
    "medication for opioid use disorder": "mat",
    "opioid treatment program": "mat",
    "otp": "mat",
    "buprenorphine": "mat",
    "methadone": "mat",
    "outpatient treatment": "outpatient",
    "intensive outpatient": "outpatient",
    "iop": "outpatient",
    "recovery residence": "recovery_housing",
    "recovery residences": "recovery_housing",
    "sober living": "recovery_housing",
    "sobriety treatment and recovery teams": "start",
    "quick response team": "qrt",
    "veterans": "va",
    "veterans affairs": "va",
    "veterans assistance": "va",
    "veterans services": "va",
    "naloxone": "harm_reduction",
    "naloxone distribution": "harm_reduction",
    "syringe services": "harm_reduction",
    "syringe services program": "harm_reduction",
    "syringe service program": "harm_reduction",
    "ssp": "harm_reduction",
    "needle exchange": "harm_reduction",
}


def fold(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def kinds_of(terms: Iterable[str]) -> tuple[str, ...]:
    """The kinds the terms name, in the program's order (terms naming none are ignored)."""
    found = {KIND_WORDS[fold(t)] for t in terms if fold(t) in KIND_WORDS}
    return tuple(k for k in KINDS if k in found)


class HsdsFileError(ValueError):
    """The file as a whole cannot be read (not JSON, not a ZIP, no service table)."""


@dataclass
class HsdsService:
    """One service as the file gives it, before corespond places it (counties, kinds)."""

    file: str
    line: int
    key: str
    name: str = ""
    status: str = "active"
    organization_id: str = ""
    organization_name: str = ""
    organization_website: str | None = None
    description: str | None = None
    url: str | None = None
    phone: str | None = None
    terms: list[str] = field(default_factory=list)
    address: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    service_areas: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Stray:
    """A row of another table that cannot be joined to anything (reported on its own)."""

    file: str
    line: int
    key: str
    reason: str


@dataclass
class HsdsFile:
    services: list[HsdsService]
    strays: list[Stray] = field(default_factory=list)


def _text(value: Any, limit: int = 500) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:limit] or None


def _number(value: Any, service: HsdsService, what: str, low: float, high: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        service.problems.append(f"{what} {value!r} is not a number")
        return None
    if not low <= number <= high or number != number:
        service.problems.append(f"{what} {value!r} is outside {low:g} to {high:g}")
        return None
    return number


# --- JSON ------------------------------------------------------------------------------------


def read_json(text: str) -> HsdsFile:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HsdsFileError(f"not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise HsdsFileError("the JSON is nested too deeply to be an HSDS file") from None
    if isinstance(document, dict) and isinstance(document.get("contents"), list):
        items: list[Any] = document["contents"]
    elif isinstance(document, list):
        items = document
    elif isinstance(document, dict) and "id" in document:
        items = [document]
    else:
        raise HsdsFileError(
            'expected a list of HSDS service objects, an HSDS page {"contents": [...]} or '
            "one service object"
        )
    if len(items) > MAX_SERVICES:
        raise HsdsFileError(f"{len(items)} services: at most {MAX_SERVICES} in one file")
    return HsdsFile([_json_service(position, item) for position, item in enumerate(items, 1)])


def _json_service(position: int, item: Any) -> HsdsService:
    if not isinstance(item, dict):
        service = HsdsService("json", position, "")
        service.problems.append("not an object")
        return service
    service = HsdsService("json", position, _text(item.get("id"), 100) or "")
    service.name = _text(item.get("name"), 200) or ""
    service.status = _text(item.get("status"), 40) or "active"
    service.description = _text(item.get("description"))
    service.url = _text(item.get("url"), 300)
    organization = item.get("organization")
    if isinstance(organization, dict):
        service.organization_id = _text(organization.get("id"), 100) or ""
        service.organization_name = _text(organization.get("name"), 200) or ""
        service.organization_website = _text(organization.get("website"), 300)
    else:
        service.organization_id = _text(item.get("organization_id"), 100) or ""
    service.phone = _first_phone(item.get("phones"))
    for attribute in _objects(item.get("attributes")):
        term = attribute.get("taxonomy_term")
        if isinstance(term, dict):
            service.terms += [t for t in (_text(term.get("code")), _text(term.get("name"))) if t]
        service.terms += [t for t in (_text(attribute.get("label")),) if t]
    for area in _objects(item.get("service_areas")):
        name = _text(area.get("name"), 100)
        if name:
            service.service_areas.append(name)
    for at in _objects(item.get("service_at_locations")):
        location = at.get("location")
        if isinstance(location, dict):
            _place(service, location, _objects(location.get("addresses")))
            service.phone = service.phone or _first_phone(location.get("phones"))
            break
    return service


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _first_phone(value: Any) -> str | None:
    for phone in _objects(value):
        number = _text(phone.get("number"), 40)
        if number:
            return number
    return None


def _place(
    service: HsdsService, location: Mapping[str, Any], addresses: list[dict[str, Any]]
) -> None:
    """The service's place: the location's coordinates and its physical address (else its
    first)."""
    service.lat = _number(location.get("latitude"), service, "latitude", -90, 90)
    service.lon = _number(location.get("longitude"), service, "longitude", -180, 180)
    physical = [a for a in addresses if (a.get("address_type") or "physical") == "physical"]
    for address in physical or addresses:
        service.address = _text(address.get("address_1"), 200)
        service.city = _text(address.get("city"), 100)
        service.state = _text(address.get("state_province"), 40)
        service.postal_code = _text(address.get("postal_code"), 20)
        break


# --- the tabular package (CSV files in a ZIP) -------------------------------------------------


@dataclass(frozen=True)
class Row:
    file: str
    line: int
    values: dict[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()


def read_package(data: bytes) -> HsdsFile:
    """The services of an HSDS tabular data package (a ZIP of CSV tables)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise HsdsFileError("not a ZIP file: send the HSDS CSV tables zipped together") from None
    tables: dict[str, list[Row]] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename).name.lower()
            if info.is_dir() or not name.endswith(".csv") or name.startswith("."):
                continue
            table = FILE_NAMES.get(name)
            if table is None:
                continue
            total += info.file_size
            if info.file_size > MAX_FILE_BYTES or total > MAX_PACKAGE_BYTES:
                raise HsdsFileError(
                    f"{info.filename}: the tables may hold at most {MAX_FILE_BYTES // 2**20} MiB "
                    f"each, {MAX_PACKAGE_BYTES // 2**20} MiB together"
                )
            try:
                text = archive.read(info).decode("utf-8-sig")
            except UnicodeDecodeError:
                raise HsdsFileError(f"{info.filename} is not UTF-8 text") from None
            tables[table] = _csv_rows(f"{table}.csv", text)
    if "service" not in tables:
        raise HsdsFileError(
            "no service.csv in the ZIP: an HSDS tabular package has one CSV file per table "
            f"({', '.join(t + '.csv' for t in TABLES)})"
        )
    return _join(tables)


def _csv_rows(file: str, text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        rows = []
        line = reader.line_num + 1
        for record in reader:
            if record and any(cell.strip() for cell in record):
                if len(record) != len(header):
                    raise HsdsFileError(
                        f"{file} line {line}: {len(record)} cells where the header has "
                        f"{len(header)} (RFC 4180: quote a cell holding a comma)"
                    )
                rows.append(Row(file, line, dict(zip(header, record, strict=True))))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise HsdsFileError(f"{file} line {reader.line_num}: {exc}") from None
    if len(rows) > MAX_SERVICES * 10:
        raise HsdsFileError(f"{file}: too many rows")
    return rows


def _join(tables: dict[str, list[Row]]) -> HsdsFile:
    def by_id(table: str) -> dict[str, Row]:
        return {row.get("id"): row for row in tables.get(table, []) if row.get("id")}

    organizations = by_id("organization")
    locations = by_id("location")
    terms = by_id("taxonomy_term")
    services: dict[str, HsdsService] = {}
    out = HsdsFile([])
    for row in tables["service"]:
        service = HsdsService(row.file, row.line, row.get("id")[:100])
        service.name = row.get("name")[:200]
        service.status = row.get("status") or "active"
        service.description = _text(row.get("description"))
        service.url = _text(row.get("url"), 300)
        service.organization_id = row.get("organization_id")[:100]
        organization = organizations.get(service.organization_id)
        if organization is not None:
            service.organization_name = organization.get("name")[:200]
            service.organization_website = _text(organization.get("website"), 300)
        elif service.organization_id and "organization" in tables:
            service.problems.append(
                f"organization_id {service.organization_id!r} is not in organization.csv"
            )
        out.services.append(service)
        if service.key and service.key not in services:
            services[service.key] = service
    addresses: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in tables.get("address", []):
        if row.get("location_id") not in locations:
            out.strays.append(_stray(row, "location_id", "location"))
            continue
        addresses[row.get("location_id")].append(dict(row.values))
    for row in tables.get("service_at_location", []):
        service_found = services.get(row.get("service_id"))
        location = locations.get(row.get("location_id"))
        if service_found is None:
            out.strays.append(_stray(row, "service_id", "service"))
        elif location is None:
            out.strays.append(_stray(row, "location_id", "location"))
        elif service_found.address is None and service_found.lat is None:
            _place(service_found, location.values, addresses.get(location.get("id"), []))
    for row in tables.get("phone", []):
        if row.get("service_id"):
            service_found = services.get(row.get("service_id"))
            if service_found is None:
                out.strays.append(_stray(row, "service_id", "service"))
            elif service_found.phone is None:
                service_found.phone = _text(row.get("number"), 40)
    for row in tables.get("service_area", []):
        service_found = services.get(row.get("service_id"))
        if service_found is None:
            out.strays.append(_stray(row, "service_id", "service"))
        elif row.get("name"):
            service_found.service_areas.append(row.get("name")[:100])
    for row in tables.get("attribute", []):
        entity = row.get("link_entity") or "service"
        if entity != "service":
            continue
        service_found = services.get(row.get("link_id"))
        if service_found is None:
            out.strays.append(_stray(row, "link_id", "service"))
            continue
        term = terms.get(row.get("taxonomy_term_id"))
        if term is not None:
            service_found.terms += [t for t in (term.get("code"), term.get("name")) if t]
        elif row.get("taxonomy_term_id") and "taxonomy_term" in tables:
            out.strays.append(_stray(row, "taxonomy_term_id", "taxonomy_term"))
        service_found.terms += [t for t in (row.get("label"), row.get("value")) if t]
    return out


def _stray(row: Row, column: str, table: str) -> Stray:
    return Stray(
        row.file,
        row.line,
        row.get("id"),
        f"{column} {row.get(column)!r} is not in {table}.csv",
    )
