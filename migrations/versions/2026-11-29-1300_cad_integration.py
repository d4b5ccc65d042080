"""CAD integration: a source's format (native, EIDO or a declared mapping) and time zone, a
key role for a CAD's integrator scoped to its source, and a feed position on outbox messages
for the resync feed

Revision ID: 8b1e4f2a9c57
Revises: 6c2f8a1d4e93
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "8b1e4f2a9c57"
down_revision: str | None = "6c2f8a1d4e93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = "('dispatcher', 'peer', 'supervisor', 'provider_admin', 'auditor', 'admin')"
NEW_ROLES = (
    "('dispatcher', 'peer', 'supervisor', 'provider_admin', 'auditor', 'admin', 'cad_integrator')"
)
OLD_SCOPES = "('agency', 'county', 'provider', 'peer')"
NEW_SCOPES = "('agency', 'county', 'provider', 'peer', 'source')"


def _key_constraints(roles: str, scopes: str) -> None:
    op.drop_constraint(op.f("ck_api_key_role_known"), "api_key", type_="check")
    op.drop_constraint(op.f("ck_api_key_scope_complete"), "api_key", type_="check")
    op.create_check_constraint(op.f("ck_api_key_role_known"), "api_key", f"role IN {roles}")
    op.create_check_constraint(
        op.f("ck_api_key_scope_complete"),
        "api_key",
        f"(scope_kind IS NULL AND scope_value IS NULL) OR "
        f"(scope_kind IN {scopes} AND scope_value IS NOT NULL)",
    )


def upgrade() -> None:
    op.add_column(
        "cad_source", sa.Column("format", sa.Text(), server_default="native", nullable=False)
    )
    op.add_column(
        "cad_source",
        sa.Column("field_mapping", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("cad_source", sa.Column("timezone", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_cad_source_format_known"),
        "cad_source",
        "format IN ('native', 'eido', 'mapped') AND (format <> 'mapped' OR field_mapping "
        "IS NOT NULL)",
    )
    _key_constraints(NEW_ROLES, NEW_SCOPES)
    op.execute("CREATE SEQUENCE outbox_feed_position_seq")
    op.add_column("outbox", sa.Column("feed_position", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_outbox_feed_position"), "outbox", ["feed_position"], unique=True)
    op.create_index(
        "ix_outbox_unsequenced",
        "outbox",
        ["created_at"],
        postgresql_where=sa.text("feed_position IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unsequenced", table_name="outbox")
    op.drop_index(op.f("ix_outbox_feed_position"), table_name="outbox")
    op.drop_column("outbox", "feed_position")
    op.execute("DROP SEQUENCE outbox_feed_position_seq")
    op.execute(
        "DELETE FROM web_session WHERE key_id IN "
        "(SELECT id FROM api_key WHERE role = 'cad_integrator')"
    )
    op.execute("DELETE FROM api_key WHERE role = 'cad_integrator' OR scope_kind = 'source'")
    _key_constraints(OLD_ROLES, OLD_SCOPES)
    op.drop_constraint(op.f("ck_cad_source_format_known"), "cad_source", type_="check")
    op.drop_column("cad_source", "timezone")
    op.drop_column("cad_source", "field_mapping")
    op.drop_column("cad_source", "format")
