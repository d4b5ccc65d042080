"""POST /v1/cad/{source}/eido: NENA EIDO documents become calls, folded like native events."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from sqlalchemy import select

from corespond.calls.models import Call
from corespond.db import Database
from corespond.ingest.eido import EIDO_MAPPING, event_from_eido, note_text, read_pidf_lo
from tests.conftest import Source, serve_agency
from tests.eido_documents import eido_documents, sample, wv_incident
from tests.helpers import encode, signed_headers
from tests.test_ingest_api import assert_problem, fold

URL = "/v1/cad/kanawha-911/eido"


async def post_eido(
    client: httpx.AsyncClient, source: Source, document: Any, *, validate: bool = False
) -> httpx.Response:
    body = encode(document)
    return await client.post(
        URL + ("?validate=true" if validate else ""),
        content=body,
        headers=signed_headers(source.secret, body),
    )


async def the_call(db: Database, incident_number: str) -> Call:
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call).where(Call.incident_number == incident_number))
    assert call is not None
    return call


async def test_the_nena_sample_becomes_a_call_outside_the_service_area_not_sent(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    # The sample's owning agency is state.pa.us; a source must be allowed to file for it.
    await serve_agency(db, source.id, "STATEPAUS", "54039")  # as `agencies add` keys it
    response = await post_eido(client, source, sample())
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    await fold(db)
    call = await the_call(db, "urn:emergency:uid:incidentid:a56e556d871:bcf.state.pa.us")
    assert call.agency == "state.pa.us"
    assert call.address == "42 W Cellular Street, DE"
    assert call.city == "Wilmington"
    # A civic address in Delaware is outside a West Virginia program, never snapped.
    assert call.county_method == "outside"
    assert call.county_fips is None
    # No incident type, no narrative: nothing says a peer may go.
    assert call.decision == "ineligible"
    assert call.decision_summary is not None
    assert "no substance involvement" in call.decision_summary


async def test_a_west_virginia_overdose_gets_its_county_triage_and_narrative(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    response = await post_eido(client, source, wv_incident())
    assert response.status_code == 202, response.text
    await fold(db)
    call = await the_call(db, "urn:emergency:uid:incidentid:26-118734:metro911.kanawha.wv.us")
    assert (call.county_fips, call.county_method) == ("54039", "point")
    assert call.call_type == "OD"
    assert call.call_type_description is not None
    assert call.call_type_description.startswith("Overdose")
    assert call.priority == 2
    assert call.narrative == (
        "SUBJ REVIVED WITH NARCAN, CONSCIOUS AND TALKING.\nNO WEAPONS SEEN. RP IS HIS MOTHER."
    )
    assert call.address == "1 Capitol St, WV"
    assert call.decision == "eligible", call.decision_summary


async def test_snapshots_fold_by_time_exactly_once_whatever_the_order(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    first = wv_incident(updated="2026-11-23T04:12:09-05:00")
    closed = wv_incident(updated="2026-11-23T05:40:00-05:00", status="Closed")
    assert (await post_eido(client, source, closed)).status_code == 202
    assert (await post_eido(client, source, first)).status_code == 202
    again = await post_eido(client, source, first)
    assert again.json()["status"] == "duplicate"
    await fold(db)
    call = await the_call(db, first["$id"])
    assert call.status == "closed"
    assert call.event_count == 2
    assert call.ended_at is not None


async def test_a_later_snapshot_that_adds_danger_wins(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    calm = wv_incident()
    worse = wv_incident(
        updated="2026-11-23T04:30:00-05:00",
        notes=(
            "SUBJ REVIVED WITH NARCAN, CONSCIOUS AND TALKING.",
            "UPDT: BROTHER ARRIVED AND IS SWINGING A BASEBALL BAT AT THE MEDICS",
        ),
    )
    await post_eido(client, source, calm)
    await post_eido(client, source, worse)
    await fold(db)
    call = await the_call(db, calm["$id"])
    assert call.decision != "eligible"


async def test_a_unit_status_the_source_calls_scene_secure_is_the_calls_status() -> None:
    document = wv_incident(unit_status="SceneSecure")
    event = event_from_eido(document, scene_secure_statuses=["scenesecure"])
    assert event["call"]["status"] == "SceneSecure"
    assert "status" not in event_from_eido(document)["call"]


async def test_cautions_are_hazards_kept_whole() -> None:
    document = wv_incident()
    document["cautionComponent"] = [
        {
            "$id": "c1",
            "lastUpdateTimeStamp": "2026-11-23T04:12:09-05:00",
            "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
            "cautionTypeInternalText": "RIFLES AND A PISTOL IN RESIDENCE PER PRIOR CALL 2024",
            "cautionTypeCommonRegistryText": "Weapons",
            "cautionSeverity": "high",
        }
    ]
    hazards = event_from_eido(document)["call"]["hazards"]
    assert hazards == ["Weapons: RIFLES AND A PISTOL IN RESIDENCE PER PRIOR CALL 2024"]


async def test_an_eido_without_its_id_is_refused_naming_it(
    client: httpx.AsyncClient, source: Source
) -> None:
    document = wv_incident()
    del document["$id"]
    problem = assert_problem(await post_eido(client, source, document), 422, "$id")
    assert problem["invalid-params"][0]["name"] == "$id"


async def test_validate_shows_the_call_and_stores_nothing(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    response = await post_eido(client, source, wv_incident(), validate=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] is False
    assert body["call"]["call_type"] == "OD"
    assert body["triage"]["decision"] == "eligible"
    async with db.sessionmaker() as session:
        assert (await session.scalar(select(Call.id))) is None


async def test_a_source_whose_format_is_eido_reads_it_on_the_events_endpoint(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    from corespond.sources.models import CadSource

    async with db.sessionmaker() as session, session.begin():
        row = await session.get(CadSource, source.id)
        assert row is not None
        row.format = "eido"
    body = encode(wv_incident())
    response = await client.post(
        "/v1/cad/kanawha-911/events", content=body, headers=signed_headers(source.secret, body)
    )
    assert response.status_code == 202, response.text


def test_pidf_lo_that_does_not_parse_still_gives_its_point() -> None:
    broken = "<presence><gml:pos>40.441345 -80.000266 34</gml:pos><gs:semiMinorAxis uom='x' 3"
    assert read_pidf_lo(broken) == {"lat": 40.441345, "lon": -80.000266}


def test_pidf_lo_entities_are_refused_not_expanded() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">]>'
        "<presence><civicAddress><A3>&a;</A3></civicAddress></presence>"
    )
    assert "city" not in read_pidf_lo(bomb)


def test_html_notes_are_read_as_text() -> None:
    assert note_text("<p>RP&nbsp;states <b>no</b> weapons</p><p>2nd line</p>") == (
        "RP states no weapons\n2nd line"
    )


def test_every_mapped_field_is_in_the_table() -> None:
    targets = {target for target, _ in EIDO_MAPPING}
    assert {"call.incident_number", "call.narrative", "call.hazards", "call.status"} <= targets


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=eido_documents())
async def test_any_schema_valid_eido_is_accepted_or_refused_precisely(
    client: httpx.AsyncClient, source: Source, document: dict[str, Any]
) -> None:
    # The owning agency is the source's own, so that a refusal is about the document.
    document.setdefault("agencyComponent", []).insert(
        0,
        {
            "$id": "CHARLESTON PD",
            "lastUpdateTimeStamp": "2026-11-23T04:12:09-05:00",
            "updatedByAgencyReference": {"$ref": "CHARLESTON PD"},
            "agencyRoleDescriptionRegistryText": [],
            "agencyType": [],
            "incidentOwningAgencyIndicator": True,
        },
    )
    response = await post_eido(client, source, document)
    assert response.status_code in (202, 422), response.text
    if response.status_code == 422:
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["invalid-params"], json.dumps(problem)
        assert all(p["name"] for p in problem["invalid-params"])


async def test_a_note_with_a_lone_surrogate_is_refused_not_a_500(
    client: httpx.AsyncClient, source: Source
) -> None:
    document = wv_incident(notes=("RP STATES \ud83d ONLY",))
    body = json.dumps(document).encode()  # \ud83d escaped, as a careless encoder sends it
    response = await client.post(URL, content=body, headers=signed_headers(source.secret, body))
    assert response.status_code in (202, 422), response.text
