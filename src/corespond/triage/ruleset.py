"""The triage rule file: its schema, loading with line-numbered errors, and compiling.

A rule file is YAML. The packaged ``rules.yaml`` is the default; a deployment may name an
override file (``CORESPOND_TRIAGE_RULES_FILE``) whose sections extend or replace it: rules
with the same id are replaced, code mappings and abbreviations are merged key by key.
"""

from __future__ import annotations

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

from corespond.triage.text import normalise

Kind = Literal["danger", "risk", "substance"]
TextField = Literal["call_type", "description", "narrative", "hazards"]
ALL_FIELDS: tuple[TextField, ...] = ("call_type", "description", "narrative", "hazards")
# Words, a word ending in * (prefix), or _ (any one word, not first: "LEFT _ IN HIS TRUCK").
_PHRASE = re.compile(r"^[A-Z0-9]+\*?( ([A-Z0-9]+\*?|_))*$")
PREFIX_KEY = 3
_RULE_ID = re.compile(r"^(danger|risk|substance)\.[a-z0-9_]+$")


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
            raise ValueError("id must be danger.*, risk.* or substance.* in lower case")
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

    @field_validator(
        "before",
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


class RuleFile(BaseModel):
    """A whole rule file (the override file may leave any section out)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=40)
    abbreviations: dict[str, list[str] | str] = Field(default_factory=dict)
    negation: NegationSpec | None = None
    rules: list[RuleSpec] = Field(default_factory=list)
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
class RuleSet:
    """A validated, compiled rule set, ready for :func:`classify`."""

    version: str
    rules: Mapping[str, Rule]
    abbreviations: Mapping[str, tuple[str, ...]]
    negate_before: frozenset[str]
    negate_after: frozenset[str]
    negation_window: int
    not_after_cue: frozenset[str]
    terminators: frozenset[str]
    question: frozenset[str]
    answer_skip: frozenset[str]
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
    return RuleFile(
        version=f"{base.version}+{override.version}",
        abbreviations={**base.abbreviations, **override.abbreviations},
        negation=override.negation or base.negation,
        rules=list(rules.values()),
        codes=codes,
    )


def _merge_maps(base: dict[str, CodeMap], extra: dict[str, CodeMap]) -> dict[str, CodeMap]:
    merged = {key: dict(value) for key, value in base.items()}
    for key, value in extra.items():
        merged.setdefault(key, {}).update(value)
    return merged


def compile_rules(spec: RuleFile, source: str, digest: str) -> RuleSet:
    """Check cross-references and build the lookup structures the classifier uses."""
    rules = {r.id: _compile_rule(r) for r in spec.rules}
    problems = [
        (None, f"codes.{where}: code {code!r} names unknown rule {rule_id!r}")
        for where, codes in _all_code_maps(spec.codes)
        for code, ids in codes.items()
        for rule_id in ids
        if rule_id not in rules
    ]
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

    return RuleSet(
        version=f"{spec.version}#{digest[:8]}",
        rules=rules,
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
        negation_free=frozenset(spec.negation.free),
        after_ok=frozenset(spec.negation.after_ok),
        lists=frozenset(spec.negation.lists),
        danger_lists=frozenset(spec.negation.danger_lists),
        default_codes=code_map(spec.codes.default),
        source_codes={k: code_map(v) for k, v in spec.codes.by_source.items()},
        agency_codes={k.upper(): code_map(v) for k, v in spec.codes.by_agency.items()},
        index={k: tuple(v) for k, v in index.items()},
        prefix_index={k: tuple(v) for k, v in prefix_index.items()},
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
def _packaged_rules() -> RuleSet:
    text = default_rules_text()
    spec = parse_rule_file(text, "rules.yaml (packaged)")
    return compile_rules(spec, "rules.yaml (packaged)", hashlib.sha256(text.encode()).hexdigest())


def load_rules(override: Path | None = None) -> RuleSet:
    """The packaged rules, with ``override`` applied if given. Raises ``RuleFileError``."""
    if override is None:
        return _packaged_rules()
    base_text = default_rules_text()
    spec = parse_rule_file(base_text, "rules.yaml (packaged)")
    digest = hashlib.sha256(base_text.encode())
    try:
        text = override.read_text("utf-8")
    except OSError as exc:
        raise RuleFileError(str(override), [(None, f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise RuleFileError(str(override), [(None, "not UTF-8 text")]) from exc
    spec = merge(spec, parse_rule_file(text, str(override)))
    digest.update(text.encode())
    return compile_rules(spec, str(override), digest.hexdigest())
