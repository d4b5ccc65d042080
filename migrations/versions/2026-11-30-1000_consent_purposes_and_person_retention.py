"""Consent enforced per purpose, revocation that reaches referrals and QRT visits, people
de-identified after retention, deconfliction by indexed keys

* person: the keys deconfliction compares (phone, folded name, initial and last name), each
  indexed per provider, filled in for the people already recorded; when retention
  de-identified the person;
* referral: the consent under which the person's identity went with it to the service's
  organization, and when that ended;
* follow_up: the Quick Response Team (a directory organization) that makes a QRT visit.

Expand only: new nullable columns, indexes and checks that every existing row passes.

Revision ID: 4b8f1d6e2a73
Revises: 7c4e2a9d5f31
Create Date: 2026-11-30 10:00:00
"""

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b8f1d6e2a73"
down_revision: str | None = "7c4e2a9d5f31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MATCHABLE = "merged_into_id IS NULL AND deidentified_at IS NULL"
_NOT_LETTER = re.compile(r"[^a-z0-9 ]+")


# The keys as corespond.people.matching.keys_of computed them when this was written (a
# migration keeps its own copy: it must give the same answer whatever the code becomes).
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def _keys(name: str | None, contact: str | None) -> tuple[str | None, str | None, str | None]:
    digits = "".join(c for c in contact or "" if c.isdigit())
    phone = digits[-10:] if len(digits) >= 7 else None
    if not name:
        return phone, None, None
    words = sorted(_NOT_LETTER.sub(" ", _fold(name).replace("'", "").replace("\u2019", "")).split())
    text = _fold(name)
    if "," in text:
        last, _, first = text.partition(",")
        text = f"{first} {last}"
    parts = _NOT_LETTER.sub(" ", text.replace("'", "").replace("\u2019", "")).split()
    initial_last = f"{parts[0][0]} {parts[-1]}" if len(parts) >= 2 else None
    return phone, " ".join(words) or None, initial_last


def upgrade() -> None:
    op.add_column("person", sa.Column("match_phone", sa.Text(), nullable=True))
    op.add_column("person", sa.Column("match_name", sa.Text(), nullable=True))
    op.add_column("person", sa.Column("match_initial_last", sa.Text(), nullable=True))
    op.add_column("person", sa.Column("deidentified_at", sa.DateTime(timezone=True), nullable=True))
    person = sa.table(
        "person",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.Text()),
        sa.column("contact", sa.Text()),
        sa.column("match_phone", sa.Text()),
        sa.column("match_name", sa.Text()),
        sa.column("match_initial_last", sa.Text()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(person.c.id, person.c.name, person.c.contact)):
        phone, name, initial_last = _keys(row.name, row.contact)
        connection.execute(
            person.update()
            .where(person.c.id == row.id)
            .values(match_phone=phone, match_name=name, match_initial_last=initial_last)
        )
    op.create_index(
        "ix_person_match_phone",
        "person",
        ["provider_id", "match_phone"],
        unique=False,
        postgresql_where=sa.text(f"{MATCHABLE} AND match_phone IS NOT NULL"),
    )
    op.create_index(
        "ix_person_match_name",
        "person",
        ["provider_id", "match_name"],
        unique=False,
        postgresql_where=sa.text(f"{MATCHABLE} AND match_name IS NOT NULL"),
    )
    op.create_index(
        "ix_person_match_initial_last",
        "person",
        ["provider_id", "county_fips", "match_initial_last"],
        unique=False,
        postgresql_where=sa.text(f"{MATCHABLE} AND match_initial_last IS NOT NULL"),
    )

    op.add_column("referral", sa.Column("share_consent_id", sa.Uuid(), nullable=True))
    op.add_column(
        "referral", sa.Column("share_ended_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_referral_share_consent_id_consent"),
        "referral",
        "consent",
        ["share_consent_id"],
        ["id"],
    )
    op.create_check_constraint(
        op.f("ck_referral_share_ended_if_shared"),
        "referral",
        "share_ended_at IS NULL OR share_consent_id IS NOT NULL",
    )

    op.add_column("follow_up", sa.Column("organization_id", sa.Text(), nullable=True))
    op.create_foreign_key(
        op.f("fk_follow_up_organization_id_directory_organization"),
        "follow_up",
        "directory_organization",
        ["organization_id"],
        ["id"],
    )
    op.create_index(
        op.f("ix_follow_up_organization_id"), "follow_up", ["organization_id"], unique=False
    )
    op.create_check_constraint(
        op.f("ck_follow_up_organization_makes_qrt_visits"),
        "follow_up",
        "organization_id IS NULL OR kind = 'qrt_visit'",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_follow_up_organization_makes_qrt_visits"), "follow_up", type_="check"
    )
    op.drop_index(op.f("ix_follow_up_organization_id"), table_name="follow_up")
    op.drop_constraint(
        op.f("fk_follow_up_organization_id_directory_organization"),
        "follow_up",
        type_="foreignkey",
    )
    op.drop_column("follow_up", "organization_id")
    op.drop_constraint(op.f("ck_referral_share_ended_if_shared"), "referral", type_="check")
    op.drop_constraint(op.f("fk_referral_share_consent_id_consent"), "referral", type_="foreignkey")
    op.drop_column("referral", "share_ended_at")
    op.drop_column("referral", "share_consent_id")
    op.drop_index("ix_person_match_initial_last", table_name="person")
    op.drop_index("ix_person_match_name", table_name="person")
    op.drop_index("ix_person_match_phone", table_name="person")
    op.drop_column("person", "deidentified_at")
    op.drop_column("person", "match_initial_last")
    op.drop_column("person", "match_name")
    op.drop_column("person", "match_phone")
