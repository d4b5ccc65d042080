"""Geography: agencies with their home counties, and the county of each call.

Revision ID: e319a406fa12
Revises: 3378b06a4c03
Create Date: 2026-11-23 18:57:44.611890+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e319a406fa12"
down_revision: str | None = "3378b06a4c03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agency",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ori", sa.Text(), nullable=True),
        sa.Column("home_county_fips", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("home_county_fips ~ '^[0-9]{5}$'", name=op.f("ck_agency_fips_format")),
        sa.CheckConstraint("name = upper(name)", name=op.f("ck_agency_name_upper")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency")),
        sa.UniqueConstraint("name", name=op.f("uq_agency_name")),
    )
    op.add_column("call", sa.Column("county_fips", sa.Text(), nullable=True))
    op.add_column("call", sa.Column("county_name", sa.Text(), nullable=True))
    op.add_column("call", sa.Column("county_method", sa.Text(), nullable=True))
    op.add_column("call", sa.Column("county_detail", sa.Text(), nullable=True))
    op.create_index(op.f("ix_call_county_fips"), "call", ["county_fips"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_call_county_fips"), table_name="call")
    op.drop_column("call", "county_detail")
    op.drop_column("call", "county_method")
    op.drop_column("call", "county_name")
    op.drop_column("call", "county_fips")
    op.drop_table("agency")
