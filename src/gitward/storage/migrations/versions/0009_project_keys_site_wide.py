"""project keys are unique across the site

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:45:00

Bitbucket Server names a project by its key alone (`/rest/api/1.0/projects/{key}`,
`/scm/{KEY}/{slug}.git`), so a key may belong to one project of the whole site, whichever
workspace it is in. Keys are stored upper-case, so a plain unique index on the column is the
rule. A database where two workspaces already hold the same key cannot take the index: the
migration stops before changing anything and names every such key and its workspaces, so that
an administrator can rename all but one (`PUT /2.0/workspaces/{ws}/projects/{key}` with a
new `key`) and migrate again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

INDEX = "uq_projects_key"


class DuplicateProjectKeys(RuntimeError):
    """Two or more workspaces hold a project with the same key."""


def duplicates(bind: sa.Connection) -> dict[str, list[str]]:
    """Each key held by more than one project, with the slugs of the workspaces holding it."""
    rows = bind.execute(
        sa.text(
            "SELECT p.key, w.slug FROM projects p JOIN workspaces w ON w.id = p.workspace_id "
            "WHERE p.key IN (SELECT key FROM projects GROUP BY key HAVING COUNT(*) > 1) "
            "ORDER BY p.key, w.slug"
        )
    ).all()
    found: dict[str, list[str]] = {}
    for key, slug in rows:
        found.setdefault(key, []).append(slug)
    return found


def upgrade() -> None:
    found = duplicates(op.get_bind())
    if found:
        listed = "; ".join(f"{key} in {', '.join(slugs)}" for key, slugs in found.items())
        raise DuplicateProjectKeys(
            "migration 0009 makes project keys unique across the site, but these keys are "
            f"used by projects in more than one workspace: {listed}. Rename all but one of "
            "each (PUT /2.0/workspaces/{workspace}/projects/{key} with a new \"key\") and "
            "run `gitward migrate` again; nothing was changed."
        )
    op.create_index(INDEX, "projects", ["key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="projects")
