"""A dispatcher's note for the peer on a peer request

Revision ID: 5c1d0e7a9b42
Revises: 8a70f3bb6b8e
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1d0e7a9b42"
down_revision: str | None = "8a70f3bb6b8e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("peer_request", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("peer_request", "note")
