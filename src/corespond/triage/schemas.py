"""Triage as the API shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from corespond.ingest.schemas import (
    CadLocation,
    CadStatus,
    Hazard,
    IncidentNumber,
    MidText,
    Narrative,
    ShortText,
)
from corespond.triage.classifier import TriageDecision


class TriageCall(BaseModel):
    """A call as in a CAD event; every field optional (only the text fields matter)."""

    model_config = ConfigDict(extra="forbid")

    incident_number: IncidentNumber | None = None
    agency: ShortText | None = None
    call_type: ShortText | None = None
    call_type_description: MidText | None = None
    priority: int | None = Field(default=None, ge=0, le=99, strict=True)
    location: CadLocation | None = None
    narrative: Narrative | None = None
    hazards: list[Hazard] = Field(default_factory=list, max_length=32)
    status: CadStatus | None = None


class ClassifyRequest(BaseModel):
    """A dry run: classify this call as if it came from ``source``; nothing is stored."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "kanawha-911",
                    "call": {
                        "agency": "CHARLESTON PD",
                        "call_type": "OD",
                        "call_type_description": "OVERDOSE",
                        "narrative": "SUBJ REVIVED WITH NARCAN, CONSCIOUS, NO WEAPONS SEEN",
                        "hazards": [],
                    },
                }
            ]
        },
    )

    source: ShortText | None = Field(
        default=None, description="CAD source id, for its own code mappings."
    )
    call: TriageCall


class ReasonOut(BaseModel):
    rule: str = Field(description="Rule id, e.g. danger.weapon.")
    kind: Literal[
        "danger",
        "risk",
        "exclusion",
        "substance",
        "kind",
        "negated",
        "resolved",
        "policy",
        "model",
    ] = Field(
        description="danger: makes the call ineligible; policy: what the decision rests on "
        "or what eligible would need; risk and exclusion: send it to review; substance and "
        "kind: the positive evidence; negated and resolved: read, and found not to count; "
        "model: the learned second opinion's reading and version (it can only lower an "
        "eligible decision to review)."
    )
    label: str = Field(description="What the rule means, for a dispatcher.")
    detail: str = Field(description="The text that made it fire, and where.")


class ClassifyResponse(BaseModel):
    decision: Literal["eligible", "review", "ineligible"]
    summary: str = Field(description="The decision and its reasons in one line.")
    reasons: list[ReasonOut]
    rules_version: str

    @classmethod
    def of(cls, decision: TriageDecision) -> ClassifyResponse:
        return cls(
            decision=decision.decision,
            summary=decision.summary,
            reasons=[
                ReasonOut(rule=r.rule, kind=r.kind, label=r.label, detail=r.detail)
                for r in decision.reasons
            ],
            rules_version=decision.rules_version,
        )


class TriageRecordOut(BaseModel):
    """One decision in a call's triage history."""

    decision: Literal["eligible", "review", "ineligible"]
    summary: str
    reasons: list[ReasonOut]
    rules_version: str
    inputs_sha256: str
    turned_dangerous: bool
    decided_at: datetime
