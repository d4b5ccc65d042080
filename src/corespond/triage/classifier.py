"""The triage decision: a pure function of a call's text and a rule set.

Policy (PRODUCT.md, "Eligibility policy"), in the order it is applied:

1. any danger signal (weapon, violence, robbery, sales, impaired driving …) -> ``ineligible``;
   a danger signal always beats a substance signal;
2. no substance signal at all -> ``ineligible``;
3. a substance signal with an open risk (threat, suicidal, juvenile, unresponsive, hazard
   flag) -> ``review``;
4. otherwise -> ``eligible``.

Signals come from call-type code mappings and from words and phrases in the call type, its
description, the narrative and the hazard flags, with negation ("NO WEAPONS SEEN") honoured
only within its clause. Every decision lists the rules that fired and the text that made
them fire, so a dispatcher can read why in one line and an auditor can replay it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from corespond.triage.ruleset import PREFIX_KEY, Phrase, Rule, RuleSet, code_key
from corespond.triage.text import Field, Token, normalise, tokenise

Decision = Literal["eligible", "review", "ineligible"]
ReasonKind = Literal["danger", "risk", "substance", "negated", "resolved", "policy"]

_LEADING_CODE = re.compile(r"^[^A-Z0-9]*([A-Z0-9]+)")
_KIND_ORDER = {"danger": 0, "risk": 1, "substance": 2, "negated": 3, "resolved": 4, "policy": 5}


@dataclass(frozen=True)
class TriageInput:
    """What triage reads of a call; nothing else can influence the decision."""

    source: str | None = None
    agency: str | None = None
    call_type: str | None = None
    call_type_description: str | None = None
    narrative: str | None = None
    hazards: tuple[str, ...] = ()

    def digest(self) -> str:
        """SHA-256 of the inputs, so a stored decision can be replayed and compared."""
        canonical = json.dumps(
            [
                self.source,
                self.agency,
                self.call_type,
                self.call_type_description,
                self.narrative,
                list(self.hazards),
            ],
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Reason:
    """Why: the rule, what kind of signal it is, and the text that raised it."""

    rule: str
    kind: ReasonKind
    label: str
    detail: str


@dataclass(frozen=True)
class TriageDecision:
    decision: Decision
    reasons: tuple[Reason, ...]
    summary: str
    rules_version: str
    inputs_sha256: str

    @property
    def danger(self) -> bool:
        return any(r.kind == "danger" for r in self.reasons)


@dataclass(frozen=True)
class _Hit:
    rule: Rule
    field: str
    text: str
    position: tuple[int, int]  # (field order, token index); codes come first
    negated: bool


FIELD_ORDER = ("call_type", "description", "narrative", "hazards")


def classify(call: TriageInput, rules: RuleSet) -> TriageDecision:
    """Decide ``eligible``, ``review`` or ``ineligible`` for ``call`` under ``rules``."""
    fields = [
        tokenise("call_type", call.call_type or "", rules.abbreviations),
        tokenise("description", call.call_type_description or "", rules.abbreviations),
        tokenise("narrative", call.narrative or "", rules.abbreviations),
        tokenise("hazards", " ; ".join(call.hazards), rules.abbreviations),
    ]
    hits = _code_hits(call, rules)
    for order, field in enumerate(fields):
        hits.extend(_phrase_hits(field, order, rules))
        hits.extend(_age_hits(field, order, rules))
    hits.extend(_hazard_hits(call.hazards, rules))
    hits, resolved = _apply_resolutions(hits, fields, rules)
    return _decide(call, rules, hits, resolved)


def _code_hits(call: TriageInput, rules: RuleSet) -> list[_Hit]:
    """Signals of the call-type code: the most specific map decides, except that a danger
    signal from any level is always kept (an override may add danger, never remove it)."""
    if not call.call_type:
        return []
    code = code_key(call.call_type)
    leading = _LEADING_CODE.match(code)
    candidates = [code] + ([leading.group(1)] if leading else [])
    hits: list[_Hit] = []
    decided = False
    for codes in rules.codes_for(call.source, call.agency):
        key = next((c for c in candidates if c in codes), None)
        if key is None:
            prefixes = [k for k in codes if k.endswith("*") and code.startswith(k[:-1].rstrip())]
            key = max(prefixes, key=len, default=None)
        if key is None:
            continue
        for rule_id in codes[key]:
            rule = rules.rules[rule_id]
            if not decided or rule.kind == "danger":
                hits.append(_Hit(rule, "call_type", f"code {key}", (-1, -1), negated=False))
        decided = True
    return hits


def _phrase_hits(field: Field, order: int, rules: RuleSet) -> list[_Hit]:
    words = [t.text for t in field.tokens]
    hits: list[_Hit] = []
    for index, word in enumerate(words):
        candidates = list(rules.index.get(word, ()))
        for key in {word[:n] for n in range(1, PREFIX_KEY + 1)}:
            candidates.extend(
                (r, p)
                for prefix, r, p in rules.prefix_index.get(key, ())
                if word.startswith(prefix)
            )
        for rule, phrase in candidates:
            if field.name not in rule.fields or not phrase.matches_at(words, index):
                continue
            last = index + len(phrase.words) - 1
            unless = (*rule.unless_by_word.get(word, ()), *rule.unless_always)
            if unless and _inside_any(unless, words, index, last):
                continue
            negated = rule.negatable and _negated(field, index, last, rules)
            raised = rule
            if rule.becomes and _preceded_by(rule, field, index):
                raised = rules.rules[rule.becomes]
            hits.append(_Hit(raised, field.name, field.span(index, last), (order, index), negated))
    return _carry_negation_along_lists(hits, field, rules)


def _carry_negation_along_lists(hits: list[_Hit], field: Field, rules: RuleSet) -> list[_Hit]:
    """ "NO DRUGS OR ETOH": an item joined by OR / NOR (AND, for non-danger items) to a
    negated item in the same clause is negated too."""
    words = [t.text for t in field.tokens]
    ordered = sorted(hits, key=lambda h: h.position)
    out: list[_Hit] = []
    negated_until: int | None = None  # token index where the last negated item ended
    for hit in ordered:
        start = hit.position[1]
        joiners = rules.danger_lists if hit.rule.kind == "danger" else rules.lists
        if (
            not hit.negated
            and hit.rule.negatable
            and negated_until is not None
            and field.tokens[start].clause == field.tokens[negated_until].clause
            and start > negated_until
        ):
            between = words[negated_until + 1 : start]
            if any(w in joiners for w in between) and all(
                w in joiners or w in rules.negation_free for w in between
            ):
                hit = _Hit(hit.rule, hit.field, hit.text, hit.position, negated=True)
        if hit.negated:
            negated_until = start + len(hit.text.split()) - 1
        out.append(hit)
    return out


def _inside_any(phrases: Sequence[Phrase], words: Sequence[str], first: int, last: int) -> bool:
    """Whether words[first..last] lies within a match of one of ``phrases``."""
    for phrase in phrases:
        length = len(phrase.words)
        for start in range(max(0, last - length + 1), first + 1):
            if phrase.matches_at(words, start):
                return True
    return False


def _preceded_by(rule: Rule, field: Field, first: int) -> bool:
    """Whether a cue phrase ends right before ``first``, or before a run of bridge words
    ("GOING TO COME OVER AND BEAT HIM"); any other word in between breaks it."""
    tokens = field.tokens
    words = [t.text for t in tokens]
    clause = tokens[first].clause
    end = first
    while True:
        for cue in rule.hypothetical:
            start = end - len(cue.words)
            if start >= 0 and tokens[start].clause == clause and cue.matches_at(words, start):
                return True
        if end == 0 or words[end - 1] not in rule.hypothetical_bridge:
            return False
        if tokens[end - 1].clause != clause:
            return False
        end -= 1


def _negated(field: Field, first: int, last: int, rules: RuleSet) -> bool:
    """Whether the match at tokens ``first..last`` is clearly negated.

    Only filler words may stand between a cue and what it negates ("NO SIGNS OF ANY DRUG
    USE"): any other word ends the reach, because a negation read too widely hides danger
    ("INTOX MALE NO ID SHOTS FIRED").
    """
    tokens = field.tokens
    clause = tokens[first].clause
    fillers = 0
    k = first - 1
    while k >= 0 and tokens[k].clause == clause and fillers <= rules.negation_window:
        text = tokens[k].text
        if text in rules.negate_before:
            return True
        if text not in rules.negation_free:
            break
        fillers += 1
        k -= 1
    if _negated_after(tokens, last, clause, rules):
        return True
    return _answered_no(tokens, first, last, rules)


def _negated_after(tokens: Sequence[Token], last: int, clause: int, rules: RuleSet) -> bool:
    """ "WEAPONS NEGATIVE", "WPNS NONE SEEN"; not "SHOTS FIRED NONE INJURED"."""
    k = last + 1
    if k < len(tokens) and tokens[k].clause == clause and tokens[k].text in rules.negate_after:
        following = k + 1
        return (
            following >= len(tokens)
            or tokens[following].clause != clause
            or tokens[following].text in rules.after_ok
        )
    return False


def _answered_no(tokens: Sequence[Token], first: int, last: int, rules: RuleSet) -> bool:
    """A question ("ANY WEAPONS") whose answer, opening the next clause, is negative."""
    clause = tokens[first].clause
    asked = any(
        tokens[k].text in rules.question and tokens[k].clause == clause
        for k in range(max(0, first - 2), first)
    )
    if not asked:
        return False
    start = last + 1
    while start < len(tokens) and tokens[start].clause == clause:
        start += 1
    for k in range(start, min(len(tokens), start + 4)):
        if tokens[k].clause != clause + 1:
            return False
        text = tokens[k].text
        if text in rules.answer_skip:
            continue
        if text in rules.negate_before or text in rules.negate_after:
            following = tokens[k + 1].text if k + 1 < len(tokens) else ""
            return following not in rules.not_after_cue
        return False
    return False


def _age_hits(field: Field, order: int, rules: RuleSet) -> list[_Hit]:
    hits = []
    for rule in rules.rules.values():
        if rule.age_below is None or field.name not in rule.fields:
            continue
        for age, start, end in field.ages:
            if age < rule.age_below and not _bystanders(rule, field, start):
                hits.append(_Hit(rule, field.name, field.raw[start:end], (order, 0), False))
    return hits


def _bystanders(rule: Rule, field: Field, start: int) -> bool:
    """Ages of children listed as others present ("GRANDKIDS 4 AND 7 YOA ARE NEXT DOOR")."""
    before = field.raw[max(0, start - 30) : start].split()
    return any(word in rule.age_bystanders for word in before[-4:])


def _hazard_hits(hazards: Sequence[str], rules: RuleSet) -> list[_Hit]:
    return [
        _Hit(rule, "hazards", flag, (3, 0), negated=False)
        for rule in rules.rules.values()
        if rule.any_hazard
        for flag in hazards
        if " ".join(normalise(flag).split()) not in rule.not_hazards
    ]


def _apply_resolutions(
    hits: list[_Hit], fields: Sequence[Field], rules: RuleSet
) -> tuple[list[_Hit], list[_Hit]]:
    """Drop a rule's hits when a resolving phrase is said after the last of them."""
    resolved: list[_Hit] = []
    for rule in rules.rules.values():
        if not rule.resolved_by:
            continue
        own = [h for h in hits if h.rule is rule and not h.negated]
        if not own:
            continue
        latest = max(h.position for h in own)
        resolver = _first_resolver_after(rule, fields, latest, rules)
        if resolver is not None:
            resolved.append(resolver)
            hits = [h for h in hits if h.rule is not rule]
    return hits, resolved


def _first_resolver_after(
    rule: Rule, fields: Sequence[Field], after: tuple[int, int], rules: RuleSet
) -> _Hit | None:
    for order, field in enumerate(fields):
        if field.name == "hazards":
            continue
        words = [t.text for t in field.tokens]
        for index in range(len(words)):
            if (order, index) <= after:
                continue
            for phrase in rule.resolved_by:
                if phrase.matches_at(words, index):
                    last = index + len(phrase.words) - 1
                    if not _resolver_negated(rule, field, index):
                        return _Hit(
                            rule, field.name, field.span(index, last), (order, index), False
                        )
    return None


def _resolver_negated(rule: Rule, field: Field, first: int) -> bool:
    """ "SEMI CONSCIOUS", "NO LONGER CONSCIOUS", "NOT ALERT": no recovery."""
    clause = field.tokens[first].clause
    return any(
        field.tokens[k].text in rule.resolver_negators and field.tokens[k].clause == clause
        for k in range(max(0, first - 2), first)
    )


def _decide(
    call: TriageInput, rules: RuleSet, hits: list[_Hit], resolved: list[_Hit]
) -> TriageDecision:
    live = [h for h in hits if not h.negated]
    kinds = {h.rule.kind for h in live}
    reasons = _reasons(live, hits, resolved)
    if "danger" in kinds:
        decision: Decision = "ineligible"
        deciding = [r for r in reasons if r.kind == "danger"]
    elif "substance" not in kinds:
        decision = "ineligible"
        policy = Reason(
            "policy.no_substance", "policy", "no substance involvement", "none stated or implied"
        )
        reasons = [*reasons, policy]
        deciding = [policy]
    elif "risk" in kinds:
        decision = "review"
        deciding = [r for r in reasons if r.kind == "risk"]
    else:
        decision = "eligible"
        deciding = [r for r in reasons if r.kind == "substance"]
    summary = f"{decision}: " + _summarise(deciding)
    if decision == "eligible":
        summary += "; no danger signals"
    return TriageDecision(decision, tuple(reasons), summary, rules.version, call.digest())


def _summarise(reasons: Sequence[Reason], rules: int = 3, details: int = 2) -> str:
    """'weapon (KNIFE in narrative); threats (code THREATS, THREATENING in narrative)'."""
    grouped: dict[str, list[str]] = {}
    for reason in reasons:
        grouped.setdefault(reason.label, []).append(reason.detail)
    parts = [
        f"{label} ({', '.join(found[:details])}{', ...' if len(found) > details else ''})"
        for label, found in list(grouped.items())[:rules]
    ]
    return "; ".join(parts)


def _reasons(live: list[_Hit], hits: list[_Hit], resolved: list[_Hit]) -> list[Reason]:
    reasons: dict[tuple[str, str], Reason] = {}
    for hit in live:
        detail = f"{hit.text} in {hit.field}" if not hit.text.startswith("code ") else hit.text
        reasons.setdefault(
            (hit.rule.id, detail), Reason(hit.rule.id, hit.rule.kind, hit.rule.label, detail)
        )
    for hit in hits:
        if hit.negated:
            detail = f"{hit.text} in {hit.field}, negated"
            reasons.setdefault(
                (hit.rule.id, detail), Reason(hit.rule.id, "negated", hit.rule.label, detail)
            )
    for hit in resolved:
        detail = f"resolved by {hit.text} in {hit.field}"
        reasons.setdefault(
            (hit.rule.id, detail), Reason(hit.rule.id, "resolved", hit.rule.label, detail)
        )
    return sorted(reasons.values(), key=lambda r: _KIND_ORDER[r.kind])
