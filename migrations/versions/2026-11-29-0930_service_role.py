"""The service's role: everything it needs, but only SELECT and INSERT on the audit log.

Migrations run as the owner of the schema; the service runs as a login role in the NOLOGIN
group ``corespond_service`` made here (unless it exists). Not being the owner, the service
can neither rewrite ``audit_log`` nor switch its append-only trigger off.

Tables and sequences created later by the owner get the same grants (default privileges);
a table that must be append-only like ``audit_log`` revokes them in its own migration.

Roles belong to the whole server, not to one database, so the downgrade takes this
database's grants away and leaves the role.

Revision ID: 8d9a804aa9c4
Revises: 5c1d0e7a9b42
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8d9a804aa9c4"
down_revision: str | None = "5c1d0e7a9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'corespond_service') THEN
                CREATE ROLE corespond_service NOLOGIN;
            END IF;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- made meanwhile by the migration of another database on this server
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role corespond_service does not exist and % may not create it',
                    current_user
                    USING HINT = 'As an administrator: CREATE ROLE corespond_service NOLOGIN;';
        END $$
        """
    )
    op.execute(
        """
        DO $$
        DECLARE
            here text := quote_ident(current_schema());
        BEGIN
            EXECUTE 'GRANT USAGE ON SCHEMA ' || here || ' TO corespond_service';
            EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ' || here
                || ' TO corespond_service';
            EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ' || here
                || ' TO corespond_service';
            EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || here
                || ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO corespond_service';
            EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || here
                || ' GRANT USAGE, SELECT ON SEQUENCES TO corespond_service';
        END $$
        """
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM corespond_service")
    # /readyz reads the schema's revision; only migrations change it.
    op.execute("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM corespond_service")


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE
            here text := quote_ident(current_schema());
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'corespond_service') THEN
                RETURN;
            END IF;
            EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || here
                || ' REVOKE ALL ON SEQUENCES FROM corespond_service';
            EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || here
                || ' REVOKE ALL ON TABLES FROM corespond_service';
            EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA ' || here || ' FROM corespond_service';
            EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA ' || here || ' FROM corespond_service';
            EXECUTE 'REVOKE USAGE ON SCHEMA ' || here || ' FROM corespond_service';
        END $$
        """
    )
