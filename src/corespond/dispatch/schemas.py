"""What a CAD's callback receives: the assignment message, as a schema (in the OpenAPI
document under `webhooks`, and as JSON Schema in docs/callback-message.schema.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CallbackType = Literal[
    "assignment.offered",
    "assignment.accepted",
    "assignment.declined",
    "assignment.expired",
    "assignment.scene_secure",
    "assignment.en_route",
    "assignment.on_scene",
    "assignment.cleared",
    "assignment.cancelled",
    "assignment.unfilled",
]


class CallbackAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    status: str = Field(description="offered, accepted, en_route, on_scene, cleared, …")
    offered_at: datetime | None
    expires_at: datetime | None = Field(description="When an open offer lapses.")
    accepted_at: datetime | None
    en_route_at: datetime | None
    on_scene_at: datetime | None
    ended_at: datetime | None
    scene_secure_required: bool = Field(
        description="The peer waits (staged) until police report the scene secure."
    )
    scene_secured_at: datetime | None
    cancel_reason: str | None = Field(
        description="call_closed, call_cancelled, danger, dispatcher, … on a cancellation."
    )
    next_available_at: datetime | None = Field(
        description="On assignment.unfilled: when a peer is next expected to be free."
    )
    fallback: bool = Field(description="Offered outside the call's own county.")


class CallbackCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    incident_number: str


class CallbackPeer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    display_name: str
    provider: str
    phone: str | None


class CallbackData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sequence: int = Field(ge=1, description="The call's messages are numbered 1, 2, … in order.")
    assignment: CallbackAssignment
    call: CallbackCall
    peer: CallbackPeer | None


class CallbackMessage(BaseModel):
    """One assignment change, POSTed to the source's callback URL, signed (Standard
    Webhooks) with the source's secret; the same body is in the resync feed."""

    model_config = ConfigDict(extra="forbid", title="CallbackMessage")

    type: CallbackType
    timestamp: datetime
    data: CallbackData
