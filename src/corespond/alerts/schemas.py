"""Alerts as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from corespond.alerts.models import Alert
from corespond.alerts.service import notices_of, state_of
from corespond.kit.validators import ReasonText

Kind = Literal["unfilled", "deliveries_failing", "credential_expiring"]
State = Literal["open", "acknowledged", "resolved"]


class AlertOut(BaseModel):
    """An alert and its history: raised, told (how often, what became of each notice),
    acknowledged (by whom, when), resolved (why)."""

    id: uuid.UUID
    kind: Kind = Field(
        description="unfilled: no peer could be offered a call; deliveries_failing: a CAD "
        "source has dead letters or has been failing for longer than the threshold; "
        "credential_expiring: a peer's required credential expires soon or has expired."
    )
    state: State = Field(
        description="open: told again every so often; acknowledged: a supervisor has seen "
        "to it, never told again; resolved: its cause is gone."
    )
    title: str
    detail: str
    counties: list[str] | None = Field(
        description="FIPS codes whose supervisors see it; null: statewide (unscoped keys)."
    )
    raised_at: datetime
    notices: int = Field(description="Rounds of notices sent to the supervisors in scope.")
    last_notice_at: datetime | None
    next_notice_at: datetime | None = Field(
        description="When they are told again; null once acknowledged or resolved."
    )
    told: list[str] = Field(
        description="What became of each notice, e.g. `push sent`, `SMS skipped`."
    )
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_note: str | None
    resolved_at: datetime | None
    resolved_reason: str | None
    call_id: uuid.UUID | None
    assignment_id: uuid.UUID | None
    source_id: str | None
    peer_id: uuid.UUID | None

    @classmethod
    def of(cls, alert: Alert, told: list[str]) -> AlertOut:
        return cls(
            id=alert.id,
            kind=alert.kind,  # type: ignore[arg-type]
            state=state_of(alert),  # type: ignore[arg-type]
            title=alert.title,
            detail=alert.detail,
            counties=alert.counties,
            raised_at=alert.raised_at,
            notices=alert.notices,
            last_notice_at=alert.last_notice_at,
            next_notice_at=alert.next_notice_at,
            told=told,
            acknowledged_at=alert.acknowledged_at,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_note=alert.acknowledged_note,
            resolved_at=alert.resolved_at,
            resolved_reason=alert.resolved_reason,
            call_id=alert.call_id,
            assignment_id=alert.assignment_id,
            source_id=alert.source_id,
            peer_id=alert.peer_id,
        )


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
    order: Literal["newest_first"] = "newest_first"


class AcknowledgeIn(BaseModel):
    """Acknowledging an alert (the body is optional)."""

    model_config = ConfigDict(extra="forbid")

    note: ReasonText | None = Field(
        default=None, description="What was done about it; kept with the alert and audited."
    )


async def alert_views(session: AsyncSession, alerts: list[Alert]) -> list[AlertOut]:
    """The alerts as the API and the supervisor page show them, with their notices."""
    told = await notices_of(session, [a.id for a in alerts])
    return [AlertOut.of(a, told.get(a.id, [])) for a in alerts]
