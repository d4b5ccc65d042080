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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from corespond.triage.ruleset import (
    PREFIX_KEY,
    SAFE,
    UNKNOWN,
    CallKind,
    Phrase,
    Rule,
    RuleSet,
    code_key,
)
from corespond.triage.text import STATE_WORDS, Field, Token, normalise, takes_back, tokenise

Decision = Literal["eligible", "review", "ineligible"]
ReasonKind = Literal[
    "danger", "risk", "exclusion", "substance", "kind", "negated", "resolved", "policy", "model"
]

_LEADING_CODE = re.compile(r"^[^A-Z0-9]*([A-Z0-9]+)")
# Medical-priority determinants carry a suffix for what the call-taker learned: V violent,
# W weapons ("23C05W"). Either is danger, whatever the protocol.
_MPDS_SUFFIX = re.compile(r"^\d{1,2}[ABCDEO]\d{1,2}[\s/-]*([VW])$")
_KIND_ORDER = {
    "danger": 0,
    "policy": 1,
    "risk": 2,
    "exclusion": 3,
    "substance": 4,
    "kind": 5,
    "negated": 6,
    "resolved": 7,
    "model": 8,
}
_REASON_KIND = {"exclude": "exclusion"}
# Tokens with digits that are not words: unit numbers (2B12), times (0214, 0214HRS),
# ordinals (3RD), routes (I64, US35, WV2), apartment and lot numbers (12B).
_NON_WORD = re.compile(
    r"^(\d{1,2}[A-Z]\d{1,3}|\d{3,4}(HRS|HR|H)?|\d+(ST|ND|RD|TH)|(I|US|WV|SR|CR|RT|RTE)\d{1,3}"
    r"|\d{1,5}[A-Z]|[A-Z]\d{1,3}|\d{1,2}(AM|PM)|\d{1,3}(HR|HRS|MIN|MINS|MG|DEG))$"
)


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
    position: tuple[int, int]  # (field order, first token index); codes come first
    negated: bool
    last: int = -1  # last token index; -1 for codes and hazard flags


@dataclass(frozen=True)
class _KindHit:
    kind: CallKind
    text: str


@dataclass
class _Reading:
    """What the classifier understood of each field: token indexes that a rule, a sense,
    a harmless context or a kind accounted for."""

    explained: dict[str, set[int]]

    def add(self, field: str, first: int, last: int) -> None:
        self.explained.setdefault(field, set()).update(range(first, last + 1))


FIELD_ORDER = ("call_type", "description", "narrative", "hazards")
# Between two items of one negated list ("NO DRUGS OR ANY ALCOHOL") only these may stand.
LIST_FILLERS = frozenset({"A", "AN", "THE", "ANY", "OTHER"})
# A negation is undone by an exception later in its clause ("NO ONE IS ARMED EXCEPT HIM",
# "... BUT HIM", "... OTHER THAN HER HUSB") or opening the next one.
EXCEPTIONS = frozenset({"EXCEPT", "BESIDES", "EXCEPTING"})
EXCEPT_AFTER_BUT = frozenset({"HIM", "HER", "ME", "THEM", "HIS", "THE", "ONE"})
# Words before a negation that make it a plea or an order, not a denial.
PLEAS = frozenset(
    {"TOLD", "TELLING", "SCREAMING", "SCREAMED", "YELLING", "YELLED", "HOLLERING", "BEGGING",
     "BEGGED", "SHOUTING", "PLEADING", "CRYING", "PLEASE", "PLZ", "PLS", "STOP", "SAYING",
     "SAID", "SAYS", "KEPT", "KEEPS"}
)  # fmt: skip
# "NEVER HIT HER BEFORE TONIGHT": denied of the past, said of now.
UNTIL_NOW = (("LIKE", "THIS"), ("BEFORE", "TONIGHT"), ("BEFORE", "TODAY"), ("BEFORE", "NOW"),
             ("UNTIL", "TONIGHT"), ("UNTIL", "TODAY"), ("UNTIL", "NOW"), ("TILL", "TONIGHT"),
             ("TIL", "TONIGHT"), ("UNTIL", "THIS"))  # fmt: skip


def classify(call: TriageInput, rules: RuleSet) -> TriageDecision:
    """Decide ``eligible``, ``review`` or ``ineligible`` for ``call`` under ``rules``.

    Danger found -> ``ineligible``; no substance -> ``ineligible``; ``eligible`` only with
    positive evidence on every axis (substance stated in the narrative, a kind of call a
    peer may go to, a conflict said to be verbal, no risk, and every word understood);
    anything short of that -> ``review``, naming what was missing.
    """
    fields = [
        tokenise("call_type", call.call_type or "", rules.abbreviations, rules.known_words),
        tokenise(
            "description", call.call_type_description or "", rules.abbreviations, rules.known_words
        ),
        tokenise("narrative", call.narrative or "", rules.abbreviations, rules.known_words),
        tokenise("hazards", " ; ".join(call.hazards), rules.abbreviations),
    ]
    reading = _Reading({})
    code_hits, kinds, code_key_found = _code_hits(call, rules)
    hits = list(code_hits)
    for order, field in enumerate(fields):
        hits.extend(_phrase_hits(field, order, rules, reading))
        hits.extend(_age_hits(field, order, rules))
    hits.extend(_hazard_hits(call.hazards, rules))
    hits = _apply_senses(fields, hits, rules, reading)
    for hit in hits:
        if hit.position[1] >= 0:
            reading.add(hit.field, hit.position[1], hit.last)
    hits, resolved = _apply_resolutions(hits, fields, rules)
    for hit in resolved:
        reading.add(hit.field, hit.position[1], hit.last)
    kinds.extend(_kind_hits(fields, rules, reading))
    verbal = _verbal_evidence(fields, hits, kinds, rules, reading)
    unexplained = _unexplained(fields, rules, reading, code_key_found)
    decision = _decide(call, rules, fields, hits, resolved, kinds, verbal, unexplained)
    return _second_opinion(call, rules, decision)


def _second_opinion(call: TriageInput, rules: RuleSet, decision: TriageDecision) -> TriageDecision:
    """An ``eligible`` decision of the rules goes to the learned model too: unless the model
    also reads the call as eligible, it is lowered to ``review``. The model never raises a
    decision, so it is not consulted on the others (its version is in ``rules_version``)."""
    model = rules.second_opinion
    if model is None or decision.decision != "eligible":
        return decision
    probability = model.probability(call)
    reading = Reason(
        "model.second_opinion",
        "model",
        "learned second opinion",
        f"reads eligible {probability:.2f}, needs {model.threshold:.2f} (model {model.version})",
    )
    reasons = (*decision.reasons, reading)
    if probability >= model.threshold:
        return TriageDecision(
            "eligible", reasons, decision.summary, decision.rules_version, decision.inputs_sha256
        )
    rules_said = decision.summary.removeprefix("eligible: ").split("; every word")[0]
    summary = (
        f"review: the learned second opinion does not read it as eligible "
        f"({probability:.2f} < {model.threshold:.2f}); the rules found {rules_said}"
    )
    return TriageDecision(
        "review", reasons, summary, decision.rules_version, decision.inputs_sha256
    )


def _code_hits(call: TriageInput, rules: RuleSet) -> tuple[list[_Hit], list[_KindHit], bool]:
    """Signals and kinds of the call-type code: the most specific map decides, except that
    a danger signal from any level is always kept (an override may add danger, never
    remove it). The third value says whether the whole call type is a known code."""
    if not call.call_type:
        return [], [], False
    code = code_key(call.call_type)
    leading = _LEADING_CODE.match(code)
    candidates = [code] + ([leading.group(1)] if leading else [])
    hits: list[_Hit] = []
    kinds: list[_KindHit] = []
    decided = False
    whole = False
    suffix = _MPDS_SUFFIX.match(code)
    if suffix is not None:
        rule_id = "danger.violence" if suffix.group(1) == "V" else "danger.weapon"
        hits.append(
            _Hit(
                rules.rules[rule_id], "call_type", f"code suffix {suffix.group(1)}", (-1, -1), False
            )
        )
    for codes in rules.codes_for(call.source, call.agency):
        key = next((c for c in candidates if c in codes), None)
        if key is None:
            prefixes = [k for k in codes if k.endswith("*") and code.startswith(k[:-1].rstrip())]
            key = max(prefixes, key=len, default=None)
        if key is None:
            continue
        whole = whole or key == code
        for rule_id in codes[key]:
            if rule_id in rules.kinds:
                if not decided:
                    kinds.append(_KindHit(rules.kinds[rule_id], f"code {key}"))
                continue
            rule = rules.rules[rule_id]
            if not decided or rule.kind == "danger":
                hits.append(_Hit(rule, "call_type", f"code {key}", (-1, -1), negated=False))
        decided = True
    return hits, kinds, whole


def _phrase_hits(field: Field, order: int, rules: RuleSet, reading: _Reading) -> list[_Hit]:
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
            harmless = _inside_any(unless, words, index, last) if unless else None
            if harmless is not None:
                # A harmless context ("HEART ATTACK") is understood as a whole, but for its
                # "_" slots, whose words are read on their own ("HIT _ WITH NARCAN").
                (start, end), slots = harmless
                for k in range(start, end + 1):
                    if k not in slots:
                        reading.add(field.name, k, k)
                continue
            negated = rule.negatable and _negated(
                field, index, last, rules, danger=rule.kind in ("danger", "risk")
            )
            raised = rule
            if rule.becomes and _preceded_by(rule, field, index):
                raised = rules.rules[rule.becomes]
            hits.append(
                _Hit(raised, field.name, field.span(index, last), (order, index), negated, last)
            )
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
        joiners = rules.danger_lists if hit.rule.kind in ("danger", "risk") else rules.lists
        if (
            not hit.negated
            and hit.rule.negatable
            and negated_until is not None
            and field.tokens[start].clause == field.tokens[negated_until].clause
            and start > negated_until
        ):
            between = words[negated_until + 1 : start]
            if any(w in joiners for w in between) and all(
                w in joiners or w in LIST_FILLERS for w in between
            ):
                hit = _Hit(hit.rule, hit.field, hit.text, hit.position, True, hit.last)
        if hit.negated:
            negated_until = hit.last
        out.append(hit)
    return out


def _inside_any(
    phrases: Sequence[Phrase], words: Sequence[str], first: int, last: int
) -> tuple[tuple[int, int], frozenset[int]] | None:
    """The span of a match of one of ``phrases`` that holds words[first..last], if any, and
    the positions of its "_" slots."""
    for phrase in phrases:
        length = len(phrase.words)
        for start in range(max(0, last - length + 1), first + 1):
            if phrase.matches_at(words, start):
                slots = frozenset(start + k for k, w in enumerate(phrase.words) if not w)
                return (start, start + length - 1), slots
    return None


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


def _negated(field: Field, first: int, last: int, rules: RuleSet, *, danger: bool = True) -> bool:
    """Whether the match at tokens ``first..last`` is clearly negated.

    Only filler words may stand between a cue and what it negates ("NO SIGNS OF ANY DRUG
    USE"): any other word ends the reach, because a negation read too widely hides danger
    ("INTOX MALE NO ID SHOTS FIRED").
    """
    tokens = field.tokens
    clause = tokens[first].clause
    # Exceptions, pleas and "not to" undo a denial of danger only: for a substance word they
    # would turn a denied use into evidence ("RP SAID NO ALCOHOL").
    if danger and (
        _excepted(tokens, last, clause)
        or _like_this(tokens, last, clause)
        or _doubted(tokens, last, clause)
    ):
        return False
    fillers = 0
    k = first - 1
    while k >= 0 and tokens[k].clause == clause and fillers <= rules.negation_window:
        text = tokens[k].text
        if text in rules.negate_before:
            # "NOT TO SHOOT", "TOLD HIM NOT TO DRIVE", "SCREAMING DONT SHOOT": an
            # instruction or a plea, not a fact denied.
            if k + 1 < len(tokens) and tokens[k + 1].text == "TO":
                return not danger
            before = {t.text for t in tokens[max(0, k - 4) : k] if t.clause == clause}
            # "NEVER GOES ANYWHERE WITHOUT A GUN", "UNK WHETHER OR NOT ARMED": a second
            # negation or an open question undoes it.
            # (For danger only: un-negating a substance word would make a call eligible.)
            if danger and before & (rules.negate_before | DOUBLE_NEGATIONS):
                return False
            # "DIDNT USE THE KNIFE": the use is denied, not the knife.
            between = {t.text for t in tokens[k + 1 : first]}
            if danger and between & DENIED_USE:
                return False
            pleaded = {t.text for t in tokens[max(0, k - 3) : k] if t.clause == clause}
            return not (danger and pleaded & PLEAS)
        if text not in rules.negation_free:
            break
        fillers += 1
        k -= 1
    if _negated_after(tokens, last, clause, rules):
        return True
    return _answered_no(tokens, first, last, rules) or _question_answered_no(
        field, first, last, rules
    )


# "NOBODY HAS HIT HIM SINCE DEPUTIES LEFT", "NEVER SHOT AT THE HOUSE BEFORE": it happened.
SINCE_WHEN = frozenset(
    {"SINCE", "AGAIN", "ANYMORE", "YET", "BEFORE", "TILL", "TIL", "UNTIL", "NOW", "MOMENT",
     "POINT", "MORE", "CURRENTLY", "ATM"}
)  # fmt: skip


DOUBLE_NEGATIONS = frozenset(
    {"WHETHER", "IF", "WONT", "WOULDNT", "COULDNT", "SHOULDNT", "NEVER", "CANT", "CANNOT",
     "RARELY", "SELDOM", "HARDLY", "NOWHERE"}
)  # fmt: skip
# Between a negation and a weapon: what is denied is its use, not that it is there.
DENIED_USE = frozenset({"USE", "USING", "USED", "PULL", "PULLED", "PULLING", "SHOW", "SHOWED"})


def _like_this(tokens: Sequence[Token], last: int, clause: int, *, danger: bool = True) -> bool:
    """ "NEVER BEEN VIOLENT LIKE THIS BEFORE", "NEVER HIT HER BEFORE TONIGHT", "NOBODY HAS
    HIT HIM SINCE": what is denied of the past (or of now) is said of another time."""
    after = [t.text for t in tokens[last + 1 :] if t.clause == clause]
    if danger and SINCE_WHEN & set(after):
        return True
    return any(pair == tuple(after[i : i + 2]) for i in range(len(after)) for pair in UNTIL_NOW)


# After a denied danger: only partly denied ("NOT HURT BAD"), doubted ("NOT A REAL GUN BUT
# ISNT SURE") or contradicted by someone who saw it ("DENIES HAVING A GUN, RP SAW IT").
PARTLY = frozenset(
    {"BAD", "BADLY", "TOO", "THAT", "MUCH", "SERIOUSLY", "REALLY", "VERY", "YET", "WORKED",
     "HELPED", "WORK", "HELP", "DID", "DIDNT", "WORKING", "HELPING", "DONE"}
)  # fmt: skip
DOUBTS = frozenset(
    {"SURE", "UNSURE", "MAYBE", "POSSIBLY", "PROBABLY", "UNCLEAR", "UNCONFIRMED", "UNK",
     "UNKNOWN", "SUPPOSEDLY", "ALLEGEDLY", "CLAIMS", "CLAIMED", "CLAIMING"}
)  # fmt: skip
SAW = frozenset({"SAW", "SEEN", "SEES", "SEE", "NOTICED", "FOUND", "SPOTTED", "HEARD"})
_THERE_AFTER = frozenset(
    {"IS", "WAS", "ARE", "WERE", "ON", "IN", "UNDER", "BY", "BEHIND", "NEXT", "BESIDE", "AT",
     "SITTING", "LAYING", "LYING", "HIDDEN"}
)  # fmt: skip


def _doubted(tokens: Sequence[Token], last: int, clause: int) -> bool:
    same = [t.text for t in tokens[last + 1 :] if t.clause == clause]
    if same[:2] and set(same[:2]) & PARTLY:
        return True
    near = [t.text for t in tokens[last + 1 :] if clause <= t.clause <= clause + 2]
    if set(near) & DOUBTS:
        return True
    # "NO GUNS ON HIM, ONE IS ON THE COUCH", "NO KNIFE ON HIM, IT IS ON THE COUNTER".
    later = [t.text for t in tokens[last + 1 :] if clause < t.clause <= clause + 2]
    for i, word in enumerate(later[:-1]):
        if word in ("ONE", "IT", "ITS", "THEY", "THEYRE") and later[i + 1] in _THERE_AFTER:
            return True
    return any(
        word in SAW and near[i + 1 : i + 2] and near[i + 1] in {"IT", "ONE", "THEM", "HIM"}
        for i, word in enumerate(near)
    )


def _excepted(tokens: Sequence[Token], last: int, clause: int) -> bool:
    """An exception after the negated item, in its clause or opening the next one."""
    rest = [t for t in tokens[last + 1 :] if t.clause in (clause, clause + 1)]
    words = [t.text for t in rest]
    for i, t in enumerate(rest):
        if t.text in EXCEPTIONS and (t.clause == clause or i == 0 or rest[i - 1].clause == clause):
            return True
        if t.clause != clause:
            continue
        if t.text == "OTHER" and words[i + 1 : i + 2] == ["THAN"]:
            return True
        if t.text == "BUT" and words[i + 1 : i + 2] and words[i + 1] in EXCEPT_AFTER_BUT:
            return True
    return False


def _negated_after(tokens: Sequence[Token], last: int, clause: int, rules: RuleSet) -> bool:
    """ "WEAPONS NEGATIVE", "WPNS NONE SEEN"; not "SHOTS FIRED NONE INJURED"."""
    k = last + 1
    if k < len(tokens) and tokens[k].clause == clause and tokens[k].text in rules.negate_after:
        following = k + 1
        # "WEAPONS: NONE. JUST THE ONE IN HIS TRUCK": the next clause takes it back.
        if takes_back(_clauses_after(tokens, following, clause + 1)):
            return False
        return (
            following >= len(tokens)
            or tokens[following].clause != clause
            or tokens[following].text in rules.after_ok
        )
    return False


# Where a thing is asked about is no state of it ("ANY WEAPONS IN HOME? NONE").
_WHERE = frozenset(
    {"HOUSE", "HOME", "TRUCK", "CAR", "VEHICLE", "INSIDE", "OUTSIDE", "NEIGHBOR", "OUT", "WITH",
     "FOR", "NOW", "ELSE", "UP"}
)  # fmt: skip


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
    if start == len(tokens):
        return False
    answer = tokens[start].clause  # the next clause with words ("ANY WEAPONS? / TXT: NO")
    words = [t.text for t in tokens[start:] if t.clause == answer]
    following = _clauses_after(tokens, start, answer + 1)
    asked_words = {t.text for t in tokens if t.clause == clause}
    # "ANY GUNS PUT AWAY? NO": a state asked about, whose "no" keeps the danger.
    if asked_words & (STATE_WORDS - _WHERE):
        return False
    item = {t.text for t in tokens[first : last + 1]}
    return _denies(words, following, rules, asked_words, item)


# An answer that says the thing is elsewhere, someone else's, taken, missed, over or only
# not now ("NO HE HAS IT ON HIM", "NO ITS ON THE TABLE", "NO I TOOK IT", "NO HE STOPPED",
# "NO, MY STEPMOM IS", "NO >> WAIT YES"), or that hedges, does not deny it: only a bare
# "no" or one that goes on about nothing in particular does.
NOT_A_DENIAL = frozenset(
    {"STOPPED", "ANYMORE", "NOW", "LEFT", "QUIT", "ALREADY", "EARLIER", "BEFORE", "PREVIOUSLY",
     "USED", "WAS", "WERE", "DID", "YET", "BUT", "EXCEPT", "ONLY", "UNTIL", "TILL", "TIL",
     "SINCE", "AGAIN", "NOT", "THINK", "GUESS", "MAYBE", "PROBABLY", "SURE", "KNOW", "IDEA",
     "UNSURE", "IT", "ITS", "ONE", "HAS", "HAD", "TOOK", "TAKEN", "GOT", "GRABBED", "MISSED",
     "HID", "HIDDEN", "PUT", "ON", "IN", "AT", "UNDER", "BEHIND", "INSIDE", "OUTSIDE", "HIS",
     "HERS", "THEIR", "MY", "THE", "IS", "ARE", "YES", "YEAH", "YA", "YEP", "WAIT",
     "ACTUALLY", "STILL", "THOUGHT", "THEN", "AFTER", "TRUCK", "CAR", "POCKET", "HAND", "DOES",
     "DO", "WIFE", "HUSBAND", "HUSB", "SON", "DAUGHTER", "BROTHER", "SISTER", "MOM", "DAD",
     "MOTHER", "FATHER", "GIRLFRIEND", "BOYFRIEND", "GF", "BF", "NEIGHBOR", "FRIEND"}
)  # fmt: skip


# What a plain "no" may go on with: itself again, the words of the question, and these.
PLAIN_NO = frozenset(
    {"NO", "NOPE", "NAW", "NAH", "N", "NEG", "NEGATIVE", "NONE", "HE", "SHE", "THEY", "DONT",
     "DOESNT", "HAVE", "ANY", "ANYTHING", "NOTHING", "LIKE", "THAT", "FINE", "OK", "OKAY",
     "SHES", "HES", "THEYRE", "ALL", "GOOD", "LOL", "MAAM", "SIR", "THANK", "THANKS", "GOD",
     "WAY", "NOBODY", "NOONE", "AT", "OF", "THE", "SORTS", "KIND", "EITHER", "I", "IM", "WE"}
)  # fmt: skip


# How many clauses after an answer are read for words that take it back ("WEAPONS: NONE.
# RP CALLED BACK, SAYS HIS DAD HAS ONE IN THE TRUCK").
TAKE_BACK_REACH = 3


def _clauses_after(tokens: Sequence[Token], start: int, first: int) -> list[list[str]]:
    """The words of clauses ``first`` .. ``first + TAKE_BACK_REACH - 1`` from ``start`` on."""
    clauses: list[list[str]] = [[] for _ in range(TAKE_BACK_REACH)]
    for t in tokens[start:]:
        if first <= t.clause < first + TAKE_BACK_REACH:
            clauses[t.clause - first].append(t.text)
    return clauses


def _denies(
    words: Sequence[str],
    following: Sequence[Sequence[str]],
    rules: RuleSet,
    asked: Collection[str] = (),
    item: Collection[str] = (),
) -> bool:
    """Whether an answer (``words``, its first an answer word after any speaker's label,
    and the clause ``following`` it) is a plain denial of what was ``asked``: "NO", "NO
    WEAPONS", "NO HE DONT HAVE ANY"; not "NO DRUGS" to a question about weapons."""
    skipped = 0
    while skipped < len(words) and words[skipped] in rules.answer_skip:
        skipped += 1
    if skipped >= len(words) or words[skipped] not in rules.answers:
        return False
    rest = words[skipped + 1 :]
    if rest and (rest[0] in rules.not_after_cue or rest[0] == "BUT"):
        return False  # "NO RESPONSE FROM TEXTER", "NO IDEA"
    # The answer itself must not take it back or move it; the next clause only by the
    # strongest words ("NO. WIFE DOES", "NO >> WAIT YES"), not by going on to other news
    # ("RP STS NONE, SON AWAKE IN HIS ROOM").
    if set(rest) & NOT_A_DENIAL or takes_back(following):  # "NO, ON THE TABLE"
        return False
    if not set(rest) <= PLAIN_NO | set(asked):
        return False
    # "ANY WEAPONS OR DRUGS? NO DRUGS": an answer naming another thing asked about.
    named = set(rest) & set(asked) - PLAIN_NO
    return not named or bool(named & set(item))


QUESTION_LABELS = frozenset(
    {"CT", "TC", "DISP", "DISPATCH", "KQ", "Q", "ASKED", "ASKS", "CALLTAKER", "OPERATOR", "TXT",
     "TEXT", "TELECOMMUNICATOR", "DISPATCHER"}
)  # fmt: skip


ASKS_IF_ANY = frozenset(
    {"IS", "ARE", "DOES", "DO", "DID", "HAS", "HAVE", "HE", "SHE", "THEY", "ANY", "ANYONE",
     "ANYBODY", "SOMEONE", "THERE", "SUBJ", "SUBJECT", "PT", "PATIENT", "YOU", "SEE", "SEEN"}
)  # fmt: skip
ASKS_WHERE = frozenset(
    {"IN", "THE", "HOME", "HOUSE", "RESIDENCE", "ON", "HIM", "HER", "THEM", "SCENE",
     "INVOLVED", "PRESENT", "SEEN", "AT", "ALL"}
)  # fmt: skip


def _question_answered_no(field: Field, first: int, last: int, rules: RuleSet) -> bool:
    """A question written as one ("CT: WEAPONS IN HOME? >> 'NO HE DONT HAVE ANY'", "IS SHE
    HURT? >> 'NO SHE JUST SLID DOWN'"): the match's clause ends with a question mark, and the
    first clause after it and after any questions asked with it ("ANYONE HIT? WEAPONS? >>
    'NO NO WEAPONS'") opens with a negative answer that does not take itself back."""
    tokens = field.tokens
    clause = tokens[first].clause
    end = last
    while end + 1 < len(tokens) and tokens[end + 1].clause == clause:
        end += 1
    if not _ends_with_question(field, end):
        return False
    # The question is the end of its clause, from a call-taker's label or the clause's start,
    # a few words long: "CT: WEAPONS IN HOME?"; not "HAS A KNIFE CT: ANYONE HURT?".
    begin = end
    while (
        begin > 0
        and tokens[begin - 1].clause == clause
        and tokens[begin - 1].text not in QUESTION_LABELS
    ):
        begin -= 1
    if first < begin or end - begin >= 8:
        return False
    # Only a question whether it exists or happened is denied by "NO": not "IS THE GUN IN
    # THE SAFE?", "KNIFE DROPPED?", "IS THE FIGHT OVER?" (their "NO" keeps the danger).
    before = {t.text for t in tokens[begin:first]}
    behind = {t.text for t in tokens[last + 1 : end + 1]}
    if not (before <= ASKS_IF_ANY and behind <= ASKS_WHERE):
        return False
    # The answer follows this question itself ("DID HE HIT HER? IS SHE OK? >> NO" answers
    # only the last).
    start = end + 1
    if start >= len(tokens):
        return False
    finish = start
    while finish + 1 < len(tokens) and tokens[finish + 1].clause == tokens[start].clause:
        finish += 1
    if _ends_with_question(field, finish):
        return False
    words = [t.text for t in tokens[start:] if t.clause == tokens[start].clause]
    following = _clauses_after(tokens, start, tokens[start].clause + 1)
    item = {t.text for t in tokens[first : last + 1]}
    return _denies(words, following, rules, {t.text for t in tokens[begin : end + 1]}, item)


def _in_question(field: Field, index: int) -> bool:
    """Whether token ``index`` stands in a clause that ends with a question mark."""
    tokens = field.tokens
    end = index
    while end + 1 < len(tokens) and tokens[end + 1].clause == tokens[index].clause:
        end += 1
    return _ends_with_question(field, end)


def _ends_with_question(field: Field, index: int) -> bool:
    """Whether the clause whose last word is token ``index`` ends with a question mark."""
    rest = field.raw[field.tokens[index].end :].lstrip(" '\"")
    return rest.startswith("?")


def _age_hits(field: Field, order: int, rules: RuleSet) -> list[_Hit]:
    hits = []
    for rule in rules.rules.values():
        if rule.age_below is None or field.name not in rule.fields:
            continue
        for age, start, end in field.ages:
            if age < rule.age_below and not _bystanders(rule, field, start):
                inside = [i for i, t in enumerate(field.tokens) if start <= t.start < end]
                first, last = (inside[0], inside[-1]) if inside else (0, -1)
                hits.append(
                    _Hit(rule, field.name, field.raw[start:end], (order, first), False, last)
                )
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
        # After the last word of the last match ("HARD TIME STAYING AWAKE" is not resolved
        # by its own AWAKE).
        latest = max((h.position[0], max(h.last, h.position[1])) for h in own)
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
                    # "IS HE AWAKE? >> NO": asked, not said.
                    if (
                        not _resolver_negated(rule, field, index)
                        and not _in_question(field, last)
                        and not _said_of_someone_else(field, index, last)
                    ):
                        return _Hit(
                            rule, field.name, field.span(index, last), (order, index), False, last
                        )
    return None


# Who is not the person the call is about: a waking word said of them resolves nothing
# ("GAVE HIM NARCAN, CALLER IS CALM AND ALERT", "LAST SEEN ALERT AT 0100").
SOMEONE_ELSE = frozenset(
    {"CALLER", "CALLERS", "RP", "TEXTER", "COMPL", "COMPLAINANT", "BYSTANDER", "BYSTANDERS",
     "CLERK", "STAFF", "MGR", "MANAGER", "SECURITY", "DISPATCH", "OFFICER", "DEPUTY", "MEDIC",
     "MEDICS", "NURSE", "WITNESS", "ROOMMATE", "NEIGHBOR", "NEIGHBORS"}
)  # fmt: skip
# After the waking word, someone else woken ("FRIEND WOKE UP THE NEIGHBOR").
_OTHER_OBJECT = frozenset(
    {"THE", "A", "AN", "THEIR", "MY", "OUR", "EVERYONE", "EVERYBODY", "SOMEONE", "SOMEBODY"}
)


_OTHER_SENSE = frozenset(
    {"FRONT", "HELP", "SEE", "TALK", "GET", "PICK", "CHECK", "STAY", "SIT", "FRONTS"}
)
_UNTIL = frozenset({"UNTIL", "TILL", "TIL", "AGO", "BEFORE", "EARLIER"})


def _said_of_someone_else(field: Field, first: int, last: int) -> bool:
    tokens = field.tokens
    clause = tokens[first].clause
    before = [t.text for t in tokens[max(0, first - 4) : first] if t.clause == clause]
    if set(before) & SOMEONE_ELSE or before[-2:] == ["LAST", "SEEN"]:
        return True
    after = [t.text for t in tokens[last + 1 :] if t.clause == clause]
    # Someone else woken, another sense ("IS UP FRONT", "CAME TO HELP"), or a time gone by
    # ("WAS TALKING AND ALERT UNTIL ABOUT 10 MIN AGO").
    return bool(after) and (
        after[0] in _OTHER_OBJECT or after[0] in _OTHER_SENSE or bool(set(after) & _UNTIL)
    )


def _resolver_negated(rule: Rule, field: Field, first: int) -> bool:
    """ "SEMI CONSCIOUS", "NO LONGER CONSCIOUS", "NOT ALERT", "IS UP NOW? UNK": no
    recovery."""
    tokens = field.tokens
    clause = tokens[first].clause
    if any(t.text in ("UNK", "UNKNOWN") for t in tokens[first + 1 : first + 5]):
        return True
    return any(
        tokens[k].text in rule.resolver_negators and tokens[k].clause == clause
        for k in range(max(0, first - 2), first)
    )


def _apply_senses(
    fields: Sequence[Field], hits: list[_Hit], rules: RuleSet, reading: _Reading
) -> list[_Hit]:
    """Read each word of several senses by its context: the first context that holds it
    decides what it means there; with none, a rule that matched it or ``otherwise`` does."""
    if not rules.senses:
        return hits
    for order, field in enumerate(fields):
        if field.name == "hazards":
            continue
        words = [t.text for t in field.tokens]
        clauses = [t.clause for t in field.tokens]
        for index, word in enumerate(words):
            sense = rules.senses.get(word)
            if sense is None:
                continue
            found = _context_at(sense.contexts, words, index, clauses)
            if found is not None:
                (first, last), meaning, slots = found
                # A context's "_" slot holds any word, read on its own: "FROM A _ BOTTLE"
                # explains neither an unknown word nor a gun in that slot.
                fixed = [k for k in range(first, last + 1) if k not in slots]
                for k in fixed:
                    reading.add(field.name, k, k)
                if meaning == SAFE:
                    # A harmless sense of this word; another rule's longer danger or risk
                    # phrase around it ("JUNIOR HIGH" for HIGH, a juvenile) still stands.
                    hits = [
                        h
                        for h in hits
                        if not _within(h, field.name, first, last)
                        or any(h.position[1] <= k <= h.last for k in slots)
                        or (
                            h.rule.kind in ("danger", "risk")
                            and not h.position[1] == h.last == index
                        )
                    ]
                    continue
                rule = rules.rules[meaning]
                hits = [
                    h for h in hits if h.rule is rule or not _within(h, field.name, index, index)
                ]
                if not any(h.rule is rule and _covers(h, field.name, index) for h in hits):
                    hits.append(_sense_hit(rule, field, order, first, last, rules))
                continue
            if any(_covers(h, field.name, index) for h in hits):
                continue
            if sense.otherwise == SAFE:
                reading.add(field.name, index, index)
            elif sense.otherwise != UNKNOWN:
                rule = rules.rules[sense.otherwise]
                hits.append(_sense_hit(rule, field, order, index, index, rules))
    return hits


def _context_at(
    contexts: Sequence[tuple[Phrase, str]],
    words: Sequence[str],
    index: int,
    clauses: Sequence[int],
) -> tuple[tuple[int, int], str, frozenset[int]] | None:
    """The first context that holds the word at ``index``, within its own clause ("IS DEAD.
    PHONE" is not "DEAD PHONE"): its span, its meaning, and the positions of its "_" slots."""
    for phrase, meaning in contexts:
        for offset, (part, is_prefix) in enumerate(zip(phrase.words, phrase.prefix, strict=True)):
            word = words[index]
            if not (word.startswith(part) if is_prefix else word == part) or not part:
                continue
            start = index - offset
            end = start + len(phrase.words) - 1
            if (
                start >= 0
                and phrase.matches_at(words, start)
                and clauses[start] == clauses[index] == clauses[min(end, len(clauses) - 1)]
            ):
                slots = frozenset(start + k for k, w in enumerate(phrase.words) if not w)
                return (start, end), meaning, slots
    return None


def _sense_hit(rule: Rule, field: Field, order: int, first: int, last: int, rules: RuleSet) -> _Hit:
    negated = rule.negatable and _negated(
        field, first, last, rules, danger=rule.kind in ("danger", "risk")
    )
    return _Hit(rule, field.name, field.span(first, last), (order, first), negated, last)


def _covers(hit: _Hit, field: str, index: int) -> bool:
    return hit.field == field and hit.position[1] <= index <= hit.last


def _within(hit: _Hit, field: str, first: int, last: int) -> bool:
    """Whether ``hit`` lies inside tokens first..last of ``field`` (and is not a code)."""
    return (
        hit.field == field
        and hit.position[1] >= 0
        and first <= hit.position[1]
        and hit.last <= last
    )


def _kind_hits(fields: Sequence[Field], rules: RuleSet, reading: _Reading) -> list[_KindHit]:
    """Kinds of call named by the words of the call type and its description."""
    found: list[_KindHit] = []
    for field in fields[:2]:
        words = [t.text for t in field.tokens]
        for index, word in enumerate(words):
            candidates = [
                *rules.kind_index.get(word, ()),
                *((k, p) for prefix, k, p in rules.kind_prefixes if word.startswith(prefix)),
            ]
            for kind, phrase in candidates:
                if phrase.matches_at(words, index):
                    last = index + len(phrase.words) - 1
                    reading.add(field.name, index, last)
                    found.append(_KindHit(kind, f"{field.span(index, last)} in {field.name}"))
    return found


def _verbal_evidence(
    fields: Sequence[Field],
    hits: Sequence[_Hit],
    kinds: Sequence[_KindHit],
    rules: RuleSet,
    reading: _Reading,
) -> list[str]:
    """Words saying a conflict stayed verbal: a conflict kind's own phrases ("VERBAL ONLY",
    not negated) or a negated act of violence ("NOTHING PHYSICAL", "NO HITTING")."""
    conflict = _conflicts(kinds)
    if not conflict:
        return []
    evidence = [
        f"{h.text} in {h.field}, negated"
        for h in hits
        if h.negated and h.rule.id == "danger.violence"
    ]
    phrases = [p for kind in conflict for p in kind.verbal]
    firsts = {p.words[0] for p in phrases}
    for field in fields[:3]:
        words = [t.text for t in field.tokens]
        for index, word in enumerate(words):
            if word not in firsts and not any(word.startswith(f) for f in firsts):
                continue
            for phrase in phrases:
                if not phrase.matches_at(words, index):
                    continue
                last = index + len(phrase.words) - 1
                reading.add(field.name, index, last)
                clause = field.tokens[index].clause
                if (
                    not _negated(field, index, last, rules, danger=True)
                    and not _like_this(field.tokens, last, clause)
                    and not (last + 1 < len(words) and words[last + 1] in ("ORDER", "ORDERS"))
                ):
                    evidence.append(f"{field.span(index, last)} in {field.name}")
    return evidence


def _conflicts(kinds: Sequence[_KindHit]) -> list[CallKind]:
    """Conflict kinds of the call, less those that yield to another kind it names."""
    named = {k.kind.id for k in kinds}
    return [k.kind for k in kinds if k.kind.family == "conflict" and not (k.kind.yields_to & named)]


def _unexplained(
    fields: Sequence[Field], rules: RuleSet, reading: _Reading, whole_code: bool
) -> list[str]:
    """Words of the call type, description and narrative that nothing accounts for, in
    the order written (each once)."""
    found: dict[str, None] = {}
    for field in fields[:3]:
        if field.name == "call_type" and whole_code:
            continue
        explained = reading.explained.get(field.name, set())
        tokens = field.tokens
        for index, token in enumerate(tokens):
            if index in explained:
                continue
            word = token.text
            if _understood(word, field, index, rules):
                continue
            if word.isdigit():  # the NN of an unknown radio code 10-NN
                found[f"10-{word}"] = None
            else:
                found[field.raw[token.start : token.end]] = None
    return list(found)


def _understood(word: str, field: Field, index: int, rules: RuleSet) -> bool:
    if word in rules.never_safe:
        # A street word is never safe as a word, but "NOT HURT" is still understood.
        return word in rules.negated_only and _negated(field, index, index, rules)
    if word in rules.safe_words or (len(word) == 1 and word.isascii()):
        return True
    if word.isdigit() and _held_number(field, index):
        return False
    if word.isdigit():
        tokens = field.tokens
        ten_code = (
            index > 0
            and tokens[index - 1].text == "10"
            and tokens[index - 1].clause == tokens[index].clause
            and len(word) <= 3
        )
        return not ten_code or word in rules.ten_codes
    if not word.isascii():
        return False
    if any(c.isdigit() for c in word):
        # Codes in a call type; unit numbers, times, routes in a narrative.
        return field.name == "call_type" or bool(_NON_WORD.match(word))
    if _singular(word) in rules.safe_words:
        return True
    if word in rules.negated_only:
        return _negated(field, index, index, rules)
    return False


_OWNERS = frozenset(
    {"HIS", "HER", "THEIR", "MY", "A", "WITH", "THE", "THAT", "THIS", "OLD", "DADS", "MOMS",
     "GRANDPAS", "GRANDMAS", "BROTHERS", "UNCLES", "PAPAWS", "PAWS", "HUSBANDS", "FATHERS"}
)  # fmt: skip
_NOT_A_NOUN = frozenset(
    {"IN", "ON", "AT", "AND", "OR", "BUT", "TO", "FROM", "BY", "WITH", "THE", "OUT", "UP",
     "DOWN", "OFF", "AWAY", "BACK", "AROUND", "OF", "OVER", "INTO", "OUTSIDE", "INSIDE"}
)  # fmt: skip


def _held_number(field: Field, index: int) -> bool:
    """ "WALKING AROUND WITH HIS 243": a number someone has, with no noun after it, may be
    a caliber; "HIS 2 KIDS", "A 40 OZ" are not."""
    tokens = field.tokens
    if index == 0 or tokens[index - 1].text not in _OWNERS:
        return False
    if tokens[index - 1].clause != tokens[index].clause:
        return False
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    return after is None or after.clause != tokens[index].clause or after.text in _NOT_A_NOUN


def _singular(word: str) -> str:
    if word.endswith("IES") and len(word) > 4:
        return word[:-3] + "Y"
    if word.endswith("ES") and len(word) > 4 and word[-3] in "SXZH":
        return word[:-2]
    if word.endswith("S") and not word.endswith("SS") and len(word) > 3:
        return word[:-1]
    return word


def _decide(
    call: TriageInput,
    rules: RuleSet,
    fields: Sequence[Field],
    hits: list[_Hit],
    resolved: list[_Hit],
    kinds: list[_KindHit],
    verbal: list[str],
    unexplained: list[str],
) -> TriageDecision:
    live = [h for h in hits if not h.negated]
    signals = {h.rule.kind for h in live}
    reasons = _reasons(live, hits, resolved, kinds)
    if "danger" in signals:
        return _decision(
            "ineligible", call, rules, reasons, [r for r in reasons if r.kind == "danger"]
        )
    substance = [h for h in live if h.rule.kind == "substance"]
    if not substance:
        policy = Reason(
            "policy.no_substance", "policy", "no substance involvement", "none stated or implied"
        )
        if unexplained:
            # Nothing recognised as substance use, but words the rules cannot read: they
            # may say it (slang); a dispatcher reads them.
            unread = _not_understood(unexplained)
            policy = Reason(
                "policy.no_substance_recognised",
                "policy",
                "no substance use recognised",
                "none stated in words the rules know",
            )
            return _decision("review", call, rules, [unread, policy, *reasons], [unread])
        return _decision("ineligible", call, rules, [*reasons, policy], [policy])
    exclusions = [h for h in live if h.rule.kind == "exclude"]
    stated = [h for h in substance if h.field == "narrative"]
    if exclusions:

        def clause(hit: _Hit) -> tuple[int, int]:
            order, first = hit.position
            return order, fields[order].tokens[first].clause if first >= 0 else -1

        excluded = {clause(h) for h in exclusions}
        own = [h for h in stated if clause(h) not in excluded]
        if not own:
            policy = Reason(
                "policy.not_substance_use",
                "policy",
                "not substance use",
                "; ".join(f"{h.rule.label} ({h.text} in {h.field})" for h in exclusions[:2]),
            )
            return _decision("ineligible", call, rules, [policy, *reasons], [policy])
    missing = _missing_evidence(call, stated, kinds, verbal, unexplained)
    risks = [r for r in reasons if r.kind in ("risk", "exclusion")]
    if risks or missing:
        return _decision("review", call, rules, [*missing, *reasons], [*risks, *missing])
    deciding = [r for r in reasons if r.kind in ("substance", "kind")]
    return _decision("eligible", call, rules, reasons, deciding, eligible=True)


def _missing_evidence(
    call: TriageInput,
    stated: Sequence[_Hit],
    kinds: Sequence[_KindHit],
    verbal: Sequence[str],
    unexplained: Sequence[str],
) -> list[Reason]:
    """What ``eligible`` would need and the call does not show, each as a policy reason."""
    missing = []
    if not stated:
        missing.append(
            Reason(
                "policy.substance_not_stated",
                "policy",
                "substance use not stated in the narrative",
                "only the call type implies it" if call.narrative else "no narrative yet",
            )
        )
    call_type = call.call_type or call.call_type_description or ""
    if not kinds:
        missing.append(
            Reason(
                "policy.unknown_call_type",
                "policy",
                "not a kind of call a peer is sent to",
                f"call type {call_type}" if call_type else "no call type",
            )
        )
    conflict = _conflicts(kinds)
    if conflict and not verbal:
        missing.append(
            Reason(
                "policy.conflict_not_verbal",
                "policy",
                "conflict not said to be verbal only",
                f"call type {call_type} is a {conflict[0].label} type and nothing says "
                "it stayed verbal",
            )
        )
    if unexplained:
        missing.append(_not_understood(unexplained))
    return missing


def _not_understood(words: Sequence[str]) -> Reason:
    shown = ", ".join(words[:8]) + (", ..." if len(words) > 8 else "")
    return Reason("policy.not_understood", "policy", "words not understood", shown)


def _decision(
    decision: Decision,
    call: TriageInput,
    rules: RuleSet,
    reasons: Sequence[Reason],
    deciding: Sequence[Reason],
    eligible: bool = False,
) -> TriageDecision:
    summary = f"{decision}: " + _summarise(deciding)
    if eligible:
        summary += "; every word understood, no danger or risk"
    ordered = tuple(sorted(reasons, key=lambda r: _KIND_ORDER[r.kind]))
    return TriageDecision(decision, ordered, summary, rules.version, call.digest())


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


def _reasons(
    live: list[_Hit], hits: list[_Hit], resolved: list[_Hit], kinds: Sequence[_KindHit]
) -> list[Reason]:
    reasons: dict[tuple[str, str], Reason] = {}
    for hit in live:
        detail = f"{hit.text} in {hit.field}" if not hit.text.startswith("code ") else hit.text
        kind: ReasonKind = _REASON_KIND.get(hit.rule.kind, hit.rule.kind)  # type: ignore[assignment]
        reasons.setdefault((hit.rule.id, detail), Reason(hit.rule.id, kind, hit.rule.label, detail))
    for found in kinds:
        reasons.setdefault(
            (found.kind.id, found.text),
            Reason(found.kind.id, "kind", found.kind.label, found.text),
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
