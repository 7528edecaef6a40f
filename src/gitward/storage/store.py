"""Queries over one unit of work (a SQLAlchemy session). No access decisions here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gitward.domain.permissions import (
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    Level,
    ResourceKind,
    WorkspaceRole,
)
from gitward.domain.policy import LiveGrants, Target
from gitward.storage.models import (
    AuditEvent,
    Project,
    ProjectGrant,
    Repository,
    RepositoryGrant,
    User,
    Workspace,
    WorkspaceMember,
)

_UUID_REF = re.compile(r"^\{([0-9a-fA-F-]{36})\}$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


def _storable(text: str) -> bool:
    """Could a row hold this name? PostgreSQL refuses NUL in text (even in a comparison)."""
    return "\x00" not in text


class Store:
    """The queries of one unit of work. Services never commit: the request does."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- users -------------------------------------------------------------------------------

    def user_count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(User)) or 0

    def user_by_id(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def user_by_username(self, username: str) -> User | None:
        if not _storable(username):
            return None
        return self.session.scalar(select(User).where(User.username == username.lower()))

    def user_by_ref(self, ref: str) -> User | None:
        """A user named by username, `{uuid}` or account_id, as the Cloud API allows."""
        if not _storable(ref):
            return None
        match = _UUID_REF.match(ref)
        if match:
            return self.session.scalar(select(User).where(User.uuid == match.group(1).lower()))
        if _ACCOUNT_ID.match(ref):
            as_uuid = "-".join((ref[:8], ref[8:12], ref[12:16], ref[16:20], ref[20:]))
            user = self.session.scalar(select(User).where(User.uuid == as_uuid))
            if user is not None:
                return user
        return self.user_by_username(ref)

    # -- workspaces, projects, repositories ----------------------------------------------------

    def workspace_by_slug(self, slug: str) -> Workspace | None:
        if not _storable(slug):
            return None
        return self.session.scalar(select(Workspace).where(Workspace.slug == slug.lower()))

    def membership(self, workspace_id: int, user_id: int) -> WorkspaceMember | None:
        return self.session.get(WorkspaceMember, (workspace_id, user_id))

    def members(self, workspace_id: int) -> Sequence[WorkspaceMember]:
        return self.session.scalars(
            select(WorkspaceMember).where(WorkspaceMember.workspace_id == workspace_id)
        ).all()

    def owner_count(self, workspace_id: int) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(WorkspaceMember)
                .where(
                    WorkspaceMember.workspace_id == workspace_id,
                    WorkspaceMember.role == WorkspaceRole.OWNER.value,
                )
            )
            or 0
        )

    def workspaces_of_user(self, user_id: int) -> Sequence[tuple[Workspace, str]]:
        rows = self.session.execute(
            select(Workspace, WorkspaceMember.role)
            .join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id)
            .where(WorkspaceMember.user_id == user_id)
            .order_by(Workspace.slug)
        ).all()
        return [(row[0], row[1]) for row in rows]

    def all_workspaces(self) -> Sequence[Workspace]:
        return self.session.scalars(select(Workspace).order_by(Workspace.slug)).all()

    def project_by_key(self, workspace_id: int, key: str) -> Project | None:
        if not _storable(key):
            return None
        return self.session.scalar(
            select(Project).where(Project.workspace_id == workspace_id, Project.key == key.upper())
        )

    def project_by_id(self, project_id: int) -> Project | None:
        return self.session.get(Project, project_id)

    def projects_in(self, workspace_id: int) -> Sequence[Project]:
        return self.session.scalars(
            select(Project).where(Project.workspace_id == workspace_id).order_by(Project.key)
        ).all()

    def repository_by_slug(self, workspace_id: int, slug: str) -> Repository | None:
        if not _storable(slug):
            return None
        return self.session.scalar(
            select(Repository).where(
                Repository.workspace_id == workspace_id, Repository.slug == slug.lower()
            )
        )

    def repository_by_id(self, repository_id: int) -> Repository | None:
        return self.session.get(Repository, repository_id)

    def repositories_in(
        self, workspace_id: int, project_id: int | None = None
    ) -> Sequence[Repository]:
        query = select(Repository).where(Repository.workspace_id == workspace_id)
        if project_id is not None:
            query = query.where(Repository.project_id == project_id)
        return self.session.scalars(query.order_by(Repository.slug)).all()

    def repository_count(self, project_id: int) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(Repository)
                .where(Repository.project_id == project_id)
            )
            or 0
        )

    # -- grants ------------------------------------------------------------------------------

    def project_grant(self, project_id: int, user_id: int) -> ProjectGrant | None:
        return self.session.get(ProjectGrant, (project_id, user_id))

    def repository_grant(self, repository_id: int, user_id: int) -> RepositoryGrant | None:
        return self.session.get(RepositoryGrant, (repository_id, user_id))

    def live_grants(self, user: User | None, target: Target) -> LiveGrants:
        """The user's grants bearing on the target, read now (SPEC §2: at request time)."""
        if user is None:
            return LiveGrants()
        if not user.is_active:
            return LiveGrants(active=False)
        role: WorkspaceRole | None = None
        if target.workspace_id is not None:
            member = self.membership(target.workspace_id, user.id)
            role = WorkspaceRole(member.role) if member else None
        project_level = Level.NONE
        if target.project_id is not None and target.kind in (
            ResourceKind.PROJECT,
            ResourceKind.REPOSITORY,
        ):
            grant = self.project_grant(target.project_id, user.id)
            project_level = PROJECT_GRANTS[grant.permission] if grant else Level.NONE
        repo_level = Level.NONE
        if target.repository_id is not None:
            repo_grant = self.repository_grant(target.repository_id, user.id)
            repo_level = REPOSITORY_GRANTS[repo_grant.permission] if repo_grant else Level.NONE
        return LiveGrants(
            workspace_role=role,
            project_grant=project_level,
            repository_grant=repo_level,
            is_site_admin=user.is_site_admin,
        )

    def grants_in_workspace(
        self, workspace_id: int, user_id: int
    ) -> tuple[dict[int, str], dict[int, str]]:
        """All of a user's project and repository grants in one workspace (for listings)."""
        project_rows = self.session.execute(
            select(ProjectGrant.project_id, ProjectGrant.permission)
            .join(Project, Project.id == ProjectGrant.project_id)
            .where(Project.workspace_id == workspace_id, ProjectGrant.user_id == user_id)
        ).all()
        repo_rows = self.session.execute(
            select(RepositoryGrant.repository_id, RepositoryGrant.permission)
            .join(Repository, Repository.id == RepositoryGrant.repository_id)
            .where(Repository.workspace_id == workspace_id, RepositoryGrant.user_id == user_id)
        ).all()
        return ({r[0]: r[1] for r in project_rows}, {r[0]: r[1] for r in repo_rows})

    # -- audit -------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        *,
        actor: str,
        actor_user_id: int | None = None,
        target: str = "",
        client_ip: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        event = AuditEvent(
            action=action,
            actor=actor,
            actor_user_id=actor_user_id,
            target=target,
            client_ip=client_ip,
            details=details,
        )
        self.session.add(event)
        return event

    def add(self, obj: object) -> None:
        self.session.add(obj)

    def delete(self, obj: object) -> None:
        self.session.delete(obj)

    def flush(self) -> None:
        self.session.flush()
