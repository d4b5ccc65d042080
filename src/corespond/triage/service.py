"""Triage as the service runs it: the current rule set, and each call's decision history."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

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
    must not clear a knife that was reported), until a supervisor overrides it (police
    reported it unfounded, ``override_danger``): then the call is at most ``review``, and
    any danger in inputs other than those it was made on makes it ineligible again.
    """
    outcome, record = _decide(call_id, inputs, rules, await repository.history(session, call_id))
    if record is not None:
        await repository.add(session, record)
    return outcome


_TURN_SECONDS = 0.005


async def triage_many(
    session: AsyncSession, inputs: Mapping[uuid.UUID, TriageInput], rules: RuleSet
) -> dict[uuid.UUID, Outcome]:
    """``triage`` for several calls: their histories read in one query, the new decisions
    written at the next flush."""
    histories = await repository.histories(session, list(inputs))
    outcomes: dict[uuid.UUID, Outcome] = {}
    turn = time.perf_counter()
    for call_id, call_inputs in inputs.items():
        # A batch classifies for tens of milliseconds: every few, the process's requests go
        # in between (each turn given up waits behind them all, so not after every call).
        if time.perf_counter() - turn > _TURN_SECONDS:
            await asyncio.sleep(0)
            turn = time.perf_counter()
        outcome, record = _decide(call_id, call_inputs, rules, histories.get(call_id, []))
        if record is not None:
            session.add(record)
        outcomes[call_id] = outcome
    return outcomes


def _decide(
    call_id: uuid.UUID,
    inputs: TriageInput,
    rules: RuleSet,
    earlier: Sequence[TriageDecisionRecord],
) -> tuple[Outcome, TriageDecisionRecord | None]:
    """The decision on ``inputs`` given the call's history (``triage``), and the record to
    add for it (None: the same inputs under the same rules were decided already)."""
    decision = classify(inputs, rules)
    # A supervisor's override (police found the danger unfounded) holds for the danger
    # signals it overrode; a new one counts, and only danger reported since it is sticky.
    overrides = [i for i, r in enumerate(earlier) if r.override_by is not None]
    since = earlier[overrides[-1] + 1 :] if overrides else earlier
    if overrides:
        override = earlier[overrides[-1]]
        # The override was made on these inputs. New inputs that show danger are a new
        # report (the same word again, "NOW WAVING KNIFE", too): the decision stands. New
        # inputs without danger stay at most review: a person decides (fail closed).
        if decision.inputs_sha256 == override.inputs_sha256 or not decision.danger:
            decision = _keep_override(decision, override, earlier[: overrides[-1]])
    earlier_danger = [r for r in since if r.danger]
    if earlier_danger and not decision.danger:
        decision = _with_earlier_danger(decision, earlier_danger[-1])
    previous = earlier[-1] if earlier else None
    if (
        previous is not None
        and previous.inputs_sha256 == decision.inputs_sha256
        and previous.rules_version == decision.rules_version
    ):
        return Outcome(call_id, decision, changed=False, turned_dangerous=False), None
    turned = (
        decision.danger
        and previous is not None
        and not previous.danger
        and any(r.decision in ("eligible", "review") for r in earlier)
    )
    record = TriageDecisionRecord(
        call_id=call_id,
        decision=decision.decision,
        summary=decision.summary,
        reasons=[_stored(r) for r in decision.reasons],
        rules_version=decision.rules_version,
        inputs_sha256=decision.inputs_sha256,
        danger=decision.danger,
        turned_dangerous=turned,
    )
    outcome = Outcome(
        call_id,
        decision,
        changed=True,
        turned_dangerous=turned,
        was=previous.decision if previous else None,
    )
    return outcome, record


_REASON_FIELDS = tuple(f.name for f in fields(Reason))


def _stored(reason: Reason) -> dict[str, Any]:
    """A reason as its decision record keeps it (``dataclasses.asdict`` of it, without the
    deep copy: its fields are strings)."""
    return {name: getattr(reason, name) for name in _REASON_FIELDS}


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


OVERRIDE_RULE = "policy.danger_overridden"
OVERRIDE_LABEL = "danger reported unfounded by police; a person decides"
OVERRIDE_SUMMARY = "review: danger reported unfounded by police (supervisor override)"


def _danger_signals(records: Sequence[TriageDecisionRecord]) -> set[tuple[str, str | None]]:
    """The danger signals (rule and matched text) these decisions found."""
    return {
        (reason["rule"], reason.get("detail"))
        for record in records
        for reason in record.reasons
        if reason.get("kind") == "danger" and reason["rule"] != "policy.earlier_danger"
    }


def _keep_override(
    decision: TriageDecision,
    override: TriageDecisionRecord,
    before: Sequence[TriageDecisionRecord],
) -> TriageDecision:
    """``decision`` as a supervisor's override leaves it. A danger signal the override did
    not cover (another rule, other words) counts: the decision stands. Otherwise the call is
    at most ``review`` from then on: the overridden signals are ``resolved``, and a call the
    text alone would make eligible still waits for a person (fail closed)."""
    danger = [r for r in decision.reasons if r.kind == "danger"]
    overridden = _danger_signals(before)
    if any((r.rule, r.detail) not in overridden for r in danger):
        return decision
    if decision.decision == "ineligible" and not danger:
        return decision  # ineligible for another reason (no substance use): not overridden
    policy = next((r for r in override.reasons if r["rule"] == OVERRIDE_RULE), {})
    reasons = (
        Reason(OVERRIDE_RULE, "policy", OVERRIDE_LABEL, str(policy.get("detail") or "")),
        *(replace(r, kind="resolved") if r.kind == "danger" else r for r in decision.reasons),
    )
    summary = decision.summary if decision.decision == "review" else OVERRIDE_SUMMARY
    return replace(decision, decision="review", reasons=reasons, summary=summary)


async def override_danger(
    session: AsyncSession, call_id: uuid.UUID, by: str, reason: str, at: datetime
) -> TriageDecisionRecord:
    """Record a supervisor's override of the danger in a call's current decision (police
    reported it unfounded): a ``review`` decision whose reasons say who and why, with the
    danger signals marked ``resolved``. The caller has checked that the call turned
    dangerous and holds its row lock."""
    last = await repository.latest(session, call_id)
    policy = asdict(Reason(OVERRIDE_RULE, "policy", OVERRIDE_LABEL, f"by {by}: {reason}"))
    reasons = [policy] + [
        {**r, "kind": "resolved"} if r.get("kind") == "danger" else r
        for r in (last.reasons if last is not None else [])
    ]
    record = await repository.add(
        session,
        TriageDecisionRecord(
            call_id=call_id,
            decision="review",
            summary=OVERRIDE_SUMMARY,
            reasons=reasons,
            # The same inputs under the same rules: deciding them again changes nothing.
            rules_version=last.rules_version if last is not None else "",
            inputs_sha256=last.inputs_sha256 if last is not None else "",
            danger=False,
            turned_dangerous=False,
            override_by=by,
            decided_at=at,
        ),
    )
    log.warning("call_danger_overridden", call_id=str(call_id), by=by)
    return record


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
