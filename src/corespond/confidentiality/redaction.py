"""Redacting a call's narrative for peers, by the declared rules in ``redaction.yaml``.

A peer (a civilian) sees location, call type, hazards and the narrative without
law-enforcement-only content: criminal history, warrants, NCIC/VCIN and similar returns,
probation or parole status, and anything after a marker of an internal officer note. A
segment (sentence, line, ';' or ' / ' separated note) that matches a rule is replaced whole,
so no half-sentence of it survives; the reply says which rules removed what.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

SEGMENT_SPLIT = re.compile(r"(\n|;|,|\s/\s|(?<=[.!?])\s+)")
_DOTTED = re.compile(r"\b(?:[A-Z]\.){2,}", re.IGNORECASE)


def normalised(text: str) -> str:
    """What rules are matched against: upper case, ``N.C.I.C.`` as ``NCIC``, hyphens and
    slashes between words as spaces."""
    text = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), text.upper())
    return re.sub(r"(?<=\w)[-/](?=\w)", " ", text)


@dataclass(frozen=True)
class Redaction:
    text: str | None
    removed: tuple[str, ...]  # ids of the rules that removed something


@dataclass(frozen=True)
class RedactionRules:
    version: str
    replacement: str
    segment_rules: tuple[tuple[str, re.Pattern[str]], ...]
    internal: re.Pattern[str]


@functools.cache
def rules() -> RedactionRules:
    data: dict[str, Any] = yaml.safe_load(
        resources.files("corespond.confidentiality").joinpath("redaction.yaml").read_text()
    )
    segment_rules = tuple(
        (rule["id"], re.compile("|".join(f"(?:{p})" for p in rule["patterns"]), re.IGNORECASE))
        for rule in data["segment_rules"]
    )
    internal = re.compile("|".join(f"(?:{p})" for p in data["internal_markers"]), re.IGNORECASE)
    return RedactionRules(data["version"], data["replacement"], segment_rules, internal)


def redact(narrative: str | None, ruleset: RedactionRules | None = None) -> Redaction:
    """The narrative as a peer may see it."""
    if not narrative:
        return Redaction(narrative, ())
    ruleset = ruleset or rules()
    removed: list[str] = []
    lines = []
    for line in narrative.splitlines() or [narrative]:
        marker = ruleset.internal.search(normalised(line)) if _same_length(line) else None
        if marker is None:
            marker = ruleset.internal.search(line)
        if marker:
            removed.append("internal_note")
            line = line[: marker.start()].rstrip() + (" " if marker.start() else "")
            line += ruleset.replacement
        lines.append(_redact_segments(line, ruleset, removed))
    text = "\n".join(lines)
    return Redaction(text, tuple(dict.fromkeys(removed)))


def _same_length(line: str) -> bool:
    """Whether normalising keeps positions (no dotted abbreviation shortened), so a marker
    found in the normalised line cuts the original at the same place."""
    return len(normalised(line)) == len(line)


def _redact_segments(line: str, ruleset: RedactionRules, removed: list[str]) -> str:
    parts = SEGMENT_SPLIT.split(line)
    out = []
    for part in parts:
        if SEGMENT_SPLIT.fullmatch(part) or part == ruleset.replacement:
            out.append(part)
            continue
        text = normalised(part)
        hit = next(
            (rule_id for rule_id, pattern in ruleset.segment_rules if pattern.search(text)), None
        )
        if hit is None:
            out.append(part)
            continue
        removed.append(hit)
        leading = part[: len(part) - len(part.lstrip())]
        out.append(leading + ruleset.replacement + ("." if part.rstrip().endswith(".") else ""))
    return "".join(out)
