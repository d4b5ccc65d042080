"""A call as the pipeline left it, for the API's call views: the events folded into it, its
decisions, and what came of it (its assignment), each read from the domain that keeps it."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from corespond.assignments import views as assignments
from corespond.auth.service import Principal
from corespond.calls.models import Call
from corespond.calls.schemas import (
    CallAssignment,
    CallDetail,
    CallEventOut,
    CallOut,
    CallTriageReason,
    CallTriageRecord,
)
from corespond.ingest import service as ingest
from corespond.triage import service as triage

# Outcomes are for program evaluation: these roles read them, no other (a new role does not).
OUTCOME_READERS = frozenset({"supervisor", "auditor", "admin", "provider_admin"})


async def assignment_briefs(
    session: AsyncSession, principal: Principal, call_ids: list[uuid.UUID]
) -> dict[uuid.UUID, CallAssignment]:
    """Each call's live assignment, else its latest, as a call view shows it."""
    found = await assignments.latest_for_calls(session, call_ids)
    # Outcomes are for program evaluation, never for dispatch (as on the assignment).
    outcomes = principal.role in OUTCOME_READERS
    return {
        call_id: CallAssignment(
            id=assignment.id,
            status=assignment.status,
            peer_id=assignment.peer_id,
            peer_display_name=peer.display_name if peer else None,
            provider_id=assignment.provider_id,
            expires_at=assignment.expires_at,
            scene_secured_at=assignment.scene_secured_at,
            next_available_at=assignment.next_available_at,
            outcome=assignment.outcome if outcomes else None,
            referrals=list(assignment.referrals or []) if outcomes else None,
        )
        for call_id, (assignment, peer) in found.items()
    }


async def call_detail(session: AsyncSession, principal: Principal, call: Call) -> CallDetail:
    """A call with its events, its triage decisions and its assignment."""
    history = await ingest.event_history(session, call.id)
    events = [
        CallEventOut(
            event_id=e.event_id,
            event_type=e.event_type,
            occurred_at=e.occurred_at,
            received_at=e.received_at,
            processed=e.processed,
        )
        for e in history
    ]
    decisions = [
        CallTriageRecord(
            decision=record.decision,  # type: ignore[arg-type]
            summary=record.summary,
            # A purged call's reasons have lost the text they matched ("detail").
            reasons=[
                CallTriageReason(
                    rule=reason["rule"],
                    kind=reason["kind"],
                    label=reason["label"],
                    detail=None if call.purged_at is not None else reason.get("detail"),
                )
                for reason in record.reasons
            ],
            rules_version=record.rules_version,
            inputs_sha256=record.inputs_sha256,
            turned_dangerous=record.turned_dangerous,
            override_by=record.override_by,
            decided_at=record.decided_at,
        )
        for record in await triage.history(session, call.id)
    ]
    brief = (await assignment_briefs(session, principal, [call.id])).get(call.id)
    return CallDetail(
        **CallOut.of(call).model_dump(exclude={"assignment"}),
        assignment=brief,
        events=events,
        triage=decisions,
    )
