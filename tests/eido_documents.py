"""EIDO documents for tests: the shared NENA sample, a West Virginia incident built like it,
and hypothesis documents generated from the EIDO OpenAPI schema.

The generator walks the schema itself (``$ref``, ``allOf``, objects with their required and
optional properties, arrays, enums, strings with formats): hypothesis-jsonschema 0.23 does
not run on the hypothesis this project uses, and the EIDO schema needs two fixes to be read
at all (an external NIEM ``$ref`` is taken as any object; ``minItems: 1,`` is 1).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data" / "eido"


def sample() -> dict[str, Any]:
    """NENA's sample call-transfer EIDO (no incident type; a civic address in Delaware)."""
    document: dict[str, Any] = json.loads((DATA / "sample_call_transfer_eido.json").read_text())
    return document


def wv_incident(
    incident_id: str = "urn:emergency:uid:incidentid:26-118734:metro911.kanawha.wv.us",
    updated: str = "2026-11-23T04:12:09-05:00",
    *,
    notes: tuple[str, ...] = (
        "<p>SUBJ REVIVED WITH NARCAN, CONSCIOUS AND TALKING.</p>",
        "NO WEAPONS SEEN. RP IS HIS MOTHER.",
    ),
    status: str | None = None,
    incident_type: str = "OD",
    unit_status: str | None = None,
) -> dict[str, Any]:
    """An EIDO of an overdose in Charleston, filed by CHARLESTON PD, with a point and a
    civic address (built like NENA's sample; values invented)."""
    document = sample()
    document["$id"] = incident_id
    document["lastUpdateTimeStamp"] = updated
    document["agencyComponent"] = [
        {
            "$id": "CHARLESTON PD",
            "lastUpdateTimeStamp": updated,
            "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
            "agencyRoleDescriptionRegistryText": ["Primary"],
            "agencyType": ["police"],
            "incidentOwningAgencyIndicator": True,
        }
    ]
    document["incidentComponent"] = {
        "$id": f"{incident_id}:incident",
        "lastUpdateTimeStamp": updated,
        "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
        "incidentTypeCommonRegistryText": incident_type,
        "incidentCommonPriorityNumber": 2,
        "locationReference": [{"$ref": "loc-1"}],
        **({"incidentStatusCommonRegistryText": [status]} if status else {}),
    }
    document["locationComponent"] = [
        {
            "$id": "loc-1",
            "lastUpdateTimeStamp": updated,
            "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
            "locationTypeDescriptionRegistryText": "Incident",
            "locationByValue": (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
                'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
                'xmlns:gml="http://www.opengis.net/gml" entity="pres:x@example.com">'
                "<tuple id='t1'><status><gp:geopriv><gp:location-info>"
                '<civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr">'
                "<country>US</country><A1>WV</A1><A3>Charleston</A3>"
                "<HNO>1</HNO><RD>Capitol</RD><STS>St</STS></civicAddress>"
                "<gml:Point><gml:pos>38.3498 -81.6326</gml:pos></gml:Point>"
                "</gp:location-info></gp:geopriv></status></tuple></presence>"
            ),
        }
    ]
    document["notesComponent"] = [
        {
            "$id": f"note-{index}",
            "lastUpdateTimeStamp": f"2026-11-23T04:1{index}:00-05:00",
            "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
            "notesActionComments": text,
        }
        for index, text in enumerate(notes)
    ]
    if unit_status is not None:
        document["emergencyResourceComponent"] = [
            {
                "$id": "unit-214",
                "lastUpdateTimeStamp": updated,
                "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
                "agentReference": [{"$ref": "unit-214"}],
                "emergencyResourceTypeCommonRegistryText": "Police",
                "primaryUnitStatusRegistryText": "OnScene",
                "resourceAttributeRegistryText": [],
                "secondaryUnitStatusRegistryText": [unit_status],
            }
        ]
    for unused in ("callComponent", "personComponent", "callbackComponent"):
        document.pop(unused, None)
    return copy.deepcopy(document)


@cache
def _definitions() -> dict[str, Any]:
    spec = yaml.safe_load((DATA / "eido_openapi.yaml").read_text())
    definitions: dict[str, Any] = spec["components"]["schemas"]
    _repair(definitions)
    return definitions


def _repair(node: Any) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            node.clear()
            node["type"] = "object"
            return
        for key, value in list(node.items()):
            if key in ("minItems", "maxItems") and isinstance(value, str):
                node[key] = int("".join(c for c in value if c.isdigit()))
            else:
                _repair(value)
    elif isinstance(node, list):
        for value in node:
            _repair(value)


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$ref`` (a string, not a property named $ref) and ``allOf``
    merged in."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _resolved(_definitions()[ref.rsplit("/", 1)[-1]])
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf", []):
        part = _resolved(part)
        merged.setdefault("type", part.get("type"))
        merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
        merged["required"] = [*merged.get("required", []), *part.get("required", [])]
    return merged


_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("America/New_York")]),
).map(lambda t: t.isoformat())


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents valid for ``schema`` (the subset of JSON Schema the EIDO uses)."""
    schema = _resolved(schema)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind == "string":
        if schema.get("format") == "date-time":
            return _TIMES
        if schema.get("format") == "uri":
            return st.sampled_from(["https://example.com/a", "sip:911@example.com"])
        return st.text(max_size=40)
    if kind == "integer":
        return st.integers(min_value=-(2**31), max_value=2**31 - 1)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = schema.get("items", {})
        least = schema.get("minItems", 0)
        return st.lists(from_schema(items, depth + 1), min_size=least, max_size=max(least, 2))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = [name for name in schema.get("required", []) if name in properties]
        optional = [name for name in properties if name not in required]
        if depth > 3:
            optional = []
        return st.fixed_dictionaries(
            {name: from_schema(properties[name], depth + 1) for name in required},
            optional={name: from_schema(properties[name], depth + 1) for name in optional},
        )
    return st.none() | st.text(max_size=10)


def eido_documents() -> st.SearchStrategy[dict[str, Any]]:
    """EIDO documents generated from the schema's EmergencyIncidentDataObjectType."""
    return from_schema({"$ref": "#/components/schemas/EmergencyIncidentDataObjectType"})
