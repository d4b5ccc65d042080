"""People met on calls, their consent, the contacts and the referrals made for them.

A ``person`` exists only because the person agreed (42 CFR Part 2): it holds the minimum (a
name or alias, a way to reach them, a county) and belongs to the peer provider whose peer
met them. What may be shared with whom is the person's ``consent``: the recipients
(``consent_share``: a police agency, a treatment provider, a Quick Response Team), the
purposes and an expiry; revoking it ends every share at once. A ``contact`` is one meeting
on an assignment: with a person, or de-identified (no person: counted, never identified). A
``referral`` points a contact at a directory service and records whether the person arrived
(the warm hand-off confirmed), and whether the person's identity went with it to the
service's organization (a live consent naming it for treatment referral).

A person with no live consent and nothing done with them for the retention period is
de-identified (``deidentified_at``): their name, contact and typed signatures are dropped;
the county, the dates and the links of their contacts and follow-ups stay, for the
program's counts.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from corespond.db import Base
from corespond.people import matching

SHARE_KINDS = ("police", "treatment", "qrt")
PURPOSES = ("care_coordination", "treatment_referral", "follow_up", "deconfliction")
# The person's fields a consent may let its recipients see (and compare, to deconflict).
FIELDS = ("name", "contact", "county")
ARRIVALS = ("pending", "arrived", "did_not_arrive")
# What a de-identified person's name reads as (the column keeps its NOT NULL).
DEIDENTIFIED = "(de-identified)"
# Deconfliction looks among the provider's people still in use (not merged, not
# de-identified), by each of the keys a match may rest on.
_MATCHABLE = "merged_into_id IS NULL AND deidentified_at IS NULL"


class Person(Base):
    """Someone who agreed to be known to the program: the minimum, and whose record it is."""

    __tablename__ = "person"
    __table_args__ = (
        Index(
            "ix_person_match_phone",
            "provider_id",
            "match_phone",
            postgresql_where=text(f"{_MATCHABLE} AND match_phone IS NOT NULL"),
        ),
        Index(
            "ix_person_match_name",
            "provider_id",
            "match_name",
            postgresql_where=text(f"{_MATCHABLE} AND match_name IS NOT NULL"),
        ),
        Index(
            "ix_person_match_initial_last",
            "provider_id",
            "county_fips",
            "match_initial_last",
            postgresql_where=text(f"{_MATCHABLE} AND match_initial_last IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The peer provider whose peer met them: its peers and admin see the record.
    provider_id: Mapped[str] = mapped_column(ForeignKey("provider.id"), index=True)
    name: Mapped[str] = mapped_column(Text)  # a name or an alias, as the person gave it
    contact: Mapped[str | None] = mapped_column(Text)  # a phone or another way to reach them
    county_fips: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"))
    # Deconfliction: a record found to be the same person as another, by a person's explicit
    # confirmation, points at the one kept (its contacts, consents and follow-ups moved there).
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"))
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    merged_by: Mapped[str | None] = mapped_column(Text)
    # The keys deconfliction compares (people.matching.keys_of), kept with the row so that a
    # possible match is an indexed lookup, never a scan of the provider's people. Set from
    # the name, contact and county whenever the row is written.
    match_phone: Mapped[str | None] = mapped_column(Text)
    match_name: Mapped[str | None] = mapped_column(Text)
    match_initial_last: Mapped[str | None] = mapped_column(Text)
    # When the retention pass dropped what identifies them (no live consent, nothing done
    # for the retention period).
    deidentified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@event.listens_for(Person, "before_insert")
@event.listens_for(Person, "before_update")
def _match_keys(_mapper: Mapper[Person], _connection: Connection, person: Person) -> None:
    keys = (
        matching.keys_of(matching.Identity(person.name, person.contact, person.county_fips))
        if person.deidentified_at is None
        else None
    )
    person.match_phone = keys.phone if keys else None
    person.match_name = keys.name if keys else None
    person.match_initial_last = keys.initial_last if keys else None


class Consent(Base):
    """What the person agreed may be shared, with whom, for what, until when; signed on the
    peer's phone (typed name and a checked box), witnessed by the peer. Revocable at any
    time: revoked, nothing more is shared with anyone it named."""

    __tablename__ = "consent"
    __table_args__ = (
        CheckConstraint("expires_at > signed_at", name="expires_after_signing"),
        CheckConstraint(
            f"purposes <@ ARRAY{list(PURPOSES)!r}::text[] AND cardinality(purposes) > 0",
            name="purposes_known",
        ),
        CheckConstraint(
            f"fields <@ ARRAY{list(FIELDS)!r}::text[] AND cardinality(fields) > 0",
            name="fields_known",
        ),
        CheckConstraint("(revoked_at IS NULL) = (revoked_by IS NULL)", name="revoked_by_whom"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), index=True)
    # Which wording the person was shown (people.consent.STATEMENTS).
    statement_version: Mapped[str] = mapped_column(Text)
    signed_name: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(Text, server_default="typed_name_and_checkbox")
    witnessed_by_peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"))
    witnessed_by: Mapped[str] = mapped_column(Text)
    purposes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    fields: Mapped[list[str]] = mapped_column(ARRAY(Text))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(Text)


class ConsentShare(Base):
    """One recipient a consent names: a police agency (by its registered name), or a
    treatment provider or QRT (by its directory organization id)."""

    __tablename__ = "consent_share"
    __table_args__ = (
        CheckConstraint(f"kind IN {SHARE_KINDS!r}", name="kind_known"),
        UniqueConstraint("consent_id", "kind", "recipient"),
        Index("ix_consent_share_recipient", "kind", "recipient"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    recipient_name: Mapped[str] = mapped_column(Text)


class Contact(Base):
    """A peer's meeting with someone on an assignment: with a person who consented, or
    de-identified (``person_id`` null: counted and its outcome known, nothing identifying)."""

    __tablename__ = "contact"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    assignment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assignment.id"), unique=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("provider.id"), index=True)
    peer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("peer.id"))
    county_fips: Mapped[str | None] = mapped_column(Text)
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"), index=True)
    met_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Referral(Base):
    """A contact referred to a directory service, of one of its kinds; whether the person
    arrived (a warm hand-off confirmed) or not, by whom and when."""

    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint(f"arrival IN {ARRIVALS!r}", name="arrival_known"),
        CheckConstraint(
            "(arrival = 'pending') = (arrival_at IS NULL)", name="arrival_recorded_when"
        ),
        UniqueConstraint("contact_id", "service_id", "kind"),
        Index("ix_referral_made_at", "made_at"),
        CheckConstraint(
            "share_ended_at IS NULL OR share_consent_id IS NOT NULL", name="share_ended_if_shared"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contact.id"), index=True)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("directory_service.id"))
    kind: Mapped[str] = mapped_column(Text)
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    made_by: Mapped[str] = mapped_column(Text)
    arrival: Mapped[str] = mapped_column(Text, server_default=text("'pending'"))
    arrival_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrival_by: Mapped[str | None] = mapped_column(Text)
    # The consent under which the person's identity goes with the referral to the service's
    # organization (it names the organization for treatment referral); null: the referral
    # names nobody to it (a de-identified contact, or a consent that does not cover it).
    share_consent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consent.id"))
    # The directory organization the consent named, that the identity went to, stored when
    # shared: the share stays with it (the service moving to another organization ends it).
    share_organization_id: Mapped[str | None] = mapped_column(Text)
    # When that sharing ended (consent revoked, or signed again without the organization):
    # the organization is told nothing more of the person through this referral.
    share_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
