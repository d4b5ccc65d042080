"""After the call: people who consented, their consent and its recipients, contacts (with a
person or de-identified), referrals to directory services, follow-up tasks, the resource
directory imported from Open Referral HSDS, and partner keys (police agencies, treatment
providers and QRTs a consent may name)

Revision ID: 7c4e2a9d5f31
Revises: 2d7a9c4e6b18
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7c4e2a9d5f31"
down_revision: str | None = "2d7a9c4e6b18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = (
    "('dispatcher', 'peer', 'supervisor', 'provider_admin', 'auditor', 'admin', 'cad_integrator')"
)
NEW_ROLES = (
    "('dispatcher', 'peer', 'supervisor', 'provider_admin', 'auditor', 'admin', "
    "'cad_integrator', 'partner')"
)
OLD_SCOPES = "('agency', 'county', 'provider', 'peer', 'source')"
NEW_SCOPES = "('agency', 'county', 'provider', 'peer', 'source', 'organization')"


def _key_constraints(roles: str, scopes: str) -> None:
    op.drop_constraint(op.f("ck_api_key_role_known"), "api_key", type_="check")
    op.create_check_constraint(op.f("ck_api_key_role_known"), "api_key", f"role IN {roles}")
    op.drop_constraint(op.f("ck_api_key_scope_complete"), "api_key", type_="check")
    op.create_check_constraint(
        op.f("ck_api_key_scope_complete"),
        "api_key",
        "(scope_kind IS NULL AND scope_value IS NULL) OR "
        f"(scope_kind IN {scopes} AND scope_value IS NOT NULL)",
    )


def upgrade() -> None:
    op.create_table(
        "directory_organization",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("website", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_organization")),
    )
    op.create_table(
        "directory_service",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hsds_id", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kinds", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("counties", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("postal_code", sa.Text(), nullable=True),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kinds <@ ARRAY['detox', 'inpatient', 'mat', 'outpatient', 'recovery_housing', 'start', 'qrt', 'va', 'harm_reduction']::text[]",
            name=op.f("ck_directory_service_kinds_known"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'defunct', 'temporarily closed')",
            name=op.f("ck_directory_service_status_known"),
        ),
        sa.CheckConstraint(
            "cardinality(counties) > 0", name=op.f("ck_directory_service_has_county")
        ),
        sa.CheckConstraint("cardinality(kinds) > 0", name=op.f("ck_directory_service_has_kind")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["directory_organization.id"],
            name=op.f("fk_directory_service_organization_id_directory_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_service")),
        sa.UniqueConstraint("hsds_id", name=op.f("uq_directory_service_hsds_id")),
    )
    op.create_index(
        "ix_directory_service_counties",
        "directory_service",
        ["counties"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_directory_service_kinds",
        "directory_service",
        ["kinds"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        op.f("ix_directory_service_organization_id"),
        "directory_service",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("county_fips", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_peer_id", sa.Uuid(), nullable=True),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_peer_id"], ["peer.id"], name=op.f("fk_person_created_by_peer_id_peer")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["person.id"], name=op.f("fk_person_merged_into_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_person_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_index(op.f("ix_person_provider_id"), "person", ["provider_id"], unique=False)
    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("statement_version", sa.Text(), nullable=False),
        sa.Column("signed_name", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.Text(), server_default="typed_name_and_checkbox", nullable=False),
        sa.Column("witnessed_by_peer_id", sa.Uuid(), nullable=True),
        sa.Column("witnessed_by", sa.Text(), nullable=False),
        sa.Column("purposes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("fields", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "purposes <@ ARRAY['care_coordination', 'treatment_referral', 'follow_up', 'deconfliction']::text[] AND cardinality(purposes) > 0",
            name=op.f("ck_consent_purposes_known"),
        ),
        sa.CheckConstraint(
            "fields <@ ARRAY['name', 'contact', 'county']::text[] AND cardinality(fields) > 0",
            name=op.f("ck_consent_fields_known"),
        ),
        sa.CheckConstraint(
            "(revoked_at IS NULL) = (revoked_by IS NULL)", name=op.f("ck_consent_revoked_by_whom")
        ),
        sa.CheckConstraint("expires_at > signed_at", name=op.f("ck_consent_expires_after_signing")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_consent_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["witnessed_by_peer_id"], ["peer.id"], name=op.f("fk_consent_witnessed_by_peer_id_peer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_person_id"), "consent", ["person_id"], unique=False)
    op.create_table(
        "consent_share",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("recipient_name", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('police', 'treatment', 'qrt')", name=op.f("ck_consent_share_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consent.id"], name=op.f("fk_consent_share_consent_id_consent")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_share")),
        sa.UniqueConstraint(
            "consent_id",
            "kind",
            "recipient",
            name=op.f("uq_consent_share_consent_id_kind_recipient"),
        ),
    )
    op.create_index(
        op.f("ix_consent_share_consent_id"), "consent_share", ["consent_id"], unique=False
    )
    op.create_index(
        "ix_consent_share_recipient", "consent_share", ["kind", "recipient"], unique=False
    )
    op.create_table(
        "contact",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("peer_id", sa.Uuid(), nullable=False),
        sa.Column("county_fips", sa.Text(), nullable=True),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignment.id"], name=op.f("fk_contact_assignment_id_assignment")
        ),
        sa.ForeignKeyConstraint(["peer_id"], ["peer.id"], name=op.f("fk_contact_peer_id_peer")),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_contact_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_contact_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
        sa.UniqueConstraint("assignment_id", name=op.f("uq_contact_assignment_id")),
    )
    op.create_index(op.f("ix_contact_met_at"), "contact", ["met_at"], unique=False)
    op.create_index(op.f("ix_contact_person_id"), "contact", ["person_id"], unique=False)
    op.create_index(op.f("ix_contact_provider_id"), "contact", ["provider_id"], unique=False)
    op.create_table(
        "follow_up",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.Text(), server_default="follow_up", nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assignee_peer_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.Text(), server_default="open", nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.Text(), nullable=True),
        sa.Column("cancelled_reason", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(state = 'done') = (outcome IS NOT NULL)", name=op.f("ck_follow_up_done_has_outcome")
        ),
        sa.CheckConstraint(
            "kind IN ('follow_up', 'qrt_visit')", name=op.f("ck_follow_up_kind_known")
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('reached', 'not_reached', 'in_treatment', 'relapse', 'declined', 'deceased')",
            name=op.f("ck_follow_up_outcome_known"),
        ),
        sa.CheckConstraint(
            "state IN ('open', 'done', 'cancelled')", name=op.f("ck_follow_up_state_known")
        ),
        sa.CheckConstraint("overdue_at >= due_at", name=op.f("ck_follow_up_overdue_after_due")),
        sa.ForeignKeyConstraint(
            ["assignee_peer_id"], ["peer.id"], name=op.f("fk_follow_up_assignee_peer_id_peer")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_follow_up_contact_id_contact")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_follow_up_person_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_follow_up_provider_id_provider")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up")),
    )
    op.create_index(
        op.f("ix_follow_up_assignee_peer_id"), "follow_up", ["assignee_peer_id"], unique=False
    )
    op.create_index(op.f("ix_follow_up_contact_id"), "follow_up", ["contact_id"], unique=False)
    op.create_index("ix_follow_up_due_at", "follow_up", ["due_at"], unique=False)
    op.create_index(
        "ix_follow_up_overdue",
        "follow_up",
        ["overdue_at"],
        unique=False,
        postgresql_where=sa.text("state = 'open' AND escalated_at IS NULL"),
    )
    op.create_index(op.f("ix_follow_up_person_id"), "follow_up", ["person_id"], unique=False)
    op.create_index(
        "ix_follow_up_provider_due", "follow_up", ["provider_id", "state", "due_at"], unique=False
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("made_by", sa.Text(), nullable=False),
        sa.Column("arrival", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("arrival_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrival_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(arrival = 'pending') = (arrival_at IS NULL)",
            name=op.f("ck_referral_arrival_recorded_when"),
        ),
        sa.CheckConstraint(
            "arrival IN ('pending', 'arrived', 'did_not_arrive')",
            name=op.f("ck_referral_arrival_known"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_referral_contact_id_contact")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["directory_service.id"],
            name=op.f("fk_referral_service_id_directory_service"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
        sa.UniqueConstraint(
            "contact_id", "service_id", "kind", name=op.f("uq_referral_contact_id_service_id_kind")
        ),
    )
    op.create_index(op.f("ix_referral_contact_id"), "referral", ["contact_id"], unique=False)
    op.create_index("ix_referral_made_at", "referral", ["made_at"], unique=False)
    _key_constraints(NEW_ROLES, NEW_SCOPES)


def downgrade() -> None:
    # Partner keys do not exist in the older schema: revoked keys are kept as revoked
    # auditors' (never usable again), so the audit log's references stay whole.
    op.execute(
        "UPDATE api_key SET role = 'auditor', scope_kind = NULL, scope_value = NULL, "
        "revoked_at = coalesce(revoked_at, now()) WHERE role = 'partner'"
    )
    _key_constraints(OLD_ROLES, OLD_SCOPES)
    op.drop_index("ix_referral_made_at", table_name="referral")
    op.drop_index(op.f("ix_referral_contact_id"), table_name="referral")
    op.drop_table("referral")
    op.drop_index("ix_follow_up_provider_due", table_name="follow_up")
    op.drop_index(op.f("ix_follow_up_person_id"), table_name="follow_up")
    op.drop_index(
        "ix_follow_up_overdue",
        table_name="follow_up",
        postgresql_where=sa.text("state = 'open' AND escalated_at IS NULL"),
    )
    op.drop_index("ix_follow_up_due_at", table_name="follow_up")
    op.drop_index(op.f("ix_follow_up_contact_id"), table_name="follow_up")
    op.drop_index(op.f("ix_follow_up_assignee_peer_id"), table_name="follow_up")
    op.drop_table("follow_up")
    op.drop_index(op.f("ix_contact_provider_id"), table_name="contact")
    op.drop_index(op.f("ix_contact_person_id"), table_name="contact")
    op.drop_index(op.f("ix_contact_met_at"), table_name="contact")
    op.drop_table("contact")
    op.drop_index("ix_consent_share_recipient", table_name="consent_share")
    op.drop_index(op.f("ix_consent_share_consent_id"), table_name="consent_share")
    op.drop_table("consent_share")
    op.drop_index(op.f("ix_consent_person_id"), table_name="consent")
    op.drop_table("consent")
    op.drop_index(op.f("ix_person_provider_id"), table_name="person")
    op.drop_table("person")
    op.drop_index(op.f("ix_directory_service_organization_id"), table_name="directory_service")
    op.drop_index(
        "ix_directory_service_kinds", table_name="directory_service", postgresql_using="gin"
    )
    op.drop_index(
        "ix_directory_service_counties", table_name="directory_service", postgresql_using="gin"
    )
    op.drop_table("directory_service")
    op.drop_table("directory_organization")
