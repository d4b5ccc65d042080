"""People met on calls, with their consent; contacts, de-identified or not; referrals.

A contact is recorded by the peer who met the person, from their assignment (on scene or
cleared). With the person's consent (their typed name and a checked box on the peer's phone)
a ``person`` is kept with the minimum; without it the contact is counted and nothing that
identifies anyone is stored. A person whose record may already exist (the same phone, the
same name …) is never merged silently: the peer is shown the possible matches and says
which it is, or that it is someone new.

Every read of a person is on the audit log, in the reader's transaction. Who may read what
is ``people.access``: the person's peer provider the whole record, a partner named by the
consent in force the fields it shares, for a purpose that consent names (a partner says
which), nobody else. A partner refused is answered ``403 consent-refused`` and the refusal
is on the audit log, saying why.

A referral of a person to a directory service carries their identity to the service's
organization only under a live consent naming it for treatment referral; that ends (and is
logged) when the consent no longer allows it (``end_referral_shares``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.agencies import service as agencies
from corespond.assignments import views as assignments
from corespond.assignments.models import Assignment
from corespond.audit import service as audit
from corespond.auth.service import Principal
from corespond.directory import service as directory
from corespond.errors import (
    AuditNote,
    Conflict,
    Forbidden,
    InvalidParam,
    InvalidPayload,
    NotFound,
)
from corespond.people import access, repository
from corespond.people.access import Access, ConsentTerms, Reader, Refusal, Share
from corespond.people.consent import CURRENT, STATEMENTS
from corespond.people.matching import Identity, keys_of, match_reasons
from corespond.people.models import (
    DEIDENTIFIED,
    FIELDS,
    PURPOSES,
    SHARE_KINDS,
    Consent,
    ConsentShare,
    Contact,
    Person,
    Referral,
)
from corespond.roster import service as roster

MET_STATUSES = ("on_scene", "cleared")


# --- problems -------------------------------------------------------------------------------------


class PossibleMatch(Conflict):
    """The person may be someone the provider knows already: the peer must say."""

    slug = "possible-match"
    title = "This may be a person already known"
    # The names it shows are a read of those people: its audit entry is kept (nothing else
    # is written before it is raised).
    keeps_changes: ClassVar[bool] = True


class ContactRecorded(Conflict):
    slug = "contact-recorded"
    title = "A contact is already recorded for this assignment"


class NotMetYet(Conflict):
    slug = "not-met-yet"
    title = "The peer has not met anyone on this assignment yet"


class ConsentNotLive(Conflict):
    slug = "consent-not-live"
    title = "The person has no live consent"

    keeps_changes: ClassVar[bool] = False


class PersonDeidentified(Conflict):
    slug = "person-deidentified"
    title = "This record was de-identified after the retention period"


def require_identified(person: Person) -> None:
    """Nothing new is tied to a record that names nobody any more (``PersonDeidentified``):
    the person, met again, is recorded anew, with their consent."""
    if person.deidentified_at is not None:
        raise PersonDeidentified(
            "nothing names this record any more: if you meet them again, record them anew"
        )


class ConsentRefused(Forbidden):
    """A partner's read, or a share with a partner, that no live consent of the person
    allows: not named by the consent in force, not for that purpose, or nothing live. The
    answer says no more than that (the audit entry says which)."""

    slug = "consent-refused"
    title = "No live consent shares this person with you for this purpose"

    def __init__(
        self,
        detail: str,
        *,
        person_id: uuid.UUID,
        purpose: str | None,
        refusal: Refusal,
        action: str = "person.read_refused",
        **more: str,
    ) -> None:
        super().__init__(detail)
        self.audit = AuditNote(
            action,
            "person",
            str(person_id),
            {
                "purpose": purpose,
                "reason": refusal.reason,
                **({"consent_id": str(refusal.consent.id)} if refusal.consent else {}),
                **more,
            },
        )


# --- what callers send ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonInput:
    name: str
    contact: str | None
    county: str | None  # name or FIPS; None: the call's county


@dataclass(frozen=True)
class ShareInput:
    kind: str
    agency: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class ConsentInput:
    signed_name: str
    agreed: bool
    shares: tuple[ShareInput, ...]
    purposes: tuple[str, ...]
    fields: tuple[str, ...]
    expires_on: date | None
    statement_version: str = CURRENT


@dataclass(frozen=True)
class ContactInput:
    person: PersonInput | None = None
    consent: ConsentInput | None = None
    same_as: uuid.UUID | None = None
    new_person: bool = False


@dataclass(frozen=True)
class ConsentPolicy:
    """The program's clock (a consent runs to the end of its last day) and the longest a
    consent may run."""

    zone: ZoneInfo
    max_days: int = 366


@dataclass(frozen=True)
class Recorded:
    contact: Contact
    person: Person | None
    consent: Consent | None
    peer_id: uuid.UUID


# --- who is asking --------------------------------------------------------------------------------


async def reader_of(session: AsyncSession, principal: Principal) -> Reader:
    """The reader a key is, for ``people.access``: a peer or provider admin with its
    provider, a partner with its agency or organization, anyone else as its role."""
    scope = principal.scope
    if principal.role == "peer" and scope is not None and scope.kind == "peer":
        try:
            peer = await roster.peer_by_id(session, uuid.UUID(scope.value))
        except ValueError:
            peer = None
        return Reader("peer", provider=peer.provider_id if peer else None)
    if principal.role == "provider_admin" and scope is not None and scope.kind == "provider":
        return Reader("provider_admin", provider=scope.value)
    if principal.role == "partner" and scope is not None:
        if scope.kind == "agency":
            return Reader("partner", agency=scope.value)
        if scope.kind == "organization":
            return Reader("partner", organization=scope.value)
    return Reader(principal.role)


def own_peer(principal: Principal) -> uuid.UUID | None:
    if principal.role != "peer" or principal.scope is None or principal.scope.kind != "peer":
        return None
    try:
        return uuid.UUID(principal.scope.value)
    except ValueError:
        return None


async def provider_of(session: AsyncSession, principal: Principal) -> str:
    """The peer provider whose own records the key reads (a peer's, a provider admin's),
    else ``Forbidden``."""
    reader = await reader_of(session, principal)
    if reader.role not in ("peer", "provider_admin") or reader.provider is None:
        raise Forbidden(
            "people, contacts and follow-ups are for the person's peer provider (its peers "
            "and its admin); partners read what a consent shares with them"
        )
    return reader.provider


def _reader_label(reader: Reader) -> str:
    return reader.agency or reader.organization or reader.role


def require_purpose(reader: Reader, purpose: str | None) -> None:
    """A partner says what it reads for (one of the consent purposes); nothing said,
    nothing read."""
    if reader.role == "partner" and purpose is None:
        raise _invalid(
            "query.purpose",
            "a partner reads a person for a purpose their consent names: one of "
            + ", ".join(PURPOSES),
        )


def terms_of(consent: Consent, shares: Sequence[ConsentShare]) -> ConsentTerms:
    return ConsentTerms(
        id=consent.id,
        shares=tuple(Share(s.kind, s.recipient) for s in shares),
        fields=tuple(consent.fields),
        purposes=tuple(consent.purposes),
        expires_at=consent.expires_at,
        revoked_at=consent.revoked_at,
        signed_at=consent.signed_at,
    )


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRead:
    person: Person
    access: Access
    consents: list[tuple[Consent, list[ConsentShare]]]


async def read_person(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    now: datetime,
    *,
    how: str = "api",
    purpose: str | None = None,
) -> PersonRead:
    """A person as the key may see them, read for ``purpose`` (a partner must say one), on
    the audit log. A partner no live consent allows answers ``ConsentRefused`` (on the audit
    log, saying why); anyone else who may not read them ``NotFound`` (no hint that the
    person exists). A person merged into another reads as the one kept."""
    missing = NotFound(f"person {person_id} not found")
    reader = await reader_of(session, principal)
    require_purpose(reader, purpose)
    person = await session.get(Person, person_id)
    seen: set[uuid.UUID] = set()
    while person is not None and person.merged_into_id is not None and person.id not in seen:
        seen.add(person.id)
        person = await session.get(Person, person.merged_into_id)
    if person is None:
        raise missing
    consents = (await repository.consents_of(session, [person.id]))[person.id]
    granted = access.decide(
        reader, person.provider_id, [terms_of(c, s) for c, s in consents], now, purpose
    )
    if isinstance(granted, Refusal):
        if reader.role != "partner":
            raise missing
        raise ConsentRefused(
            f"no live consent of this person shares them with {_reader_label(reader)} for "
            f"{purpose}",
            person_id=person.id,
            purpose=purpose,
            refusal=granted,
            how=how,
        )
    await audit.record(
        session,
        principal,
        "person.read",
        "person",
        person.id,
        {
            "as": granted.as_,
            "how": how,
            **({"consent_id": str(granted.consent.id)} if granted.consent else {}),
            **({"purpose": granted.purpose} if granted.purpose else {}),
        },
    )
    return PersonRead(person, granted, consents)


async def list_people(
    session: AsyncSession,
    principal: Principal,
    now: datetime,
    *,
    text: str | None,
    county: str | None,
    limit: int,
    purpose: str | None = None,
) -> list[PersonRead]:
    """The people a key may see: its provider's (a peer, a provider admin), or those whose
    consent in force names it for ``purpose`` (a partner, who must say one), searched by
    name or contact (a partner: only in the fields the consent shares). On the audit log
    with their ids."""
    reader = await reader_of(session, principal)
    require_purpose(reader, purpose)
    if reader.role in ("peer", "provider_admin") and reader.provider is not None:
        people = await repository.persons_of_provider(
            session, reader.provider, text=text, county=county, limit=limit
        )
    elif reader.role == "partner" and purpose is not None:
        # The database finds those the text and county could be; they are narrowed to the
        # fields each consent shares below.
        people = await repository.persons_shared_with(
            session,
            await _recipients(session, reader),
            purpose,
            now,
            text=text,
            county=county,
            limit=500,
        )
    else:
        raise Forbidden(
            "people are for their peer provider and for the partners their consent names"
        )
    found = await repository.consents_of(session, [p.id for p in people])
    out = []
    for person in people:
        consents = found[person.id]
        granted = access.access(
            reader, person.provider_id, [terms_of(c, s) for c, s in consents], now, purpose
        )
        if granted is None:
            continue
        if county and ("county" not in granted.fields or person.county_fips != county):
            continue  # a partner filters only by what is shared with it
        if granted.as_ == "partner" and text and not _matches_shared(person, granted, text):
            continue
        out.append(PersonRead(person, granted, consents))
        if len(out) >= limit:
            break
    await audit.record(
        session,
        principal,
        "person.list",
        "person",
        None,
        {
            "ids": [str(r.person.id) for r in out],
            **({"searched": True} if text else {}),
            **({"purpose": purpose} if purpose else {}),
        },
    )
    return out


async def _recipients(session: AsyncSession, reader: Reader) -> list[tuple[str, str]]:
    """The (kind, recipient) shares that name a partner."""
    if reader.agency:
        # A share holds the agency's registered name.
        agency = await agencies.find(session, reader.agency)
        return [("police", agency.name)] if agency else []
    if reader.organization:
        return [("treatment", reader.organization), ("qrt", reader.organization)]
    return []


def _matches_shared(person: Person, granted: Access, text: str) -> bool:
    needle = text.casefold()
    fields = {"name": person.name, "contact": person.contact or ""}
    return any(needle in fields[f].casefold() for f in fields if f in granted.fields)


# --- recording a contact --------------------------------------------------------------------------


async def met_assignment(
    session: AsyncSession, principal: Principal, assignment_id: uuid.UUID
) -> tuple[Assignment, uuid.UUID]:
    """The peer's own assignment on which they met someone, else a problem saying why."""
    assignment = await assignments.get_assignment(session, assignment_id, principal)
    peer_id = own_peer(principal)
    if peer_id is None or assignment.peer_id != peer_id:
        raise Forbidden("a contact is recorded by the peer who met the person, on their phone")
    if assignment.status not in MET_STATUSES:
        raise NotMetYet(
            f"the assignment is {assignment.status}: a contact is recorded once the peer is "
            "on scene (or has cleared)"
        )
    return assignment, peer_id


async def record_contact(
    session: AsyncSession,
    principal: Principal,
    assignment_id: uuid.UUID,
    data: ContactInput,
    policy: ConsentPolicy,
    now: datetime,
    atlas: Any,
) -> Recorded:
    """Record whom the peer met on an assignment: de-identified (no person, no consent), a
    new person with their consent, or a person already known (``same_as``, the peer's
    confirmation). A new person who may be someone known answers ``PossibleMatch`` with the
    candidates, unless the peer said it is someone new (``new_person``)."""
    assignment, peer_id = await met_assignment(session, principal, assignment_id)
    # The assignment's row lock: two posts of one contact are one after the other, and the
    # second is told the first was recorded (never a duplicate error).
    await session.refresh(assignment, with_for_update=True)
    if await repository.contact_of_assignment(session, assignment.id) is not None:
        raise ContactRecorded("this assignment's contact is recorded already")
    provider = await provider_of(session, principal)
    call = await assignments.call_of(session, assignment)
    met_at = assignment.on_scene_at or now
    contact = Contact(
        assignment_id=assignment.id,
        provider_id=provider,
        peer_id=peer_id,
        county_fips=call.county_fips,
        met_at=met_at,
        recorded_at=now,
    )
    person: Person | None = None
    consent: Consent | None = None
    if data.same_as is not None:
        if data.person is not None:
            raise _invalid("person", "give either the person's details or same_as, not both")
        try:
            known = await read_person(session, principal, data.same_as, now, how="same_as")
        except NotFound:
            known = None
        if known is None or known.person.provider_id != provider:
            # The assignment is there; what the body names is not one of the provider's.
            raise _invalid("same_as", "not a person your provider knows") from None
        person = known.person
        require_identified(person)
        if data.consent is not None:
            consent = await _sign(session, principal, person, data.consent, policy, now, peer_id)
        elif await _consent_in_force(session, person.id, now) is None:
            raise ConsentNotLive(
                "their consent has expired or was revoked: ask them again (consent), or "
                "record the contact without identity"
            )
    elif data.person is not None:
        if data.consent is None:
            raise _invalid(
                "consent",
                "a person is recorded only with their consent; without it, record the "
                "contact de-identified (no person)",
            )
        county = _county(atlas, data.person.county) if data.person.county else call.county_fips
        if county is None:
            raise _invalid("person.county", "the call has no county: name the person's county")
        identity = Identity(data.person.name, data.person.contact, county)
        if not data.new_person:
            await _refuse_possible_matches(session, principal, provider, identity)
        person = Person(
            provider_id=provider,
            name=data.person.name,
            contact=data.person.contact,
            county_fips=county,
            created_at=now,
            created_by_peer_id=peer_id,
        )
        session.add(person)
        await session.flush()
        consent = await _sign(session, principal, person, data.consent, policy, now, peer_id)
    elif data.consent is not None:
        raise _invalid("person", "a consent is of a person: give the person's details")
    contact.person_id = person.id if person else None
    session.add(contact)
    await session.flush()
    await audit.record(
        session,
        principal,
        "contact.create",
        "contact",
        contact.id,
        {
            "assignment_id": str(assignment.id),
            "identified": person is not None,
            **({"person_id": str(person.id)} if person else {}),
            **({"consent_id": str(consent.id)} if consent else {}),
        },
    )
    return Recorded(contact, person, consent, peer_id)


def _invalid(field: str, reason: str) -> InvalidPayload:
    return InvalidPayload(f"{field}: {reason}", [InvalidParam(name=field, reason=reason)])


def _county(atlas: Any, name: str) -> str:
    county = atlas.named(name)
    if county is None:
        raise _invalid("person.county", f"unknown county {name!r}")
    fips: str = county.fips
    return fips


async def _refuse_possible_matches(
    session: AsyncSession, principal: Principal, provider: str, identity: Identity
) -> None:
    candidates = await possible_matches(session, provider, identity)
    if not candidates:
        return
    await audit.record(
        session,
        principal,
        "person.match_shown",
        "person",
        None,
        {"ids": [str(c["id"]) for c in candidates]},
    )
    raise PossibleMatch(
        f"{len(candidates)} person(s) of your provider may be this person: say which "
        "(same_as), or that this is someone new (new_person)",
        extra={"candidates": candidates},
    )


async def possible_matches(
    session: AsyncSession, provider: str, identity: Identity, exclude: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """The provider's people who may be this person, with why (never merged here): found
    by the database on the indexed keys a match rests on, at most ten, newest first."""
    people = await repository.possible_matches(
        session, provider, keys_of(identity), identity.county_fips, exclude=exclude, limit=10
    )
    met = await repository.last_met(session, [p.id for p in people])
    found = []
    for person in people:
        reasons = match_reasons(identity, Identity(person.name, person.contact, person.county_fips))
        if reasons:  # always, by the keys; the reasons are what the peer is shown
            found.append(
                {
                    "id": str(person.id),
                    "name": person.name,
                    "county_fips": person.county_fips,
                    "last_met_at": met[person.id].isoformat() if person.id in met else None,
                    "reasons": reasons,
                }
            )
    return found


# --- consent --------------------------------------------------------------------------------------


async def _sign(
    session: AsyncSession,
    principal: Principal,
    person: Person,
    data: ConsentInput,
    policy: ConsentPolicy,
    now: datetime,
    peer_id: uuid.UUID | None,
    at: str = "consent.",
) -> Consent:
    """Sign ``data`` for ``person``; a field it gets wrong is named under ``at`` (where the
    consent is in the request's body)."""
    if not data.agreed:
        raise _invalid(f"{at}agreed", "the person checks the box to agree")
    if data.statement_version not in STATEMENTS:
        raise _invalid(
            f"{at}statement_version", f"one of {', '.join(STATEMENTS)} (the words shown)"
        )
    purposes = tuple(dict.fromkeys(data.purposes))
    if not purposes or any(p not in PURPOSES for p in purposes):
        raise _invalid(f"{at}purposes", f"at least one of {', '.join(PURPOSES)}")
    fields = tuple(dict.fromkeys(data.fields))
    if any(f not in FIELDS for f in fields):
        raise _invalid(f"{at}fields", f"among {', '.join(FIELDS)}")
    today = now.astimezone(policy.zone).date()
    latest = today + timedelta(days=policy.max_days - 1)
    last = data.expires_on or latest
    if last < today:
        raise _invalid(f"{at}expires_on", f"{last} has passed: a consent runs forward")
    if last > latest:
        raise _invalid(
            f"{at}expires_on",
            f"at most {policy.max_days} days including today (until {latest})",
        )
    expires_at = datetime.combine(last + timedelta(days=1), time(0), tzinfo=policy.zone)
    shares = [
        await _recipient(session, share, f"{at}shares.{index}")
        for index, share in enumerate(data.shares)
    ]
    consent = Consent(
        person_id=person.id,
        statement_version=data.statement_version,
        signed_name=data.signed_name,
        signed_at=now,
        witnessed_by_peer_id=peer_id,
        witnessed_by=roster.actor(principal),
        purposes=list(purposes),
        fields=list(fields),
        expires_at=expires_at,
    )
    session.add(consent)
    await session.flush()
    seen = set()
    for kind, recipient, name in shares:
        if (kind, recipient) in seen:
            continue
        seen.add((kind, recipient))
        session.add(
            ConsentShare(consent_id=consent.id, kind=kind, recipient=recipient, recipient_name=name)
        )
    await session.flush()
    await audit.record(
        session,
        principal,
        "consent.sign",
        "person",
        person.id,
        {
            "consent_id": str(consent.id),
            "shares": [f"{k}:{r}" for k, r, _ in shares],
            "purposes": list(purposes),
            "fields": list(fields),
            "expires_at": expires_at.isoformat(),
        },
    )
    return consent


async def _recipient(session: AsyncSession, share: ShareInput, where: str) -> tuple[str, str, str]:
    """(kind, recipient, its name) of a share: a registered agency, a directory organization;
    a wrong one is named as the field ``where``."""
    if share.kind not in SHARE_KINDS:
        raise _invalid(f"{where}.kind", f"one of {', '.join(SHARE_KINDS)}")
    if share.kind == "police":
        if not share.agency or share.organization:
            raise _invalid(f"{where}.agency", "police are named by their agency")
        agency = await agencies.find(session, share.agency)
        if agency is None:
            raise _invalid(f"{where}.agency", f"no registered agency {share.agency!r}")
        return "police", agency.name, agency.name
    if not share.organization or share.agency:
        raise _invalid(
            f"{where}.organization", f"a {share.kind} is named by its directory organization id"
        )
    organization = await directory.organization(session, share.organization)
    if organization is None:
        raise _invalid(
            f"{where}.organization", f"no organization {share.organization!r} in the directory"
        )
    return share.kind, organization.id, organization.name


async def sign_consent(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    data: ConsentInput,
    policy: ConsentPolicy,
    now: datetime,
) -> Consent:
    """A new consent signed by a person the provider knows, on a peer's phone (met again,
    or changing what they share): the newest live consent is the one in force."""
    peer_id = own_peer(principal)
    if peer_id is None:
        raise Forbidden("a consent is signed by the person on the phone of a peer who is with them")
    read = await read_person(session, principal, person_id, now, how="sign_consent")
    if read.access.as_ != "provider":
        raise NotFound(f"person {person_id} not found")
    require_identified(read.person)
    return await _sign(session, principal, read.person, data, policy, now, peer_id, at="")


@dataclass(frozen=True)
class Revocation:
    """A person's revocation: the record it was told on, read after it, and the records of
    the provider that may be the same person whose consents it revoked as well."""

    read: PersonRead
    duplicates: list[uuid.UUID]


async def revoke_consent(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    now: datetime,
    reason: str | None,
) -> Revocation:
    """The person takes their consent back: every live consent is revoked at once, so that
    nothing more is shared with anyone it named (the next read of a partner is refused).
    The revocation is the person's, not one record's: the live consents of the provider's
    records that may be the same person (the possible matches a peer is shown) are revoked
    too, since "nothing more shared with anyone" cannot wait for someone to merge them; a
    record that turns out to be someone else signs again. The provider keeps its own
    records. On the audit log with every recipient it named and every record it covered."""
    read = await read_person(session, principal, person_id, now, how="revoke")
    if read.access.as_ != "provider":
        raise NotFound(f"person {person_id} not found")
    person = read.person
    twins = await repository.possible_matches(
        session,
        person.provider_id,
        keys_of(Identity(person.name, person.contact, person.county_fips)),
        person.county_fips,
        exclude=person.id,
        limit=50,
    )
    covered = [person.id, *(t.id for t in twins)]
    live = {p: await repository.live_consents(session, p, now) for p in covered}
    if not any(live.values()):
        raise ConsentNotLive("no live consent to revoke (expired or revoked already)")
    by = roster.actor(principal)
    shares = await repository.consents_of(session, covered)
    recipients = []
    for owner, consents in live.items():
        for consent in consents:
            consent.revoked_at, consent.revoked_by = now, by
            recipients += [
                f"{s.kind}:{s.recipient}"
                for c, named in shares[owner]
                if c.id == consent.id
                for s in named
            ]
    await session.flush()
    duplicates = [p for p in covered[1:] if live[p]]
    await audit.record(
        session,
        principal,
        "consent.revoke",
        "person",
        person.id,
        {
            "consent_ids": [str(c.id) for consents in live.values() for c in consents],
            "recipients": sorted(set(recipients)),
            **({"duplicates": [str(p) for p in duplicates]} if duplicates else {}),
            **({"reason": reason} if reason else {}),
        },
    )
    return Revocation(
        await read_person(session, principal, person.id, now, how="revoke"), duplicates
    )


# --- deconfliction --------------------------------------------------------------------------------


async def duplicates_of(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """People of the same provider who may be this person (for a person to decide)."""
    read = await read_person(session, principal, person_id, now, how="duplicates")
    if read.access.as_ != "provider":
        raise NotFound(f"person {person_id} not found")
    person = read.person
    found = await possible_matches(
        session,
        person.provider_id,
        Identity(person.name, person.contact, person.county_fips),
        exclude=person.id,
    )
    await audit.record(
        session,
        principal,
        "person.match_shown",
        "person",
        person.id,
        {"ids": [c["id"] for c in found]},
    )
    return found


async def merge(
    session: AsyncSession,
    principal: Principal,
    kept_id: uuid.UUID,
    duplicate_id: uuid.UUID,
    confirmed: bool,
    now: datetime,
) -> Person:
    """Merge a duplicate into the person kept, on a person's explicit confirmation: its
    contacts and consents move to the one kept, and it reads as the one kept from then on.
    A consent of either signed before the latest revocation of either is revoked: the
    person's revocation covers every record of them."""
    if not confirmed:
        raise _invalid("confirm", "a merge is made only when a person confirms it (true)")
    if kept_id == duplicate_id:
        raise _invalid("duplicate_id", "a person cannot be merged into themselves")
    kept = await read_person(session, principal, kept_id, now, how="merge")
    try:
        duplicate = await read_person(session, principal, duplicate_id, now, how="merge")
    except NotFound:
        raise _invalid("duplicate_id", "not a person your provider knows") from None
    if (
        "provider" not in (kept.access.as_, duplicate.access.as_)
        or kept.access.as_ != duplicate.access.as_
    ):
        raise NotFound("person not found")
    if duplicate.person.id != duplicate_id or kept.person.id != kept_id:
        raise Conflict("one of them was merged into another already")
    if kept.person.provider_id != duplicate.person.provider_id:
        raise _invalid("duplicate_id", "not a person your provider knows")
    require_identified(kept.person)
    require_identified(duplicate.person)
    # A revocation is the person's: a consent of either record signed before the latest
    # revocation on either of them is revoked with it, so that a merge never brings back
    # sharing the person stopped (only a consent signed after it stands).
    revoked = [
        c.revoked_at for c, _ in (*kept.consents, *duplicate.consents) if c.revoked_at is not None
    ]
    overtaken: list[Consent] = []
    if revoked:
        latest = max(revoked)
        for person_id in (kept_id, duplicate_id):
            for consent in await repository.live_consents(session, person_id, now):
                if consent.signed_at < latest:
                    consent.revoked_at = now
                    consent.revoked_by = f"{roster.actor(principal)} (merge: revoked before)"
                    overtaken.append(consent)
    await repository.move_person(session, duplicate_id, kept_id)
    duplicate.person.merged_into_id = kept_id
    duplicate.person.merged_at = now
    duplicate.person.merged_by = roster.actor(principal)
    await session.flush()
    await audit.record(
        session,
        principal,
        "person.merge",
        "person",
        kept_id,
        {
            "duplicate_id": str(duplicate_id),
            **({"consents_revoked": [str(c.id) for c in overtaken]} if overtaken else {}),
        },
    )
    return kept.person


# --- contacts and referrals -----------------------------------------------------------------------


async def contact_of(session: AsyncSession, principal: Principal, contact_id: uuid.UUID) -> Contact:
    """A contact of the key's provider, else ``NotFound``."""
    provider = await provider_of(session, principal)
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.provider_id != provider:
        raise NotFound(f"contact {contact_id} not found")
    return contact


async def read_contact(
    session: AsyncSession, principal: Principal, contact_id: uuid.UUID
) -> Contact:
    """A contact of the key's provider as it is shown (whom it met, the referrals made for
    them, whether they arrived), else ``NotFound``; the read is on the audit log."""
    contact = await contact_of(session, principal, contact_id)
    await audit.record(
        session,
        principal,
        "contact.read",
        "contact",
        contact.id,
        {**({"person_id": str(contact.person_id)} if contact.person_id else {})},
    )
    if contact.person_id is not None:
        await audit.record(
            session,
            principal,
            "person.read",
            "person",
            contact.person_id,
            {"as": "provider", "how": "contact", "contact_id": str(contact.id)},
        )
    return contact


async def contacts_of_assignments(
    session: AsyncSession, assignment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Contact]:
    return await repository.contacts_of_assignments(session, assignment_ids)


async def contacts_of_person(session: AsyncSession, person_id: uuid.UUID) -> Sequence[Contact]:
    return await repository.contacts_of_person(session, person_id)


async def referrals_of(
    session: AsyncSession, contact_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Referral]]:
    return await repository.referrals_of_contacts(session, contact_ids)


async def add_referral(
    session: AsyncSession,
    principal: Principal,
    contact_id: uuid.UUID,
    service_id: uuid.UUID,
    kind: str,
    now: datetime,
) -> Referral:
    """Refer a contact to a directory service, of one of its kinds. The person's identity
    goes with it to the service's organization only if the consent in force names that
    organization for treatment referral (``share_consent_id``); otherwise the referral
    names nobody to it, and says so."""
    contact = await contact_of(session, principal, contact_id)
    try:
        service, organization = await directory.get_service(session, service_id)
    except NotFound:
        raise _invalid("service_id", f"no service {service_id} in the directory") from None
    directory.require_kind(kind)
    if service.status != "active":
        raise _invalid("service_id", f"{service.name} is {service.status}: not taking referrals")
    if kind not in service.kinds:
        raise _invalid("kind", f"{service.name} offers {', '.join(service.kinds)}, not {kind}")
    existing = [
        r
        for r in (await repository.referrals_of_contacts(session, [contact.id]))[contact.id]
        if r.service_id == service.id and r.kind == kind
    ]
    if existing:
        # The referral made before is answered: a read of what it says of the person.
        await audit.record(
            session,
            principal,
            "referral.read",
            "referral",
            existing[0].id,
            {
                "contact_id": str(contact.id),
                **({"person_id": str(contact.person_id)} if contact.person_id else {}),
                "how": "repeated referral",
            },
        )
        return existing[0]
    shared_under = None
    if contact.person_id is not None:
        await repository.live_consents(session, contact.person_id, now, to_share=True)
        consents = (await repository.consents_of(session, [contact.person_id]))[contact.person_id]
        current = access.in_force([terms_of(c, s) for c, s in consents], now)
        if current is not None and organization.id in access.shared_with_organizations(
            [current], now, "treatment_referral"
        ):
            shared_under = current.id
    referral = Referral(
        contact_id=contact.id,
        service_id=service.id,
        kind=kind,
        made_at=now,
        made_by=roster.actor(principal),
        share_consent_id=shared_under,
        share_organization_id=organization.id if shared_under is not None else None,
    )
    try:
        async with session.begin_nested():
            session.add(referral)
            await session.flush()
    except IntegrityError:
        # Made at the same moment by another request: that one stands.
        return next(
            r
            for r in (await repository.referrals_of_contacts(session, [contact.id]))[contact.id]
            if r.service_id == service.id and r.kind == kind
        )
    await audit.record(
        session,
        principal,
        "referral.create",
        "referral",
        referral.id,
        {
            "contact_id": str(contact.id),
            "service_id": str(service.id),
            "kind": kind,
            "organization": organization.id,
            "shared": shared_under is not None,
            **({"consent_id": str(shared_under)} if shared_under else {}),
        },
    )
    return referral


async def organizations_shared_with(
    session: AsyncSession, person_id: uuid.UUID, purpose: str, now: datetime
) -> frozenset[str]:
    """The directory organizations the person's consent in force shares them with for
    ``purpose`` now."""
    consents = (await repository.consents_of(session, [person_id]))[person_id]
    return access.shared_with_organizations(
        [terms_of(c, shares) for c, shares in consents], now, purpose
    )


async def require_shared_with_organization(
    session: AsyncSession,
    person_id: uuid.UUID,
    organization_id: str,
    purpose: str,
    now: datetime,
    *,
    action: str,
) -> None:
    """A share with a directory organization (a QRT to visit the person) that the consent
    in force allows for ``purpose``; else ``ConsentRefused``, recorded as ``action``."""
    await repository.live_consents(session, person_id, now, to_share=True)
    consents = (await repository.consents_of(session, [person_id]))[person_id]
    terms = [terms_of(c, shares) for c, shares in consents]
    if organization_id in access.shared_with_organizations(terms, now, purpose):
        return
    current = access.in_force(terms, now)
    if current is None:
        refusal = Refusal("no_live_consent")
    elif purpose not in current.purposes:
        refusal = Refusal("purpose_not_consented", current)
    else:
        refusal = Refusal("not_named", current)
    raise ConsentRefused(
        f"no live consent of this person shares them with {organization_id} for {purpose}",
        person_id=person_id,
        purpose=purpose,
        refusal=refusal,
        action=action,
        organization=organization_id,
    )


async def end_referral_shares(
    session: AsyncSession,
    principal: Principal | None,
    person_id: uuid.UUID,
    now: datetime,
    why: str,
) -> list[Referral]:
    """Referrals of the person whose identity went to an organization the consent in force
    no longer shares them with for treatment referral: that sharing ends now (the referral
    stays, naming nobody to it from now on), each on the audit log."""
    allowed = await organizations_shared_with(session, person_id, "treatment_referral", now)
    shared = await repository.shared_referrals_of_person(session, person_id)
    if not shared:
        return []
    services = await directory.services_by_id(session, [r.service_id for r in shared])
    current = await _consent_in_force(session, person_id, now)
    ended = []
    for referral in shared:
        now_with = services[referral.service_id][1].id
        named = referral.share_organization_id or now_with
        if named != now_with:
            # The service belongs to another organization now: the share stays with the one
            # the consent named, and so ends here.
            because = f"the service moved from {named} to {now_with}"
        elif named in allowed and current is not None:
            # Still shared, now under the consent in force.
            referral.share_consent_id = uuid.UUID(str(current.id))
            referral.share_organization_id = named
            continue
        else:
            because = why
        referral.share_ended_at = now
        ended.append(referral)
        await audit.record(
            session,
            principal,
            "referral.share_ended",
            "referral",
            referral.id,
            {"person_id": str(person_id), "organization": named, "why": because},
        )
    await session.flush()
    return ended


async def referral_shares_in_force(
    session: AsyncSession, referrals: Sequence[Referral], now: datetime
) -> set[uuid.UUID]:
    """The referrals whose person's identity goes to an organization at ``now``: shared
    and not ended, to the organization stored when shared, the service still belongs to,
    and which the person's consent in force names for treatment referral *now*. Decided
    when read, so that an expiry stops it at once, before any pass ends it."""
    shared = [r for r in referrals if r.share_consent_id is not None and r.share_ended_at is None]
    if not shared:
        return set()
    services = await directory.services_by_id(session, [r.service_id for r in shared])
    allowed: dict[uuid.UUID, frozenset[str]] = {}
    out = set()
    for referral in shared:
        contact = await session.get(Contact, referral.contact_id)
        if contact is None or contact.person_id is None:
            continue
        if contact.person_id not in allowed:
            allowed[contact.person_id] = await organizations_shared_with(
                session, contact.person_id, "treatment_referral", now
            )
        now_with = services[referral.service_id][1].id
        named = referral.share_organization_id or now_with
        if named == now_with and named in allowed[contact.person_id]:
            out.add(referral.id)
    return out


async def end_shares_to_moved_services(
    session: AsyncSession,
    principal: Principal | None,
    service_ids: Sequence[uuid.UUID],
    now: datetime,
) -> int:
    """Services that now belong to another organization (a directory re-import): each
    referral's share with the organization the consent named ends, on the audit log.
    How many ended."""
    if not service_ids:
        return 0
    people = await repository.people_sharing_with_services(session, service_ids)
    ended = 0
    for person_id in people:
        ended += len(
            await end_referral_shares(session, principal, person_id, now, "the service moved")
        )
    return ended


async def _consent_in_force(
    session: AsyncSession, person_id: uuid.UUID, now: datetime
) -> ConsentTerms | None:
    consents = (await repository.consents_of(session, [person_id]))[person_id]
    return consent_in_force(consents, now)


def consent_in_force(
    consents: Sequence[tuple[Consent, Sequence[ConsentShare]]], now: datetime
) -> ConsentTerms | None:
    """The consent in force among a person's consents (``access.in_force``): the newest
    signed one, if live."""
    return access.in_force([terms_of(c, shares) for c, shares in consents], now)


class ArrivalRecorded(Conflict):
    slug = "arrival-recorded"
    title = "Whether the person arrived is recorded already"


async def record_arrival(
    session: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    arrived: bool,
    now: datetime,
) -> Referral:
    """Whether the referred person arrived (the warm hand-off confirmed), once."""
    provider = await provider_of(session, principal)
    referral = await session.get(Referral, referral_id, with_for_update=True)
    contact = await session.get(Contact, referral.contact_id) if referral else None
    if referral is None or contact is None or contact.provider_id != provider:
        raise NotFound(f"referral {referral_id} not found")
    answer = "arrived" if arrived else "did_not_arrive"
    if referral.arrival != "pending":
        if referral.arrival == answer:
            return referral
        raise ArrivalRecorded(
            f"recorded as {referral.arrival.replace('_', ' ')} by {referral.arrival_by}"
        )
    referral.arrival, referral.arrival_at, referral.arrival_by = (
        answer,
        now,
        roster.actor(principal),
    )
    await session.flush()
    await audit.record(
        session, principal, "referral.arrival", "referral", referral.id, {"arrival": answer}
    )
    return referral


def consent_state(consent: Consent, now: datetime) -> str:
    if consent.revoked_at is not None:
        return "revoked"
    return "live" if now < consent.expires_at else "expired"


async def persons_of(
    session: AsyncSession, person_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Person]:
    """People by id, for a caller that already decided the key may see them and puts the
    read on the audit log itself (a provider's follow-up queue)."""
    found: dict[uuid.UUID, Person] = {}
    for person_id in dict.fromkeys(person_ids):
        person = await session.get(Person, person_id)
        if person is not None:
            found[person_id] = person
    return found


# --- retention ------------------------------------------------------------------------------------


async def inactive_people(
    session: AsyncSession, cutoff: datetime, now: datetime, limit: int = 5000
) -> list[uuid.UUID]:
    """People not de-identified yet, with no live consent and nothing of theirs in this
    domain (created, met, a consent signed, revoked or ended, a referral made or arrived)
    since ``cutoff``."""
    return list(await repository.inactive_people(session, cutoff, now, limit))


async def deidentify(session: AsyncSession, person_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """What names these people goes (name, contact, the names they typed to sign), and any
    referral still carrying their identity stops; the rows stay for the program's counts.
    On the audit log, by id."""
    if not person_ids:
        return
    await repository.deidentify(session, person_ids, now, DEIDENTIFIED)
    await audit.record(
        session,
        None,
        "person.deidentify",
        "person",
        None,
        {"ids": [str(p) for p in person_ids], "why": "no live consent, inactive past retention"},
        actor="corespond retention",
    )


async def people_sharing_referrals(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """People with a referral whose sharing with its organization has not ended, by id,
    after ``after`` (a page)."""
    return list(await repository.people_sharing_referrals(session, after, limit))


async def people_without_consent_in_force(
    session: AsyncSession, person_ids: Sequence[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    """Those of ``person_ids`` whose consent in force is gone (the newest signed one ran
    out or was revoked, or none): what they still share is no longer allowed."""
    found = await repository.consents_of(session, person_ids)
    return [p for p in person_ids if consent_in_force(found[p], now) is None]
