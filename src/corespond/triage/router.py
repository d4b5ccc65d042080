"""``POST /v1/triage/classify``: the stateless dry run of the triage rules."""

from __future__ import annotations

from fastapi import APIRouter, Request

from corespond.auth.deps import Authorized
from corespond.errors import Forbidden, InvalidPayload, Unauthorized, problem_responses
from corespond.triage.classifier import TriageInput, classify
from corespond.triage.schemas import ClassifyRequest, ClassifyResponse
from corespond.triage.service import RuleBook

router = APIRouter(tags=["triage"])


@router.post(
    "/v1/triage/classify",
    response_model=ClassifyResponse,
    responses=problem_responses(Unauthorized, Forbidden, InvalidPayload),
)
async def classify_call(body: ClassifyRequest, request: Request, _: Authorized) -> ClassifyResponse:
    """Classify a call without storing anything: check a CAD code mapping or a narrative."""
    rulebook: RuleBook = request.app.state.rulebook
    call = body.call
    inputs = TriageInput(
        source=body.source,
        agency=call.agency,
        call_type=call.call_type,
        call_type_description=call.call_type_description,
        narrative=call.narrative,
        hazards=tuple(call.hazards),
    )
    return ClassifyResponse.of(classify(inputs, rulebook.rules))
