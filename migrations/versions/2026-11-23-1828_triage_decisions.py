"""Triage decisions: their history table, and the current decision on each call.

Revision ID: 3378b06a4c03
Revises: 147c43ee18b9
Create Date: 2026-11-23 18:28:13.851465+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3378b06a4c03"
down_revision: str | None = "147c43ee18b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "triage_decision",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rules_version", sa.Text(), nullable=False),
        sa.Column("inputs_sha256", sa.Text(), nullable=False),
        sa.Column("danger", sa.Boolean(), nullable=False),
        sa.Column("turned_dangerous", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "decision IN ('eligible', 'review', 'ineligible')",
            name=op.f("ck_triage_decision_decision_known"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_triage_decision_call_id_call")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_decision")),
    )
    op.create_index(
        "ix_triage_decision_call_id_id", "triage_decision", ["call_id", "id"], unique=False
    )
    op.add_column("call", sa.Column("decision", sa.Text(), nullable=True))
    op.add_column("call", sa.Column("decision_summary", sa.Text(), nullable=True))
    op.add_column("call", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("call", sa.Column("decision_rules_version", sa.Text(), nullable=True))
    op.add_column(
        "call", sa.Column("turned_dangerous_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(op.f("ix_call_decision"), "call", ["decision"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_call_decision"), table_name="call")
    op.drop_column("call", "turned_dangerous_at")
    op.drop_column("call", "decision_rules_version")
    op.drop_column("call", "decided_at")
    op.drop_column("call", "decision_summary")
    op.drop_column("call", "decision")
    op.drop_index("ix_triage_decision_call_id_id", table_name="triage_decision")
    op.drop_table("triage_decision")
