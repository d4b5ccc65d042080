"""What a peer may see of a call: composed from what the co-response needs, never the CAD
narrative as such.

A peer is a civilian; the call's narrative is written by and for law enforcement and may hold
criminal history, warrants, database returns, probation or parole status, informants or
protective orders, in any spelling. Cutting those out (a deny-list) leaks whatever the list
did not foresee. So the peer's view is built up instead:

* the call type, location and the triage facts (substance use, risk) by their rule labels;
* CAD hazard flags, each only if every word of it is a known peer word;
* a note a dispatcher wrote for the peer;
* narrative sentences that pass an allow-test: the sentence states a substance-use or safety
  fact, every word in it is in ``peer_words.txt``, it holds no radio code, and no
  internal-note marker comes before it in the narrative. Text is folded first (NFKC,
  accents, zero-width and control characters dropped; a line break is a space, since CAD
  wraps lines anywhere); a word in another script, a spaced-out or dotted word, a number
  longer than three digits, any word not in the list: the sentence is withheld.

What is withheld is counted, never shown, so the peer knows to ask dispatch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from corespond.triage.text import fold_unicode

# Reasons a peer may see, by kind: what the person is using and what to be careful of.
FACT_KINDS = ("substance", "risk", "kind")

NOTE_LIMIT = 500

_TOKEN = re.compile(r"[^\W_]+")
_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")
# A sentence ends at . ; ! ? | at a spaced slash or dash, and at a time of day (an update).
# Letters with dots between them are one word: "N.C.I.C." is NCIC, not four letters.
_DOTTED = re.compile(r"\b(?:[^\W\d_]\.){2,}")
_SENTENCE = re.compile(r"[.;!?|]+|\s[/-]\s|\[?\b\d{1,2}:\d{2}(?::\d{2})?\b\]?")
# A clause ends at a comma, parenthesis or colon, or before a word that joins clauses.
_CLAUSE = re.compile(r"[,():]+|\s(?=(?:AND|BUT|SO|BECAUSE|WHO|WHICH|WHILE|SINCE)\b)")
_JOINERS = frozenset({"AND", "BUT", "SO", "BECAUSE", "WHO", "WHICH", "WHILE", "SINCE"})
# Radio codes ("10-15": a prisoner in custody) say what the words around them do not.
_TEN_CODE = re.compile(r"\b10\s*[-/ ]\s*\d{1,3}\b")
# What may stand between the words of a shown sentence.
_SHOWN_PUNCTUATION = re.compile(r"[^A-Z0-9 ,:()'/+-]")
# After one of these on a line, the rest of the line is for law enforcement only.
_INTERNAL = re.compile(
    r"\bINTERNAL\b|\bLE\W*ONLY\b|\bLEO\W*ONLY\b|\bCONFIDENTIAL\b|\bOFF?C?R?\W*NOTES?\b"
    r"|\bOFFICER\W*NOTES?\b|\bFOR\s+LE\b|\bLAW\s+ENFORCEMENT\b|\bDO\s+NOT\s+(?:RELEASE|SHARE)\b",
)
_MAX_DIGITS = 3
# The person's state a peer needs to know on the way, as facts of their own beside triage's.
STATE_WORDS = frozenset(
    """AWAKE ALERT BREATHING BREATHS CONSCIOUS RESPONSIVE UNRESPONSIVE VOMITING SEIZURE
    SEIZURES SHAKING SWEATING PALE BLUE CPR PULSE WALKING TALKING SLEEPING ASLEEP DROWSY
    CONFUSED PARANOID CALM AGITATED CRYING HALLUCINATING PREGNANT""".split()
)
# Counts, doses and ages: "NARCAN X2", "4MG", "2X", "34YOM".
_MEASURE = re.compile(
    r"^(?:X\d{1,2}|\d{1,3}(?:X|MG|MCG|ML|MIN|MINS|HR|HRS|YO|YOA|YOM|YOF|YR|YRS))$"
)


@functools.cache
def peer_words() -> frozenset[str]:
    text = resources.files("corespond.confidentiality").joinpath("peer_words.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def folded(text: str) -> str:
    """Upper case, Unicode folded (full-width letters, ligatures, accents), zero-width and
    control characters dropped, line breaks as spaces."""
    return fold_unicode(text).upper().replace("\u2019", "'")


def words_of(text: str) -> list[str]:
    """The words of folded text, an apostrophe inside a word dropped ("OD'D" -> "ODD")."""
    return _TOKEN.findall(_APOSTROPHE.sub("", text))


def readable(words: Iterable[str], vocabulary: frozenset[str] | None = None) -> bool:
    """Whether every word is one a peer may read (a short number is)."""
    vocabulary = vocabulary if vocabulary is not None else peer_words()
    listed = list(words)
    return bool(listed) and all(
        word in vocabulary
        or (word.isascii() and word.isdigit() and len(word) <= _MAX_DIGITS)
        or bool(_MEASURE.match(word))
        for word in listed
    )


@dataclass(frozen=True)
class Fact:
    kind: str
    label: str


@dataclass(frozen=True)
class PeerCall:
    """A call as a peer sees it."""

    facts: tuple[Fact, ...]
    hazards: tuple[str, ...]
    hazards_withheld: int
    narrative_excerpt: tuple[str, ...]
    narrative_withheld: int
    note: str | None


def compose(
    *,
    narrative: str | None,
    hazards: Sequence[str],
    reasons: Sequence[dict[str, Any]],
    note: str | None,
) -> PeerCall:
    """The peer's view from the call's narrative, hazard flags, triage reasons (as stored:
    ``rule``, ``kind``, ``label``, ``detail``) and the dispatcher's note."""
    facts = _facts(reasons)
    shown_hazards = [h for h in (_shown(folded(h)) for h in hazards) if h is not None]
    excerpt, withheld = excerpt_of(narrative, _fact_words(reasons))
    return PeerCall(
        facts=facts,
        hazards=tuple(shown_hazards),
        hazards_withheld=len(hazards) - len(shown_hazards),
        narrative_excerpt=excerpt,
        narrative_withheld=withheld,
        note=clean_note(note),
    )


def excerpt_of(
    narrative: str | None, fact_words: Sequence[tuple[str, ...]]
) -> tuple[tuple[str, ...], int]:
    """The narrative's parts that pass the allow-test, and how many parts did not.

    A part is a clause: a sentence is cut at commas, parentheses, colons and the words that
    join clauses (AND, BUT, SO, BECAUSE, WHO …), and only the clauses that state a fact are
    shown, each in peer words only; neighbouring shown clauses of one sentence are joined.
    What a caller or officer adds about the person in a clause of its own ("…, HE IS A
    FRIEND OF OURS") is never carried along by the fact beside it.
    """
    if not narrative:
        return (), 0
    # A line break is not the end of a sentence: CAD wraps lines anywhere, and a sentence cut
    # in two must not show its first half (folding turns line breaks into spaces). A time of
    # day ("10:04", "[10:04:31]") starts an appended update, so it does end one.
    text = _DOTTED.sub(lambda m: m.group().replace(".", "") + " ", folded(narrative))
    marker = _INTERNAL.search(text)
    shown: list[str] = []
    withheld = 0
    for sentence in _SENTENCE.split(text[: marker.start()] if marker else text):
        run: list[str] = []
        for clause in [*_CLAUSE.split(sentence), ""]:  # "" ends the last run
            words = words_of(clause)
            kept = None
            # A clause joined on ("… AND CANT BE AROUND DRUGS") goes on with the one before
            # it: shown only if that one was.
            goes_on = bool(words) and words[0] in _JOINERS
            if (
                words
                and (run or not goes_on)
                and not _TEN_CODE.search(clause)
                and _states_fact(words, fact_words)
            ):
                kept = _shown(clause)
            if kept is not None:
                run.append(kept)
                continue
            withheld += 1 if words else 0
            if run and (joined := _joined(run)) not in shown:
                shown.append(joined)
            run = []
    if marker:  # everything after an internal-note marker is law-enforcement only
        withheld += max(1, len([s for s in _SENTENCE.split(text[marker.start() :]) if s]))
    return tuple(shown), withheld


def _joined(clauses: list[str]) -> str:
    """Neighbouring clauses as one: after a comma, or a space before a joining word."""
    text = clauses[0]
    for clause in clauses[1:]:
        text += (" " if clause.split(" ", 1)[0] in _JOINERS else ", ") + clause
    return text


def clean_note(note: str | None) -> str | None:
    """A dispatcher's note as stored and shown: folded, one line of spaces, bounded."""
    if note is None:
        return None
    text = " ".join(fold_unicode(note).split())[:NOTE_LIMIT]
    return text or None


def shown_to_peer(text: str | None) -> str | None:
    """A short CAD field (call type, its description) if written in peer words only."""
    return _shown(folded(text)) if text else None


_LOCATION_CUT = re.compile(r"\s[-/|]\s|[,;(\[{*]|\s{2,}")
_LOCATION_CHARS = re.compile(r"^[A-Z0-9 .,'#&-]+$")


def shown_location(text: str | None, limit: int) -> str | None:
    """An address or city as a peer may see it: only what comes before a comma or a
    comment (a spaced dash or slash, ``;``, a bracket, a run of spaces), in plain letters,
    digits and address punctuation, with no radio code or internal-note marker, at most
    ``limit`` characters; else nothing (the map link and dispatch have the rest)."""
    if not text:
        return None
    head = _LOCATION_CUT.split(folded(text), maxsplit=1)[0].strip(" ,.-")
    if (
        not head
        or len(head) > limit
        or not _LOCATION_CHARS.match(head)
        or _TEN_CODE.search(head)
        or _INTERNAL.search(head)
    ):
        return None
    return head


def _shown(text: str) -> str | None:
    """``text`` as shown to a peer, or None if any word in it is not a peer word."""
    if not readable(words_of(text)):
        return None
    return " ".join(_SHOWN_PUNCTUATION.sub(" ", text).split()).strip(" ,:-/") or None


def _facts(reasons: Sequence[dict[str, Any]]) -> tuple[Fact, ...]:
    seen: dict[tuple[str, str], Fact] = {}
    for reason in reasons:
        kind, label = reason.get("kind"), reason.get("label")
        if kind in FACT_KINDS and isinstance(label, str):
            seen.setdefault((kind, label), Fact(kind, label))
    return tuple(seen.values())


def _fact_words(reasons: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The words that raised each substance or risk reason ("NARCAN in narrative")."""
    found = []
    for reason in reasons:
        if reason.get("kind") not in FACT_KINDS:
            continue
        detail = str(reason.get("detail") or "")
        said = detail.rsplit(" in ", 1)[0] if " in " in detail else detail
        words = tuple(words_of(folded(said)))
        if words:
            found.append(words)
    return found


def _states_fact(words: Sequence[str], fact_words: Sequence[tuple[str, ...]]) -> bool:
    """Whether the clause holds the words of a triage fact, in order and together, or says
    how the person is (``STATE_WORDS``)."""
    if STATE_WORDS.intersection(words):
        return True
    for phrase in fact_words:
        size = len(phrase)
        if any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1)):
            return True
    return False
