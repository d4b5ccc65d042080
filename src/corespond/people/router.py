"""People, contacts and referrals over HTTP. Every read of a person is on the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Query, Request, status

from corespond import aftercall
from corespond.auth.deps import Authorized
from corespond.db import SessionDep
from corespond.errors import Conflict, Forbidden, InvalidPayload, NotFound, Unauthorized
from corespond.errors import problem_responses as problems
from corespond.followups.service import FollowUpPolicy
from corespond.geo.service import require_county
from corespond.people import service, views
from corespond.people.schemas import (
    ArrivalIn,
    ConsentIn,
    ContactIn,
    ContactOut,
    ContactRecordedOut,
    MatchOut,
    MatchPage,
    MergeIn,
    PersonOut,
    PersonPage,
    Purpose,
    ReferralIn,
    ReferralOut,
    RevokeIn,
)
from corespond.people.service import (
    ArrivalRecorded,
    ConsentNotLive,
    ConsentPolicy,
    ConsentRefused,
    ContactRecorded,
    NotMetYet,
    PossibleMatch,
)

router = APIRouter(tags=["people"])

READ = problems(Unauthorized, Forbidden, NotFound, InvalidPayload)
WRITE = problems(Unauthorized, Forbidden, NotFound, Conflict, InvalidPayload)


def consent_policy(request: Request) -> ConsentPolicy:
    settings = request.app.state.settings
    return ConsentPolicy(ZoneInfo(settings.program_timezone), settings.consent_max_days)


@router.post(
    "/v1/assignments/{assignment_id}/contact",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactRecordedOut,
    responses=problems(
        Unauthorized, Forbidden, NotFound, PossibleMatch, ContactRecorded, NotMetYet, InvalidPayload
    ),
)
async def record_contact(
    assignment_id: uuid.UUID,
    body: ContactIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> ContactRecordedOut:
    """The peer records whom they met on their assignment (on scene or cleared), once:

    * nobody named (`{}`): a de-identified contact, counted with its outcome, nothing that
      identifies anyone stored;
    * `person` with `consent` (their typed name and checked box on the peer's phone): a
      person kept with the minimum, followed up on the program's schedule;
    * `same_as`: a person the provider knows already.

    A new person who may be someone known (the same phone, the same name, the same initial
    and last name in the same county) answers `409 possible-match` listing the `candidates`;
    send again with `same_as` or `new_person: true`. Nothing is ever merged without that."""
    now = request.app.state.clock()
    recorded, tasks = await aftercall.record_contact(
        session,
        principal,
        assignment_id,
        views.contact_input(body),
        consent_policy=consent_policy(request),
        followup_policy=FollowUpPolicy.of(request.app.state.settings),
        now=now,
        atlas=request.app.state.geography.atlas,
    )
    person = None
    if recorded.person is not None:
        read = await service.read_person(
            session, principal, recorded.person.id, now, how="recorded"
        )
        person = await views.person_out(session, read, request.app.state.geography.atlas, now)
    contact = (await views.contact_outs(session, [recorded.contact], now=now))[0]
    follow_ups = (
        await views.follow_up_outs(session, [(t, recorded.person) for t in tasks], now)
        if recorded.person
        else []
    )
    return ContactRecordedOut(contact=contact, person=person, follow_ups=follow_ups)


@router.get("/v1/people", response_model=PersonPage, responses=READ)
async def list_people(
    request: Request,
    session: SessionDep,
    principal: Authorized,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=r"^[^\x00]*$",
            description="In the name or contact (a partner: only in the fields shared with it)",
        ),
    ] = None,
    county: Annotated[
        str | None, Query(max_length=40, pattern=r"^[^\x00]*$", description="Name or FIPS")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    purpose: Annotated[
        Purpose | None,
        Query(
            description="What a partner reads for (required of a partner key): only people "
            "whose consent in force names this partner and this purpose are listed."
        ),
    ] = None,
) -> PersonPage:
    """People the key may see, newest first: a peer's or provider admin's, their provider's;
    a partner's, those whose consent in force names it now for the `purpose` it gives
    (revoked or expired: gone at once), with only the fields it shares; a partner that gives
    no purpose is answered `422`. Deconfliction: police who meet someone again find them
    here (`purpose=deconfliction`) by the fields their consent allows. On the audit log."""
    now = request.app.state.clock()
    atlas = request.app.state.geography.atlas
    fips = require_county(atlas, county, "query.county").fips if county and county.strip() else None
    reads = await service.list_people(
        session,
        principal,
        now,
        text=q.strip() if q and q.strip() else None,
        county=fips,
        limit=limit,
        purpose=purpose,
    )
    return PersonPage(items=[await views.person_out(session, r, atlas, now) for r in reads])


@router.get(
    "/v1/people/{person_id}",
    response_model=PersonOut,
    responses={**READ, **problems(ConsentRefused)},
)
async def get_person(
    person_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    purpose: Annotated[
        Purpose | None,
        Query(description="What a partner reads for (required of a partner key)."),
    ] = None,
) -> PersonOut:
    """A person: the whole record for their peer provider (consents, contacts with their
    referrals, follow-ups); for a partner the consent in force names *for the `purpose` it
    gives*, only what it shares. A partner no live consent allows (not named, not for that
    purpose, revoked, expired) is answered `403 consent-refused`, and the refusal is on the
    audit log with why; no purpose, `422`. Anyone else: `404`. Every read is on the audit
    log."""
    now = request.app.state.clock()
    read = await service.read_person(session, principal, person_id, now, purpose=purpose)
    return await views.person_out(session, read, request.app.state.geography.atlas, now)


@router.get("/v1/people/{person_id}/duplicates", response_model=MatchPage, responses=READ)
async def duplicates(
    person_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> MatchPage:
    """People of the same provider who may be this person, with why: for a person to
    decide (`POST .../merge`); nothing is merged here."""
    found = await service.duplicates_of(session, principal, person_id, request.app.state.clock())
    return MatchPage(items=[MatchOut.model_validate(m) for m in found])


@router.post(
    "/v1/people/{person_id}/merge",
    response_model=PersonOut,
    responses=WRITE,
)
async def merge(
    person_id: uuid.UUID,
    body: MergeIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> PersonOut:
    """Merge a duplicate record into this person, on a person's confirmation (`confirm`
    must be true): the duplicate's contacts, consents and follow-ups move here, and it reads
    as this person from then on. On the audit log."""
    now = request.app.state.clock()
    kept = await aftercall.merge(
        session, principal, person_id, body.duplicate_id, body.confirm, now
    )
    read = await service.read_person(session, principal, kept.id, now, how="merge")
    return await views.person_out(session, read, request.app.state.geography.atlas, now)


@router.post(
    "/v1/people/{person_id}/consents",
    status_code=status.HTTP_201_CREATED,
    response_model=PersonOut,
    responses=WRITE,
)
async def sign_consent(
    person_id: uuid.UUID,
    body: ConsentIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> PersonOut:
    """A new consent signed by a person the provider knows, on the phone of a peer who is
    with them (met again, or changing whom they share with): the newest live consent is the
    one in force."""
    now = request.app.state.clock()
    await aftercall.sign_consent(
        session, principal, person_id, views.consent_input(body), consent_policy(request), now
    )
    read = await service.read_person(session, principal, person_id, now, how="signed")
    return await views.person_out(session, read, request.app.state.geography.atlas, now)


@router.post(
    "/v1/people/{person_id}/consent/revoke",
    response_model=PersonOut,
    responses={**WRITE, **problems(ConsentNotLive)},
)
async def revoke_consent(
    person_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Authorized,
    body: Annotated[RevokeIn | None, Body()] = None,
) -> PersonOut:
    """The person takes their consent back (told to a peer, or their provider): every live
    consent is revoked at once, and nothing more is shared with anyone it named, from the
    next request on (the API, exports): partners' reads are refused, referrals stop carrying
    the person's identity to their organizations, QRT visits by a team it named are
    cancelled. The provider keeps its own record and its own follow-ups. On the audit log
    with every recipient it named, and each referral and visit it stopped."""
    now = request.app.state.clock()
    read = await aftercall.revoke_consent(
        session, principal, person_id, now, body.reason if body else None
    )
    return await views.person_out(session, read, request.app.state.geography.atlas, now)


@router.get("/v1/contacts/{contact_id}", response_model=ContactOut, responses=READ)
async def get_contact(
    contact_id: uuid.UUID, request: Request, session: SessionDep, principal: Authorized
) -> ContactOut:
    """A contact of the key's provider, with its referrals (the read is on the audit
    log)."""
    contact = await service.read_contact(session, principal, contact_id)
    return (await views.contact_outs(session, [contact], now=request.app.state.clock()))[0]


@router.post(
    "/v1/contacts/{contact_id}/referrals",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralOut,
    responses=WRITE,
)
async def refer(
    contact_id: uuid.UUID,
    body: ReferralIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> ReferralOut:
    """Refer the person of a contact (or a de-identified contact) to a directory service,
    of one of its kinds. The person's identity goes with it to the service's organization
    only if the consent in force names that organization for `treatment_referral`
    (`shared_with_organization`); otherwise the referral names nobody to it. The same
    referral twice answers the first; an unknown `service_id` or a kind the service does
    not offer, `422`."""
    now = request.app.state.clock()
    referral = await service.add_referral(
        session, principal, contact_id, body.service_id, body.kind, now
    )
    return (await views.referral_outs(session, [referral], now=now))[0]


@router.post(
    "/v1/referrals/{referral_id}/arrival",
    response_model=ReferralOut,
    responses={**WRITE, **problems(ArrivalRecorded)},
)
async def arrival(
    referral_id: uuid.UUID,
    body: ArrivalIn,
    request: Request,
    session: SessionDep,
    principal: Authorized,
) -> ReferralOut:
    """Whether the referred person arrived (the warm hand-off confirmed), once; the same
    answer again changes nothing, the other answers `409 arrival-recorded`."""
    now = request.app.state.clock()
    referral = await service.record_arrival(session, principal, referral_id, body.arrived, now)
    return (await views.referral_outs(session, [referral], now=now))[0]
