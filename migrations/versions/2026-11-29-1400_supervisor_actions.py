"""Supervisor actions: alerts a supervisor lists and acknowledges (notifications tied to
them), a supervisor's override of a call's danger kept in the triage history, and the cancel
reasons of a supervisor's cancellation and reassignment

Revision ID: 9b3e5d7f2a14
Revises: 8b1e4f2a9c57
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9b3e5d7f2a14"
down_revision: str | None = "8b1e4f2a9c57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REASONS = "('dispatcher', 'danger', 'call_cancelled', 'call_closed')"
NEW_REASONS = (
    "('dispatcher', 'supervisor', 'danger', 'call_cancelled', 'call_closed', 'reassigned')"
)


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("counties", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("notice", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notices", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_notice_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        sa.Column("acknowledged_key_id", sa.Uuid(), nullable=True),
        sa.Column("acknowledged_note", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_reason", sa.Text(), nullable=True),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("assignment_id", sa.Uuid(), nullable=True),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("peer_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('unfilled', 'deliveries_failing', 'credential_expiring')",
            name=op.f("ck_alert_kind_known"),
        ),
        sa.CheckConstraint(
            "(acknowledged_at IS NULL) = (acknowledged_by IS NULL)",
            name=op.f("ck_alert_acknowledged_by_whom"),
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_key_id"],
            ["api_key.id"],
            name=op.f("fk_alert_acknowledged_key_id_api_key"),
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignment.id"], name=op.f("fk_alert_assignment_id_assignment")
        ),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"], name=op.f("fk_alert_call_id_call")),
        sa.ForeignKeyConstraint(["peer_id"], ["peer.id"], name=op.f("fk_alert_peer_id_peer")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["cad_source.id"], name=op.f("fk_alert_source_id_cad_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
    )
    op.create_index(op.f("ix_alert_call_id"), "alert", ["call_id"])
    op.create_index("ix_alert_raised_at_id", "alert", ["raised_at", "id"])
    op.create_index(
        "ix_alert_next_notice_at",
        "alert",
        ["next_notice_at"],
        postgresql_where=sa.text("resolved_at IS NULL AND acknowledged_at IS NULL"),
    )
    op.create_index(
        "uq_alert_open_subject",
        "alert",
        ["kind", "subject"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )

    op.add_column("notification", sa.Column("alert_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_notification_alert_id_alert"), "notification", "alert", ["alert_id"], ["id"]
    )
    op.create_index(op.f("ix_notification_alert_id"), "notification", ["alert_id"])

    op.add_column("triage_decision", sa.Column("override_by", sa.Text(), nullable=True))

    op.drop_constraint(op.f("ck_assignment_cancel_reason_known"), "assignment", type_="check")
    op.create_check_constraint(
        op.f("ck_assignment_cancel_reason_known"),
        "assignment",
        f"cancel_reason IS NULL OR cancel_reason IN {NEW_REASONS}",
    )


def downgrade() -> None:
    # Reasons the older schema does not know become the nearest it does.
    op.execute(
        "UPDATE assignment SET cancel_reason = 'dispatcher' WHERE cancel_reason IN ('supervisor', 'reassigned')"
    )
    op.drop_constraint(op.f("ck_assignment_cancel_reason_known"), "assignment", type_="check")
    op.create_check_constraint(
        op.f("ck_assignment_cancel_reason_known"),
        "assignment",
        f"cancel_reason IS NULL OR cancel_reason IN {OLD_REASONS}",
    )
    op.drop_column("triage_decision", "override_by")
    op.drop_index(op.f("ix_notification_alert_id"), table_name="notification")
    op.drop_constraint(op.f("fk_notification_alert_id_alert"), "notification", type_="foreignkey")
    op.drop_column("notification", "alert_id")
    op.drop_index("uq_alert_open_subject", table_name="alert")
    op.drop_index("ix_alert_next_notice_at", table_name="alert")
    op.drop_index("ix_alert_raised_at_id", table_name="alert")
    op.drop_index(op.f("ix_alert_call_id"), table_name="alert")
    op.drop_table("alert")
