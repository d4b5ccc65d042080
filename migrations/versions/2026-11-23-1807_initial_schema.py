"""Initial schema: CAD sources and secrets, API keys, calls and the CAD event log.

Revision ID: 147c43ee18b9
Revises:
Create Date: 2026-11-23 18:07:59.809797+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "147c43ee18b9"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("scope_kind", sa.Text(), nullable=True),
        sa.Column("scope_value", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(scope_kind IS NULL AND scope_value IS NULL) OR (scope_kind IN ('agency', 'county', 'provider', 'peer') AND scope_value IS NOT NULL)",
            name=op.f("ck_api_key_scope_complete"),
        ),
        sa.CheckConstraint(
            "role IN ('dispatcher', 'peer', 'supervisor', 'provider_admin', 'auditor', 'admin')",
            name=op.f("ck_api_key_role_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_key_prefix")),
    )
    op.create_table(
        "cad_source",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("agencies", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name=op.f("ck_cad_source_id_slug")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cad_source")),
    )
    op.create_table(
        "cad_source_secret",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"], ["cad_source.id"], name=op.f("fk_cad_source_secret_source_id_cad_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cad_source_secret")),
    )
    op.create_index(
        op.f("ix_cad_source_secret_source_id"), "cad_source_secret", ["source_id"], unique=False
    )
    op.create_table(
        "call",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("incident_number", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=True),
        sa.Column("call_type", sa.Text(), nullable=True),
        sa.Column("call_type_description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("hazards", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"], ["cad_source.id"], name=op.f("fk_call_source_id_cad_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
        sa.UniqueConstraint(
            "source_id", "incident_number", name=op.f("uq_call_source_id_incident_number")
        ),
    )
    op.create_index(op.f("ix_call_agency"), "call", ["agency"], unique=False)
    op.create_index("ix_call_created_at_id", "call", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_call_status"), "call", ["status"], unique=False)
    op.create_table(
        "cad_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("incident_number", sa.Text(), nullable=False),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload_sha256", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"], name=op.f("fk_cad_event_call_id_call")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["cad_source.id"], name=op.f("fk_cad_event_source_id_cad_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cad_event")),
        sa.UniqueConstraint("source_id", "event_id", name=op.f("uq_cad_event_source_id_event_id")),
    )
    op.create_index(
        "ix_cad_event_call_id_occurred_at", "cad_event", ["call_id", "occurred_at"], unique=False
    )
    op.create_index(
        "ix_cad_event_pending",
        "cad_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_cad_event_pending",
        table_name="cad_event",
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.drop_index("ix_cad_event_call_id_occurred_at", table_name="cad_event")
    op.drop_table("cad_event")
    op.drop_index(op.f("ix_call_status"), table_name="call")
    op.drop_index("ix_call_created_at_id", table_name="call")
    op.drop_index(op.f("ix_call_agency"), table_name="call")
    op.drop_table("call")
    op.drop_index(op.f("ix_cad_source_secret_source_id"), table_name="cad_source_secret")
    op.drop_table("cad_source_secret")
    op.drop_table("cad_source")
    op.drop_table("api_key")
