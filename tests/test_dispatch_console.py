"""The dispatcher's console at /dispatch: sign-in, the calls a key may see, finding one by
incident number, asking for a peer (a review call only with a reason, recorded), scene secure,
calling a peer off with a reason; refused from another site or without a session; the live
stream. The same services and scope rules as the API."""

from __future__ import annotations

import uuid

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from corespond.app import create_app
from corespond.assignments.models import AssignmentChange
from corespond.audit.models import AuditEntry
from corespond.config import Settings
from corespond.db import Database
from tests import program
from tests.conftest import Source, make_key
from tests.test_assignments import auth

SITE = {"origin": "http://t", "sec-fetch-site": "same-origin"}


async def _signed_in(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    signed = await client.post("/dispatch/login", data={"key": key}, headers=SITE)
    assert signed.status_code == 303, signed.text
    cookie = signed.cookies["corespond_dispatch"]
    client.cookies.clear()
    return {**SITE, "cookie": f"corespond_dispatch={cookie}"}


async def test_a_dispatcher_finds_requests_stages_secures_and_calls_off_from_the_console(
    settings: Settings, db: Database, source: Source
) -> None:
    app = create_app(settings, database=db)
    async with LifespanManager(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with db.sessionmaker() as session, session.begin():
            await program.provider(session)
            await program.agency(session)
            await program.peer(session, "Ana", home=program.SOUTH_CHARLESTON)
            eligible = await program.call(session, source.id, incident_number="26-100")
            review = await program.call(
                session, source.id, incident_number="26-101", decision="review"
            )
            await program.call(session, source.id, incident_number="26-102", decision="ineligible")
        console = await _signed_in(client, await make_key(db, "dispatcher"))

        shown = (await client.get("/dispatch/data", headers=console)).json()
        assert {c["incident_number"] for c in shown["calls"]} == {"26-100", "26-101", "26-102"}
        found = await client.get("/dispatch/data?incident_number=%2026-101 ", headers=console)
        [one] = found.json()["calls"]
        assert (one["incident_number"], one["decision"]) == ("26-101", "review")

        asked = await client.post(
            f"/dispatch/calls/{eligible.id}/request",
            headers=console,
            json={"note": "Mother is on scene and asked for a peer."},
        )
        assert asked.status_code == 200, asked.text
        [row] = [
            c
            for c in (await client.get("/dispatch/data", headers=console)).json()["calls"]
            if c["incident_number"] == "26-100"
        ]
        assert row["assignment"]["status"] == "offered"
        assert row["assignment"]["peer"] == "Ana"
        assert row["assignment"]["expires_at"] is not None

        # The peer accepts (a supervisor on the peer's behalf, as the API allows): staged.
        assignment = row["assignment"]["id"]
        supervisor = await make_key(db, "supervisor")
        accepted = await client.post(
            f"/v1/assignments/{assignment}/accept", headers=auth(supervisor)
        )
        assert accepted.status_code == 200, accepted.text
        [row] = [
            c
            for c in (await client.get("/dispatch/data", headers=console)).json()["calls"]
            if c["incident_number"] == "26-100"
        ]
        assert row["assignment"]["staged"] is True
        secured = await client.post(
            f"/dispatch/assignments/{assignment}/scene-secure", headers=console
        )
        assert secured.status_code == 200, secured.text
        no_reason = await client.post(
            f"/dispatch/assignments/{assignment}/cancel", headers=console, json={"reason": ""}
        )
        assert no_reason.status_code == 422
        called_off = await client.post(
            f"/dispatch/assignments/{assignment}/cancel",
            headers=console,
            json={"reason": "police cleared the scene, subject left"},
        )
        assert called_off.json()["status"] == "cancelled"
        async with db.sessionmaker() as session:
            reasons = (
                await session.scalars(
                    select(AssignmentChange.reason).where(
                        AssignmentChange.assignment_id == called_off.json()["assignment"]
                    )
                )
            ).all()
            said = await session.scalar(
                select(AuditEntry).where(AuditEntry.action == "assignment.called_off")
            )
        assert "dispatcher" in reasons
        assert said is not None
        assert said.detail["reason"] == "police cleared the scene, subject left"

        # A review call: only with a reason, and the reason is on the record with who.
        refused = await client.post(
            f"/dispatch/calls/{review.id}/request", headers=console, json={}
        )
        assert refused.status_code == 422
        assert "review_reason" in refused.text
        overridden = await client.post(
            f"/dispatch/calls/{review.id}/request",
            headers=console,
            json={"review_reason": "deputy on scene says it is only a sad drunk uncle"},
        )
        assert overridden.status_code == 200, overridden.text
        async with db.sessionmaker() as session:
            entry = await session.scalar(
                select(AuditEntry).where(AuditEntry.action == "call.review_overridden")
            )
        assert entry is not None
        assert entry.detail["reason"] == "deputy on scene says it is only a sad drunk uncle"


async def test_the_console_keeps_to_the_keys_scope_and_refuses_what_it_should(
    settings: Settings, db: Database, source: Source
) -> None:
    app = create_app(settings, database=db)
    async with LifespanManager(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with db.sessionmaker() as session, session.begin():
            await program.agency(session)
            ours = await program.call(session, source.id, incident_number="26-200")
            theirs = await program.call(
                session, source.id, incident_number="26-201", agency_name="LOGAN COUNTY SHERIFF"
            )
        scoped = await make_key(db, "dispatcher", "agency:CHARLESTON PD")
        console = await _signed_in(client, scoped)
        shown = (await client.get("/dispatch/data", headers=console)).json()["calls"]
        assert [c["incident_number"] for c in shown] == ["26-200"]
        other = await client.post(f"/dispatch/calls/{theirs.id}/request", headers=console, json={})
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"
        # No session, another site, a peer's key.
        assert (await client.get("/dispatch/data", headers=SITE)).status_code == 401
        cross = await client.post(
            f"/dispatch/calls/{ours.id}/request",
            headers={**console, "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
            json={},
        )
        assert cross.status_code == 403
        peer_key = await make_key(db, "auditor")
        denied = await client.post("/dispatch/login", data={"key": peer_key}, headers=SITE)
        assert denied.status_code == 403
        assert "cannot open this console" in denied.text
        for body in ({"note": "x" * 501}, {"review_reason": "y" * 301}, {"colour": "red"}):
            bad = await client.post(
                f"/dispatch/calls/{ours.id}/request", headers=console, json=body
            )
            assert bad.status_code == 422, body
            assert bad.headers["content-type"] == "application/problem+json"
        not_json = await client.post(
            f"/dispatch/calls/{ours.id}/request", headers=console, content=b"note=hi"
        )
        assert not_json.status_code == 422
        no_body = await client.post(
            f"/dispatch/assignments/{uuid.uuid4()}/cancel", headers=console, json={}
        )
        assert no_body.status_code == 422
        unknown = await client.post(
            f"/dispatch/assignments/{uuid.uuid4()}/scene-secure", headers=console
        )
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        long_number = await client.get(
            "/dispatch/data?incident_number=" + "9" * 256, headers=console
        )
        assert long_number.status_code == 422
        page = await client.get("/dispatch", headers=console)
        assert page.status_code == 200
        assert "Content-Security-Policy" in page.headers


async def test_the_console_asks_for_a_language_and_widens_only_where_allowed(
    settings: Settings, db: Database, source: Source
) -> None:
    from corespond.assignments.models import Assignment, PeerRequest

    app = create_app(settings.model_copy(update={"neighbour_providers": True}), database=db)
    async with LifespanManager(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with db.sessionmaker() as session, session.begin():
            await program.provider(session)
            await program.provider(session, "rp", {program.PUTNAM: "primary"})
            await program.agency(session)
            await program.peer(
                session,
                "Rp Rosa",
                provider_id="rp",
                counties=(program.PUTNAM,),
                home=program.WINFIELD,
                languages=("es",),
            )
            call = await program.call(session, source.id, incident_number="26-300")
        console = await _signed_in(client, await make_key(db, "dispatcher"))
        assert (await client.get("/dispatch/data", headers=console)).json()["neighbour_providers"]
        url = f"/dispatch/calls/{call.id}/request"
        first = await client.post(url, headers=console, json={"language": "es"})
        assert first.status_code == 409  # nobody of Kanawha's providers
        assert (
            await client.post(url, headers=console, json={"language": "Spanish"})
        ).status_code == 422
        wider = await client.post(
            url, headers=console, json={"language": "es", "neighbouring_providers": True}
        )
        assert wider.status_code == 200, wider.text
        async with db.sessionmaker() as session:
            offer = await session.get(Assignment, uuid.UUID(wider.json()["assignment"]))
            assert offer is not None
            assert offer.status == "offered"
            request = await session.get(PeerRequest, offer.request_id)
            assert request is not None
            assert (request.language, request.neighbouring_providers) == ("es", True)
