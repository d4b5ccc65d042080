"""Who may read a person, under which consent, for what: a pure function of the reader, the
purpose they read for, the person's provider and their consents at a moment, so that the
rule can be read, and tested, as a table.

* The person's peer provider (its peers, its admin) reads the whole record: it is the
  program's record, made with the person's agreement.
* A partner (a police agency, a treatment provider, a QRT) reads the fields the consent in
  force shares with it, for a purpose that consent names: signed, not revoked, not expired,
  naming that partner *and* that purpose (police reading to deconflict, a treatment
  provider reading to take a referral). The consent in force is the newest signed one:
  an older consent the person replaced never comes back into force. A partner that says
  no purpose reads nothing: the rule fails closed. Revoked or expired, nothing more is
  shared, at once.
* Nobody else: not dispatchers, not supervisors, not other providers, not admins, not a
  partner the consent does not name.

A refusal says why (``Refusal.reason``), for the audit log; the partner is told only that
no live consent shares the person with it for that purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from corespond.agencies.names import agency_key

FIELDS = ("name", "contact", "county")
PURPOSES = ("care_coordination", "treatment_referral", "follow_up", "deconfliction")
RefusalReason = Literal[
    "not_a_reader",  # not the provider's, not a partner: no consent can let them read
    "no_purpose",  # a partner that did not say what it reads for
    "no_live_consent",  # none signed, or the newest signed revoked or expired
    "not_named",  # the consent in force does not name this partner
    "purpose_not_consented",  # it names the partner, not for this purpose
]


@dataclass(frozen=True)
class Reader:
    """Who asks: a peer or provider admin of ``provider``; a partner of ``agency`` (police)
    or ``organization`` (a treatment provider or QRT in the directory); anyone else."""

    role: str
    provider: str | None = None
    agency: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class Share:
    kind: str  # police, treatment, qrt
    recipient: str  # an agency's registered name, or a directory organization id


@dataclass(frozen=True)
class ConsentTerms:
    id: object
    shares: tuple[Share, ...]
    fields: tuple[str, ...]
    purposes: tuple[str, ...]
    expires_at: datetime
    revoked_at: datetime | None
    signed_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class Access:
    """What a reader may see: ``provider`` (everything) or ``partner`` (``fields`` of the
    person, under ``consent``)."""

    as_: Literal["provider", "partner"]
    fields: tuple[str, ...] = FIELDS
    consent: ConsentTerms | None = None
    # The consent's shares that name this partner (it is shown those, not the others).
    named: tuple[Share, ...] = ()
    # What the partner reads for (one of the consent's purposes).
    purpose: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a reader may read nothing of the person (for the audit log), and under which
    consent, if one was in force."""

    reason: RefusalReason
    consent: ConsentTerms | None = None


def names(reader: Reader, share: Share) -> bool:
    """The share names this reader."""
    if share.kind == "police":
        return reader.agency is not None and agency_key(share.recipient) == agency_key(
            reader.agency
        )
    return reader.organization is not None and share.recipient == reader.organization


def in_force(consents: Sequence[ConsentTerms], now: datetime) -> ConsentTerms | None:
    """The consent in force: the newest signed one, if it is live. Signing again (naming
    fewer recipients, fewer fields or purposes, a nearer expiry) replaces what was signed
    before for good: when the newer consent expires or is revoked, nothing is shared, and
    an older one never comes back. Of two signed at the same moment, one not live wins
    (fail closed)."""
    if not consents:
        return None
    newest = max(
        consents,
        key=lambda c: (c.signed_at is not None, c.signed_at or c.expires_at, not c.live(now)),
    )
    return newest if newest.live(now) else None


def decide(
    reader: Reader,
    provider: str,
    consents: Sequence[ConsentTerms],
    now: datetime,
    purpose: str | None = None,
) -> Access | Refusal:
    """What ``reader`` may read of a person of ``provider`` with these consents at ``now``,
    reading for ``purpose`` (a partner must say one); else why not."""
    if reader.role in ("peer", "provider_admin") and reader.provider == provider:
        return Access("provider")
    if reader.role != "partner":
        return Refusal("not_a_reader")
    if purpose is None:
        return Refusal("no_purpose")
    current = in_force(consents, now)
    if current is None:
        return Refusal("no_live_consent")
    named = tuple(s for s in current.shares if names(reader, s))
    if not named:
        return Refusal("not_named", current)
    if purpose not in current.purposes:
        return Refusal("purpose_not_consented", current)
    return Access("partner", current.fields, current, named, purpose)


def access(
    reader: Reader,
    provider: str,
    consents: Sequence[ConsentTerms],
    now: datetime,
    purpose: str | None = None,
) -> Access | None:
    """What ``reader`` may read of a person (``decide``); None: nothing (not even that the
    person exists)."""
    decided = decide(reader, provider, consents, now, purpose)
    return decided if isinstance(decided, Access) else None


def shared_with_organizations(
    consents: Sequence[ConsentTerms], now: datetime, purpose: str
) -> frozenset[str]:
    """The directory organizations (treatment providers, QRTs) the consent in force shares
    the person with for ``purpose`` (none: nothing may go to any of them for it)."""
    current = in_force(consents, now)
    if current is None or purpose not in current.purposes:
        return frozenset()
    return frozenset(s.recipient for s in current.shares if s.kind in ("treatment", "qrt"))
