"""Bad input to every endpoint after the call, as the OpenAPI document describes them: people
and consent, contacts and referrals, follow-ups, the directory.

Each operation the document lists under the tags ``people``, ``follow-ups`` and
``directory`` is sent what a client may get wrong: an id that does not exist, one that is
not an id, a field of the wrong type, a date out of range, a consent expired or revoked, a
record of another provider, a malformed HSDS file. Every answer must be the precise 4xx the
case names (never a 500), declared in the operation's ``responses``, an
``application/problem+json`` document naming the field or the problem, and nothing stored:
the records after the call are exactly what they were before each request.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from corespond.db import Database
from corespond.directory.models import DirectoryOrganization, DirectoryService
from corespond.followups.models import FollowUp
from corespond.people.models import Consent, ConsentShare, Contact, Person, Referral
from tests import program
from tests.aftercall import (
    DETOX_ORG,
    DIRECTORY,
    QRT_ORG,
    auth,
    consent,
    hsds_service,
    met,
    met_on_a_call,
    record_person,
)
from tests.conftest import Source, make_key

TAGS = {"people", "follow-ups", "directory"}
NOTHING = object()
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Bad:
    """One bad request: to ``operation`` (as the OpenAPI document names it), what is wrong
    (``kind``, in words), who sends it, and what it must be answered with: ``status`` and
    the invalid field (``field``, a 422) or the problem's type (``problem``)."""

    operation: str
    kind: str
    status: int
    key: str = "peer"
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = NOTHING
    content: bytes | None = None
    content_type: str | None = None
    field: str | None = None
    problem: str | None = None
    days_later: float = 0  # the request made this long after now (an expired consent)


def contact_body(**extra: Any) -> dict[str, Any]:
    return {"person": {"name": "Al Ames", "contact": "304-555-0101"}, "consent": consent(), **extra}


def visit(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "qrt_visit",
        "due_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        **extra,
    }


def zipped(**files: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


CONTACT = "POST /v1/assignments/{assignment_id}/contact"
PEOPLE = "GET /v1/people"
PERSON = "GET /v1/people/{person_id}"
DUPLICATES = "GET /v1/people/{person_id}/duplicates"
MERGE = "POST /v1/people/{person_id}/merge"
SIGN = "POST /v1/people/{person_id}/consents"
REVOKE = "POST /v1/people/{person_id}/consent/revoke"
ADD_FOLLOWUP = "POST /v1/people/{person_id}/followups"
GET_CONTACT = "GET /v1/contacts/{contact_id}"
REFER = "POST /v1/contacts/{contact_id}/referrals"
ARRIVAL = "POST /v1/referrals/{referral_id}/arrival"
FOLLOWUPS = "GET /v1/followups"
OUTCOME = "POST /v1/followups/{followup_id}/outcome"
ASSIGN = "POST /v1/followups/{followup_id}/assign"
SERVICES = "GET /v1/directory/services"
SERVICE = "GET /v1/directory/services/{service_id}"
IMPORT = "POST /v1/directory/import"

# Symbolic path values (resolved against the records the test makes): "unknown" is an id no
# record has, "malformed" is not an id at all.
U, M = "unknown", "malformed"


def on(operation: str, **path: str) -> Callable[..., Bad]:
    """Cases of ``operation`` sent to these path values (symbolic, resolved by the test)."""

    def case(kind: str, status: int, **fields: Any) -> Bad:
        return Bad(operation, kind, status, path={**path, **fields.pop("path", {})}, **fields)

    return case


contact_on_free = on(CONTACT, assignment_id="free")
people = on(PEOPLE)
jo = on(PERSON, person_id="jo")
jo_merge = on(MERGE, person_id="jo")
jo_sign = on(SIGN, person_id="jo")
jo_revoke = on(REVOKE, person_id="jo")
jo_visit = on(ADD_FOLLOWUP, person_id="jo")
followups = on(FOLLOWUPS)
outcome_open = on(OUTCOME, followup_id="open")
assign_open = on(ASSIGN, followup_id="open")
refer_jo = on(REFER, contact_id="jo's")
arrival_pending = on(ARRIVAL, referral_id="pending")
services = on(SERVICES)


def imported(kind: str, status: int, content: bytes, content_type: str, **fields: Any) -> Bad:
    return Bad(
        IMPORT, kind, status, key="supervisor", content=content, content_type=content_type, **fields
    )


JSON, ZIP = "application/json", "application/zip"
NOT_A_ROW = hsds_service("svc-bad", "Bad", ("org-bad", "Bad"), ["food"])
BAD_PLACE = {"id": "l", "location": {"id": "l", "latitude": "north", "addresses": "here"}}

CASES = [
    # --- recording a contact --------------------------------------------------------------------
    Bad(
        CONTACT, "malformed id", 422, path={"assignment_id": M}, body={}, field="path.assignment_id"
    ),
    Bad(CONTACT, "unknown id", 404, path={"assignment_id": U}, body={}),
    contact_on_free("wrong type", 422, body={"person": "Al"}, field="person"),
    contact_on_free("wrong type", 422, body={"same_as": 5}, field="same_as"),
    contact_on_free("wrong type", 422, body={"new_person": [1]}, field="new_person"),
    contact_on_free("wrong type", 422, body=[], field="(body)"),
    contact_on_free("wrong type", 422, content=b"{not", content_type=JSON, field="(body)"),
    contact_on_free("unknown field", 422, body={"nickname": "Al"}, field="nickname"),
    contact_on_free("missing", 422, body={"person": {"name": "Al"}}, field="consent"),
    contact_on_free("missing", 422, body={"consent": consent()}, field="person"),
    contact_on_free(
        "out of range",
        422,
        body=contact_body(consent=consent(expires_on="2099-01-01")),
        field="consent.expires_on",
    ),
    contact_on_free(
        "out of range",
        422,
        body=contact_body(consent=consent(expires_on="2001-01-01")),
        field="consent.expires_on",
    ),
    contact_on_free(
        "wrong type",
        422,
        body=contact_body(consent=consent(expires_on="2026-13-40")),
        field="consent.expires_on",
    ),
    contact_on_free(
        "wrong type",
        422,
        body=contact_body(consent=consent(purposes=["spying"])),
        field="consent.purposes.0",
    ),
    contact_on_free(
        "out of range",
        422,
        body=contact_body(consent=consent(purposes=[])),
        field="consent.purposes",
    ),
    contact_on_free(
        "reference",
        422,
        body=contact_body(consent=consent(shares=[{"to": "qrt", "organization": "org-x"}])),
        field="consent.shares.0.organization",
    ),
    contact_on_free(
        "reference",
        422,
        body=contact_body(person={"name": "Al", "county": "Atlantis"}),
        field="person.county",
    ),
    contact_on_free("reference", 422, body={"same_as": "unknown person"}, field="same_as"),
    contact_on_free(
        "wrong provider", 422, body={"same_as": "other provider's person"}, field="same_as"
    ),
    contact_on_free(
        "revoked consent", 409, body={"same_as": "revoked"}, problem="consent-not-live"
    ),
    contact_on_free(
        "expired consent", 409, body={"same_as": "jo"}, problem="consent-not-live", days_later=400
    ),
    Bad(CONTACT, "state", 409, path={"assignment_id": "jo's"}, body={}, problem="contact-recorded"),
    Bad(CONTACT, "state", 409, path={"assignment_id": "not met"}, body={}, problem="not-met-yet"),
    contact_on_free("wrong provider", 404, key="other peer", body={}),
    # --- reading people ---------------------------------------------------------------------
    people("wrong type", 422, query={"limit": "ten"}, field="query.limit"),
    people("out of range", 422, query={"limit": "0"}, field="query.limit"),
    people("out of range", 422, query={"limit": "201"}, field="query.limit"),
    people("reference", 422, query={"county": "Atlantis"}, field="query.county"),
    people("wrong type", 422, query={"q": "a\x00b"}, field="query.q"),
    people("wrong type", 422, key="police", query={"purpose": "spying"}, field="query.purpose"),
    people("missing", 422, key="police", field="query.purpose"),
    Bad(PERSON, "malformed id", 422, path={"person_id": M}, field="path.person_id"),
    Bad(PERSON, "unknown id", 404, path={"person_id": U}),
    Bad(
        PERSON,
        "unknown id",
        404,
        key="police",
        path={"person_id": U},
        query={"purpose": "deconfliction"},
    ),
    Bad(PERSON, "wrong provider", 404, path={"person_id": "other provider's person"}),
    jo("wrong provider", 404, key="other admin"),
    jo("wrong type", 422, key="police", query={"purpose": "curiosity"}, field="query.purpose"),
    jo("missing", 422, key="police", field="query.purpose"),
    Bad(
        PERSON,
        "revoked consent",
        403,
        key="police",
        path={"person_id": "revoked"},
        query={"purpose": "deconfliction"},
        problem="consent-refused",
    ),
    jo(
        "expired consent",
        403,
        key="police",
        query={"purpose": "deconfliction"},
        problem="consent-refused",
        days_later=400,
    ),
    jo(
        "purpose not consented",
        403,
        key="police",
        query={"purpose": "treatment_referral"},
        problem="consent-refused",
    ),
    jo(
        "partner not named",
        403,
        key="qrt",
        query={"purpose": "follow_up"},
        problem="consent-refused",
    ),
    Bad(DUPLICATES, "malformed id", 422, path={"person_id": M}, field="path.person_id"),
    Bad(DUPLICATES, "unknown id", 404, path={"person_id": U}),
    Bad(DUPLICATES, "wrong provider", 404, path={"person_id": "other provider's person"}),
    # --- merging, consent -------------------------------------------------------------------
    Bad(
        MERGE,
        "malformed id",
        422,
        path={"person_id": M},
        body={"duplicate_id": str(uuid.uuid4()), "confirm": True},
        field="path.person_id",
    ),
    Bad(
        MERGE,
        "unknown id",
        404,
        path={"person_id": U},
        body={"duplicate_id": "revoked", "confirm": True},
    ),
    jo_merge(
        "wrong type", 422, body={"duplicate_id": "revoked", "confirm": "sure"}, field="confirm"
    ),
    jo_merge("wrong type", 422, body={"duplicate_id": 7, "confirm": True}, field="duplicate_id"),
    jo_merge("missing", 422, body={"duplicate_id": "revoked", "confirm": False}, field="confirm"),
    jo_merge(
        "reference",
        422,
        body={"duplicate_id": "unknown person", "confirm": True},
        field="duplicate_id",
    ),
    jo_merge("reference", 422, body={"duplicate_id": "jo", "confirm": True}, field="duplicate_id"),
    jo_merge(
        "wrong provider",
        422,
        body={"duplicate_id": "other provider's person", "confirm": True},
        field="duplicate_id",
    ),
    jo_merge(
        "wrong provider", 404, key="other admin", body={"duplicate_id": "revoked", "confirm": True}
    ),
    Bad(SIGN, "malformed id", 422, path={"person_id": M}, body=consent(), field="path.person_id"),
    Bad(SIGN, "unknown id", 404, path={"person_id": U}, body=consent()),
    Bad(SIGN, "wrong provider", 404, path={"person_id": "other provider's person"}, body=consent()),
    jo_sign("wrong type", 422, body=consent(agreed="yes please"), field="agreed"),
    jo_sign("wrong type", 422, body=consent(fields="name"), field="fields"),
    jo_sign("missing", 422, body=consent(agreed=False), field="agreed"),
    jo_sign("out of range", 422, body=consent(expires_on="2001-01-01"), field="expires_on"),
    jo_sign(
        "out of range", 422, body=consent(statement_version="1999-01"), field="statement_version"
    ),
    jo_sign(
        "reference",
        422,
        body=consent(shares=[{"to": "police", "agency": "NOWHERE PD"}]),
        field="shares.0.agency",
    ),
    jo_sign(
        "wrong type",
        422,
        body=consent(shares=[{"to": "police", "organization": DETOX_ORG[0]}]),
        field="shares.0.agency",
    ),
    jo_sign("not the peer with them", 403, key="admin", body=consent()),
    Bad(REVOKE, "malformed id", 422, path={"person_id": M}, field="path.person_id"),
    Bad(REVOKE, "unknown id", 404, path={"person_id": U}),
    jo_revoke("wrong provider", 404, key="other admin"),
    jo_revoke("wrong type", 422, body={"reason": 5}, field="reason"),
    jo_revoke("out of range", 422, body={"reason": "x" * 2001}, field="reason"),
    Bad(REVOKE, "revoked consent", 409, path={"person_id": "revoked"}, problem="consent-not-live"),
    jo_revoke("expired consent", 409, problem="consent-not-live", days_later=400),
    # --- follow-ups -------------------------------------------------------------------------
    Bad(
        ADD_FOLLOWUP,
        "malformed id",
        422,
        path={"person_id": M},
        body=visit(),
        field="path.person_id",
    ),
    Bad(ADD_FOLLOWUP, "unknown id", 404, path={"person_id": U}, body=visit()),
    jo_visit("wrong provider", 404, key="other admin", body=visit()),
    jo_visit("wrong type", 422, body=visit(kind="picnic"), field="kind"),
    jo_visit("wrong type", 422, body=visit(due_at="2026-12-01T10:00"), field="due_at"),
    jo_visit("wrong type", 422, body=visit(due_at="tomorrow"), field="due_at"),
    jo_visit("out of range", 422, body=visit(due_at="9999-12-31T10:00:00+00:00"), field="due_at"),
    jo_visit("out of range", 422, body=visit(due_at="2001-01-01T10:00:00+00:00"), field="due_at"),
    jo_visit(
        "reference", 422, body=visit(assignee_peer_id="unknown peer"), field="assignee_peer_id"
    ),
    jo_visit(
        "wrong provider", 422, body=visit(assignee_peer_id="other peer"), field="assignee_peer_id"
    ),
    jo_visit("reference", 422, body=visit(organization_id="org-x"), field="organization_id"),
    jo_visit(
        "partner not named", 403, body=visit(organization_id=QRT_ORG[0]), problem="consent-refused"
    ),
    Bad(
        ADD_FOLLOWUP,
        "revoked consent",
        403,
        path={"person_id": "revoked"},
        body=visit(organization_id=QRT_ORG[0]),
        problem="consent-refused",
    ),
    followups("wrong type", 422, query={"state": "pending"}, field="query.state"),
    followups("wrong type", 422, query={"due_before": "next week"}, field="query.due_before"),
    followups(
        "wrong type", 422, query={"due_before": "2026-12-01T10:00"}, field="query.due_before"
    ),
    followups("wrong type", 422, query={"escalated": "perhaps"}, field="query.escalated"),
    followups("wrong type", 422, query={"assignee": "everyone"}, field="query.assignee"),
    followups("wrong type", 422, query={"person": "jo"}, field="query.person"),
    followups("out of range", 422, query={"limit": "501"}, field="query.limit"),
    followups("not for partners", 403, key="police"),
    Bad(
        OUTCOME,
        "malformed id",
        422,
        path={"followup_id": M},
        body={"outcome": "reached"},
        field="path.followup_id",
    ),
    Bad(OUTCOME, "unknown id", 404, path={"followup_id": U}, body={"outcome": "reached"}),
    outcome_open("wrong provider", 404, key="other admin", body={"outcome": "reached"}),
    outcome_open("wrong type", 422, body={"outcome": "fine"}, field="outcome"),
    outcome_open("missing", 422, body={}, field="outcome"),
    Bad(
        OUTCOME,
        "state",
        409,
        path={"followup_id": "done"},
        body={"outcome": "reached"},
        problem="follow-up-done",
    ),
    Bad(
        ASSIGN,
        "malformed id",
        422,
        path={"followup_id": M},
        body={"peer_id": None},
        field="path.followup_id",
    ),
    Bad(ASSIGN, "unknown id", 404, path={"followup_id": U}, body={"peer_id": None}),
    assign_open("wrong provider", 404, key="other admin", body={"peer_id": None}),
    assign_open("wrong type", 422, key="provider admin", body={"peer_id": "Ben"}, field="peer_id"),
    assign_open("missing", 422, key="provider admin", body={}, field="peer_id"),
    assign_open(
        "reference", 422, key="provider admin", body={"peer_id": "unknown peer"}, field="peer_id"
    ),
    assign_open(
        "wrong provider", 422, key="provider admin", body={"peer_id": "other peer"}, field="peer_id"
    ),
    Bad(
        ASSIGN,
        "state",
        409,
        key="provider admin",
        path={"followup_id": "done"},
        body={"peer_id": None},
        problem="follow-up-done",
    ),
    # --- contacts and referrals -------------------------------------------------------------
    Bad(GET_CONTACT, "malformed id", 422, path={"contact_id": M}, field="path.contact_id"),
    Bad(GET_CONTACT, "unknown id", 404, path={"contact_id": U}),
    Bad(GET_CONTACT, "wrong provider", 404, key="other admin", path={"contact_id": "jo's"}),
    Bad(
        REFER,
        "malformed id",
        422,
        path={"contact_id": M},
        body={"service_id": "the detox", "kind": "detox"},
        field="path.contact_id",
    ),
    Bad(
        REFER,
        "unknown id",
        404,
        path={"contact_id": U},
        body={"service_id": "the detox", "kind": "detox"},
    ),
    refer_jo(
        "wrong provider", 404, key="other admin", body={"service_id": "the detox", "kind": "detox"}
    ),
    refer_jo("wrong type", 422, body={"service_id": 12, "kind": "detox"}, field="service_id"),
    refer_jo("wrong type", 422, body={"service_id": "the detox", "kind": "spa"}, field="kind"),
    refer_jo(
        "reference",
        422,
        body={"service_id": "unknown service", "kind": "detox"},
        field="service_id",
    ),
    refer_jo("reference", 422, body={"service_id": "the detox", "kind": "mat"}, field="kind"),
    refer_jo(
        "state", 422, body={"service_id": "the closed clinic", "kind": "mat"}, field="service_id"
    ),
    Bad(
        ARRIVAL,
        "malformed id",
        422,
        path={"referral_id": M},
        body={"arrived": True},
        field="path.referral_id",
    ),
    Bad(ARRIVAL, "unknown id", 404, path={"referral_id": U}, body={"arrived": True}),
    arrival_pending("wrong provider", 404, key="other admin", body={"arrived": True}),
    arrival_pending("wrong type", 422, body={"arrived": "maybe"}, field="arrived"),
    arrival_pending("missing", 422, body={}, field="arrived"),
    Bad(
        ARRIVAL,
        "state",
        409,
        path={"referral_id": "arrived"},
        body={"arrived": False},
        problem="arrival-recorded",
    ),
    # --- the directory ----------------------------------------------------------------------
    services("wrong type", 422, query={"kind": "spa"}, field="query.kind"),
    services("reference", 422, query={"county": "Atlantis"}, field="query.county"),
    services("out of range", 422, query={"limit": "0"}, field="query.limit"),
    services(
        "wrong type", 422, query={"include_inactive": "perhaps"}, field="query.include_inactive"
    ),
    Bad(SERVICE, "malformed id", 422, path={"service_id": M}, field="path.service_id"),
    Bad(SERVICE, "unknown id", 404, path={"service_id": U}),
    imported("malformed file", 422, b"{not json", JSON, problem="invalid-directory-file"),
    imported("malformed file", 422, b"42", JSON, problem="invalid-directory-file"),
    imported("malformed file", 422, b"PK not a zip", ZIP, problem="invalid-directory-file"),
    imported(
        "malformed file",
        422,
        zipped(**{"organization.csv": "id,name\norg-1,One\n"}),
        ZIP,
        problem="invalid-directory-file",
    ),
    imported(
        "malformed row",
        422,
        json.dumps([*DIRECTORY, NOT_A_ROW]).encode(),
        JSON,
        problem="invalid-payload",
    ),
    imported(
        "malformed row",
        422,
        json.dumps([{**DIRECTORY[0], "id": "svc-x", "name": ["a", "list"]}]).encode(),
        JSON,
        problem="invalid-payload",
    ),
    imported(
        "malformed row",
        422,
        json.dumps([{**DIRECTORY[0], "id": "svc-y", "service_at_locations": [BAD_PLACE]}]).encode(),
        JSON,
        problem="invalid-payload",
    ),
    imported(
        "malformed row",
        422,
        json.dumps(["just a string", 7]).encode(),
        JSON,
        problem="invalid-payload",
    ),
    imported(
        "malformed row",
        422,
        zipped(**{"service.csv": "id,name,organization_id,status\nsvc-z,,org-z,closed forever\n"}),
        ZIP,
        problem="invalid-payload",
    ),
    imported("wrong type", 415, b"id,name\n", "text/csv"),
    Bad(
        IMPORT,
        "wrong type",
        422,
        key="supervisor",
        query={"dry_run": "perhaps"},
        content=b"[]",
        content_type=JSON,
        field="query.dry_run",
    ),
]


@dataclass
class World:
    """The records the cases point at, and the keys that send them."""

    ids: dict[str, str]
    keys: dict[str, str]


async def _world(client: httpx.AsyncClient, db: Database, source: Source) -> World:
    m = await met(client, db, source)
    jo = await record_person(client, m.assignment, m.ana)
    assert jo.status_code == 201, jo.text
    tasks = jo.json()["follow_ups"]
    done = await client.post(
        f"/v1/followups/{tasks[1]['id']}/outcome", json={"outcome": "reached"}, headers=auth(m.ana)
    )
    assert done.status_code == 200, done.text
    contact = jo.json()["contact"]["id"]
    referrals = []
    for service, kind in (("svc-detox", "detox"), ("svc-rp-housing", "inpatient")):
        made = await client.post(
            f"/v1/contacts/{contact}/referrals",
            json={"service_id": m.services[service], "kind": kind},
            headers=auth(m.ana),
        )
        assert made.status_code == 201, made.text
        referrals.append(made.json()["id"])
    arrived = await client.post(
        f"/v1/referrals/{referrals[1]}/arrival", json={"arrived": True}, headers=auth(m.ana)
    )
    assert arrived.status_code == 200, arrived.text

    second = await met_on_a_call(
        client, db, source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    rev = await record_person(client, second, m.ana, name="Rev Roe", contact="304-555-0999")
    revoked = await client.post(
        f"/v1/people/{rev.json()['person']['id']}/consent/revoke", headers=auth(m.ana)
    )
    assert revoked.status_code == 200, revoked.text
    free = await met_on_a_call(
        client, db, source, peer_key=m.ana, admin=m.admin, dispatcher=m.dispatcher
    )
    async with db.sessionmaker() as session, session.begin():
        call = await program.call(session, source.id)
    offered = await client.post(f"/v1/calls/{call.id}/peer-requests", headers=auth(m.dispatcher))
    assert offered.status_code == 201, offered.text
    async with db.sessionmaker() as session, session.begin():
        cleo = await program.peer(session, "Cleo", provider_id="rp", counties=(program.CABELL,))
        stranger = Person(
            provider_id="rp", name="Al Ames", county_fips="54011", created_at=datetime.now(UTC)
        )
        session.add(stranger)
    ids = {
        "jo": jo.json()["person"]["id"],
        "revoked": rev.json()["person"]["id"],
        "other provider's person": str(stranger.id),
        "unknown person": str(uuid.uuid4()),
        "jo's": m.assignment,
        "free": free,
        "not met": offered.json()["id"],
        "open": tasks[0]["id"],
        "done": tasks[1]["id"],
        "pending": referrals[0],
        "arrived": referrals[1],
        "the detox": m.services["svc-detox"],
        "the closed clinic": m.services["svc-moud-closed"],
        "unknown service": str(uuid.uuid4()),
        "unknown peer": str(uuid.uuid4()),
        "other peer": str(cleo.id),
    }
    keys = {
        "peer": m.ana,
        "provider admin": await make_key(db, "provider_admin", "provider:wvsl"),
        "other admin": await make_key(db, "provider_admin", "provider:rp"),
        "other peer": await make_key(db, "peer", f"peer:{cleo.id}"),
        "police": await make_key(db, "partner", "agency:CHARLESTON PD"),
        "qrt": await make_key(db, "partner", f"organization:{QRT_ORG[0]}"),
        "supervisor": m.supervisor,
        "admin": m.admin,
    }
    return World({**ids, "jo's contact": contact}, keys)


def _resolve(value: Any, world: World, *, in_path: bool = False, name: str = "") -> Any:
    """A case's symbolic values as the records' ids."""
    if isinstance(value, dict):
        return {k: _resolve(v, world, name=k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, world) for v in value]
    if not isinstance(value, str):
        return value
    if value == U:
        return str(uuid.uuid4())
    if value == M:
        return "not-an-id"
    if in_path and name == "contact_id" and value == "jo's":
        return world.ids["jo's contact"]
    return world.ids.get(value, value)


async def _fingerprint(db: Database) -> tuple[Any, ...]:
    """Everything after the call a bad request could have changed."""
    async with db.sessionmaker() as session:
        counts = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (
                Person,
                Consent,
                ConsentShare,
                Contact,
                Referral,
                FollowUp,
                DirectoryService,
                DirectoryOrganization,
            )
        ]
        people = (
            await session.execute(
                select(
                    Person.id,
                    Person.name,
                    Person.contact,
                    Person.merged_into_id,
                    Person.deidentified_at,
                ).order_by(Person.id)
            )
        ).all()
        consents = (
            await session.execute(
                select(Consent.id, Consent.revoked_at, Consent.expires_at).order_by(Consent.id)
            )
        ).all()
        tasks = (
            await session.execute(
                select(
                    FollowUp.id, FollowUp.state, FollowUp.assignee_peer_id, FollowUp.outcome
                ).order_by(FollowUp.id)
            )
        ).all()
        referrals = (
            await session.execute(
                select(Referral.id, Referral.arrival, Referral.share_ended_at).order_by(Referral.id)
            )
        ).all()
    return (tuple(counts), tuple(people), tuple(consents), tuple(tasks), tuple(referrals))


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if TAGS & set(operation.get("tags", []))
    }


def test_every_operation_after_the_call_has_its_bad_input_cases(app: FastAPI) -> None:
    """A new operation under these tags cannot ship without cases: an unknown and a
    malformed id for each path id, a wrong type for each body, and for query parameters."""
    operations = _operations(app.openapi())
    kinds: dict[str, set[str]] = {}
    for case in CASES:
        assert case.operation in operations, f"{case.operation} is not in the OpenAPI document"
        kinds.setdefault(case.operation, set()).add(case.kind)
    missing = []
    for name, operation in operations.items():
        have = kinds.get(name, set())
        parameters = operation.get("parameters", [])
        if (
            any(p["in"] == "path" for p in parameters)
            and not {"unknown id", "malformed id"} <= have
        ):
            missing.append(f"{name}: an unknown and a malformed id")
        if "requestBody" in operation and not have & {"wrong type", "malformed file"}:
            missing.append(f"{name}: a body of the wrong type")
        if any(p["in"] == "query" for p in parameters) and not have & {
            "wrong type",
            "out of range",
        }:
            missing.append(f"{name}: a query parameter of the wrong type or out of range")
    assert not missing, "\n".join(missing)


async def test_bad_input_after_the_call_is_a_precise_4xx_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, db: Database, source: Source
) -> None:
    world = await _world(client, db, source)
    operations = _operations(app.openapi())
    real_clock: Callable[[], datetime] = app.state.clock
    before = await _fingerprint(db)
    failures = []
    for case in CASES:
        method, template = case.operation.split(" ", 1)
        url = template
        for name, value in case.path.items():
            url = url.replace("{" + name + "}", _resolve(value, world, in_path=True, name=name))
        headers = auth(world.keys[case.key])
        request: dict[str, Any] = {"params": case.query or None}
        if case.content is not None:
            request["content"] = case.content
            headers["content-type"] = case.content_type or "application/octet-stream"
        elif case.body is not NOTHING:
            request["json"] = _resolve(case.body, world)
        if case.days_later:
            app.state.clock = _later(real_clock, case.days_later)
        try:
            answer = await client.request(method, url, headers=headers, **request)
        finally:
            app.state.clock = real_clock
        label = f"{case.operation} [{case.kind}] {case.path or ''} {case.query or ''}"
        why = _judge(case, answer, operations[case.operation])
        if why:
            failures.append(f"{label}: {why}")
        after = await _fingerprint(db)
        if after != before:
            failures.append(f"{label}: stored something")
            before = after
    assert not failures, "\n".join(failures)


def _later(clock: Callable[[], datetime], days: float) -> Callable[[], datetime]:
    return lambda: clock() + timedelta(days=days)


def _judge(case: Bad, answer: httpx.Response, operation: dict[str, Any]) -> str | None:
    """Why the answer is not what the case must get (None: it is)."""
    if answer.status_code != case.status:
        return f"{answer.status_code} instead of {case.status}: {answer.text[:300]}"
    if not 400 <= answer.status_code < 500:
        return f"not a 4xx: {answer.status_code}"
    if str(answer.status_code) not in operation["responses"]:
        return f"{answer.status_code} is not among the operation's documented responses"
    if answer.headers.get("content-type") != PROBLEM:
        return f"content-type {answer.headers.get('content-type')}"
    problem = answer.json()
    if problem.get("status") != answer.status_code or not problem.get("title"):
        return f"not a problem document: {problem}"
    if case.problem and not str(problem.get("type", "")).endswith("/" + case.problem):
        return f"type {problem.get('type')} instead of {case.problem}"
    if case.field:
        named = [p["name"] for p in problem.get("invalid-params") or []]
        if case.field not in named:
            return f"names {named}, not {case.field}: {problem.get('detail')}"
    text = answer.text
    if "Jo Doe" in text or "304-555-7788" in text or "Rev Roe" in text:
        return "tells what it refused to show"
    return None
