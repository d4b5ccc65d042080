"""A dispatcher's request for a peer may name a language the person speaks, and may be
widened to neighbouring counties' providers

Revision ID: 2d7a9c4e6b18
Revises: 9b3e5d7f2a14
Create Date: 2026-11-29 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2d7a9c4e6b18"
down_revision: str | None = "9b3e5d7f2a14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("peer_request", sa.Column("language", sa.Text(), nullable=True))
    op.add_column(
        "peer_request",
        sa.Column("neighbouring_providers", sa.Boolean(), server_default="false", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("peer_request", "neighbouring_providers")
    op.drop_column("peer_request", "language")
