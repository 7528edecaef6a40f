"""Read-only views of workspaces, projects and repositories, read with prebuilt Core
statements: the hot read paths (a repository GET, a clone's access check, a listing).

A `RepositoryView` compares (and hashes) by identity: the read cache hands out the same
objects while nothing changed, so caches keyed by them (rendered JSON, listing decisions) hit
in one step instead of comparing every field, and miss once a change made new ones.

NOTE: loading ORM instances costs far more than the query itself (a repository with its
workspace and project was ~0.5 ms of object construction per request); these frozen rows
cost one statement and a tuple. Anything that changes a row reads the ORM model instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, bindparam, select

from gitward.storage.models import Project, Repository, Workspace

_W = Workspace.__table__.c
_P = Project.__table__.c
_R = Repository.__table__.c


@dataclass(frozen=True, slots=True)
class WorkspaceView:
    id: int
    uuid: str
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: int
    uuid: str
    key: str
    name: str
    workspace: WorkspaceView


@dataclass(frozen=True, slots=True, eq=False)
class RepositoryView:
    id: int
    uuid: str
    slug: str
    name: str
    description: str
    is_private: bool
    mainbranch: str | None
    created_on: datetime
    updated_on: datetime
    size: int
    workspace_id: int
    project_id: int
    workspace: WorkspaceView
    project: ProjectView

    @property
    def storage_name(self) -> str:
        """The directory name on disk: derived from the uuid, never from user input."""
        return self.uuid + ".git"


_COLUMNS = (
    _R.id, _R.uuid, _R.slug, _R.name, _R.description, _R.is_private, _R.mainbranch,
    _R.created_on, _R.updated_on, _R.size, _R.workspace_id, _R.project_id,
    _W.uuid.label("w_uuid"), _W.slug.label("w_slug"), _W.name.label("w_name"),
    _P.uuid.label("p_uuid"), _P.key.label("p_key"), _P.name.label("p_name"),
)
#: A repository with its workspace and project, to narrow with WHERE clauses.
JOINED = (
    select(*_COLUMNS)
    .join_from(Repository.__table__, Workspace.__table__, _W.id == _R.workspace_id)
    .join(Project.__table__, _P.id == _R.project_id)
)

#: One repository by workspace slug and repository slug (both lower case).
BY_SLUGS = JOINED.where(
    _W.slug == bindparam("workspace", type_=String), _R.slug == bindparam("slug", type_=String)
)


#: One repository by project key (upper case; keys are unique across the site) and slug.
BY_KEY_AND_SLUG = JOINED.where(
    _P.key == bindparam("key", type_=String), _R.slug == bindparam("slug", type_=String)
)


#: One workspace by slug (lower case).
WORKSPACE_BY_SLUG = select(_W.id, _W.uuid, _W.slug, _W.name).where(
    _W.slug == bindparam("slug", type_=String)
)


def repository_view(row: Row[*tuple[Any, ...]]) -> RepositoryView:
    workspace = WorkspaceView(row.workspace_id, row.w_uuid, row.w_slug, row.w_name)
    return RepositoryView(
        row.id, row.uuid, row.slug, row.name, row.description, bool(row.is_private),
        row.mainbranch, row.created_on, row.updated_on, int(row.size), row.workspace_id,
        row.project_id,
        workspace, ProjectView(row.project_id, row.p_uuid, row.p_key, row.p_name, workspace),
    )
