"""Deconfliction: could two records be the same person? Pure functions of the fields each
side may compare, giving their reasons, so that a person decides; nothing here merges.

Names are compared folded (case, accents, punctuation and word order ignored: "O'Brien,
Mary" is "mary obrien"); a phone by its last ten digits. A match needs the same phone, the
same full name, or the same first initial and last name in the same county.

Each of those rests on one key of a record (``keys_of``): the person table keeps the keys
of every row, indexed, so that the database finds the candidates (``match_reasons`` on two
records and equality of their keys are one rule, tested as such)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_NOT_LETTER = re.compile(r"[^a-z0-9 ]+")


@dataclass(frozen=True)
class Identity:
    """The fields a comparison may use (None: not known, or not allowed to be compared)."""

    name: str | None
    contact: str | None
    county_fips: str | None


@dataclass(frozen=True)
class MatchKeys:
    """What a match may rest on: the phone's last ten digits, the folded name's words in
    order, the first initial and last name (with the county, compared alongside)."""

    phone: str | None
    name: str | None
    initial_last: str | None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def name_words(name: str | None) -> tuple[str, ...]:
    """A name folded to its words, sorted: case, accents and punctuation do not count."""
    if not name:
        return ()
    text = _fold(name).replace("'", "").replace("\u2019", "")
    return tuple(sorted(_NOT_LETTER.sub(" ", text).split()))


def phone_digits(contact: str | None) -> str | None:
    """A phone number's last ten digits (seven at least), else None (not a phone)."""
    if not contact:
        return None
    digits = "".join(c for c in contact if c.isdigit())
    return digits[-10:] if len(digits) >= 7 else None


def initial_and_last(name: str | None) -> str | None:
    """ "j doe" of "Jo Doe" and of "DOE, JO"; None for a single word."""
    if not name:
        return None
    text = _fold(name)
    if "," in text:  # "Last, First"
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    words = _NOT_LETTER.sub(" ", text.replace("'", "").replace("\u2019", "")).split()
    if len(words) < 2:
        return None
    return f"{words[0][0]} {words[-1]}"


def keys_of(identity: Identity) -> MatchKeys:
    words = name_words(identity.name)
    return MatchKeys(
        phone=phone_digits(identity.contact),
        name=" ".join(words) or None,
        initial_last=initial_and_last(identity.name),
    )


def match_reasons(new: Identity, known: Identity) -> list[str]:
    """Why ``known`` may be the same person as ``new`` (empty: no reason to think so)."""
    a, b = keys_of(new), keys_of(known)
    reasons = []
    if a.phone is not None and a.phone == b.phone:
        reasons.append("same phone")
    if a.name is not None and a.name == b.name:
        reasons.append("same name")
    elif (
        new.county_fips is not None
        and new.county_fips == known.county_fips
        and a.initial_last is not None
        and a.initial_last == b.initial_last
    ):
        reasons.append("same initial and last name, same county")
    return reasons
