"""One-time sign-in links for the peer app

Revision ID: 3f6b2c1d8e70
Revises: 8d9a804aa9c4
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f6b2c1d8e70"
down_revision: str | None = "8d9a804aa9c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "peer_sign_in",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("peer_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["peer_id"], ["peer.id"], name=op.f("fk_peer_sign_in_peer_id_peer")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_peer_sign_in")),
    )
    op.create_index(op.f("ix_peer_sign_in_peer_id"), "peer_sign_in", ["peer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_peer_sign_in_peer_id"), table_name="peer_sign_in")
    op.drop_table("peer_sign_in")
