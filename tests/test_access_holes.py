"""Access holes found by an outside review, each closed: who may change a peer's status,
who reads peers' private fields, whose deliveries a key sees, what a CAD source may file,
which scopes a key may have, old events and look-alike incident numbers."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from corespond.audit.models import AuditEntry
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.test_assignments import auth
from tests.test_dispatch import messages

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
