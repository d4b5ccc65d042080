"""An integrator's dry run (`?validate=true`, a mapping preview): what an event would set on
its call and how triage reads it; nothing is stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from corespond.ingest.schemas import CadEvent
from corespond.triage.classifier import TriageInput, classify
from corespond.triage.ruleset import RuleSet
from corespond.triage.schemas import ClassifyResponse


class EventValidation(BaseModel):
    """The answer to `?validate=true`: nothing was stored."""

    event_id: str
    valid: bool = Field(description="Always true: an invalid event is answered 4xx.")
    stored: bool = Field(description="Always false for a dry run.")
    call: dict[str, Any] = Field(description="The call fields this event sets, as read.")
    ignored_fields: list[str] = Field(description="Fields the contract does not know.")
    triage: ClassifyResponse = Field(
        description="How triage reads this event's own fields (an update carries only the "
        "fields that changed, so its reading is of those alone)."
    )


def describe(event: CadEvent, ignored: dict[str, Any], rules: RuleSet) -> EventValidation:
    """A dry run's answer: the call fields ``event`` sets and how triage reads them."""
    call = event.call
    inputs = TriageInput(
        agency=call.agency,
        call_type=call.call_type,
        call_type_description=call.call_type_description,
        narrative=call.narrative,
        hazards=tuple(call.hazards or ()),
    )
    return EventValidation(
        event_id=event.event_id,
        valid=True,
        stored=False,
        call={"incident_number": call.incident_number, **event.changes()},
        ignored_fields=sorted(ignored),
        triage=ClassifyResponse.of(classify(inputs, rules)),
    )
