"""Rosters as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from corespond.kit.validators import NoNul
from corespond.roster.models import Credential, Peer, Shift

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), NoNul]
Channel = Literal["webpush", "sms"]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ().-]{7,20}$")]
PeerStatus = Literal["available", "busy", "off_duty"]
CredentialKind = Literal["prss_certification", "cjis_background", "nda"]
ShiftKind = Literal["on_duty", "on_call"]
LocalOrAware = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=10, max_length=40),
    Field(description="RFC 3339 with an offset, or YYYY-MM-DD HH:MM in the program's zone"),
]


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: Name


class CountyServed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    county: Short = Field(description="County name or FIPS code.")
    role: Literal["primary", "backup"] = "primary"


class CountyServedOut(BaseModel):
    fips: str
    name: str
    role: Literal["primary", "backup"]


class ProviderOut(BaseModel):
    id: str
    name: str
    counties: list[CountyServedOut]


class HomeBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    place: Name | None = None
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)


class PeerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: Annotated[str, StringConstraints(max_length=63)]
    display_name: Name
    phone: Phone | None = None
    home: HomeBase | None = None
    embedded_agency: Name | None = None
    languages: list[Short] = Field(default_factory=list, max_length=10)
    notify_channels: list[Channel] = Field(
        default=["webpush", "sms"],
        max_length=2,
        description="How an offer reaches the peer, in order: the first at once, the next if "
        "the offer is still unanswered at half its deadline.",
    )


class PeerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Name | None = None
    phone: Phone | None = None
    home: HomeBase | None = None
    embedded_agency: Name | None = None
    languages: list[Short] | None = Field(default=None, max_length=10)
    notify_channels: list[Channel] | None = Field(default=None, max_length=2)


class CredentialIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Name | None = Field(default=None, description="Certificate or check number.")
    expires_at: AwareDatetime | None = Field(default=None, description="Null: does not expire.")


class CredentialOut(BaseModel):
    kind: CredentialKind
    reference: str | None
    expires_at: datetime | None

    @classmethod
    def of(cls, credential: Credential, *, private: bool = True) -> CredentialOut:
        return cls(
            kind=credential.kind,  # type: ignore[arg-type]
            reference=credential.reference if private else None,
            expires_at=credential.expires_at,
        )


class PeerOut(BaseModel):
    """A peer. `phone`, `home` and credential `reference`s are null for keys that may not
    see them (auditors): they are for the peer's provider, supervisors and admins."""

    id: uuid.UUID
    provider_id: str
    display_name: str
    phone: str | None
    home: HomeBase
    embedded_agency: str | None
    languages: list[str]
    notify_channels: list[str]
    status: PeerStatus
    status_changed_at: datetime
    credentials: list[CredentialOut]
    credential_problems: list[str] = Field(
        description="Missing or expired required credentials: such a peer is never offered a call."
    )
    notes: list[str] = Field(
        description="What else keeps the peer from being offered a call, in words: a peer "
        "`off_duty` (as every new peer starts) is offered none until their status is set to "
        "`available`."
    )

    @classmethod
    def of(
        cls,
        peer: Peer,
        credentials: list[Credential],
        problems: list[str],
        *,
        private: bool = True,
    ) -> PeerOut:
        home = (
            HomeBase(place=peer.home_place, lat=peer.home_lat, lon=peer.home_lon)
            if private
            else HomeBase(place=None, lat=None, lon=None)
        )
        return cls(
            id=peer.id,
            provider_id=peer.provider_id,
            display_name=peer.display_name,
            phone=peer.phone if private else None,
            home=home,
            embedded_agency=peer.embedded_agency,
            languages=list(peer.languages or []),
            notify_channels=list(peer.notify_channels or []),
            status=peer.status,  # type: ignore[arg-type]
            status_changed_at=peer.status_changed_at,
            credentials=[CredentialOut.of(c, private=private) for c in credentials],
            credential_problems=problems,
            notes=status_notes(peer),
        )


def status_notes(peer: Peer) -> list[str]:
    """A status that keeps the peer from calls until someone changes it (``busy`` ends by
    itself with the peer's assignment), said so that no one waits for an offer."""
    if peer.status == "off_duty":
        return [
            "off duty: offered no calls until their status is set to available "
            f"(POST /v1/peers/{peer.id}/status); every new peer starts off duty"
        ]
    return []


class PeerPage(BaseModel):
    items: list[PeerOut]
    next_cursor: str | None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: PeerStatus


class ExpiringCredential(BaseModel):
    peer_id: uuid.UUID
    display_name: str
    provider_id: str
    kind: CredentialKind
    expires_at: datetime
    expired: bool


class ShiftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    peer_id: uuid.UUID
    starts_at: LocalOrAware
    ends_at: LocalOrAware
    counties: list[Short] = Field(min_length=1, max_length=20)
    kind: ShiftKind = "on_duty"


class ShiftUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: LocalOrAware | None = None
    ends_at: LocalOrAware | None = None
    counties: list[Short] | None = Field(default=None, min_length=1, max_length=20)
    kind: ShiftKind | None = None


class ShiftOut(BaseModel):
    id: uuid.UUID
    peer_id: uuid.UUID
    provider_id: str
    starts_at: datetime = Field(description="UTC.")
    ends_at: datetime = Field(description="UTC; the shift is [starts_at, ends_at).")
    starts_local: str = Field(description="Start in the program's time zone, for people.")
    ends_local: str
    counties: list[str]
    kind: ShiftKind
    cancelled_at: datetime | None
    cancelled_by: str | None
    created_by: str

    @classmethod
    def of(cls, shift: Shift, zone: str) -> ShiftOut:
        tz = ZoneInfo(zone)
        return cls(
            id=shift.id,
            peer_id=shift.peer_id,
            provider_id=shift.provider_id,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            starts_local=shift.starts_at.astimezone(tz).isoformat(),
            ends_local=shift.ends_at.astimezone(tz).isoformat(),
            counties=list(shift.counties),
            kind=shift.kind,  # type: ignore[arg-type]
            cancelled_at=shift.cancelled_at,
            cancelled_by=shift.cancelled_by,
            created_by=shift.created_by,
        )


class ShiftPage(BaseModel):
    items: list[ShiftOut]
    next_cursor: str | None


class ShiftChangeOut(BaseModel):
    action: str
    changed_by: str
    changed_at: datetime
    before: dict[str, object] | None
    after: dict[str, object] | None


class ImportRow(BaseModel):
    line: int = Field(description="Line of the file (for iCalendar: the event's UID line).")
    key: str = Field(
        description="The shift's key: its shift_id (CSV), else peer@start; for iCalendar the "
        "UID, and for an occurrence of a recurring event UID@date (#n for the n-th that day)."
    )
    result: Literal["created", "updated", "unchanged", "cancelled", "error"] = Field(
        description="cancelled: an occurrence the recurring event (present in the file) no "
        "longer has within the import window."
    )
    reason: str | None = None
    shift_id: uuid.UUID | None = Field(
        default=None,
        description="The stored shift; null for a shift that was not stored (a dry run, or "
        "an import with errors, creates none).",
    )


class ImportReportOut(BaseModel):
    format: Literal["csv", "ics"]
    dry_run: bool
    applied: bool = Field(description="False on a dry run or when any row has an error.")
    counts: dict[str, int] = Field(
        description="Rows by result: created, updated, unchanged, cancelled, error."
    )
    rows: list[ImportRow]
    notes: list[str] = Field(
        description="What the rows do not say, e.g. peers of the import who are off duty "
        "and so will not be offered calls until their status is set to available."
    )
