"""SMS as a second channel, escalation at half the deadline, peers' channel order; the key
a peer's sign-in made

Revision ID: 4e8d2a6c1b97
Revises: 9a41c7e2b5d3
Create Date: 2026-11-29 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4e8d2a6c1b97"
down_revision: str | None = "9a41c7e2b5d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("peer_sign_in", sa.Column("key_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_peer_sign_in_key_id_api_key"), "peer_sign_in", "api_key", ["key_id"], ["id"]
    )
    op.add_column(
        "peer",
        sa.Column(
            "notify_channels",
            postgresql.ARRAY(sa.Text()),
            server_default="{webpush,sms}",
            nullable=False,
        ),
    )
    op.alter_column("notification", "subscription_id", existing_type=sa.Uuid(), nullable=True)
    op.add_column(
        "notification",
        sa.Column("only_if_offered", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column("notification", sa.Column("provider_message_id", sa.Text(), nullable=True))
    op.add_column("notification", sa.Column("delivery_status", sa.Text(), nullable=True))
    op.create_index(
        op.f("ix_notification_provider_message_id"), "notification", ["provider_message_id"]
    )
    op.drop_constraint(op.f("ck_notification_state_known"), "notification", type_="check")
    op.create_check_constraint(
        op.f("ck_notification_state_known"),
        "notification",
        "state IN ('pending', 'sent', 'dead', 'skipped')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_notification_state_known"), "notification", type_="check")
    op.execute("DELETE FROM notification WHERE state = 'skipped' OR subscription_id IS NULL")
    op.create_check_constraint(
        op.f("ck_notification_state_known"), "notification", "state IN ('pending', 'sent', 'dead')"
    )
    op.drop_index(op.f("ix_notification_provider_message_id"), table_name="notification")
    op.drop_column("notification", "delivery_status")
    op.drop_column("notification", "provider_message_id")
    op.drop_column("notification", "only_if_offered")
    op.alter_column("notification", "subscription_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("peer", "notify_channels")
    op.drop_constraint(op.f("fk_peer_sign_in_key_id_api_key"), "peer_sign_in", type_="foreignkey")
    op.drop_column("peer_sign_in", "key_id")
