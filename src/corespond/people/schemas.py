"""People, consents, contacts, referrals and follow-ups as the API shows them, and what peers
send. A partner's view of a person holds only the fields its consent shares."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from corespond.directory.schemas import Kind
from corespond.kit.validators import NoNul, ReasonText
from corespond.people.consent import CURRENT

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
ContactWay = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
CountyName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), NoNul
]
Reference = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=140), NoNul
]
ShareKind = Literal["police", "treatment", "qrt"]
Purpose = Literal["care_coordination", "treatment_referral", "follow_up", "deconfliction"]
SharedField = Literal["name", "contact", "county"]
FollowUpOutcome = Literal[
    "reached", "not_reached", "in_treatment", "relapse", "declined", "deceased"
]


class PersonIn(BaseModel):
    """The minimum kept of a person who agreed."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="A name or an alias, as the person gives it.")
    contact: ContactWay | None = Field(
        default=None, description="A phone number or another way to reach them."
    )
    county: CountyName | None = Field(
        default=None, description="Their county (name or FIPS); default: the call's county."
    )


class ShareIn(BaseModel):
    """Someone the person agrees may receive what they share."""

    model_config = ConfigDict(extra="forbid")

    to: ShareKind = Field(description="police, treatment (a treatment provider) or qrt.")
    agency: Reference | None = Field(
        default=None, description="Police: the agency, by its registered name or ORI."
    )
    organization: Reference | None = Field(
        default=None,
        description="A treatment provider or QRT: its organization id in the directory.",
    )


class ConsentIn(BaseModel):
    """The person's consent, signed on the peer's phone: their typed name and a checked box
    under the statement (`statement_version`) they were shown."""

    model_config = ConfigDict(extra="forbid")

    signed_name: Name = Field(description="The name the person typed.")
    agreed: bool = Field(description="The person checked the box: must be true.")
    shares: list[ShareIn] = Field(
        default=[], max_length=10, description="Whom it may be shared with (none: nobody)."
    )
    purposes: list[Purpose] = Field(min_length=1, max_length=4)
    fields: list[SharedField] = Field(
        min_length=1,
        max_length=3,
        description="What of them may be shared (and compared, to recognise them again).",
    )
    expires_on: date | None = Field(
        default=None,
        description="The last day it holds (program time); default: as long as the program "
        "allows (CORESPOND_CONSENT_MAX_DAYS).",
    )
    statement_version: Annotated[str, StringConstraints(max_length=20)] = CURRENT


class ContactIn(BaseModel):
    """Whom the peer met: nothing (de-identified: counted, nothing that identifies anyone),
    a new person with their consent, or a person already known (`same_as`)."""

    model_config = ConfigDict(extra="forbid")

    person: PersonIn | None = None
    consent: ConsentIn | None = None
    same_as: uuid.UUID | None = Field(
        default=None,
        description="The peer confirms this is a person their provider knows already (one of "
        "the `candidates` a `409 possible-match` listed).",
    )
    new_person: bool = Field(
        default=False,
        description="The peer confirms this is not any of the `candidates` listed.",
    )


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ReasonText | None = None


class MergeIn(BaseModel):
    """Two records of one person, as a person confirmed."""

    model_config = ConfigDict(extra="forbid")

    duplicate_id: uuid.UUID = Field(description="The record that goes into this one.")
    confirm: bool = Field(description="Must be true: a merge is never made without it.")


class ReferralIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: uuid.UUID = Field(description="A service of the directory.")
    kind: Kind = Field(description="Which of the service's kinds the person is referred to.")


class ArrivalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arrived: bool = Field(description="The person arrived (the warm hand-off is confirmed).")


class ShareOut(BaseModel):
    kind: ShareKind
    recipient: str = Field(description="The agency's registered name, or the organization id.")
    name: str


class ConsentOut(BaseModel):
    id: uuid.UUID
    state: Literal["live", "expired", "revoked"]
    signed_name: str | None = Field(description="For the person's provider only.")
    signed_at: datetime
    witnessed_by: str | None = Field(description="For the person's provider only.")
    statement_version: str
    purposes: list[Purpose]
    fields: list[SharedField]
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    shares: list[ShareOut] = Field(
        description="Whom it names (a partner sees only the share naming it)."
    )


class ReferralOut(BaseModel):
    id: uuid.UUID
    contact_id: uuid.UUID
    service_id: uuid.UUID
    service_name: str
    organization: str
    kind: Kind
    made_at: datetime
    made_by: str
    arrival: Literal["pending", "arrived", "did_not_arrive"]
    arrival_at: datetime | None
    arrival_by: str | None
    shared_with_organization: bool = Field(
        description="The person's identity goes with the referral to the service's "
        "organization: the consent in force names it for `treatment_referral`. False: the "
        "referral names nobody to it (a de-identified contact, a consent that does not "
        "cover it, or sharing that ended)."
    )
    share_ended_at: datetime | None = Field(
        description="When sharing with the organization ended (the consent was revoked or "
        "signed again without it, or expired): nothing more of the person goes to it."
    )


class ContactOut(BaseModel):
    id: uuid.UUID
    assignment_id: uuid.UUID
    met_at: datetime
    county_fips: str | None
    identified: bool = Field(description="False: de-identified (counts and outcomes only).")
    person_id: uuid.UUID | None
    referrals: list[ReferralOut]


class FollowUpOut(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    person_name: str
    kind: Literal["follow_up", "qrt_visit"]
    step: str = Field(description="The schedule's step (1d, 72h, 2m …) or `added`.")
    due_at: datetime
    overdue_at: datetime = Field(description="Done after this, it is late (and escalated).")
    state: Literal["open", "done", "cancelled"]
    overdue: bool = Field(description="Open and past `overdue_at`.")
    escalated_at: datetime | None = Field(
        description="When it went to the provider admin's attention (overdue)."
    )
    assignee_peer_id: uuid.UUID | None = Field(description="Null: the provider's team.")
    assignee: str | None = Field(description="The peer's name, or null for the team.")
    organization_id: str | None = Field(
        description="A QRT visit made by a Quick Response Team of the directory (its "
        "organization id); null: the provider's own peers."
    )
    organization: str | None = Field(description="That organization's name.")
    outcome: FollowUpOutcome | None
    done_at: datetime | None
    done_by: str | None
    cancelled_reason: str | None


class PersonOut(BaseModel):
    """A person as the key may see them. `view` `provider`: the whole record (the person's
    peer provider); `partner`: only the fields the consent shares with this partner, and
    that consent."""

    id: uuid.UUID
    view: Literal["provider", "partner"]
    provider_id: str
    name: str | None
    contact: str | None
    county_fips: str | None
    county: str | None
    created_at: datetime | None
    deidentified_at: datetime | None = Field(
        default=None,
        description="When the retention pass de-identified the person (no live consent, "
        "nothing done with them for CORESPOND_PERSON_RETENTION_DAYS): name, contact and "
        "typed signatures are gone; counts and dates stay.",
    )
    consent: ConsentOut | None = Field(
        description="The consent in force (a partner: the one naming it); null: none live."
    )
    consents: list[ConsentOut] | None = Field(description="Every consent, newest first.")
    contacts: list[ContactOut] | None
    follow_ups: list[FollowUpOut] | None


class PersonPage(BaseModel):
    items: list[PersonOut]


class MatchOut(BaseModel):
    """A person of the provider who may be the same person, and why (never merged unless a
    person confirms)."""

    id: uuid.UUID
    name: str
    county_fips: str
    last_met_at: datetime | None
    reasons: list[str]


class MatchPage(BaseModel):
    items: list[MatchOut]


class ContactRecordedOut(BaseModel):
    contact: ContactOut
    person: PersonOut | None
    follow_ups: list[FollowUpOut] = Field(description="The schedule made for the person.")


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: FollowUpOutcome


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    peer_id: uuid.UUID | None = Field(description="A peer of the provider; null: the team.")


class FollowUpIn(BaseModel):
    """A follow-up made by hand: a Quick Response Team visit, an extra call."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["follow_up", "qrt_visit"] = "qrt_visit"
    due_at: AwareDatetime = Field(description="RFC 3339 with an offset.")
    assignee_peer_id: uuid.UUID | None = None
    organization_id: Reference | None = Field(
        default=None,
        description="A QRT visit made by a Quick Response Team of the directory (its "
        "organization id): it shares the person with the team, so the consent in force "
        "must name it for `follow_up` (else `403 consent-refused`). Cancelled as soon as "
        "the consent no longer does.",
    )


class FollowUpPage(BaseModel):
    items: list[FollowUpOut]
