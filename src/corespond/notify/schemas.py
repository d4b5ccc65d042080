"""What a browser sends when it turns notifications on (the peer app, the supervisor page)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")

    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class SubscriptionIn(BaseModel):
    """A browser's PushSubscription, as ``subscription.toJSON()`` gives it."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=1000)
    keys: SubscriptionKeys
