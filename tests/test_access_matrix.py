"""The access table against the application: every route has a rule, and every role and every
endpoint answers as the table says (a generated matrix)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from corespond.auth.models import ROLES
from corespond.auth.policy import POLICY
from corespond.db import Database
from corespond.people.models import Contact, Person
from tests.conftest import make_key
from tests.test_assignments import auth


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router
            yield from api_routes(route.original_router.routes)


def endpoints(app: FastAPI) -> list[str]:
    return sorted(f"{m} {r.path}" for r in api_routes(app.routes) for m in r.methods)


def test_every_route_has_a_rule_and_every_rule_a_route(app: FastAPI) -> None:
    found = set(endpoints(app))
    missing = found - POLICY.keys()
    assert not missing, f"endpoints without an access rule in auth/policy.py: {sorted(missing)}"
    stale = POLICY.keys() - found
    assert not stale, f"access rules for endpoints that do not exist: {sorted(stale)}"


PATH_VALUES = {
    "fips": "54039",
    "county": "54039",
    "provider_id": "wvsl",
    "kind": "nda",
    "source": "kanawha-911",
    "name": "supervisor.js",
}


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        return PATH_VALUES.get(match.group(1), str(uuid.uuid4()))

    return re.sub(r"\{(\w+)\}", value, path)


KEYED = sorted(k for k, rule in POLICY.items() if rule.public is None)


async def test_the_matrix(client: httpx.AsyncClient, db: Database) -> None:
    keys = {
        role: await make_key(
            db,
            role,
            "provider:wvsl"
            if role == "provider_admin"
            else "source:kanawha-911"
            if role == "cad_integrator"
            else f"peer:{uuid.uuid4()}"
            if role == "peer"
            else "agency:CHARLESTON PD"
            if role == "partner"
            else None,
        )
        for role in ROLES
    }
    failures = []
    for endpoint in KEYED:
        method, path = endpoint.split(" ", 1)
        url = concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        anonymous = await client.request(method, url, json=body)
        if anonymous.status_code != 401:
            failures.append(f"{endpoint} without a key: {anonymous.status_code}")
        allowed = {*POLICY[endpoint].roles, "admin"}
        for role, key in keys.items():
            response = await client.request(method, url, json=body, headers=auth(key))
            refused_by_role = response.status_code == 403 and str(
                response.json().get("detail", "")
            ).startswith(f"role {role!r}")
            if response.status_code >= 500:
                failures.append(f"{endpoint} as {role}: {response.status_code}")
            elif role in allowed and (refused_by_role or response.status_code == 401):
                failures.append(f"{endpoint} as {role}: refused ({response.status_code})")
            elif role not in allowed and not refused_by_role:
                failures.append(f"{endpoint} as {role}: {response.status_code}, expected 403")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("endpoint", sorted(k for k, r in POLICY.items() if r.public))
def test_public_endpoints_say_why(endpoint: str) -> None:
    assert POLICY[endpoint].public


# --- scope: the same endpoints with data, for a key in scope and a key out of it -----------

SCOPE_KIND = {
    "dispatcher": "agency",
    "supervisor": "county",
    "provider_admin": "provider",
    "cad_integrator": "source",
}
SCOPED_KEYS = {
    # role: (in scope, out of scope)
    "dispatcher": ("agency:CHARLESTON PD", "agency:BLUEFIELD PD"),
    "supervisor": ("county:54039", "county:54055"),
    "provider_admin": ("provider:wvsl", "provider:rp"),
    "cad_integrator": ("source:kanawha-911", "source:logan-911"),
}


async def test_the_scope_matrix(client: httpx.AsyncClient, db: Database, source: Any) -> None:
    """Reads (and body-less actions) on real records: a key scoped to the record's agency,
    county or provider is served; a key scoped elsewhere gets 403 or 404, never the data."""
    from tests import program

    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {"54011": "primary"})
        peer = await program.peer(session, "Ana", home=program.CHARLESTON)
        call = await program.call(session, source.id)
    admin = await make_key(db, "admin")
    offer = (await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(admin))).json()
    shift = (await client.get("/v1/shifts", headers=auth(admin))).json()["items"][0]
    async with db.sessionmaker() as session, session.begin():
        unfilled = await program.call(session, source.id)  # Ana is taken: an alert
    await client.post(f"/v1/calls/{unfilled.id}/peer-requests", headers=auth(admin))
    alert = (await client.get("/v1/alerts", headers=auth(admin))).json()["items"][0]
    async with db.sessionmaker() as session, session.begin():
        person = Person(
            provider_id="wvsl", name="Jo", county_fips="54039", created_at=datetime.now(UTC)
        )
        session.add(person)
        await session.flush()
        contact = Contact(
            assignment_id=uuid.UUID(offer["id"]),
            provider_id="wvsl",
            peer_id=peer.id,
            county_fips="54039",
            person_id=person.id,
            met_at=datetime.now(UTC),
        )
        session.add(contact)
    ids = {
        "alert_id": alert["id"],
        "call_id": str(call.id),
        "assignment_id": offer["id"],
        "peer_id": str(peer.id),
        "shift_id": shift["id"],
        "provider_id": "wvsl",
        "fips": "54039",
        "source": source.id,
        "county": "54039",
        "person_id": str(person.id),
        "contact_id": str(contact.id),
    }
    gets = [
        k
        for k, rule in POLICY.items()
        if rule.public is None and k.startswith("GET ") and rule.scope != "unscoped"
    ]
    failures = []
    for role, (inside, outside) in SCOPED_KEYS.items():
        keys = {"in": await make_key(db, role, inside), "out": await make_key(db, role, outside)}
        for endpoint in gets:
            if role not in POLICY[endpoint].roles:
                continue
            path = endpoint.split(" ", 1)[1]
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            served = await client.get(url, headers=auth(keys["in"]))
            if served.status_code != 200:
                failures.append(f"{endpoint} as {role} {inside}: {served.status_code}")
            if SCOPE_KIND[role] not in POLICY[endpoint].scope:
                continue  # this kind of scope does not limit this endpoint (see its rule)
            refused = await client.get(url, headers=auth(keys["out"]))
            leaked = refused.status_code == 200 and _mentions(refused.json(), ids)
            if refused.status_code not in (200, 403, 404) or leaked:
                failures.append(f"{endpoint} as {role} {outside}: {refused.status_code}")
    peer_in = await make_key(db, "peer", f"peer:{peer.id}")
    peer_out = await make_key(db, "peer", f"peer:{uuid.uuid4()}")
    for action in ("GET", "accept"):
        url = f"/v1/assignments/{offer['id']}" + ("" if action == "GET" else f"/{action}")
        method = "GET" if action == "GET" else "POST"
        if (await client.request(method, url, headers=auth(peer_out))).status_code != 404:
            failures.append(f"{method} {url} as another peer: not 404")
        if (await client.request(method, url, headers=auth(peer_in))).status_code != 200:
            failures.append(f"{method} {url} as the peer: refused")
    assert not failures, "\n".join(failures)


def _mentions(document: Any, ids: dict[str, str]) -> bool:
    """A list answered to an out-of-scope key must not contain the in-scope records."""
    text = str(document)
    return any(
        ids[k] in text
        for k in ("call_id", "assignment_id", "peer_id", "shift_id", "person_id", "contact_id")
    )
