"""NENA EIDO (NENA-STA-021.1, the Emergency Incident Data Object, JSON) read as a CAD event.

An EIDO is a snapshot of one incident as the sending CAD sees it at ``lastUpdateTimeStamp``.
``event_from_eido`` turns it into the native event document (``CadEvent``), which then goes
through the same validation, storage, exactly-once and ordering rules as a native event: the
incident's ``$id`` is its incident number and every snapshot is one event, folded by time.

What is read from where is the table ``EIDO_MAPPING`` (also shown in the README and in
docs/integrating.md). It is a forgiving reader: components may be objects or one-item lists
(older EIDOs send ``incidentComponent`` as a list), a location in PIDF-LO may be civic,
geodetic, or both, notes may be HTML. What it cannot do without is named in a 422: the
incident's ``$id`` and ``lastUpdateTimeStamp``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from html import unescape
from html.parser import HTMLParser
from importlib import resources
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from corespond.ingest.schemas import NARRATIVE_MAX_CHARS

EVENT_ID_MAX = 128
HAZARDS_MAX = 32
HAZARD_MAX_CHARS = 500
CLOSED_STATUSES = frozenset({"closed", "complete", "completed", "incidentclosed"})
CANCELLED_STATUSES = frozenset({"cancelled", "canceled", "incidentcancelled"})

EIDO_MAPPING: tuple[tuple[str, str], ...] = (
    ("call.incident_number", "`$id` (the incident tracking identifier)"),
    ("event_id", "`$id` + `@` + `lastUpdateTimeStamp` (a digest of both if over 128 chars)"),
    ("occurred_at", "`lastUpdateTimeStamp`"),
    (
        "event_type",
        "`call.closed` / `call.cancelled` when the incident status says Closed / Cancelled; "
        "else `call.created` when it carries an agency and an incident type, else "
        "`call.updated`",
    ),
    (
        "call.agency",
        "the `agencyComponent` with `incidentOwningAgencyIndicator: true` (its `$id`); else "
        "`incidentComponent.updatedByAgencyReference`; else the document's "
        "`updatedByAgencyReference`",
    ),
    (
        "call.call_type",
        "`incidentComponent.incidentTypeInternalCode`; else "
        "`incidentComponent.incidentTypeCommonRegistryText` (APCO common incident type)",
    ),
    (
        "call.call_type_description",
        "`incidentComponent.incidentTypeInternalText`; else the APCO description of "
        "`incidentTypeCommonRegistryText`",
    ),
    (
        "call.priority",
        "`incidentComponent.incidentCommonPriorityNumber` (0-99); else the leading number "
        "of `incidentPriorityInternalText`",
    ),
    (
        "call.location.address / city",
        "the PIDF-LO civic address (`HNO HNS PRD RD STS POD, A1 PC`; city `A3`) of the "
        "incident's "
        "first `locationReference` (else the first `locationComponent` with a "
        "`locationByValue`); `locationDescriptionText` when there is no civic address",
    ),
    (
        "call.location.lat / lon",
        "the first `gml:pos` of that PIDF-LO (point, circle, ellipse, ellipsoid, ...)",
    ),
    (
        "call.narrative",
        "every `notesComponent.notesActionComments` (HTML read as text), oldest first, "
        "one per line",
    ),
    (
        "call.hazards",
        "every `cautionComponent` as `<cautionTypeCommonRegistryText>: <cautionTypeInternalText>`",
    ),
    (
        "call.status",
        "the last `incidentComponent.incidentStatusCommonRegistryText` (else "
        "`incidentStatusInternalText`); a unit status (`emergencyResourceComponent` "
        "primary, secondary or internal) that is one of the source's scene-secure "
        "statuses wins over it while the incident is open",
    ),
)
"""EIDO path → corespond field, in the order the README's table shows them."""


@dataclass(frozen=True)
class EidoProblem(Exception):
    """An EIDO that cannot become a call event: which part, and why."""

    field: str
    reason: str


@cache
def apco_incident_types() -> Mapping[str, str]:
    """APCO ANS 2.103.2 common incident types: code → description."""
    text = resources.files("corespond.ingest").joinpath("apco_incident_types.json").read_text()
    types: dict[str, str] = json.loads(text)
    return {code.upper(): description for code, description in types.items()}


def event_from_eido(
    document: Mapping[str, Any], scene_secure_statuses: Iterable[str] = ()
) -> dict[str, Any]:
    """The native CAD event document this EIDO describes (to be validated as one)."""
    incident_id = _text(document.get("$id"))
    if incident_id is None:
        raise EidoProblem("$id", "an EIDO must carry the incident's $id (its tracking id)")
    updated = _text(document.get("lastUpdateTimeStamp"))
    if updated is None:
        raise EidoProblem("lastUpdateTimeStamp", "an EIDO must say when it was last updated")
    incident = _one(document.get("incidentComponent"))
    call: dict[str, Any] = {"incident_number": incident_id}

    agency = _owning_agency(document, incident)
    if agency is not None:
        call["agency"] = agency
    call_type, description = _incident_type(incident)
    if call_type is not None:
        call["call_type"] = call_type
    if description is not None:
        call["call_type_description"] = description
    priority = _priority(incident)
    if priority is not None:
        call["priority"] = priority
    location = _location(document, incident)
    if location:
        call["location"] = location
    narrative = _narrative(document)
    if narrative:
        call["narrative"] = narrative
    hazards = _hazards(document)
    if hazards:
        call["hazards"] = hazards
    status = _status(document, incident, scene_secure_statuses)
    if status is not None:
        call["status"] = status

    return {
        "event_id": _event_id(incident_id, updated),
        "event_type": _event_type(status, call),
        "occurred_at": updated,
        "call": call,
    }


def _event_id(incident_id: str, updated: str) -> str:
    readable = f"{incident_id}@{updated}"
    if len(readable) <= EVENT_ID_MAX:
        return readable
    return "eido:" + hashlib.sha256(readable.encode()).hexdigest()


def _event_type(status: str | None, call: Mapping[str, Any]) -> str:
    folded = _status_key(status)
    if folded in CLOSED_STATUSES:
        return "call.closed"
    if folded in CANCELLED_STATUSES:
        return "call.cancelled"
    if "agency" in call and "call_type" in call:
        return "call.created"
    return "call.updated"


def _status_key(status: str | None) -> str:
    return re.sub(r"[^a-z]", "", (status or "").lower())


def _owning_agency(document: Mapping[str, Any], incident: Mapping[str, Any]) -> str | None:
    for agency in _many(document.get("agencyComponent")):
        if agency.get("incidentOwningAgencyIndicator") is True:
            owner = _text(agency.get("$id"))
            if owner is not None:
                return owner
    for holder in (incident, document):
        reference = _reference(holder.get("updatedByAgencyReference"))
        if reference is not None:
            return reference
    return None


def _incident_type(incident: Mapping[str, Any]) -> tuple[str | None, str | None]:
    internal_code = _text(incident.get("incidentTypeInternalCode"))
    internal_text = _text(incident.get("incidentTypeInternalText"))
    common = _text(incident.get("incidentTypeCommonRegistryText"))
    common_text = apco_incident_types().get(common.upper()) if common else None
    call_type = internal_code or common
    description = internal_text or common_text
    if call_type is None and internal_text is not None:
        call_type = internal_text
    return _clip(call_type, 100), _clip(description, 200)


def _priority(incident: Mapping[str, Any]) -> int | None:
    number = incident.get("incidentCommonPriorityNumber")
    if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= 99:
        return number
    text = _text(incident.get("incidentPriorityInternalText"))
    found = re.match(r"\s*(\d{1,2})(?!\d)", text or "")
    return int(found.group(1)) if found else None


def _status(
    document: Mapping[str, Any], incident: Mapping[str, Any], scene_secure: Iterable[str]
) -> str | None:
    statuses = _strings(incident.get("incidentStatusCommonRegistryText")) or _strings(
        incident.get("incidentStatusInternalText")
    )
    status = statuses[-1] if statuses else None
    key = _status_key(status)
    if key in CLOSED_STATUSES or key in CANCELLED_STATUSES:
        return _clip(status, 32)
    secure = {s.strip().lower(): s for s in scene_secure}
    for unit in _many(document.get("emergencyResourceComponent")):
        unit_statuses = [
            *_strings(unit.get("primaryUnitStatusRegistryText")),
            *_strings(unit.get("secondaryUnitStatusRegistryText")),
            *_strings(unit.get("unitStatusInternal")),
        ]
        for unit_status in unit_statuses:
            if unit_status.strip().lower() in secure:
                return _clip(unit_status, 32)
    return _clip(status, 32)


def _location(document: Mapping[str, Any], incident: Mapping[str, Any]) -> dict[str, Any]:
    components = {
        component_id: component
        for component in _many(document.get("locationComponent"))
        if (component_id := _text(component.get("$id"))) is not None
    }
    chosen: Mapping[str, Any] | None = None
    for reference in _many(incident.get("locationReference")):
        ref = _reference(reference)
        if ref is not None and ref in components:
            chosen = components[ref]
            break
    if chosen is None:
        chosen = next(
            (c for c in _many(document.get("locationComponent")) if c.get("locationByValue")),
            None,
        )
    if chosen is None:
        return {}
    location = read_pidf_lo(_text(chosen.get("locationByValue")) or "")
    if "address" not in location:
        description = _clip(_text(chosen.get("locationDescriptionText")), 200)
        if description is not None:
            location["address"] = description
    return location


_CIVIC_STREET = ("HNO", "HNS", "PRD", "RD", "STS", "POD")
_POS = re.compile(r"<(?:[\w-]+:)?pos\b[^>]*>\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")


def read_pidf_lo(xml: str) -> dict[str, Any]:
    """Address, city and the first point of a PIDF-LO presence document. Entities and DTDs
    are refused (defusedxml); a document that does not parse still gives its first point."""
    location: dict[str, Any] = {}
    if not xml.strip():
        return location
    try:
        root: Element | None = parse_xml(xml.strip().encode())
    except (ParseError, DefusedXmlException, ValueError):
        root = None
    if root is not None:
        civic = _civic(root)
        street = " ".join(civic[k] for k in _CIVIC_STREET if civic.get(k))
        # The state and ZIP stay on the address: they tell a place in another state apart.
        tail = " ".join(civic[k] for k in ("A1", "PC") if civic.get(k))
        if street:
            location["address"] = _clip(f"{street}, {tail}" if tail else street, 200)
        if civic.get("A3"):
            location["city"] = _clip(civic["A3"], 100)
        positions = [e.text for e in root.iter() if _local(e.tag) == "pos" and e.text]
        point = _point(positions[0]) if positions else None
    else:
        found = _POS.search(xml)
        point = _point(f"{found.group(1)} {found.group(2)}") if found else None
    if point is not None:
        location["lat"], location["lon"] = point
    return location


def _civic(root: Element) -> dict[str, str]:
    for element in root.iter():
        if _local(element.tag) == "civicAddress":
            return {
                _local(child.tag): " ".join(child.text.split())
                for child in element
                if child.text and child.text.strip()
            }
    return {}


def _point(text: str) -> tuple[float, float] | None:
    parts = text.split()
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return None
    if -90 <= lat <= 90 and -180 <= lon <= 180:
        return lat, lon
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _TextOf(HTMLParser):
    """The text of an HTML5 note: tags dropped, block ends and <br> as line breaks."""

    BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def note_text(html: str) -> str:
    """The plain text of a note that may be HTML."""
    if "<" not in html:
        return " ".join(unescape(html).split())
    reader = _TextOf()
    reader.feed(html)
    reader.close()
    lines = (" ".join(line.split()) for line in "".join(reader.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _narrative(document: Mapping[str, Any]) -> str | None:
    notes = [
        (_text(note.get("lastUpdateTimeStamp")) or "", index, text)
        for index, note in enumerate(_many(document.get("notesComponent")))
        if (text := note_text(_text(note.get("notesActionComments")) or ""))
    ]
    if not notes:
        return None
    notes.sort(key=lambda n: (_instant(n[0]), n[1]))
    narrative = "\n".join(text for _, _, text in notes)
    if len(narrative) > NARRATIVE_MAX_CHARS:
        raise EidoProblem(
            "notesComponent",
            f"the notes come to {len(narrative)} characters; at most {NARRATIVE_MAX_CHARS} "
            "are read (nothing was stored: send the notes that matter for this incident)",
        )
    return narrative


def _instant(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("inf")  # undated notes come last, in document order


def _hazards(document: Mapping[str, Any]) -> list[str]:
    hazards = []
    for caution in _many(document.get("cautionComponent")):
        kind = _text(caution.get("cautionTypeCommonRegistryText"))
        text = _text(caution.get("cautionTypeInternalText"))
        words = ": ".join(dict.fromkeys(part for part in (kind, text) if part))
        if words:
            hazards.append(words[:HAZARD_MAX_CHARS])
    if len(hazards) > HAZARDS_MAX:
        # A premise hazard is a safety fact: the overflow is kept, joined, not dropped.
        rest = "; ".join(hazards[HAZARDS_MAX - 1 :])
        hazards = [*hazards[: HAZARDS_MAX - 1], rest[:HAZARD_MAX_CHARS]]
    return hazards


def _one(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list):
        return next((v for v in value if isinstance(v, Mapping)), {})
    return {}


def _many(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return _text(value.get("$ref"))
    return _text(value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [text for v in value if (text := _text(v)) is not None]


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None
