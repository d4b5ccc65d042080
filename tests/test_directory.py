"""The resource directory: imported from Open Referral HSDS files (JSON, and the CSV tables
zipped) with a report per row and a dry run; searched by county and kind."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from corespond.db import Database
from corespond.directory import hsds
from corespond.directory.imports import place
from corespond.geo.service import geography_for
from tests.aftercall import DETOX_ORG, DIRECTORY, auth, hsds_service
from tests.conftest import make_key


async def _import(
    client: httpx.AsyncClient, key: str, body: bytes, kind: str, dry_run: bool = False
) -> httpx.Response:
    return await client.post(
        f"/v1/directory/import{'?dry_run=true' if dry_run else ''}",
        content=body,
        headers={**auth(key), "content-type": kind},
    )


def _json(services: list[dict[str, Any]]) -> bytes:
    return json.dumps(services).encode()


async def test_an_hsds_file_with_a_bad_row_is_reported_row_by_row_and_nothing_is_stored(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    bad = copy.deepcopy(DIRECTORY)
    bad.append(
        hsds_service(
            "svc-food", "Food pantry", ("org-pantry", "Pantry"), ["food"], postal_code="25301"
        )
    )
    bad.append(
        hsds_service(
            "svc-ohio",
            "Ohio detox",
            ("org-oh", "Ohio"),
            ["detox"],
            city="Columbus",
            postal_code="43004",
        )
    )
    bad.append({**DIRECTORY[0], "name": "Twice"})
    answer = await _import(client, key, _json(bad), "application/json")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    report = answer.json()["report"]
    assert report["applied"] is False
    assert report["counts"] == {"created": 4, "updated": 0, "unchanged": 0, "error": 3}
    errors = {r["line"]: r["reason"] for r in report["rows"] if r["result"] == "error"}
    assert "no kind of service" in errors[5]
    assert "'food'" in errors[5]
    assert "no county of the service area" in errors[6]
    assert "repeats the service on line 1" in errors[7]
    assert all(r["service_id"] is None for r in report["rows"])  # nothing stored
    listed = await client.get("/v1/directory/services", headers=auth(key))
    assert listed.json()["items"] == []


async def test_a_dry_run_answers_what_the_import_would_and_stores_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    dry = await _import(client, key, _json(DIRECTORY), "application/json", dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert dry.json()["applied"] is False
    assert dry.json()["counts"]["created"] == 4
    assert (await client.get("/v1/directory/services", headers=auth(key))).json()["items"] == []

    done = await _import(client, key, _json(DIRECTORY), "application/json")
    assert done.json()["applied"] is True
    assert done.json()["counts"] == {"created": 4, "updated": 0, "unchanged": 0, "error": 0}
    again = await _import(client, key, _json(DIRECTORY), "application/json")
    assert again.json()["counts"] == {"created": 0, "updated": 0, "unchanged": 4, "error": 0}
    changed = copy.deepcopy(DIRECTORY)
    changed[0]["phones"][0]["number"] = "304-555-0999"
    updated = await _import(client, key, _json(changed), "application/json")
    assert updated.json()["counts"]["updated"] == 1
    assert updated.json()["rows"][0]["reason"] == "changed: phone"


async def test_the_directory_is_searched_by_county_and_kind(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    await _import(client, key, _json(DIRECTORY), "application/json")
    peer = await make_key(db, "peer", "peer:00000000-0000-0000-0000-000000000001")

    async def names(query: str) -> list[str]:
        found = await client.get(f"/v1/directory/services?{query}", headers=auth(peer))
        assert found.status_code == 200, found.text
        return [s["name"] for s in found.json()["items"]]

    assert await names("county=Kanawha&kind=detox") == ["Medically managed withdrawal"]
    # Placed by its point, and by its kinds: recovery housing and inpatient.
    assert await names("county=54039&kind=recovery_housing") == ["Women's recovery residence"]
    # The QRT is in Huntington (Cabell) and serves Kanawha by its service areas.
    assert await names("county=Cabell&kind=qrt") == ["Quick Response Team"]
    assert await names("county=Kanawha&kind=qrt") == ["Quick Response Team"]
    # Closed services are not offered unless asked for.
    assert await names("kind=mat") == []
    assert await names("kind=mat&include_inactive=true") == ["MOUD clinic (closed)"]
    assert await names("q=thomas") == ["Medically managed withdrawal"]
    unknown = await client.get("/v1/directory/services?county=Atlantis", headers=auth(peer))
    assert unknown.status_code == 422
    assert unknown.json()["invalid-params"][0]["name"] == "query.county"
    bad_kind = await client.get("/v1/directory/services?kind=pizza", headers=auth(peer))
    assert bad_kind.status_code == 422


def _package(tables: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in tables.items():
            archive.writestr(f"wv-directory/{name}", text)
    return buffer.getvalue()


PACKAGE = {
    "datapackage.json": "{}",
    "organization.csv": "id,name,description,website\n"
    "org-prestera,Prestera Center,Behavioral health,https://prestera.example\n",
    "service.csv": "id,organization_id,name,description,status\n"
    "svc-otp,org-prestera,Opioid treatment program,MOUD,active\n"
    'svc-iop,org-prestera,"Intensive outpatient, evenings",IOP,active\n',
    "location.csv": "id,organization_id,name,latitude,longitude\n"
    "loc-1,org-prestera,Huntington clinic,38.4192,-82.4452\n",
    "service_at_location.csv": "id,service_id,location_id\n"
    "sal-1,svc-otp,loc-1\nsal-2,svc-iop,loc-1\n",
    "address.csv": "id,location_id,address_1,city,state_province,postal_code,address_type\n"
    "a-1,loc-1,3375 US-60,Huntington,WV,25705,physical\n",
    "phone.csv": "id,service_id,number\np-1,svc-otp,304-555-0400\n",
    "taxonomy_term.csv": "id,code,name\nt-1,MOUD,Medication for opioid use disorder\n"
    "t-2,IOP,Intensive outpatient\n",
    "attribute.csv": "id,link_id,link_entity,taxonomy_term_id\n"
    "at-1,svc-otp,service,t-1\nat-2,svc-iop,service,t-2\n",
}


async def test_the_csv_tables_of_an_hsds_package_import_like_json(
    client: httpx.AsyncClient, db: Database
) -> None:
    key = await make_key(db, "supervisor")
    done = await _import(client, key, _package(PACKAGE), "application/zip")
    assert done.status_code == 200, done.text
    assert done.json()["format"] == "csv"
    assert [(r["file"], r["line"], r["result"]) for r in done.json()["rows"]] == [
        ("service.csv", 2, "created"),
        ("service.csv", 3, "created"),
    ]
    found = await client.get("/v1/directory/services?county=Cabell", headers=auth(key))
    services = {s["hsds_id"]: s for s in found.json()["items"]}
    assert services["svc-otp"]["kinds"] == ["mat"]
    assert services["svc-otp"]["phone"] == "304-555-0400"
    assert services["svc-otp"]["address"] == "3375 US-60"
    assert services["svc-iop"]["kinds"] == ["outpatient"]
    assert services["svc-iop"]["organization"]["name"] == "Prestera Center"

    stray = dict(PACKAGE)
    stray["service_at_location.csv"] += "sal-3,svc-gone,loc-1\n"
    refused = await _import(client, key, _package(stray), "application/zip")
    assert refused.status_code == 422
    (row,) = [r for r in refused.json()["report"]["rows"] if r["result"] == "error"]
    assert (row["file"], row["line"]) == ("service_at_location.csv", 4)
    assert "svc-gone" in row["reason"]

    not_zip = await _import(client, key, b"id,name\n", "application/zip")
    assert not_zip.status_code == 422
    assert not_zip.json()["type"].endswith("/invalid-directory-file")
    no_services = await _import(
        client, key, _package({"organization.csv": "id\n"}), "application/zip"
    )
    assert "no service.csv" in no_services.json()["detail"]
    ragged = dict(PACKAGE)
    ragged["service.csv"] += "svc-x,org-prestera\n"
    assert (
        "line 4"
        in (await _import(client, key, _package(ragged), "application/zip")).json()["detail"]
    )


async def test_import_refuses_what_it_cannot_read(client: httpx.AsyncClient, db: Database) -> None:
    key = await make_key(db, "supervisor")
    for body, kind, status in (
        (b"{not json", "application/json", 422),
        (b'{"a": 1}', "application/json", 422),
        (b"\xff\xfe", "application/json", 422),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 422),
        (b"id,name", "text/csv", 415),
    ):
        answer = await _import(client, key, body, kind)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    peer = await make_key(db, "provider_admin", "provider:wvsl")
    assert (await _import(client, peer, _json(DIRECTORY), "application/json")).status_code == 403


async def test_a_partner_key_names_a_directory_organization(
    client: httpx.AsyncClient, db: Database
) -> None:
    admin = await make_key(db, "admin")
    await _import(client, admin, _json(DIRECTORY), "application/json")
    made = await client.post(
        "/v1/keys",
        json={"role": "partner", "name": "detox intake", "scope": f"organization:{DETOX_ORG[0]}"},
        headers=auth(admin),
    )
    assert made.status_code == 201, made.text
    unknown = await client.post(
        "/v1/keys",
        json={"role": "partner", "name": "x", "scope": "organization:nobody"},
        headers=auth(admin),
    )
    assert unknown.status_code == 422
    unscoped = await client.post(
        "/v1/keys", json={"role": "partner", "name": "x"}, headers=auth(admin)
    )
    assert unscoped.status_code == 422
    misused = await client.post(
        "/v1/keys",
        json={"role": "supervisor", "name": "x", "scope": f"organization:{DETOX_ORG[0]}"},
        headers=auth(admin),
    )
    assert misused.status_code == 422


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(
    document=st.lists(_json_values, max_size=4)
    | st.dictionaries(st.text(max_size=12), _json_values)
)
def test_any_json_is_read_or_refused_with_a_reason(document: Any) -> None:
    geography = geography_for()
    try:
        parsed = hsds.read_json(json.dumps(document))
    except hsds.HsdsFileError as exc:
        refused = str(exc)
        assert refused
        return
    for service in parsed.services:
        placed = place(service, geography)
        assert isinstance(placed, str) or placed.counties


async def test_the_examples_are_the_demos_directory_in_both_forms(
    client: httpx.AsyncClient, db: Database
) -> None:
    from corespond.config import PROJECT_ROOT
    from corespond.demo_history import DEMO_SERVICES

    folder = PROJECT_ROOT / "examples" / "directory"
    assert json.loads((folder / "services.json").read_text()) == DEMO_SERVICES
    key = await make_key(db, "supervisor")
    first = await _import(client, key, (folder / "services.json").read_bytes(), "application/json")
    assert first.json()["counts"]["created"] == len(DEMO_SERVICES)
    tables = {p.name: p.read_text() for p in sorted((folder / "csv").glob("*.csv"))}
    same = await _import(client, key, _package(tables), "application/zip", dry_run=True)
    assert same.status_code == 200, same.text
    assert same.json()["counts"] == {
        "created": 0,
        "updated": 0,
        "unchanged": len(DEMO_SERVICES),
        "error": 0,
    }
