"""Triage as the service runs it: the current rule set, and each call's decision history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.metrics import RULES_RELOAD_FAILURES, TRIAGE_DECISIONS, TURNED_DANGEROUS
from corespond.triage import repository
from corespond.triage.classifier import TriageDecision, TriageInput, classify
from corespond.triage.models import TriageDecisionRecord
from corespond.triage.ruleset import RuleFileError, RuleSet, load_rules

log = structlog.get_logger(__name__)


class RuleBook:
    """The rule set in force. A broken override refuses to start; a broken reload is
    logged and the last good rule set stays in force."""

    def __init__(self, override: Path | None = None) -> None:
        self._override = override
        self._stamp = self._file_stamp()
        self._rules = load_rules(override)

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def _file_stamp(self) -> tuple[float, int] | None:
        if self._override is None:
            return None
        try:
            stat = self._override.stat()
        except OSError:
            return None
        return stat.st_mtime, stat.st_size

    def reload_if_changed(self) -> bool:
        """Reload the override file if it changed on disk; True if new rules are in force."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = load_rules(self._override)
        except RuleFileError as exc:
            RULES_RELOAD_FAILURES.inc()
            log.error(
                "triage_rules_reload_failed",
                kept_version=self._rules.version,
                problems=[f"{line or '-'}: {why}" for line, why in exc.problems],
            )
            return False
        log.info("triage_rules_reloaded", old=self._rules.version, new=rules.version)
        self._rules = rules
        return True


@dataclass(frozen=True)
class Outcome:
    """What triage did for a call: the decision in force, whether it is new, and whether
    the call just turned dangerous."""

    decision: TriageDecision
    changed: bool
    turned_dangerous: bool


async def triage(
    session: AsyncSession, call_id: uuid.UUID, inputs: TriageInput, rules: RuleSet
) -> Outcome:
    """Classify a call and record the decision, unless the same inputs under the same rules
    were decided already (then the history is left as it is)."""
    decision = classify(inputs, rules)
    previous = await repository.latest(session, call_id)
    if (
        previous is not None
        and previous.inputs_sha256 == decision.inputs_sha256
        and previous.rules_version == decision.rules_version
    ):
        return Outcome(decision, changed=False, turned_dangerous=False)
    turned = decision.danger and previous is not None and previous.decision != "ineligible"
    await repository.add(
        session,
        TriageDecisionRecord(
            call_id=call_id,
            decision=decision.decision,
            summary=decision.summary,
            reasons=[asdict(r) for r in decision.reasons],
            rules_version=decision.rules_version,
            inputs_sha256=decision.inputs_sha256,
            danger=decision.danger,
            turned_dangerous=turned,
        ),
    )
    TRIAGE_DECISIONS.labels(decision.decision).inc()
    if turned:
        TURNED_DANGEROUS.inc()
        log.warning(
            "call_turned_dangerous",
            call_id=str(call_id),
            was=previous.decision if previous else None,
            rules=[r.rule for r in decision.reasons if r.kind == "danger"],
        )
    return Outcome(decision, changed=True, turned_dangerous=turned)


async def history(session: AsyncSession, call_id: uuid.UUID) -> Sequence[TriageDecisionRecord]:
    """Every decision made about a call, oldest first."""
    return await repository.history(session, call_id)
