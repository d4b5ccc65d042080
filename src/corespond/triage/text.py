"""CAD text as the classifier sees it: upper-case tokens in clauses, shorthand expanded.

Dispatch text is terse and inconsistent ("SUBJ ETOH, NO WPNS SEEN", "Disturb/Nuis Intoxic
Wpn", "15YOA"). Normalising it once here keeps the rules simple: a rule lists words and
phrases; spelling variants are the abbreviation table's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Clause boundaries end a negation's reach: "NO WEAPONS SEEN, HAS KNIFE" negates nothing after
# the comma.
CLAUSE_PUNCTUATION = frozenset(".;,!?")
_TOKEN = re.compile(r"[A-Z0-9]+|[.;,!?]")
_APOSTROPHE = re.compile("['`\u2019]")
# Ages: "15 YOA", "16 YEAR OLD", "17YO", "15 Y/O", "14 YRS OLD", "AGE 15", "16 YOM", "15YOF".
_AGE = re.compile(
    r"\b(\d{1,2})\s*(?:-\s*)?(?:YOA|YO|Y/O|Y\.O\.?|YOM|YOF|YRS?\.?\s*OLD|YEARS?[\s-]*OLD|YR[\s-]*OLD)\b"
    r"|\bAGE[\s:]*(\d{1,2})\b"
    # "W/M 16", "B/F APPROX 15", and age ranges "APPROX 16-17".
    r"|\b[WBHAIU]/[MF]\s*(?:APPROX\.?\s*)?(\d{1,2})\b"
    r"|\bAPPROX\.?\s*(\d{1,2})\s*-\s*\d{1,2}\b"
    # "KID 14", "SON (16)", "SUBJ IS 16": a person word and an age standing alone.
    r"|\b(?:KID|SON|DAUGHTER|BOY|GIRL|CHILD|TEEN|SUBJ|SUBJECT|PT|PATIENT)\s*"
    r"(?:\(\s*(\d{1,2})\s*\)|IS\s+(\d{1,2})(?=\s*(?:[,.;]|$))|(\d{1,2})(?=\s*(?:[,.;)]|$)))"
)


@dataclass(frozen=True)
class Token:
    """One word of a field, with the clause it belongs to and its offset in the original."""

    text: str
    clause: int
    start: int
    end: int


@dataclass(frozen=True)
class Field:
    """A normalised text field: its tokens, the original (upper-cased) text and ages found."""

    name: str
    raw: str
    tokens: tuple[Token, ...]
    ages: tuple[tuple[int, int, int], ...]  # (age, start, end) offsets in raw

    def span(self, first: int, last: int) -> str:
        """The original text from token ``first`` to token ``last`` (inclusive)."""
        return self.raw[self.tokens[first].start : self.tokens[last].end]


def normalise(text: str) -> str:
    """Upper-case, apostrophes dropped ("OD'ING" -> "ODING"), ``&`` spelled out."""
    return _APOSTROPHE.sub("", text.upper()).replace("&", " AND ")


def tokenise(
    name: str, text: str, abbreviations: Mapping[str, Sequence[str]] | None = None
) -> Field:
    """Split ``text`` into tokens, expanding shorthand; punctuation only separates clauses."""
    raw = normalise(text)
    tokens: list[Token] = []
    clause = 0
    for match in _TOKEN.finditer(raw):
        word = match.group()
        if word in CLAUSE_PUNCTUATION:
            clause += 1
            continue
        expansion = abbreviations.get(word) if abbreviations else None
        for part in expansion or (word,):
            tokens.append(Token(part, clause, match.start(), match.end()))
    ages = tuple(
        (int(next(g for g in m.groups() if g)), m.start(), m.end()) for m in _AGE.finditer(raw)
    )
    return Field(name, raw, tuple(tokens), ages)
