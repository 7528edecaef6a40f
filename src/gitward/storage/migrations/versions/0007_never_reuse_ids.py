"""ids are never reused on SQLite

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:30:00

SQLite hands out max(rowid) + 1, so after the newest row of a table is deleted its id comes
back: a script revoking a stale token id would revoke the newer token that got it, and audit
events would name two different credentials by one id. AUTOINCREMENT makes SQLite remember the
largest id ever used (in sqlite_sequence) instead. SQLite cannot add it to an existing table,
so each table is rebuilt (copied into a new table and renamed back; alembic's batch mode),
keeping every row and id. PostgreSQL's sequences never hand an id out twice: nothing to do.

The rebuild drops the old tables; with foreign keys enforced, dropping a parent table would
first delete its rows and cascade to the children, so the migration refuses to run unless
`gitward.storage.database.migrate` has turned enforcement off for it, and checks every foreign
key before it ends.
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

#: Every table whose primary key is an integer id, parents before children (a child's copy
#: then refers to its parent by the parent's final name).
TABLES = (
    "users",
    "workspaces",
    "projects",
    "repositories",
    "audit_events",
    "personal_access_tokens",
    "resource_access_tokens",
    "recovery_codes",
    "app_passwords",
    "credential_generation",
    "oauth_consumers",
    "oauth_authorization_codes",
    "oauth_access_tokens",
    "oauth_refresh_tokens",
    "oauth_jwt_assertions",
)


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0007 rebuilds tables and must run with SQLite's foreign keys off "
            "(gitward.storage.database.migrate does so); refusing, so that no row is lost"
        )
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    dangling = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if dangling:
        raise RuntimeError(f"foreign keys broken by the rebuild: {dangling[:5]}")


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
