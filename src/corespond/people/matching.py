"""Deconfliction: could two records be the same person? A pure function of the fields each
side may compare, giving its reasons, so that a person decides; nothing here merges.

Names are compared folded (case, accents, punctuation and word order ignored: "O'Brien,
Mary" is "mary obrien"); a phone by its last ten digits. A match needs the same phone, the
same full name, or the same first initial and last name in the same county."""

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


def name_words(name: str | None) -> tuple[str, ...]:
    """A name folded to its words, sorted: case, accents and punctuation do not count."""
    if not name:
        return ()
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("'", "").replace("\u2019", "")
    return tuple(sorted(_NOT_LETTER.sub(" ", text).split()))


def phone_digits(contact: str | None) -> str | None:
    """A phone number's last ten digits (seven at least), else None (not a phone)."""
    if not contact:
        return None
    digits = "".join(c for c in contact if c.isdigit())
    return digits[-10:] if len(digits) >= 7 else None


def _initial_and_last(name: str | None) -> tuple[str, str] | None:
    if not name:
        return None
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    if "," in text:  # "Last, First"
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    words = _NOT_LETTER.sub(" ", text.replace("'", "")).split()
    if len(words) < 2:
        return None
    return words[0][0], words[-1]


def match_reasons(new: Identity, known: Identity) -> list[str]:
    """Why ``known`` may be the same person as ``new`` (empty: no reason to think so)."""
    reasons = []
    phone = phone_digits(new.contact)
    if phone is not None and phone == phone_digits(known.contact):
        reasons.append("same phone")
    words = name_words(new.name)
    if words and words == name_words(known.name):
        reasons.append("same name")
    elif (
        new.county_fips is not None
        and new.county_fips == known.county_fips
        and (initials := _initial_and_last(new.name)) is not None
        and initials == _initial_and_last(known.name)
    ):
        reasons.append("same initial and last name, same county")
    return reasons
