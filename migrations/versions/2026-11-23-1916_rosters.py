"""Rosters: providers and their counties, peers, credentials, status history, shifts.

Revision ID: ef2088de73ae
Revises: e319a406fa12
Create Date: 2026-11-23 19:16:52.377282+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ef2088de73ae"
down_revision: str | None = "e319a406fa12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The no-overlap exclusion constraint on shifts compares a uuid with =, which GiST
    # indexes only with btree_gist (a contrib module; the server's role must be allowed to
    # create it, or it must exist already).
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "provider",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name=op.f("ck_provider_id_slug")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider")),
    )
    op.create_table(
        "peer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("home_place", sa.Text(), nullable=True),
        sa.Column("home_lat", sa.Double(), nullable=True),
        sa.Column("home_lon", sa.Double(), nullable=True),
        sa.Column("embedded_agency", sa.Text(), nullable=True),
        sa.Column("languages", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("status", sa.Text(), server_default="off_duty", nullable=False),
        sa.Column(
            "status_changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('available', 'busy', 'off_duty')", name=op.f("ck_peer_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_peer_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer")),
    )
    op.create_index("ix_peer_provider_id_id", "peer", ["provider_id", "id"], unique=False)
    op.create_table(
        "provider_county",
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("county_fips", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "role IN ('primary', 'backup')", name=op.f("ck_provider_county_role_known")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_provider_county_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("provider_id", "county_fips", name=op.f("pk_provider_county")),
    )
    op.create_index(
        "uq_provider_county_one_primary",
        "provider_county",
        ["county_fips"],
        unique=True,
        postgresql_where=sa.text("role = 'primary'"),
    )
    op.create_table(
        "credential",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("peer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('prss_certification', 'cjis_background', 'nda')",
            name=op.f("ck_credential_kind_known"),
        ),
        sa.ForeignKeyConstraint(["peer_id"], ["peer.id"], name=op.f("fk_credential_peer_id_peer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential")),
        sa.UniqueConstraint("peer_id", "kind", name=op.f("uq_credential_peer_id_kind")),
    )
    op.create_table(
        "peer_status_change",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("peer_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peer.id"], name=op.f("fk_peer_status_change_peer_id_peer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_status_change")),
    )
    op.create_index(
        op.f("ix_peer_status_change_peer_id"), "peer_status_change", ["peer_id"], unique=False
    )
    op.create_table(
        "shift",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("peer_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counties", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("kind", sa.Text(), server_default="on_duty", nullable=False),
        sa.Column("external_key", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.Text(), nullable=True),
        postgresql.ExcludeConstraint(
            (sa.column("peer_id"), "="),
            (sa.text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            where=sa.text("cancelled_at IS NULL"),
            using="gist",
            name="ex_shift_no_overlap",
        ),
        sa.CheckConstraint("kind IN ('on_duty', 'on_call')", name=op.f("ck_shift_kind_known")),
        sa.CheckConstraint("cardinality(counties) > 0", name=op.f("ck_shift_has_county")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_shift_ends_after_start")),
        sa.ForeignKeyConstraint(["peer_id"], ["peer.id"], name=op.f("fk_shift_peer_id_peer")),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_shift_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift")),
        sa.UniqueConstraint(
            "provider_id", "external_key", name=op.f("uq_shift_provider_id_external_key")
        ),
    )
    op.create_index(
        "ix_shift_counties", "shift", ["counties"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "ix_shift_live_range",
        "shift",
        [sa.literal_column("tstzrange(starts_at, ends_at, '[)')")],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("cancelled_at IS NULL"),
    )
    op.create_index("ix_shift_starts_at", "shift", ["starts_at"], unique=False)
    op.create_table(
        "shift_change",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shift_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["shift_id"], ["shift.id"], name=op.f("fk_shift_change_shift_id_shift")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift_change")),
    )
    op.create_index(op.f("ix_shift_change_shift_id"), "shift_change", ["shift_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shift_change_shift_id"), table_name="shift_change")
    op.drop_table("shift_change")
    op.drop_index("ix_shift_starts_at", table_name="shift")
    op.drop_index(
        "ix_shift_live_range",
        table_name="shift",
        postgresql_using="gist",
        postgresql_where=sa.text("cancelled_at IS NULL"),
    )
    op.drop_index("ix_shift_counties", table_name="shift", postgresql_using="gin")
    op.drop_table("shift")
    op.drop_index(op.f("ix_peer_status_change_peer_id"), table_name="peer_status_change")
    op.drop_table("peer_status_change")
    op.drop_table("credential")
    op.drop_index(
        "uq_provider_county_one_primary",
        table_name="provider_county",
        postgresql_where=sa.text("role = 'primary'"),
    )
    op.drop_table("provider_county")
    op.drop_index("ix_peer_provider_id_id", table_name="peer")
    op.drop_table("peer")
    op.drop_table("provider")
