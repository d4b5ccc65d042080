"""Rotating CORESPOND_SECRET_KEY: the audit chain keys a rotation retires (sealed, each with
the last entry it may have written) and the push key a rotation pins (sealed). Both are
written only by the schema's owner (`corespond secret-key rotate`); the service reads them.

Expand only: two new tables, nothing the running release reads is changed. The downgrade
refuses while either table has rows: they hold keys that exist nowhere else.

Revision ID: 4b8e1f6a2c97
Revises: 4b8f1d6e2a73
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b8e1f6a2c97"
down_revision: str | None = "4b8f1d6e2a73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_key",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("last_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_key")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_audit_chain_key_fingerprint")),
    )
    op.create_table(
        "push_key",
        sa.Column("id", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_push_key_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_key")),
    )
    # The service's role got every privilege by default (8d9a804aa9c4); it only reads these.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'corespond_service') THEN
                REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_chain_key, push_key
                    FROM corespond_service;
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    # Once a rotation has retired a chain key or pinned the push key, these rows are the only
    # copy of them (the old CORESPOND_SECRET_KEY is gone): dropping them would leave the
    # audit entries written before the rotation unverifiable and the phones' subscriptions
    # dead, for good. Refuse; an operator who means it empties the tables first.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM audit_chain_key) OR EXISTS (SELECT FROM push_key) THEN
                RAISE EXCEPTION 'refusing to downgrade past the secret-key rotation: '
                    'audit_chain_key or push_key has rows (retired audit chain keys, the '
                    'pinned push key) that exist nowhere else';
            END IF;
        END $$
        """
    )
    op.drop_table("push_key")
    op.drop_table("audit_chain_key")
