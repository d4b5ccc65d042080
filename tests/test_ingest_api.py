"""POST /v1/cad/{source}/events on a real PostgreSQL: stored once, folded, every 4xx precise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from corespond.calls.models import Call
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.ingest.models import CadEvent
from corespond.ingest.models import CadEvent as StoredEvent
from corespond.ingest.schemas import EXAMPLE_EVENT
from corespond.pipeline.flow import process_pending
from corespond.sources.service import rotate_secret
from corespond.triage.ruleset import load_rules
from tests.conftest import Source, make_key
from tests.helpers import cad_event, encode, signed_headers

URL = "/v1/cad/kanawha-911/events"


async def post(
    client: httpx.AsyncClient, source: Source, document: Any, **kwargs: Any
) -> httpx.Response:
    body = document if isinstance(document, bytes) else encode(document)
    return await client.post(
        URL, content=body, headers=signed_headers(source.secret, body), **kwargs
    )


async def stored_events(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(CadEvent)) or 0)


async def fold(db: Database) -> None:
    async with db.sessionmaker() as session, session.begin():
        await process_pending(session, 100, load_rules(), now=datetime.now(UTC))


def assert_problem(response: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    text = json.dumps(problem)
    for mention in mentions:
        assert mention in text
    return problem


async def test_signed_event_is_accepted_and_names_its_call(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    response = await post(client, source, cad_event())
    assert response.status_code == 202
    receipt = response.json()
    assert receipt["status"] == "accepted"
    assert receipt["event_id"] == "kanawha-911:884213"
    assert receipt["call_id"]
    assert await stored_events(db) == 1


async def test_accepted_event_comes_back_as_a_folded_call(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    call_id = (await post(client, source, cad_event())).json()["call_id"]
    await fold(db)
    key = await make_key(db, "dispatcher")
    response = await client.get(f"/v1/calls/{call_id}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    call = response.json()
    assert call["incident_number"] == "26-118734"
    assert call["agency"] == "CHARLESTON PD"
    assert call["location"] == {
        "address": "1 Capitol St",
        "city": "Charleston",
        "lat": 38.3498,
        "lon": -81.6326,
    }
    assert call["status"] == "dispatched"
    assert call["opened_at"] == "2026-11-23T09:12:09Z"
    assert [e["event_type"] for e in call["events"]] == ["call.created"]


async def test_repeat_of_an_event_is_a_duplicate_and_not_stored_again(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    first = await post(client, source, cad_event())
    again = await post(client, source, cad_event())
    assert again.status_code == 202
    assert again.json() == {**first.json(), "status": "duplicate"}
    assert await stored_events(db) == 1


async def test_same_event_id_from_another_source_is_a_different_event(
    client: httpx.AsyncClient, source: Source, db: Database, box: SecretBox
) -> None:
    from tests.conftest import make_source

    other = await make_source(db, box, "logan-911")
    body = encode(cad_event())
    await post(client, source, cad_event())
    response = await client.post(
        "/v1/cad/logan-911/events", content=body, headers=signed_headers(other.secret, body)
    )
    assert response.json()["status"] == "accepted"
    assert await stored_events(db) == 2


async def test_out_of_order_and_partial_updates_fold_as_if_in_order(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    closed = cad_event("e3", "call.closed", "2026-11-23T04:40:00-05:00")
    update = cad_event(
        "e2", "call.updated", "2026-11-23T04:20:00-05:00", narrative="PT TRANSPORTED", status="x"
    )
    created = cad_event("e1")
    for document in (closed, update, created, update):
        assert (await post(client, source, document)).status_code == 202
    await fold(db)
    key = await make_key(db, "supervisor")
    page = (await client.get("/v1/calls", headers={"Authorization": f"Bearer {key}"})).json()
    [call] = page["items"]
    assert call["narrative"] == "PT TRANSPORTED"
    assert call["agency"] == "CHARLESTON PD"
    assert call["status"] == "closed"
    assert call["ended_at"] == "2026-11-23T09:40:00Z"
    assert call["event_count"] == 3


async def test_unknown_source_is_404(client: httpx.AsyncClient, source: Source) -> None:
    body = encode(cad_event())
    response = await client.post(
        "/v1/cad/nowhere-911/events", content=body, headers=signed_headers(source.secret, body)
    )
    assert_problem(response, 404, "nowhere-911")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_unsigned_request_is_401_naming_the_header(
    client: httpx.AsyncClient, source: Source, db: Database, missing: str
) -> None:
    body = encode(cad_event())
    headers = signed_headers(source.secret, body)
    del headers[missing]
    response = await client.post(URL, content=body, headers=headers)
    assert_problem(response, 401, missing)
    assert await stored_events(db) == 0


async def test_wrong_secret_stale_and_future_timestamps_are_401(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    body = encode(cad_event())
    from corespond.sources.service import generate_secret

    wrong = await client.post(URL, content=body, headers=signed_headers(generate_secret(), body))
    assert_problem(wrong, 401, "no matching signature")
    stale_at = datetime.now(UTC) - timedelta(minutes=6)
    stale = await client.post(
        URL, content=body, headers=signed_headers(source.secret, body, at=stale_at)
    )
    assert_problem(stale, 401, "too old")
    future_at = datetime.now(UTC) + timedelta(minutes=6)
    future = await client.post(
        URL, content=body, headers=signed_headers(source.secret, body, at=future_at)
    )
    assert_problem(future, 401, "too new")
    assert await stored_events(db) == 0


async def test_tampered_body_is_401(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    body = encode(cad_event())
    headers = signed_headers(source.secret, body)
    tampered = body.replace(b"NO WEAPONS SEEN", b"GUN IN HAND")
    assert_problem(await client.post(URL, content=tampered, headers=headers), 401)
    assert await stored_events(db) == 0


async def test_rotated_secret_keeps_old_one_valid_for_the_grace_period(
    client: httpx.AsyncClient, source: Source, db: Database, box: SecretBox
) -> None:
    async with db.sessionmaker() as session, session.begin():
        new_secret, _ = await rotate_secret(
            session, box, source.id, grace=timedelta(hours=1), now=datetime.now(UTC)
        )
    old_response = await post(client, source, cad_event("a"))
    new_response = await post(client, Source(source.id, new_secret), cad_event("b"))
    assert old_response.status_code == new_response.status_code == 202

    async with db.sessionmaker() as session, session.begin():
        newest, _ = await rotate_secret(
            session, box, source.id, grace=timedelta(0), now=datetime.now(UTC)
        )
    assert_problem(await post(client, source, cad_event("c")), 401)
    assert (await post(client, Source(source.id, newest), cad_event("d"))).status_code == 202


async def test_body_over_the_limit_is_413_and_not_stored(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    big = cad_event(narrative="X" * 7000)
    big["call"]["padding"] = "Y" * 70_000
    response = await post(client, source, big)
    assert_problem(response, 413, "65536")
    assert await stored_events(db) == 0


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, source: Source
) -> None:
    body = b"{" + b" " * 70_000 + b"}"

    async def chunks() -> Any:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    headers = signed_headers(source.secret, body)
    response = await client.post(URL, content=chunks(), headers=headers)
    assert_problem(response, 413)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(event_type="call.exploded"), "event_type"),
        (lambda d: d["call"]["location"].update(lat=91.0), "call.location.lat"),
        (lambda d: d["call"]["location"].update(lon=-181.0), "call.location.lon"),
        (lambda d: d["call"]["location"].pop("lon"), "call.location"),
        (lambda d: d["call"].update(narrative="N" * 8001), "call.narrative"),
        (lambda d: d["call"].update(agency="A" * 101), "call.agency"),
        (lambda d: d["call"].update(hazards=["H"] * 33), "call.hazards"),
        (lambda d: d["call"].update(priority="urgent"), "call.priority"),
        (lambda d: d.pop("event_id"), "event_id"),
        (lambda d: d.update(occurred_at="2026-11-23 at 4"), "occurred_at"),
        (lambda d: d["call"].pop("agency"), "call.agency"),
        (lambda d: d["call"].update(incident_number=""), "call.incident_number"),
    ],
)
async def test_invalid_payload_is_422_naming_the_field(
    client: httpx.AsyncClient, source: Source, db: Database, mutate: Any, field: str
) -> None:
    document = cad_event()
    mutate(document)
    problem = assert_problem(await post(client, source, document), 422)
    assert field in [p["name"] for p in problem["invalid-params"]]
    assert field in problem["detail"]
    assert await stored_events(db) == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe{}"])
async def test_body_that_is_not_an_event_object_is_rejected(
    client: httpx.AsyncClient, source: Source, body: bytes
) -> None:
    headers = signed_headers(source.secret, body.decode(errors="replace"))
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code in (401, 422)  # a non-UTF-8 body cannot carry a valid signature
    assert response.headers["content-type"] == "application/problem+json"


async def test_invalid_json_is_422_saying_so(client: httpx.AsyncClient, source: Source) -> None:
    assert_problem(await post(client, source, b"{not json"), 422, "not valid JSON")


async def test_non_json_content_type_is_415(client: httpx.AsyncClient, source: Source) -> None:
    body = encode(cad_event())
    headers = {**signed_headers(source.secret, body), "content-type": "text/xml"}
    assert_problem(await client.post(URL, content=body, headers=headers), 415)


async def test_rejections_leave_stored_events_untouched(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    await post(client, source, cad_event())
    bad = cad_event(narrative="CHANGED")
    bad["call"]["location"]["lat"] = 200
    await post(client, source, bad)
    await client.post(URL, content=encode(cad_event(narrative="FORGED")), headers={})
    await fold(db)
    key = await make_key(db, "dispatcher")
    page = (await client.get("/v1/calls", headers={"Authorization": f"Bearer {key}"})).json()
    assert [c["narrative"] for c in page["items"]] == [
        "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN"
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": json_values | st.text(max_size=20),
        "event_type": st.sampled_from(["call.created", "call.updated", "x"]) | json_values,
        "occurred_at": st.sampled_from(["2026-11-23T04:12:09-05:00", "yesterday"]) | json_values,
        "call": st.fixed_dictionaries(
            {},
            optional={
                "incident_number": st.text(max_size=70) | json_values,
                "agency": st.text(max_size=110) | json_values,
                "call_type": st.text(max_size=5) | json_values,
                "location": st.dictionaries(
                    st.sampled_from(["lat", "lon", "address", "city", "z"]),
                    st.floats() | json_values,
                ),
                "hazards": json_values,
                "priority": json_values,
            },
        ),
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=event_like | json_values)
async def test_random_json_bodies_never_cause_a_server_error(
    client: httpx.AsyncClient, source: Source, document: Any
) -> None:
    body = json.dumps(document, allow_nan=True).encode()
    response = await client.post(URL, content=body, headers=signed_headers(source.secret, body))
    # 403: an agency the source does not serve (nothing stored).
    assert response.status_code in (202, 403, 413, 422), response.text
    if response.status_code != 202:
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["call"].update(narrative="SUBJ\x00 OD"), "call.narrative"),
        (lambda d: d.update(event_id="ev\x001"), "event_id"),
        (lambda d: d["call"].update(incident_number="26-\x00"), "call.incident_number"),
        (lambda d: d.update(occurred_at="0001-01-01T00:00:00+05:00"), "occurred_at"),
        (lambda d: d.update(occurred_at="9999-12-31T23:59:59-05:00"), "occurred_at"),
        (lambda d: d.update(occurred_at=1763900000), "occurred_at"),
        (lambda d: d["call"].update(priority="two"), "call.priority"),
        (lambda d: d["call"].update(priority=True), "call.priority"),
        (lambda d: d["call"].update(priority="2.5"), "call.priority"),
        (lambda d: d["call"]["location"].update(lat="north"), "call.location.lat"),
        (lambda d: d["call"]["location"].update(lat="95"), "call.location.lat"),
        (lambda d: d["call"].update(hazards=["H" * 501]), "call.hazards.0"),
    ],
)
async def test_values_the_database_cannot_hold_or_that_cannot_be_read_are_422(
    client: httpx.AsyncClient, source: Source, db: Database, mutate: Any, field: str
) -> None:
    document = cad_event()
    mutate(document)
    problem = assert_problem(await post(client, source, document), 422)
    assert field in [p["name"] for p in problem["invalid-params"]]
    assert await stored_events(db) == 0


async def test_deeply_nested_json_is_422_not_a_crash(
    client: httpx.AsyncClient, source: Source
) -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    response = await client.post(URL, content=body, headers=signed_headers(source.secret, body))
    assert response.status_code in (413, 422)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("name", ["%00", "UPPER", "a" * 70, "bad%20id"])
async def test_malformed_source_ids_are_404_without_a_query(
    client: httpx.AsyncClient, source: Source, name: str
) -> None:
    body = encode(cad_event())
    response = await client.post(
        f"/v1/cad/{name}/events", content=body, headers=signed_headers(source.secret, body)
    )
    assert_problem(response, 404)


async def test_a_forgiving_reader_takes_what_cad_exports_send_and_loses_nothing(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    """Empty and blank optional fields are absent, numbers and coordinates may be strings, a
    time without an offset is the program's (America/New_York), a long premise hazard is
    kept whole, unknown fields are ignored and counted."""
    from prometheus_client import REGISTRY

    def unknown() -> float:
        value = REGISTRY.get_sample_value(
            "corespond_cad_unknown_fields_total", {"source": source.id}
        )
        return value or 0.0

    before = unknown()
    hazard = "PREMISE HAZARD: RIFLES AND A PISTOL IN RESIDENCE PER PRIOR CALL 2024, DOG ON CHAIN"
    document = cad_event()
    document["occurred_at"] = "2026-11-23T04:12:09"
    document["vendor_sequence"] = 88
    document["call"].update(
        call_type_description="",
        status="   ",
        priority="2",
        hazards=[hazard, "", "  "],
        unit_ids=["2A21"],
    )
    document["call"]["location"].update(lat="38.3498", lon=" -81.6326 ", address="", zone="4")
    response = await post(client, source, document)
    assert response.status_code == 202, response.text
    assert unknown() - before == 3  # vendor_sequence, call.unit_ids, call.location.zone
    async with db.sessionmaker() as session:
        stored = await session.scalar(select(StoredEvent))
    assert stored is not None
    assert stored.occurred_at == datetime(2026, 11, 23, 9, 12, 9, tzinfo=UTC)  # 04:12 Eastern
    assert stored.payload["ignored"] == {
        "vendor_sequence": 88, "call.unit_ids": ["2A21"], "call.location.zone": "4"
    }  # fmt: skip
    # A blank field in an update leaves the stored value alone (absent); null still clears.
    update = cad_event("ev-2", "call.updated", "2026-11-23T04:20:00-05:00")
    update["call"] = {"incident_number": document["call"]["incident_number"], "narrative": " "}
    assert (await post(client, source, update)).status_code == 202
    await fold(db)
    async with db.sessionmaker() as session:
        call = await session.scalar(select(Call))
    assert call is not None
    assert call.priority == 2
    assert call.call_type_description is None
    assert call.hazards == [hazard]
    assert (call.lat, call.lon) == (38.3498, -81.6326)
    assert call.address is None
    assert call.narrative == EXAMPLE_EVENT["call"]["narrative"]  # not cleared by " "


async def test_a_disabled_source_is_refused_saying_so_and_nothing_is_stored(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    from corespond.sources.service import set_disabled

    async with db.sessionmaker() as session, session.begin():
        await set_disabled(session, source.id, True, datetime.now(UTC))
    problem = assert_problem(await post(client, source, cad_event()), 403)
    assert "disabled" in problem["detail"]
    assert await stored_events(db) == 0
    # Unsigned, it learns nothing more than an unknown caller would.
    body = encode(cad_event())
    unsigned = await client.post(URL, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    async with db.sessionmaker() as session, session.begin():
        await set_disabled(session, source.id, False, datetime.now(UTC))
    assert (await post(client, source, cad_event())).status_code == 202


async def test_validate_only_answers_what_would_be_stored_and_stores_nothing(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    document = cad_event(call_type_description="", vendor_note="x")
    body = encode(document)
    response = await client.post(
        f"{URL}?validate=true", content=body, headers=signed_headers(source.secret, body)
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["valid"], answer["stored"]) == (True, False)
    assert answer["call"]["incident_number"] == document["call"]["incident_number"]
    assert "call_type_description" not in answer["call"]  # blank: absent
    assert answer["ignored_fields"] == ["call.vendor_note"]
    assert answer["triage"]["decision"] == "eligible"
    assert await stored_events(db) == 0
    # Bad input is answered as without validate, and unsigned is still 401.
    bad = cad_event(priority="two")
    bad_body = encode(bad)
    refused = await client.post(
        f"{URL}?validate=true", content=bad_body, headers=signed_headers(source.secret, bad_body)
    )
    assert_problem(refused, 422)
    unsigned = await client.post(
        f"{URL}?validate=true", content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 401
    assert await stored_events(db) == 0


async def test_a_validate_flag_that_is_not_a_boolean_is_422(
    client: httpx.AsyncClient, source: Source, db: Database
) -> None:
    body = encode(cad_event())
    response = await client.post(
        f"{URL}?validate=maybe", content=body, headers=signed_headers(source.secret, body)
    )
    problem = assert_problem(response, 422)
    assert "query.validate" in [p["name"] for p in problem["invalid-params"]]
    assert await stored_events(db) == 0
