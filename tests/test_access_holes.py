"""Access holes found by an outside review, each closed: who may change a peer's status,
who reads peers' private fields, whose deliveries a key sees, what a CAD source may file,
which scopes a key may have, old events and look-alike incident numbers."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from corespond.agencies.models import Agency
from corespond.audit.models import AuditEntry
from corespond.crypto import SecretBox
from corespond.db import Database
from corespond.errors import InvalidPayload
from corespond.ingest.models import CadEvent as CadEventRow
from corespond.sources.service import create_source
from tests import program
from tests.conftest import Source, make_key
from tests.helpers import cad_event, encode, signed_headers
from tests.test_assignments import auth
from tests.test_dispatch import messages
from tests.test_ingest_api import fold

LOGAN = "54045"


async def _two_counties(db: Database) -> tuple[str, str]:
    """A Kanawha peer (provider wvsl) and a Logan peer (provider logan)."""
    async with db.sessionmaker() as session, session.begin():
        await program.provider(session, "wvsl", {program.KANAWHA: "primary"})
        await program.provider(session, "logan", {LOGAN: "primary"})
        kanawha = await program.peer(session, "Ana")
        logan = await program.peer(session, "Lou", provider_id="logan", counties=(LOGAN,))
    return str(kanawha.id), str(logan.id)


async def test_a_dispatcher_cannot_set_a_peers_status(
    client: httpx.AsyncClient, db: Database
) -> None:
    kanawha, _ = await _two_counties(db)
    for scope in (f"county:{LOGAN}", f"county:{program.KANAWHA}", None):
        key = await make_key(db, "dispatcher", scope)
        response = await client.post(
            f"/v1/peers/{kanawha}/status", json={"status": "off_duty"}, headers=auth(key)
        )
        assert response.status_code == 403, (scope, response.text)
    peer = await client.get(f"/v1/peers/{kanawha}", headers=auth(await make_key(db, "admin")))
    assert peer.json()["status"] == "available"


async def test_a_scoped_supervisor_sets_only_the_peers_it_may_see(
    client: httpx.AsyncClient, db: Database
) -> None:
    kanawha, logan = await _two_counties(db)
    supervisor = await make_key(db, "supervisor", f"county:{LOGAN}")
    refused = await client.post(
        f"/v1/peers/{kanawha}/status", json={"status": "off_duty"}, headers=auth(supervisor)
    )
    assert refused.status_code == 404
    allowed = await client.post(
        f"/v1/peers/{logan}/status", json={"status": "off_duty"}, headers=auth(supervisor)
    )
    assert allowed.status_code == 200, allowed.text
    other_provider = await make_key(db, "provider_admin", "provider:logan")
    refused = await client.post(
        f"/v1/peers/{kanawha}/status", json={"status": "busy"}, headers=auth(other_provider)
    )
    assert refused.status_code in (403, 404)


async def test_peers_private_fields_are_for_their_provider_and_supervisors(
    client: httpx.AsyncClient, db: Database
) -> None:
    kanawha, logan = await _two_counties(db)
    dispatcher = await make_key(db, "dispatcher", f"county:{program.KANAWHA}")
    assert (await client.get("/v1/peers", headers=auth(dispatcher))).status_code == 403
    assert (await client.get(f"/v1/peers/{kanawha}", headers=auth(dispatcher))).status_code == 403

    auditor = await make_key(db, "auditor")
    listed = (await client.get("/v1/peers", headers=auth(auditor))).json()["items"]
    assert {p["id"] for p in listed} == {kanawha, logan}
    for peer in listed:
        assert peer["phone"] is None
        assert peer["home"] == {"place": None, "lat": None, "lon": None}
        assert all(c["reference"] is None for c in peer["credentials"])

    supervisor = await make_key(db, "supervisor", f"county:{LOGAN}")
    mine = (await client.get("/v1/peers", headers=auth(supervisor))).json()["items"]
    assert [p["id"] for p in mine] == [logan]
    assert mine[0]["phone"] == "+1 304 555 0100"
    assert (await client.get(f"/v1/peers/{kanawha}", headers=auth(supervisor))).status_code == 404
    expiring = await client.get("/v1/peers/credentials/expiring?days=365", headers=auth(supervisor))
    assert {c["peer_id"] for c in expiring.json()} <= {logan}

    provider = await make_key(db, "provider_admin", "provider:wvsl")
    theirs = (await client.get("/v1/peers", headers=auth(provider))).json()["items"]
    assert [p["id"] for p in theirs] == [kanawha]
    assert theirs[0]["phone"] == "+1 304 555 0100"


async def test_deliveries_are_scoped_like_calls_and_their_reads_audited(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    kanawha = await messages(db, source)  # a Kanawha call of CHARLESTON PD
    logan = await messages(db, source, county=LOGAN, agency_name="Logan County Sheriff")
    logan_supervisor = await make_key(db, "supervisor", f"county:{LOGAN}")
    agency_supervisor = await make_key(db, "supervisor", "agency:logan county sheriff.")

    for key in (logan_supervisor, agency_supervisor):
        listed = (await client.get("/v1/deliveries", headers=auth(key))).json()["items"]
        assert [m["id"] for m in listed] == [str(logan[0].id)]
        hidden = await client.get(f"/v1/deliveries/{kanawha[0].id}", headers=auth(key))
        assert hidden.status_code == 404
        refused = await client.post(
            f"/v1/deliveries/{kanawha[0].id}/redeliver?force=true", headers=auth(key)
        )
        assert refused.status_code == 404
        sources = await client.get("/v1/deliveries/sources", headers=auth(key))
        assert sources.status_code == 403  # every source's callback URL: statewide keys only

    seen = await client.get(f"/v1/deliveries/{logan[0].id}", headers=auth(logan_supervisor))
    assert seen.status_code == 200
    again = await client.post(
        f"/v1/deliveries/{logan[0].id}/redeliver", headers=auth(logan_supervisor)
    )
    assert again.status_code == 200, again.text

    async with db.sessionmaker() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.record_type == "delivery"))
        ).all()
    actions = {(e.action, e.record_id) for e in entries}
    assert ("delivery.read", str(logan[0].id)) in actions
    assert ("delivery.redeliver", str(logan[0].id)) in actions
    assert any(e.action == "delivery.list" for e in entries)


async def _entries(db: Database, action: str) -> list[AuditEntry]:
    async with db.sessionmaker() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list((await session.scalars(query)).all())


async def test_created_records_reads_and_refused_reads_are_audited(
    client: httpx.AsyncClient, db: Database
) -> None:
    kanawha, logan = await _two_counties(db)
    admin = await make_key(db, "admin")
    made = await client.post(
        "/v1/peers",
        json={"provider_id": "wvsl", "display_name": "Casey"},
        headers=auth(admin),
    )
    assert made.status_code == 201, made.text
    [entry] = await _entries(db, "peer.post")
    assert entry.record_id == made.json()["id"]

    supervisor = await make_key(db, "supervisor", f"county:{LOGAN}")
    assert (await client.get(f"/v1/peers/{logan}", headers=auth(supervisor))).status_code == 200
    assert [e.record_id for e in await _entries(db, "peer.read")] == [logan]
    await client.get("/v1/peers", headers=auth(supervisor))
    [listed] = await _entries(db, "peer.list")
    assert listed.detail["ids"] == [logan]

    # Refused: a peer the key may not see (404) and an endpoint its role may not call (403).
    assert (await client.get(f"/v1/peers/{kanawha}", headers=auth(supervisor))).status_code == 404
    dispatcher = await make_key(db, "dispatcher")
    assert (await client.get("/v1/peers", headers=auth(dispatcher))).status_code == 403
    refused = await _entries(db, "read.refused")
    assert [(e.role, e.detail["status"], e.record_id) for e in refused] == [
        ("supervisor", 404, kanawha),
        ("dispatcher", 403, None),
    ]
    # No key at all: not on the audit log (the access log counts it).
    assert (await client.get("/v1/peers")).status_code == 401
    assert len(await _entries(db, "read.refused")) == 2


async def test_the_supervisor_pages_data_is_audited(
    client: httpx.AsyncClient, db: Database
) -> None:
    await _two_counties(db)
    key = await make_key(db, "supervisor")
    signed_in = await client.post(
        "/supervisor/login", data={"key": key}, headers={"origin": "http://test"}
    )
    assert signed_in.status_code == 303, signed_in.text
    assert (await client.get("/supervisor")).status_code == 200
    assert (await client.get("/supervisor/data")).status_code == 200
    assert len(await _entries(db, "supervisor_page.read")) == 1
    assert len(await _entries(db, "supervisor_page.data")) == 1


async def _send(client: httpx.AsyncClient, source: Source, document: object) -> httpx.Response:
    body = encode(document)
    url = f"/v1/cad/{source.id}/events"
    return await client.post(url, content=body, headers=signed_headers(source.secret, body))


async def _count(db: Database, model: type) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_source_files_calls_only_for_its_agencies(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    before = REGISTRY.get_sample_value(
        "corespond_cad_events_ingested_total", {"source": source.id, "status": "other_agency"}
    )
    for agency in ("LOGAN COUNTY SHERIFF", "NOT REGISTERED PD"):
        refused = await _send(client, source, cad_event(f"x-{agency}", agency=agency))
        assert refused.status_code == 403, refused.text
        assert agency in refused.json()["detail"]
    assert await _count(db, CadEventRow) == 0
    after = REGISTRY.get_sample_value(
        "corespond_cad_events_ingested_total", {"source": source.id, "status": "other_agency"}
    )
    assert (after or 0) - (before or 0) == 2
    # Its own agency in another spelling, and by its ORI, are its own.
    async with db.sessionmaker() as session, session.begin():
        agency = await session.scalar(select(Agency).where(Agency.name == "CHARLESTON PD"))
        assert agency is not None
        agency.ori = "WV0200100"
    for i, spelling in enumerate(("Charleston P.D.", "WV0200100")):
        accepted = await _send(
            client, source, cad_event(f"ok-{i}", incident_number=f"26-{i}", agency=spelling)
        )
        assert accepted.status_code == 202, accepted.text


async def test_a_source_needs_registered_agencies(db: Database, box: SecretBox) -> None:
    async with db.sessionmaker() as session:
        with pytest.raises(InvalidPayload, match="not registered"):
            await create_source(
                session, box, source_id="x-911", display_name="X", agencies=["NOWHERE PD"]
            )
        with pytest.raises(InvalidPayload, match="at least one agency"):
            await create_source(session, box, source_id="y-911", display_name="Y")


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("26-11\u200b8734", "U+200B ZERO WIDTH SPACE"),
        ("\u202e26-118734", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("26-118\u2028734", "U+2028 LINE SEPARATOR"),
        ("26-\x07118734", "U+0007"),
    ],
)
async def test_invisible_characters_in_an_incident_number_are_refused(
    client: httpx.AsyncClient, db: Database, source: Source, written: str, why: str
) -> None:
    response = await _send(client, source, cad_event("e1", incident_number=written))
    assert response.status_code == 422
    [param] = response.json()["invalid-params"]
    assert param["name"] == "call.incident_number"
    assert why in param["reason"]
    assert await _count(db, CadEventRow) == 0


async def test_a_full_width_incident_number_is_the_same_call(
    client: httpx.AsyncClient, source: Source
) -> None:
    plain = await _send(client, source, cad_event("e1", incident_number="26-118734"))
    wide = await _send(
        client,
        source,
        cad_event("e2", "call.updated", incident_number="\uff12\uff16\uff0d118734"),
    )
    assert plain.status_code == wide.status_code == 202
    assert plain.json()["call_id"] == wide.json()["call_id"]


@pytest.mark.parametrize(
    ("scope", "why"),
    [
        ("peer:not-a-uuid", "peer:<peer id>"),
        ("peer:7b0c4a4e-0000-4000-8000-000000000000", "no peer"),
        ("provider:does-not-exist", "no provider"),
        ("agency:NOWHERE PD", "no registered agency"),
        ("county:Atlantis", "Atlantis"),
    ],
)
async def test_a_key_cannot_be_issued_for_a_scope_that_matches_nothing(
    client: httpx.AsyncClient, db: Database, scope: str, why: str
) -> None:
    admin = await make_key(db, "admin")
    response = await client.post(
        "/v1/keys", json={"role": "dispatcher", "scope": scope, "name": "d"}, headers=auth(admin)
    )
    assert response.status_code == 422, response.text
    assert why in response.json()["detail"]


async def test_an_agency_scope_is_stored_as_the_agency_it_names(
    client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    admin = await make_key(db, "admin")
    made = await client.post(
        "/v1/keys",
        json={"role": "dispatcher", "scope": "agency:charleston p.d.", "name": "d"},
        headers=auth(admin),
    )
    assert made.status_code == 201, made.text
    assert made.json()["scope"] == "agency:CHARLESTON PD"
    await _send(client, source, cad_event("e1"))
    await fold(db)
    calls = await client.get("/v1/calls", headers=auth(made.json()["key"]))
    assert [c["agency"] for c in calls.json()["items"]] == ["CHARLESTON PD"]
