"""Who may read a person, under which consent: a pure function of the reader, the person's
provider and their consents at a moment, so that the rule can be read, and tested, as a
table.

* The person's peer provider (its peers, its admin) reads the whole record: it is the
  program's record, made with the person's agreement.
* A partner (a police agency, a treatment provider, a QRT) reads the fields a live consent
  shares with it: signed, not revoked, not expired, naming that partner. Revoked or
  expired, nothing more is shared, at once.
* Nobody else: not dispatchers, not supervisors, not other providers, not admins, not a
  partner the consent does not name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from corespond.agencies.names import agency_key

FIELDS = ("name", "contact", "county")


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


def names(reader: Reader, share: Share) -> bool:
    """The share names this reader."""
    if share.kind == "police":
        return reader.agency is not None and agency_key(share.recipient) == agency_key(
            reader.agency
        )
    return reader.organization is not None and share.recipient == reader.organization


def access(
    reader: Reader, provider: str, consents: Sequence[ConsentTerms], now: datetime
) -> Access | None:
    """What ``reader`` may read of a person of ``provider`` with these consents at ``now``;
    None: nothing (not even that the person exists)."""
    if reader.role in ("peer", "provider_admin") and reader.provider == provider:
        return Access("provider")
    if reader.role != "partner":
        return None
    # The consent in force is the newest live one: signing again (naming fewer recipients,
    # fewer fields) replaces what was signed before; an older consent grants nothing.
    live = [c for c in consents if c.live(now)]
    if not live:
        return None
    current = max(live, key=lambda c: (c.signed_at is not None, c.signed_at or c.expires_at))
    named = tuple(s for s in current.shares if names(reader, s))
    return Access("partner", current.fields, current, named) if named else None
