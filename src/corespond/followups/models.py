"""Follow-up tasks: after a contact with a person who consented, the program's schedule
(``CORESPOND_FOLLOWUP_SCHEDULE``: by default the next day, 72 hours, 7 and 30 days, then
monthly to a year) as one row per step, assigned to the peer who met them or to the
provider's team; each done with an outcome, or escalated to the provider's admin once it is
overdue. A Quick Response Team visit is a follow-up of its own kind; one made by a QRT of the
directory (``organization_id``) shares the person with it, and so needs a live consent
naming it for follow-up: revoked (or signed again without it), the visit is cancelled."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from corespond.db import Base

TASK_KINDS = ("follow_up", "qrt_visit")
STATES = ("open", "done", "cancelled")
OUTCOMES = ("reached", "not_reached", "in_treatment", "relapse", "declined", "deceased")
# Outcomes after which the person is not followed up again.
ENDING = ("declined", "deceased")
# Outcomes that mean the person was actually reached (engagement).
REACHED = ("reached", "in_treatment", "relapse")


class FollowUp(Base):
    """One follow-up of a person: when it is due, by when it is overdue, who does it, and
    what came of it."""

    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint(f"kind IN {TASK_KINDS!r}", name="kind_known"),
        CheckConstraint(f"state IN {STATES!r}", name="state_known"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES!r}", name="outcome_known"),
        CheckConstraint("(state = 'done') = (outcome IS NOT NULL)", name="done_has_outcome"),
        CheckConstraint("overdue_at >= due_at", name="overdue_after_due"),
        Index("ix_follow_up_provider_due", "provider_id", "state", "due_at"),
        Index(
            "ix_follow_up_overdue",
            "overdue_at",
            postgresql_where=text("state = 'open' AND escalated_at IS NULL"),
        ),
        Index("ix_follow_up_due_at", "due_at"),
        CheckConstraint(
            "organization_id IS NULL OR kind = 'qrt_visit'", name="organization_makes_qrt_visits"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("person.id"), index=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("provider.id"))
    # The contact whose schedule this step belongs to (null: added by hand, e.g. a QRT visit).
    contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contact.id"), index=True)
    kind: Mapped[str] = mapped_column(Text, server_default="follow_up")
    # The schedule's step ("1d", "72h", "2m"…), or "added" for one made by hand.
    step: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    overdue_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Null: the provider's team (anyone of its peers may take it).
    assignee_peer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("peer.id"), index=True)
    state: Mapped[str] = mapped_column(Text, server_default="open")
    outcome: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(Text)
    cancelled_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A QRT visit made by a Quick Response Team of the directory (its organization id): the
    # person is shared with it, under their consent. Null: the provider's own peers.
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("directory_organization.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
