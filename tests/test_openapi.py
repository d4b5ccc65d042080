"""The committed OpenAPI document is the one the app generates (no drift)."""

from __future__ import annotations

import json

from corespond.app import create_app
from corespond.config import PROJECT_ROOT, Settings


def test_committed_openapi_matches_the_app(settings: Settings) -> None:
    generated = json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True) + "\n"
    committed = (PROJECT_ROOT / "openapi" / "openapi.json").read_text()
    assert committed == generated, "openapi/openapi.json is stale: run `make openapi`"


def test_openapi_documents_the_cad_event_and_problem_responses(settings: Settings) -> None:
    document = create_app(settings).openapi()
    ingest = document["paths"]["/v1/cad/{source}/events"]["post"]
    assert ingest["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CadEvent"
    }
    assert {"202", "401", "404", "413", "415", "422"} <= set(ingest["responses"])
    assert "CadCall" in document["components"]["schemas"]
    assert "whsec_" not in json.dumps(document)
