"""The access table against the application: every route has a rule, and every role and every
endpoint answers as the table says (a generated matrix)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from corespond.auth.models import ROLES
from corespond.auth.policy import POLICY
from corespond.db import Database
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
            else f"peer:{uuid.uuid4()}"
            if role == "peer"
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
