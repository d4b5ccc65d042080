"""After the call, for tests: a peer on scene on a call, a small resource directory imported
from HSDS JSON, and a consented contact recorded through the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hsds_service(
    service_id: str,
    name: str,
    organization: tuple[str, str],
    terms: list[str],
    *,
    address: str = "1 Main St",
    city: str = "Charleston",
    postal_code: str | None = "25301",
    lat: float | None = None,
    lon: float | None = None,
    areas: list[str] | None = None,
    status: str = "active",
    phone: str | None = "304-555-0300",
) -> dict[str, Any]:
    """One HSDS 3.0 service object, as a directory publishes it."""
    return {
        "id": service_id,
        "name": name,
        "status": status,
        "description": f"{name}.",
        "organization": {"id": organization[0], "name": organization[1]},
        "phones": [{"id": f"{service_id}-phone", "number": phone}] if phone else [],
        "service_areas": [{"id": f"{service_id}-{n}", "name": n} for n in areas or []],
        "service_at_locations": [
            {
                "id": f"{service_id}-at",
                "location": {
                    "id": f"{service_id}-loc",
                    "location_type": "physical",
                    "latitude": lat,
                    "longitude": lon,
                    "addresses": [
                        {
                            "id": f"{service_id}-addr",
                            "address_1": address,
                            "city": city,
                            "state_province": "WV",
                            "postal_code": postal_code,
                            "country": "US",
                            "address_type": "physical",
                        }
                    ],
                },
            }
        ],
        "attributes": [
            {"id": f"{service_id}-t{i}", "taxonomy_term": {"id": f"t-{t}", "code": t, "name": t}}
            for i, t in enumerate(terms)
        ],
    }


DETOX_ORG = ("org-thomas-detox", "Thomas Memorial Detox Center")
RECOVERY_POINT_ORG = ("org-recovery-point", "Recovery Point Charleston")
QRT_ORG = ("org-huntington-qrt", "Huntington Quick Response Team")

DIRECTORY = [
    hsds_service("svc-detox", "Medically managed withdrawal", DETOX_ORG, ["detoxification"]),
    hsds_service(
        "svc-rp-housing",
        "Women's recovery residence",
        RECOVERY_POINT_ORG,
        ["Recovery Residence", "inpatient"],
        address="1105 Kanawha Blvd",
        lat=38.349,
        lon=-81.64,
    ),
    hsds_service(
        "svc-qrt",
        "Quick Response Team",
        QRT_ORG,
        ["QRT"],
        city="Huntington",
        postal_code="25701",
        areas=["Cabell County", "Kanawha County"],
    ),
    hsds_service(
        "svc-moud-closed",
        "MOUD clinic (closed)",
        DETOX_ORG,
        ["MOUD"],
        status="temporarily closed",
    ),
]


async def import_directory(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    """The test directory imported; service ids by HSDS id."""
    response = await client.post(
        "/v1/directory/import",
        content=json.dumps(DIRECTORY),
        headers={**auth(key), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return {row["key"]: row["service_id"] for row in response.json()["rows"]}


@dataclass
class Met:
    """A peer (Ana, of wvsl) on scene on a call in Kanawha, and keys of everyone around."""

    db: Database
    source: Source
    assignment: str
    admin: str
    dispatcher: str
    supervisor: str
    ana: str
    ana_id: str
    services: dict[str, str]


async def met_on_a_call(
    client: httpx.AsyncClient,
    db: Database,
    source: Source,
    *,
    peer_key: str,
    admin: str,
    dispatcher: str,
    **call_fields: Any,
) -> str:
    """A new call in Kanawha answered by the free peer, who met the person and cleared it
    (a contact is recorded on scene or after clearing); its assignment id."""
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id, **call_fields)
    offer = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(dispatcher))
    assert offer.status_code == 201, offer.text
    url = f"/v1/assignments/{offer.json()['id']}"
    for step, key in (
        ("accept", peer_key),
        ("scene-secure", dispatcher),
        ("en-route", peer_key),
        ("on-scene", peer_key),
    ):
        moved = await client.post(f"{url}/{step}", headers=auth(key))
        assert moved.status_code == 200, moved.text
    cleared = await client.post(
        f"{url}/clear",
        headers=auth(peer_key),
        json={"outcome": "referred", "referrals": ["detox"]},
    )
    assert cleared.status_code == 200, cleared.text
    return str(offer.json()["id"])


async def met(client: httpx.AsyncClient, db: Database, source: Source) -> Met:
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session)
        await program.provider(session, "rp", {program.CABELL: "primary"})
        await program.agency(session)
        await program.agency(session, "BLUEFIELD PD", "54055")
        ana = await program.peer(session, "Ana", home=program.SOUTH_CHARLESTON)
    admin = await make_key(db, "admin")
    dispatcher = await make_key(db, "dispatcher")
    supervisor = await make_key(db, "supervisor")
    ana_key = await make_key(db, "peer", f"peer:{ana.id}")
    services = await import_directory(client, supervisor)
    assignment = await met_on_a_call(
        client, db, source, peer_key=ana_key, admin=admin, dispatcher=dispatcher
    )
    return Met(
        db, source, assignment, admin, dispatcher, supervisor, ana_key, str(ana.id), services
    )


def consent(**overrides: Any) -> dict[str, Any]:
    """A consent as the peer's phone sends it: shared with Charleston PD and the detox."""
    body: dict[str, Any] = {
        "signed_name": "Jo Doe",
        "agreed": True,
        "shares": [
            {"to": "police", "agency": "Charleston PD"},
            {"to": "treatment", "organization": DETOX_ORG[0]},
        ],
        "purposes": ["care_coordination", "follow_up", "deconfliction"],
        "fields": ["name", "contact", "county"],
    }
    body.update(overrides)
    return body


async def record_person(
    client: httpx.AsyncClient,
    assignment: str,
    peer_key: str,
    *,
    name: str = "Jo Doe",
    contact: str | None = "304-555-7788",
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {
        "person": {"name": name, **({"contact": contact} if contact else {})},
        "consent": consent(signed_name=name),
        **extra,
    }
    return await client.post(
        f"/v1/assignments/{assignment}/contact", json=body, headers=auth(peer_key)
    )
