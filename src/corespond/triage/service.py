"""Triage as the service runs it: the current rule set, and each call's decision history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.metrics import RULES_RELOAD_FAILURES, TRIAGE_DECISIONS, TURNED_DANGEROUS
from corespond.triage import repository
from corespond.triage.classifier import Reason, TriageDecision, TriageInput, classify
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
    the call just turned dangerous (it was eligible or under review, now shows danger)."""

    call_id: uuid.UUID
    decision: TriageDecision
    changed: bool
    turned_dangerous: bool
    was: str | None = None


async def triage(
    session: AsyncSession, call_id: uuid.UUID, inputs: TriageInput, rules: RuleSet
) -> Outcome:
    """Classify a call and record the decision, unless the same inputs under the same rules
    were decided already (then the history is left as it is).

    Danger is sticky: once any decision about a call found danger, later ones stay
    ineligible even if the text no longer says so (a narrative replaced by a partial update
    must not clear a knife that was reported).
    """
    earlier = await repository.history(session, call_id)
    decision = classify(inputs, rules)
    earlier_danger = [r for r in earlier if r.danger]
    if earlier_danger and not decision.danger:
        decision = _with_earlier_danger(decision, earlier_danger[-1])
    previous = earlier[-1] if earlier else None
    if (
        previous is not None
        and previous.inputs_sha256 == decision.inputs_sha256
        and previous.rules_version == decision.rules_version
    ):
        return Outcome(call_id, decision, changed=False, turned_dangerous=False)
    turned = (
        decision.danger
        and previous is not None
        and not previous.danger
        and any(r.decision in ("eligible", "review") for r in earlier)
    )
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
    return Outcome(
        call_id,
        decision,
        changed=True,
        turned_dangerous=turned,
        was=previous.decision if previous else None,
    )


def _with_earlier_danger(decision: TriageDecision, danger: TriageDecisionRecord) -> TriageDecision:
    rules = sorted({r["rule"] for r in danger.reasons if r.get("kind") == "danger"})
    reason = Reason(
        "policy.earlier_danger",
        "danger",
        "danger reported earlier on this call",
        f"{', '.join(rules)} at {danger.decided_at.isoformat(timespec='seconds')}",
    )
    return replace(
        decision,
        decision="ineligible",
        reasons=(reason, *decision.reasons),
        summary=f"ineligible: {reason.label} ({reason.detail})",
    )


async def latest(session: AsyncSession, call_id: uuid.UUID) -> TriageDecisionRecord | None:
    """The call's current decision."""
    return await repository.latest(session, call_id)


def announce(outcome: Outcome) -> None:
    """Metrics and the turned-dangerous alert, once the decision is safely recorded."""
    if not outcome.changed:
        return
    TRIAGE_DECISIONS.labels(outcome.decision.decision).inc()
    if outcome.turned_dangerous:
        TURNED_DANGEROUS.inc()
        log.warning(
            "call_turned_dangerous",
            call_id=str(outcome.call_id),
            was=outcome.was,
            rules=[r.rule for r in outcome.decision.reasons if r.kind == "danger"],
        )


async def history(session: AsyncSession, call_id: uuid.UUID) -> Sequence[TriageDecisionRecord]:
    """Every decision made about a call, oldest first."""
    return await repository.history(session, call_id)
