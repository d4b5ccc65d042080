"""Triage through the service: the dry-run endpoint, and decisions stored for every call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from corespond.db import Database
from tests.conftest import Source, make_key
from tests.helpers import cad_event, encode, signed_headers
from tests.test_ingest_api import assert_problem, fold

URL = "/v1/cad/kanawha-911/events"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def classify(client: httpx.AsyncClient, key: str, body: Any) -> httpx.Response:
    return await client.post("/v1/triage/classify", json=body, headers=bearer(key))


async def test_dry_run_returns_decision_and_readable_reasons(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "dispatcher")
    response = await classify(
        client,
        key,
        {
            "source": "kanawha-911",
            "call": {
                "agency": "CHARLESTON PD",
                "call_type": "OD",
                "narrative": "SUBJ REVIVED WITH NARCAN, NO WEAPONS SEEN BUT HAS A KNIFE",
            },
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "ineligible"
    assert body["summary"] == "ineligible: weapon (KNIFE in narrative)"
    assert {"rule": "danger.weapon", "kind": "danger", "label": "weapon"}.items() <= body[
        "reasons"
    ][0].items()
    assert body["rules_version"].startswith("2026.")


async def test_dry_run_stores_nothing(client: httpx.AsyncClient, db: Database) -> None:
    key = await make_key(db, "supervisor")
    await classify(client, key, {"call": {"call_type": "OD"}})
    page = (await client.get("/v1/calls", headers=bearer(key))).json()
    assert page["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "call"),
        ({"call": {"narrative": "N" * 8001}}, "call.narrative"),
        ({"call": {"hazards": "OFFICER SAFETY"}}, "call.hazards"),
        ({"call": {"call_type": "OD", "weapon": True}}, "call.weapon"),
        ({"call": {"narrative": "A\x00B"}}, "call.narrative"),
    ],
)
async def test_dry_run_rejects_bad_bodies_naming_the_field(
    client: httpx.AsyncClient, db: Database, body: Any, field: str
) -> None:
    key = await make_key(db, "dispatcher")
    problem = assert_problem(await classify(client, key, body), 422)
    assert field in [p["name"] for p in problem["invalid-params"]]


async def test_dry_run_needs_a_key(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/v1/triage/classify", json={"call": {}}), 401)


async def test_dry_run_body_that_is_not_json_is_422(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "dispatcher")
    response = await client.post(
        "/v1/triage/classify",
        content=b"{not json",
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert_problem(response, 422)


async def post(client: httpx.AsyncClient, source: Source, document: Any) -> str:
    body = encode(document)
    response = await client.post(URL, content=body, headers=signed_headers(source.secret, body))
    assert response.status_code == 202
    return str(response.json()["call_id"])


async def test_every_ingested_call_is_triaged_and_the_decision_shown(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    call_id = await post(client, source, cad_event())
    await fold(db)
    key = await make_key(db, "dispatcher")
    call = (await client.get(f"/v1/calls/{call_id}", headers=bearer(key))).json()
    assert call["decision"] == "eligible"
    assert call["decision_summary"].startswith("eligible: overdose")
    [record] = call["triage"]
    assert record["decision"] == "eligible"
    assert record["rules_version"].startswith("2026.")
    assert len(record["inputs_sha256"]) == 64
    assert record["turned_dangerous"] is False


async def test_an_update_that_adds_danger_is_recorded_and_flagged(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    call_id = await post(client, source, cad_event("e1"))
    await fold(db)
    await post(
        client,
        source,
        cad_event(
            "e2",
            "call.updated",
            "2026-11-23T04:20:00-05:00",
            narrative="SUBJ NOW WAVING A KNIFE AT EMS",
        ),
    )
    await fold(db)
    key = await make_key(db, "supervisor")
    call = (await client.get(f"/v1/calls/{call_id}", headers=bearer(key))).json()
    assert call["decision"] == "ineligible"
    assert call["turned_dangerous_at"] is not None
    assert [r["decision"] for r in call["triage"]] == ["eligible", "ineligible"]
    assert call["triage"][-1]["turned_dangerous"] is True

    listed = (await client.get("/v1/calls?decision=ineligible", headers=bearer(key))).json()
    assert [c["id"] for c in listed["items"]] == [call_id]
    none = (await client.get("/v1/calls?decision=eligible", headers=bearer(key))).json()
    assert none["items"] == []


async def test_an_update_that_changes_nothing_triage_reads_adds_no_history(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    call_id = await post(client, source, cad_event("e1"))
    await fold(db)
    await post(
        client,
        source,
        cad_event("e2", "call.updated", "2026-11-23T04:20:00-05:00", status="onscene"),
    )
    await fold(db)
    key = await make_key(db, "supervisor")
    call = (await client.get(f"/v1/calls/{call_id}", headers=bearer(key))).json()
    assert len(call["triage"]) == 1


async def test_decision_filter_rejects_unknown_values(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    assert_problem(await client.get("/v1/calls?decision=maybe", headers=bearer(key)), 422)


async def test_danger_stays_even_if_a_later_update_drops_it_from_the_text(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    call_id = await post(client, source, cad_event("e1"))
    await fold(db)
    for event_id, minute, narrative in (
        ("e2", "20", "SUBJ NOW HOLDING A KNIFE"),
        ("e3", "25", "SUBJ CALM, TALKING WITH OFFICERS"),
    ):
        update = cad_event(
            event_id, "call.updated", f"2026-11-23T04:{minute}:00-05:00", narrative=narrative
        )
        await post(client, source, update)
        await fold(db)
    key = await make_key(db, "supervisor")
    call = (await client.get(f"/v1/calls/{call_id}", headers=bearer(key))).json()
    assert [r["decision"] for r in call["triage"]] == ["eligible", "ineligible", "ineligible"]
    assert call["decision"] == "ineligible"
    assert call["decision_summary"].startswith("ineligible: danger reported earlier")
    assert call["triage"][-1]["reasons"][0]["rule"] == "policy.earlier_danger"
    assert call["turned_dangerous_at"] is not None


async def test_turning_dangerous_is_flagged_after_an_ineligible_step(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    first = cad_event(
        "e1",
        call_type="WELFARE",
        call_type_description="WELFARE CHECK",
        narrative="RP ADV W/M 50S DRUNK ON PORCH OF THE LIBRARY, SLURRING, NO WPNS SEEN",
    )
    call_id = await post(client, source, first)
    await fold(db)
    steps = (
        ("e2", "20", "RP NOW SAYS SUBJ IS SOBER AND CALM"),  # no substance: ineligible
        ("e3", "25", "SUBJ PULLED A GUN ON RP"),  # then danger
    )
    for event_id, minute, narrative in steps:
        update = cad_event(
            event_id, "call.updated", f"2026-11-23T04:{minute}:00-05:00", narrative=narrative
        )
        await post(client, source, update)
        await fold(db)
    key = await make_key(db, "supervisor")
    call = (await client.get(f"/v1/calls/{call_id}", headers=bearer(key))).json()
    assert [r["decision"] for r in call["triage"]] == ["eligible", "ineligible", "ineligible"]
    assert [r["turned_dangerous"] for r in call["triage"]] == [False, False, True]
    assert call["turned_dangerous_at"] is not None


async def test_dry_run_non_json_body_names_the_body(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "dispatcher")
    response = await client.post(
        "/v1/triage/classify",
        content=b"{oops",
        headers={**bearer(key), "content-type": "application/json"},
    )
    problem = assert_problem(response, 422)
    assert problem["invalid-params"] == [{"name": "(body)", "reason": "body is not valid JSON"}]


async def test_the_api_picks_up_a_changed_rule_file_without_a_worker(
    settings: Any, db: Database, tmp_path: Any
) -> None:
    import asyncio
    import os

    from asgi_lifespan import LifespanManager

    from corespond.app import create_app

    override = tmp_path / "local.yaml"
    override.write_text('version: "l1"\n')
    app = create_app(
        settings.model_copy(
            update={
                "triage_rules_file": override,
                "worker_enabled": False,
                "worker_sweep_seconds": 0.1,
            }
        ),
        database=db,
    )
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            key = await make_key(db, "dispatcher")
            narrative = (
                "RP ADV W/M 50S DRUNK SITTING ON PORCH OF THE LIBRARY, SLURRING, NO WPNS SEEN"
            )
            body = {"call": {"call_type": "103D", "narrative": narrative}}
            first = (await classify(client, key, body)).json()
            assert first["decision"] == "review"  # 103D is no kind of call it knows
            override.write_text(
                'version: "l2"\ncodes:\n  default:\n    "103D": [kind.intoxication]\n'
            )
            os.utime(override, (7, 7))
            # Polled, not slept: the reload runs on the scheduler, whenever it gets the CPU.
            for _ in range(200):
                second = (await classify(client, key, body)).json()
                if second["decision"] == "eligible":
                    break
                await asyncio.sleep(0.05)
    assert second["decision"] == "eligible"
    assert "+l2#" in second["rules_version"]
