"""Every roster field a client sends: a precise 4xx problem, never a 500, nothing lost."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corespond.db import Database
from tests.conftest import make_key
from tests.test_ingest_api import assert_problem
from tests.test_roster import bearer, seed


@pytest.fixture
async def roster(client: httpx.AsyncClient, db: Database) -> dict[str, Any]:
    peers = await seed(db)
    key = await make_key(db, "admin")
    peer = str(peers["Jordan Miller"])
    shift = (
        await client.post(
            "/v1/shifts",
            json={
                "peer_id": peer,
                "starts_at": "2026-11-23 07:00",
                "ends_at": "2026-11-23 19:00",
                "counties": ["Kanawha"],
            },
            headers=bearer(key),
        )
    ).json()
    return {"key": key, "peer": peer, "shift": shift["id"]}


def good_shift(peer: str) -> dict[str, Any]:
    return {
        "peer_id": peer,
        "starts_at": "2026-11-25 07:00",
        "ends_at": "2026-11-25 19:00",
        "counties": ["Kanawha"],
    }


CASES: list[tuple[str, str, Any, int, str]] = [
    # method, path, body (or callable of the roster), status, field or words in the answer
    ("POST", "/v1/providers", {"id": "Bad Id", "name": "X"}, 422, "id"),
    ("POST", "/v1/providers", {"id": "x", "name": ""}, 422, "name"),
    ("POST", "/v1/providers", {"id": "x", "name": "X", "extra": 1}, 422, "extra"),
    ("POST", "/v1/providers", {"id": "wvsl", "name": "again"}, 409, "already exists"),
    ("PUT", "/v1/providers/wvsl/counties", [{"county": "Atlantis"}], 422, "county"),
    ("PUT", "/v1/providers/wvsl/counties", [{"county": "Kanawha", "role": "boss"}], 422, "role"),
    ("PUT", "/v1/providers/nowhere/counties", [{"county": "Kanawha"}], 404, "nowhere"),
    ("POST", "/v1/peers", {"provider_id": "wvsl", "display_name": ""}, 422, "display_name"),
    (
        "POST",
        "/v1/peers",
        {"provider_id": "wvsl", "display_name": "A", "phone": "call me"},
        422,
        "phone",
    ),
    (
        "POST",
        "/v1/peers",
        {"provider_id": "wvsl", "display_name": "A", "home": {"lat": 91}},
        422,
        "home.lat",
    ),
    (
        "POST",
        "/v1/peers",
        {"provider_id": "wvsl", "display_name": "A", "languages": ["x"] * 11},
        422,
        "languages",
    ),
    ("POST", "/v1/peers", {"provider_id": "nowhere", "display_name": "A"}, 404, "nowhere"),
    ("POST", "/v1/peers", {"provider_id": "wvsl", "display_name": "A\x00B"}, 422, "display_name"),
    ("PATCH", "peer", {"phone": "12"}, 422, "phone"),
    ("PATCH", "peer", {"status": "available"}, 422, "status"),
    (
        "PUT",
        "peer/credentials/prss_certification",
        {"expires_at": "2027-01-01T00:00:00"},
        422,
        "expires_at",
    ),
    ("PUT", "peer/credentials/driving_licence", {}, 422, "kind"),
    ("POST", "peer/status", {"status": "asleep"}, 422, "status"),
    ("POST", "/v1/shifts", "shift:counties=[]", 422, "counties"),
    ("POST", "/v1/shifts", "shift:counties=['Atlantis']", 422, "counties"),
    ("POST", "/v1/shifts", "shift:kind='nap'", 422, "kind"),
    ("POST", "/v1/shifts", "shift:starts_at='tomorrow morning'", 422, "starts_at"),
    ("POST", "/v1/shifts", "shift:ends_at='2026-11-28 07:00'", 422, "48 hours"),
    ("POST", "/v1/shifts", "shift:peer_id='00000000-0000-0000-0000-000000000000'", 404, "peer"),
    ("POST", "/v1/shifts", "shift:peer_id='not-a-uuid'", 422, "peer_id"),
    ("PATCH", "shift", {"ends_at": "2026-11-23 06:00"}, 422, "ends after it starts"),
    ("PATCH", "shift", {"counties": []}, 422, "counties"),
    ("GET", "/v1/shifts?limit=0", None, 422, "limit"),
    ("GET", "/v1/shifts?cursor=zzz", None, 400, "cursor"),
    ("GET", "/v1/shifts?from=someday", None, 422, "from"),
    ("GET", "/v1/shifts?county=Atlantis", None, 422, "county"),
    ("GET", "/v1/peers?status=asleep", None, 422, "status"),
    ("GET", "/v1/peers/credentials/expiring?days=-1", None, 422, "days"),
    ("GET", "/v1/peers/not-a-uuid", None, 422, "peer_id"),
    ("POST", "/v1/rosters/import?provider=wvsl&window_days=0", "csv", 422, "window_days"),
    ("POST", "/v1/rosters/import?provider=nowhere", "csv", 404, "nowhere"),
    ("POST", "/v1/rosters/import", "csv", 422, "provider"),
]


def resolve(path: str, roster: dict[str, Any]) -> str:
    if path.startswith("peer"):
        return f"/v1/peers/{roster['peer']}{path[4:]}"
    if path.startswith("shift"):
        return f"/v1/shifts/{roster['shift']}{path[5:]}"
    return path


@pytest.mark.parametrize(("method", "path", "body", "status", "mention"), CASES)
async def test_bad_roster_input_is_a_precise_4xx(
    client: httpx.AsyncClient,
    roster: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    status: int,
    mention: str,
) -> None:
    headers = bearer(roster["key"])
    kwargs: dict[str, Any] = {}
    if isinstance(body, str) and body.startswith("shift:"):
        name, _, value = body[6:].partition("=")
        payload = good_shift(roster["peer"])
        payload[name] = eval(value)  # noqa: S307 - literals written above
        kwargs["json"] = payload
    elif body == "csv":
        kwargs["content"] = b"shift_id,peer,starts_at,ends_at,counties\n"
        headers = {**headers, "content-type": "text/csv"}
    elif body is not None:
        kwargs["json"] = body
    before = (await client.get(f"/v1/peers/{roster['peer']}", headers=headers)).json()
    response = await client.request(method, resolve(path, roster), headers=headers, **kwargs)
    assert_problem(response, status, mention)
    after = (await client.get(f"/v1/peers/{roster['peer']}", headers=headers)).json()
    assert after == before  # nothing stored was changed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=10,
)
shift_like = st.fixed_dictionaries(
    {},
    optional={
        "peer_id": st.uuids().map(str) | json_values,
        "starts_at": st.sampled_from(["2026-11-30 07:00", "2026-03-08 02:30", "x"]) | json_values,
        "ends_at": st.sampled_from(["2026-11-30 19:00", "9999-01-01T00:00Z"]) | json_values,
        "counties": st.lists(st.sampled_from(["Kanawha", "54039", "Atlantis", ""]), max_size=3)
        | json_values,
        "kind": st.sampled_from(["on_duty", "x"]) | json_values,
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(
        [
            ("POST", "/v1/shifts"),
            ("PATCH", "shift"),
            ("POST", "/v1/peers"),
            ("PATCH", "peer"),
            ("PUT", "peer/credentials/nda"),
            ("POST", "peer/status"),
            ("PUT", "/v1/providers/wvsl/counties"),
        ]
    ),
    body=shift_like | json_values,
)
async def test_random_roster_bodies_never_cause_a_server_error(
    client: httpx.AsyncClient, roster: dict[str, Any], target: tuple[str, str], body: Any
) -> None:
    method, path = target
    response = await client.request(
        method,
        resolve(path, roster),
        content=json.dumps(body).encode(),
        headers={**bearer(roster["key"]), "content-type": "application/json"},
    )
    assert response.status_code < 500, response.text
