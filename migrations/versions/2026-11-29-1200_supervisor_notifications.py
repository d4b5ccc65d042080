"""Supervisors notified when a request goes unfilled: their contact and channels, and push
subscriptions and notifications that belong to a supervisor's key instead of a peer

Revision ID: 6c2f8a1d4e93
Revises: 4e8d2a6c1b97
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6c2f8a1d4e93"
down_revision: str | None = "4e8d2a6c1b97"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supervisor_contact",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column(
            "notify_channels",
            postgresql.ARRAY(sa.Text()),
            server_default="{webpush}",
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_key.id"], name=op.f("fk_supervisor_contact_key_id_api_key")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_supervisor_contact")),
    )
    for table in ("push_subscription", "notification"):
        op.alter_column(table, "peer_id", existing_type=sa.Uuid(), nullable=True)
        op.add_column(table, sa.Column("key_id", sa.Uuid(), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_{table}_key_id_api_key"), table, "api_key", ["key_id"], ["id"]
        )
        op.create_index(op.f(f"ix_{table}_key_id"), table, ["key_id"])
        op.create_check_constraint(
            op.f(f"ck_{table}_one_owner"), table, "(peer_id IS NULL) <> (key_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE key_id IS NOT NULL")
    op.execute("DELETE FROM push_subscription WHERE key_id IS NOT NULL")
    for table in ("notification", "push_subscription"):
        op.drop_constraint(op.f(f"ck_{table}_one_owner"), table, type_="check")
        op.drop_index(op.f(f"ix_{table}_key_id"), table_name=table)
        op.drop_constraint(op.f(f"fk_{table}_key_id_api_key"), table, type_="foreignkey")
        op.drop_column(table, "key_id")
        op.alter_column(table, "peer_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_table("supervisor_contact")
