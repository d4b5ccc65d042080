"""Calls: the point a call is placed at, stored when it is located, so that matching reads
it instead of geocoding the call again (a call without one is located when it is read).

Revision ID: 5e8d2b6a9c17
Revises: 4b8e1f6a2c97
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e8d2b6a9c17"
down_revision: str | None = "4b8e1f6a2c97"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("call", sa.Column("located_lat", sa.Double(), nullable=True))
    op.add_column("call", sa.Column("located_lon", sa.Double(), nullable=True))


def downgrade() -> None:
    op.drop_column("call", "located_lon")
    op.drop_column("call", "located_lat")
