"""The triage rule file: its schema, loading with line-numbered errors, and compiling.

A rule file is YAML. The packaged ``rules.yaml`` is the default; a deployment may name an
override file (``CORESPOND_TRIAGE_RULES_FILE``) whose sections extend or replace it: rules
with the same id are replaced, code mappings and abbreviations are merged key by key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corespond.triage.second_opinion import SecondOpinion, packaged_second_opinion
from corespond.triage.text import normalise

Kind = Literal["danger", "risk", "substance", "exclude"]
Family = Literal["peer", "conflict"]
TextField = Literal["call_type", "description", "narrative", "hazards"]
ALL_FIELDS: tuple[TextField, ...] = ("call_type", "description", "narrative", "hazards")
# Words, a word ending in * (prefix), or _ (any one word, not first: "LEFT _ IN HIS TRUCK").
_PHRASE = re.compile(r"^[A-Z0-9]+\*?( ([A-Z0-9]+\*?|_))*$")
PREFIX_KEY = 3
_RULE_ID = re.compile(r"^(danger|risk|substance|exclude)\.[a-z0-9_]+$")
_KIND_ID = re.compile(r"^kind\.[a-z0-9_]+$")
_WORD = re.compile(r"^[A-Z0-9]+$")
# What a sense context or an unmatched sense word may mean besides a rule id.
SAFE = "safe"
UNKNOWN = "unknown"


class RuleFileError(ValueError):
    """A rule file that cannot be used, with where (file:line) and why."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [
            f"{source}:{line}: {why}" if line else f"{source}: {why}" for line, why in problems
        ]
        super().__init__("\n".join(lines))


def _phrases(value: list[str]) -> list[str]:
    cleaned = []
    for phrase in value:
        text = " ".join(phrase.upper().split())
        if not _PHRASE.fullmatch(text):
            raise ValueError(
                f"phrase {phrase!r}: use letters, digits and spaces; '*' only ends a word, "
                "'_' (any word) stands alone and not first"
            )
        cleaned.append(text)
    return cleaned


class RuleSpec(BaseModel):
    """One rule: a kind of signal and the words and phrases that raise it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="kind.name, e.g. danger.weapon")
    label: str = Field(description="What a dispatcher reads, e.g. 'weapon mentioned'.")
    phrases: list[str] = Field(default_factory=list)
    fields: list[TextField] = Field(default_factory=lambda: list(ALL_FIELDS))
    negatable: bool = True
    unless: list[str] = Field(
        default_factory=list, description="Phrases inside which a match does not count."
    )
    resolved_by: list[str] = Field(
        default_factory=list,
        description="Phrases that, said after the last match, cancel it ('NOW CONSCIOUS').",
    )
    age_below: int | None = Field(default=None, ge=1, le=30)
    any_hazard: bool = Field(default=False, description="Fires on any hazard flag.")
    hypothetical: list[str] = Field(
        default_factory=list,
        description="Phrases that, just before a match, make it a threat, not an act "
        "('WILL BEAT HER', 'THREATENED TO HIT HIM').",
    )
    becomes: str | None = Field(
        default=None, description="The rule a hypothetical match raises instead."
    )
    hypothetical_bridge: list[str] = Field(
        default_factory=list,
        description="Words that may stand between a hypothetical cue and the act "
        "('GOING TO COME OVER AND BEAT HIM').",
    )
    resolver_negators: list[str] = Field(
        default_factory=list,
        description="Words just before a resolving phrase that cancel it ('SEMI CONSCIOUS').",
    )
    age_bystanders: list[str] = Field(
        default_factory=list,
        description="Words just before an age that make it someone else's ('KIDS 4 AND 7').",
    )
    not_hazards: list[str] = Field(
        default_factory=list, description="Hazard entries that mean no hazard ('NONE')."
    )

    @field_validator("id")
    @classmethod
    def _id_names_its_kind(cls, value: str) -> str:
        if not _RULE_ID.fullmatch(value):
            raise ValueError("id must be danger.*, risk.*, substance.* or exclude.* in lower case")
        return value

    @field_validator("hypothetical_bridge", "resolver_negators", "age_bystanders", "not_hazards")
    @classmethod
    def _upper_words(cls, value: list[str]) -> list[str]:
        return [" ".join(v.upper().split()) for v in value]

    @field_validator("phrases", "unless", "resolved_by", "hypothetical")
    @classmethod
    def _valid_phrases(cls, value: list[str]) -> list[str]:
        return _phrases(value)

    @property
    def kind(self) -> Kind:
        return self.id.split(".", 1)[0]  # type: ignore[return-value]


class NegationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    before: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)
    window: int = Field(default=3, ge=1, le=8)
    not_after_cue: list[str] = Field(
        default_factory=list, description="Words that make a cue no negation: 'NOT SURE'."
    )
    free: list[str] = Field(
        default_factory=list,
        description="Words a negation reaches across without using its window ('NO SIGNS OF "
        "ANY DRUG USE'): lists (OR, NOR), articles, 'OF', 'ANY'.",
    )
    terminators: list[str] = Field(default_factory=list)
    after_ok: list[str] = Field(
        default_factory=list, description="Words that may follow an after-cue: 'NONE SEEN'."
    )
    lists: list[str] = Field(
        default_factory=list, description="Words along which a negation carries: 'NO A OR B'."
    )
    danger_lists: list[str] = Field(
        default_factory=list, description="The same, for danger items (narrower)."
    )
    question: list[str] = Field(
        default_factory=list, description="Words that make a match a question: 'ANY WEAPONS'."
    )
    answer_skip: list[str] = Field(
        default_factory=list, description="Words passed over before the answer: 'RP STS NONE'."
    )
    answers: list[str] = Field(
        default_factory=lambda: ["NO", "N", "NONE", "NEGATIVE", "NEG"],
        description="The only words that answer a question 'no' ('DONT KNOW' does not).",
    )

    @field_validator(
        "before",
        "answers",
        "after",
        "not_after_cue",
        "terminators",
        "question",
        "answer_skip",
        "free",
        "after_ok",
        "lists",
        "danger_lists",
    )
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [v.upper().strip() for v in value]


CodeMap = dict[str, list[str]]


def _check_code_keys(codes: CodeMap) -> CodeMap:
    for key in codes:
        if key.endswith("*") and len(key.rstrip("*").strip()) < 2:
            raise ValueError(f"code key {key!r}: a prefix needs at least 2 characters before '*'")
    return codes


class CodesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: CodeMap = Field(default_factory=dict)
    by_source: dict[str, CodeMap] = Field(default_factory=dict)
    by_agency: dict[str, CodeMap] = Field(default_factory=dict)

    @field_validator("default")
    @classmethod
    def _default_keys(cls, value: CodeMap) -> CodeMap:
        return _check_code_keys(value)

    @field_validator("by_source", "by_agency")
    @classmethod
    def _nested_keys(cls, value: dict[str, CodeMap]) -> dict[str, CodeMap]:
        for codes in value.values():
            _check_code_keys(codes)
        return value


def _words(value: list[str]) -> list[str]:
    cleaned = [v.upper().strip() for v in value]
    bad = [w for w in cleaned if not _WORD.fullmatch(w)]
    if bad:
        raise ValueError(f"single words of letters and digits only: {', '.join(bad[:5])}")
    return cleaned


class VocabularySpec(BaseModel):
    """What the classifier understands. A narrative word outside every rule, sense and
    list here is *not understood*, and a call with one is never ``eligible``."""

    model_config = ConfigDict(extra="forbid")

    safe: list[str] = Field(
        default_factory=list,
        description="Words with no sense of harm, weapon or restraint in any context a call "
        "is written in (people, places, times, function words, benign actions).",
    )
    negated_only: list[str] = Field(
        default_factory=list,
        description="Words of injury or contact understood only when negated "
        "('NO INJURIES', 'NOT HURT').",
    )
    places: list[str] = Field(
        default_factory=list,
        description="Words of the service area's place names, understood as names.",
    )
    ten_codes: list[str] = Field(
        default_factory=list,
        description="Numbers NN whose radio code 10-NN is routine ('10-4', '10-97').",
    )
    never_safe: list[str] = Field(
        default_factory=list,
        description="Words never understood by the vocabulary or the dictionary alone, "
        "whatever their everyday sense: street and slang senses of harm (BURNER, STRAP, "
        "HEAT). Only a rule, a sense context or a harmless phrase can account for them.",
    )

    @field_validator("safe", "negated_only", "places", "ten_codes", "never_safe")
    @classmethod
    def _single_words(cls, value: list[str]) -> list[str]:
        return _words(value)


class SenseSpec(BaseModel):
    """A word with several senses, some harmless and some not ("PIPE": a crack pipe, a
    burst water pipe, a pipe swung at someone). Each context is a phrase containing the
    word; the first context that matches (danger first, then risk, exclude, substance,
    safe) says what the word means there; with no context, ``otherwise`` does."""

    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(min_length=1, description="The word and its inflections.")
    means: dict[str, list[str]] = Field(
        default_factory=dict,
        description="'safe' or a rule id -> phrases (containing one of the words).",
    )
    otherwise: str = Field(
        default=UNKNOWN,
        description="A rule id, 'safe', or 'unknown' (not understood: review).",
    )

    @field_validator("words")
    @classmethod
    def _single_words(cls, value: list[str]) -> list[str]:
        return _words(value)

    @field_validator("means")
    @classmethod
    def _valid_contexts(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {meaning: _phrases(phrases) for meaning, phrases in value.items()}


class CallKindSpec(BaseModel):
    """A kind of call, read from the call type, its description and code mappings.
    ``peer``: a peer may go when substance use is stated and nothing else is open;
    ``conflict``: a peer may go only when the text says the conflict stayed verbal."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="kind.name, e.g. kind.overdose")
    family: Family
    label: str
    phrases: list[str] = Field(default_factory=list)
    verbal: list[str] = Field(
        default_factory=list,
        description="Conflict kinds: phrases saying it stayed verbal ('VERBAL ONLY').",
    )
    yields_to: list[str] = Field(
        default_factory=list,
        description="Kinds that, named by the same call, make this one theirs: a "
        "'Disturb/Nuis Intoxicated' call is an intoxicated person's disturbance.",
    )

    @field_validator("id")
    @classmethod
    def _id_is_a_kind(cls, value: str) -> str:
        if not _KIND_ID.fullmatch(value):
            raise ValueError("id must be kind.* in lower case")
        return value

    @field_validator("phrases", "verbal")
    @classmethod
    def _valid_phrases(cls, value: list[str]) -> list[str]:
        return _phrases(value)


class RuleFile(BaseModel):
    """A whole rule file (the override file may leave any section out)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=40)
    abbreviations: dict[str, list[str] | str] = Field(default_factory=dict)
    negation: NegationSpec | None = None
    rules: list[RuleSpec] = Field(default_factory=list)
    call_kinds: list[CallKindSpec] = Field(default_factory=list)
    vocabulary: VocabularySpec = Field(default_factory=VocabularySpec)
    senses: list[SenseSpec] = Field(default_factory=list)
    codes: CodesSpec = Field(default_factory=CodesSpec)


@dataclass(frozen=True)
class Phrase:
    """A compiled phrase: words, each exact or (ending in ``*``) a prefix."""

    words: tuple[str, ...]
    prefix: tuple[bool, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Phrase:
        parts = text.split()
        # "_" is a prefix match on the empty string: any one word.
        words = tuple("" if p == "_" else p.rstrip("*") for p in parts)
        return cls(words, tuple(p.endswith("*") or p == "_" for p in parts), text)

    def matches_at(self, words: Sequence[str], index: int) -> bool:
        if index + len(self.words) > len(words):
            return False
        for offset, (word, is_prefix) in enumerate(zip(self.words, self.prefix, strict=True)):
            token = words[index + offset]
            if not (token.startswith(word) if is_prefix else token == word):
                return False
        return True


@dataclass(frozen=True)
class Rule:
    id: str
    kind: Kind
    label: str
    phrases: tuple[Phrase, ...]
    fields: frozenset[str]
    negatable: bool
    unless: tuple[Phrase, ...]
    resolved_by: tuple[Phrase, ...]
    age_below: int | None
    any_hazard: bool
    hypothetical: tuple[Phrase, ...]
    becomes: str | None
    hypothetical_bridge: frozenset[str]
    resolver_negators: frozenset[str]
    age_bystanders: frozenset[str]
    not_hazards: frozenset[str]
    # unless-phrases by each exact word they contain (a match must share its first word
    # with a phrase that contains it); phrases with * or _ words are always tried.
    unless_by_word: Mapping[str, tuple[Phrase, ...]] = field(default_factory=dict, repr=False)
    unless_always: tuple[Phrase, ...] = ()


@dataclass(frozen=True)
class Sense:
    """A compiled sense entry: contexts in the order they are tried, and the fallback."""

    words: frozenset[str]
    contexts: tuple[tuple[Phrase, str], ...]  # (phrase, "safe" or a rule id)
    otherwise: str


@dataclass(frozen=True)
class CallKind:
    id: str
    family: Family
    label: str
    phrases: tuple[Phrase, ...]
    verbal: tuple[Phrase, ...]
    yields_to: frozenset[str] = frozenset()


# Contexts of a sense are tried in this order of meaning: danger wins over everything.
_MEANING_ORDER = {"danger": 0, "risk": 1, "exclude": 2, "substance": 3, SAFE: 4}


@dataclass(frozen=True)
class RuleSet:
    """A validated, compiled rule set, ready for :func:`classify`."""

    version: str
    rules: Mapping[str, Rule]
    kinds: Mapping[str, CallKind]
    safe_words: frozenset[str]
    negated_only: frozenset[str]
    ten_codes: frozenset[str]
    senses: Mapping[str, Sense]
    # Every word the rule set knows: a shortened spelling ("NODDIN") is read as the known
    # word it shortens ("NODDING").
    known_words: frozenset[str]
    # Kind phrases by their first word (prefix phrases by their prefix).
    kind_index: Mapping[str, tuple[tuple[CallKind, Phrase], ...]]
    kind_prefixes: tuple[tuple[str, CallKind, Phrase], ...]
    abbreviations: Mapping[str, tuple[str, ...]]
    negate_before: frozenset[str]
    negate_after: frozenset[str]
    negation_window: int
    not_after_cue: frozenset[str]
    terminators: frozenset[str]
    question: frozenset[str]
    answer_skip: frozenset[str]
    answers: frozenset[str]
    negation_free: frozenset[str]
    after_ok: frozenset[str]
    lists: frozenset[str]
    danger_lists: frozenset[str]
    default_codes: Mapping[str, tuple[str, ...]]
    source_codes: Mapping[str, Mapping[str, tuple[str, ...]]]
    agency_codes: Mapping[str, Mapping[str, tuple[str, ...]]]
    index: Mapping[str, tuple[tuple[Rule, Phrase], ...]] = field(repr=False)
    # Prefix phrases by the first PREFIX_KEY letters of their first word.
    prefix_index: Mapping[str, tuple[tuple[str, Rule, Phrase], ...]] = field(repr=False)
    # Words no vocabulary may account for (street senses of harm), nor their plural's stem.
    never_safe: frozenset[str] = field(default=frozenset(), repr=False)
    # The learned model that may lower an eligible decision to review (never raise one).
    second_opinion: SecondOpinion | None = field(default=None, repr=False)

    def codes_for(
        self, source: str | None, agency: str | None
    ) -> list[Mapping[str, tuple[str, ...]]]:
        """Code maps in precedence order: the agency's, the source's, the defaults."""
        maps: list[Mapping[str, tuple[str, ...]]] = []
        if agency and agency.upper() in self.agency_codes:
            maps.append(self.agency_codes[agency.upper()])
        if source and source in self.source_codes:
            maps.append(self.source_codes[source])
        maps.append(self.default_codes)
        return maps


# --- loading ---------------------------------------------------------------------------


class RuleLoader(yaml.SafeLoader):
    """YAML without the 1.1 surprise that NO, YES, ON and OFF are booleans: in a rule file
    they are words ("NO WEAPONS SEEN"). Only true and false are booleans."""


def _mapping_without_duplicates(loader: RuleLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


RuleLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)
RuleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _line_index(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map each path in a composed YAML document to its (1-based) line."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            lines.update({k: v for k, v in _line_index(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, position)))
    return lines


def _line_of(lines: Mapping[tuple[Any, ...], int], loc: Sequence[Any]) -> int | None:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def parse_rule_file(text: str, source: str) -> RuleFile:
    """Validate a rule file's text; ``RuleFileError`` names each problem with its line."""
    try:
        node = yaml.compose(text, Loader=RuleLoader)
        document = yaml.load(text, Loader=RuleLoader)  # noqa: S506 - RuleLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleFileError(source, [(line, f"not valid YAML: {problem}")]) from exc
    if node is None or not isinstance(document, dict):
        raise RuleFileError(source, [(1, "a rule file is a YAML mapping with a 'version'")])
    lines = _line_index(node)
    try:
        parsed = RuleFile.model_validate(document)
    except ValidationError as exc:
        problems = [
            (_line_of(lines, err["loc"]), f"{'.'.join(map(str, err['loc']))}: {err['msg']}")
            for err in exc.errors(include_input=False)
        ]
        raise RuleFileError(source, problems) from exc
    duplicate = _duplicate_ids(parsed.rules)
    if duplicate:
        raise RuleFileError(
            source,
            [
                (_line_of(lines, ("rules", i, "id")), f"rule id {rid!r} appears twice")
                for i, rid in duplicate
            ],
        )
    return parsed


def _duplicate_ids(rules: Sequence[RuleSpec]) -> list[tuple[int, str]]:
    seen: set[str] = set()
    duplicates = []
    for position, rule in enumerate(rules):
        if rule.id in seen:
            duplicates.append((position, rule.id))
        seen.add(rule.id)
    return duplicates


def merge(base: RuleFile, override: RuleFile) -> RuleFile:
    """``base`` with ``override`` applied: same-id rules replaced, maps merged by key."""
    rules = {rule.id: rule for rule in base.rules}
    rules.update({rule.id: rule for rule in override.rules})
    codes = CodesSpec(
        default={**base.codes.default, **override.codes.default},
        by_source=_merge_maps(base.codes.by_source, override.codes.by_source),
        by_agency=_merge_maps(base.codes.by_agency, override.codes.by_agency),
    )
    kinds = {kind.id: kind for kind in base.call_kinds}
    kinds.update({kind.id: kind for kind in override.call_kinds})
    senses = {tuple(sense.words): sense for sense in base.senses}
    senses.update({tuple(sense.words): sense for sense in override.senses})
    vocabulary = VocabularySpec(
        safe=[*base.vocabulary.safe, *override.vocabulary.safe],
        negated_only=[*base.vocabulary.negated_only, *override.vocabulary.negated_only],
        places=[*base.vocabulary.places, *override.vocabulary.places],
        ten_codes=[*base.vocabulary.ten_codes, *override.vocabulary.ten_codes],
        never_safe=[*base.vocabulary.never_safe, *override.vocabulary.never_safe],
    )
    return RuleFile(
        version=f"{base.version}+{override.version}",
        abbreviations={**base.abbreviations, **override.abbreviations},
        negation=override.negation or base.negation,
        rules=list(rules.values()),
        call_kinds=list(kinds.values()),
        vocabulary=vocabulary,
        senses=list(senses.values()),
        codes=codes,
    )


def _merge_maps(base: dict[str, CodeMap], extra: dict[str, CodeMap]) -> dict[str, CodeMap]:
    merged = {key: dict(value) for key, value in base.items()}
    for key, value in extra.items():
        merged.setdefault(key, {}).update(value)
    return merged


def compile_rules(
    spec: RuleFile, source: str, digest: str, dictionary: frozenset[str] = frozenset()
) -> RuleSet:
    """Check cross-references and build the lookup structures the classifier uses.

    ``dictionary`` (the packaged English words with no sense of harm) is understood like
    ``vocabulary.safe``, less every word the rule file gives another reading: a sense, a
    word understood only when negated, a word of a danger or risk phrase, or one listed in
    ``vocabulary.never_safe``."""
    rules = {r.id: _compile_rule(r) for r in spec.rules}
    kinds = {k.id: _compile_kind(k) for k in spec.call_kinds}
    problems = [
        (None, f"codes.{where}: code {code!r} names unknown rule or kind {rule_id!r}")
        for where, codes in _all_code_maps(spec.codes)
        for code, ids in codes.items()
        for rule_id in ids
        if rule_id not in rules and rule_id not in kinds
    ]
    problems.extend(_sense_problems(spec, rules))
    problems.extend(
        (None, f"call_kinds {k.id}: yields_to names unknown kind {other!r}")
        for k in spec.call_kinds
        for other in k.yields_to
        if other not in kinds
    )
    safe_words = frozenset(spec.vocabulary.safe) | frozenset(spec.vocabulary.places)
    problems.extend(
        (None, f"vocabulary.safe: {word!r} has a sense entry; it cannot also be safe")
        for sense in spec.senses
        for word in sense.words
        if word in safe_words
    )
    never_safe = frozenset(spec.vocabulary.never_safe) | street_words()
    problems.extend(
        (None, f"vocabulary.safe: {word!r} is listed in never_safe")
        for word in sorted(safe_words & never_safe)
    )
    problems.extend(
        (None, f"rule {r.id}: becomes names unknown rule {r.becomes!r}")
        for r in spec.rules
        if r.becomes is not None and r.becomes not in rules
    )
    problems.extend(
        (None, f"rule {r.id}: hypothetical needs becomes")
        for r in spec.rules
        if r.hypothetical and r.becomes is None
    )
    if spec.negation is None:
        problems.append((None, "negation: section missing"))
    if problems:
        raise RuleFileError(source, problems)
    assert spec.negation is not None  # noqa: S101 - checked above, narrows the type

    index: dict[str, list[tuple[Rule, Phrase]]] = {}
    prefix_index: dict[str, list[tuple[str, Rule, Phrase]]] = {}
    for rule in rules.values():
        for phrase in rule.phrases:
            if phrase.prefix[0]:
                first = phrase.words[0]
                prefix_index.setdefault(first[:PREFIX_KEY], []).append((first, rule, phrase))
            else:
                index.setdefault(phrase.words[0], []).append((rule, phrase))

    def code_map(codes: CodeMap) -> dict[str, tuple[str, ...]]:
        return {code_key(k): tuple(v) for k, v in codes.items()}

    senses = {}
    for sense_spec in spec.senses:
        sense = _compile_sense(sense_spec)
        senses.update(dict.fromkeys(sense.words, sense))
    if dictionary:
        harm_words = {
            word
            for rule in rules.values()
            if rule.kind in ("danger", "risk")
            for phrase in rule.phrases
            for word in phrase.words
        }
        safe_words |= dictionary - (
            never_safe | set(senses) | set(spec.vocabulary.negated_only) | harm_words
        )
    known = set(safe_words) | set(spec.vocabulary.negated_only) | set(senses)
    for phrase in _all_phrases(rules.values(), kinds.values()):
        known.update(w for w, prefix in zip(phrase.words, phrase.prefix, strict=True) if not prefix)

    kind_index: dict[str, list[tuple[CallKind, Phrase]]] = {}
    kind_prefixes = []
    for kind in kinds.values():
        for phrase in kind.phrases:
            if phrase.prefix[0]:
                kind_prefixes.append((phrase.words[0], kind, phrase))
            else:
                kind_index.setdefault(phrase.words[0], []).append((kind, phrase))

    return RuleSet(
        version=f"{spec.version}#{digest[:8]}",
        rules=rules,
        kinds=kinds,
        kind_index={k: tuple(v) for k, v in kind_index.items()},
        kind_prefixes=tuple(kind_prefixes),
        safe_words=safe_words,
        negated_only=frozenset(spec.vocabulary.negated_only),
        ten_codes=frozenset(spec.vocabulary.ten_codes),
        senses=senses,
        known_words=frozenset(known),
        abbreviations={
            k.upper(): tuple((v if isinstance(v, str) else " ".join(v)).upper().split())
            for k, v in spec.abbreviations.items()
        },
        negate_before=frozenset(spec.negation.before),
        negate_after=frozenset(spec.negation.after),
        negation_window=spec.negation.window,
        not_after_cue=frozenset(spec.negation.not_after_cue),
        terminators=frozenset(spec.negation.terminators),
        question=frozenset(spec.negation.question),
        answer_skip=frozenset(spec.negation.answer_skip),
        answers=frozenset(spec.negation.answers),
        negation_free=frozenset(spec.negation.free),
        after_ok=frozenset(spec.negation.after_ok),
        lists=frozenset(spec.negation.lists),
        danger_lists=frozenset(spec.negation.danger_lists),
        default_codes=code_map(spec.codes.default),
        source_codes={k: code_map(v) for k, v in spec.codes.by_source.items()},
        agency_codes={k.upper(): code_map(v) for k, v in spec.codes.by_agency.items()},
        index={k: tuple(v) for k, v in index.items()},
        prefix_index={k: tuple(v) for k, v in prefix_index.items()},
        never_safe=never_safe,
    )


def code_key(call_type: str) -> str:
    """A call type or a code-map key in one comparable form (case, spacing, '&', quotes)."""
    return " ".join(normalise(call_type).split())


def _all_code_maps(codes: CodesSpec) -> Iterable[tuple[str, CodeMap]]:
    yield "default", codes.default
    for key, value in codes.by_source.items():
        yield f"by_source.{key}", value
    for key, value in codes.by_agency.items():
        yield f"by_agency.{key}", value


def _sense_problems(spec: RuleFile, rules: Mapping[str, Rule]) -> list[tuple[None, str]]:
    problems: list[tuple[None, str]] = []
    for sense in spec.senses:
        name = "/".join(sense.words)
        for meaning, phrases in sense.means.items():
            if meaning != SAFE and meaning not in rules:
                problems.append((None, f"senses {name}: {meaning!r} is not 'safe' or a rule"))
            for phrase in phrases:
                if not set(phrase.split()) & set(sense.words):
                    problems.append((None, f"senses {name}: context {phrase!r} lacks the word"))
        if sense.otherwise not in (SAFE, UNKNOWN) and sense.otherwise not in rules:
            problems.append(
                (
                    None,
                    f"senses {name}: otherwise {sense.otherwise!r} is not a rule, "
                    "'safe' or 'unknown'",
                )
            )
    return problems


def _compile_sense(spec: SenseSpec) -> Sense:
    contexts = [
        (Phrase.parse(phrase), meaning)
        for meaning, phrases in spec.means.items()
        for phrase in phrases
    ]
    contexts.sort(key=lambda c: _MEANING_ORDER[c[1].split(".", 1)[0]])
    return Sense(frozenset(spec.words), tuple(contexts), spec.otherwise)


def _compile_kind(spec: CallKindSpec) -> CallKind:
    return CallKind(
        id=spec.id,
        family=spec.family,
        label=spec.label,
        phrases=tuple(Phrase.parse(p) for p in spec.phrases),
        verbal=tuple(Phrase.parse(p) for p in spec.verbal),
        yields_to=frozenset(spec.yields_to),
    )


def _all_phrases(rules: Iterable[Rule], kinds: Iterable[CallKind]) -> Iterable[Phrase]:
    for rule in rules:
        yield from rule.phrases
        yield from rule.unless
        yield from rule.resolved_by
    for kind in kinds:
        yield from kind.phrases
        yield from kind.verbal


def _compile_rule(spec: RuleSpec) -> Rule:
    unless = tuple(Phrase.parse(p) for p in spec.unless)
    return Rule(
        id=spec.id,
        kind=spec.kind,
        label=spec.label,
        phrases=tuple(Phrase.parse(p) for p in spec.phrases),
        fields=frozenset(spec.fields),
        negatable=spec.negatable,
        unless=unless,
        resolved_by=tuple(Phrase.parse(p) for p in spec.resolved_by),
        age_below=spec.age_below,
        any_hazard=spec.any_hazard,
        hypothetical=tuple(Phrase.parse(p) for p in spec.hypothetical),
        becomes=spec.becomes,
        hypothetical_bridge=frozenset(spec.hypothetical_bridge),
        resolver_negators=frozenset(spec.resolver_negators),
        age_bystanders=frozenset(spec.age_bystanders),
        not_hazards=frozenset(spec.not_hazards),
        unless_by_word=_by_word(unless),
        unless_always=tuple(p for p in unless if any(p.prefix)),
    )


def _by_word(phrases: Sequence[Phrase]) -> dict[str, tuple[Phrase, ...]]:
    index: dict[str, list[Phrase]] = {}
    for phrase in phrases:
        if any(phrase.prefix):
            continue
        for word in set(phrase.words):
            index.setdefault(word, []).append(phrase)
    return {word: tuple(found) for word, found in index.items()}


def default_rules_text() -> str:
    return resources.files("corespond.triage").joinpath("rules.yaml").read_text("utf-8")


@functools.cache
def packaged_dictionary() -> tuple[frozenset[str], str]:
    """The packaged dictionary (tools/build_dictionary.py) less the street words, and the
    SHA-256 of both files."""
    folder = resources.files("corespond.triage")
    text = folder.joinpath("dictionary.txt").read_text("utf-8")
    street = folder.joinpath("street_words.tsv").read_text("utf-8")
    digest = hashlib.sha256(text.encode())
    digest.update(street.encode())
    return frozenset(text.split()) - street_words(), digest.hexdigest()


@functools.cache
def street_words() -> frozenset[str]:
    """``street_words.tsv``: words whose street or slang sense is harm (BURNER, STRAP,
    LICK); never understood by a vocabulary alone, whatever their everyday sense."""
    text = resources.files("corespond.triage").joinpath("street_words.tsv").read_text("utf-8")
    return frozenset(
        line.split("\t", 1)[0] for line in text.splitlines() if line and not line.startswith("#")
    )


def _with_model(rules: RuleSet, digest: Any) -> RuleSet:
    """``rules`` with the packaged second opinion; its version is part of the rules'."""
    model = packaged_second_opinion()
    if model is None:
        return rules
    digest.update(model.version.encode())
    version = f"{rules.version.split('#')[0]}#{digest.hexdigest()[:8]}+model.{model.version}"
    return dataclasses.replace(rules, version=version, second_opinion=model)


@functools.cache
def _packaged_rules() -> RuleSet:
    text = default_rules_text()
    spec = parse_rule_file(text, "rules.yaml (packaged)")
    words, words_digest = packaged_dictionary()
    digest = hashlib.sha256(text.encode())
    digest.update(words_digest.encode())
    rules = compile_rules(spec, "rules.yaml (packaged)", digest.hexdigest(), words)
    return _with_model(rules, digest)


def load_rules(override: Path | None = None) -> RuleSet:
    """The packaged rules, with ``override`` applied if given. Raises ``RuleFileError``."""
    if override is None:
        return _packaged_rules()
    base_text = default_rules_text()
    spec = parse_rule_file(base_text, "rules.yaml (packaged)")
    words, words_digest = packaged_dictionary()
    digest = hashlib.sha256(base_text.encode())
    digest.update(words_digest.encode())
    try:
        text = override.read_text("utf-8")
    except OSError as exc:
        raise RuleFileError(str(override), [(None, f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise RuleFileError(str(override), [(None, "not UTF-8 text")]) from exc
    spec = merge(spec, parse_rule_file(text, str(override)))
    digest.update(text.encode())
    return _with_model(compile_rules(spec, str(override), digest.hexdigest(), words), digest)
