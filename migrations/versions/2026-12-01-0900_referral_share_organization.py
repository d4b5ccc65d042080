"""Referrals: the organization a referral's share went to, stored when it is shared, so that
the share stays with the organization the consent named (a directory re-import that moves
the service to another organization ends it, never moves it).

Expand only: one new nullable column, filled for the shares still open from the service's
organization of today (the only record of it there was).

Revision ID: 7c1f3a9d2e58
Revises: 5e8d2b6a9c17
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1f3a9d2e58"
down_revision: str | None = "5e8d2b6a9c17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("referral", sa.Column("share_organization_id", sa.Text(), nullable=True))
    op.execute(
        """
        UPDATE referral SET share_organization_id = directory_service.organization_id
        FROM directory_service
        WHERE directory_service.id = referral.service_id
          AND referral.share_consent_id IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_column("referral", "share_organization_id")
