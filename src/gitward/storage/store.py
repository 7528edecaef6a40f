"""Queries over one unit of work (a SQLAlchemy session). No access decisions here."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, bindparam, delete, func, select, update
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
    CredentialGeneration,
    PersonalAccessToken,
    Project,
    ProjectGrant,
    RecoveryCode,
    Repository,
    RepositoryGrant,
    User,
    Workspace,
    WorkspaceMember,
)


def _live_grants_statement() -> Select[tuple[str | None, str | None, str | None]]:
    """Membership role, project grant and repository grant of one user, by bound ids.

    Built once: constructing the expression costs more than running it on every request.
    """
    user_id = bindparam("user_id", type_=Integer)
    return select(
        select(WorkspaceMember.role)
        .where(
            WorkspaceMember.workspace_id == bindparam("workspace_id", type_=Integer),
            WorkspaceMember.user_id == user_id,
        )
        .scalar_subquery(),
        select(ProjectGrant.permission)
        .where(
            ProjectGrant.project_id == bindparam("project_id", type_=Integer),
            ProjectGrant.user_id == user_id,
        )
        .scalar_subquery(),
        select(RepositoryGrant.permission)
        .where(
            RepositoryGrant.repository_id == bindparam("repository_id", type_=Integer),
            RepositoryGrant.user_id == user_id,
        )
        .scalar_subquery(),
    )


_LIVE_GRANTS = _live_grants_statement()

#: The credential generation (credentials/cache.py), to embed in a statement that reads what
#: it must read anyway, so that both come from one consistent snapshot.
GENERATION = func.coalesce(
    select(CredentialGeneration.value).where(CredentialGeneration.id == 1).scalar_subquery(), 0
)

_USER_STANDING = select(
    GENERATION,
    select(User.username).where(User.id == bindparam("user_id", type_=Integer)).scalar_subquery(),
    select(User.is_active).where(User.id == bindparam("user_id")).scalar_subquery(),
    select(User.is_site_admin).where(User.id == bindparam("user_id")).scalar_subquery(),
)
_BUMP_GENERATION = (
    update(CredentialGeneration)
    .where(CredentialGeneration.id == 1)
    .values(value=CredentialGeneration.value + 1)
)


@dataclass(frozen=True)
class UserStanding:
    id: int
    username: str
    is_active: bool
    is_site_admin: bool


def _live(user: User, role: str | None, project: str | None, repo: str | None) -> LiveGrants:
    return LiveGrants(
        workspace_role=WorkspaceRole(role) if role else None,
        project_grant=PROJECT_GRANTS[project] if project else Level.NONE,
        repository_grant=REPOSITORY_GRANTS[repo] if repo else Level.NONE,
        is_site_admin=user.is_site_admin,
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
        # The session's identity map holds rows weakly: without a reference of our own the
        # user row read while authenticating is gone again by the time the access check asks
        # for it, and is read a second time.
        self._users: dict[int, User] = {}

    def credentials_changed(self) -> None:
        """A credential (or what bounds one) ended or changed: bump the credential generation
        in this transaction, so every cached look-up on every process is re-read once it
        commits (see credentials/cache.py)."""
        if self.session.execute(_BUMP_GENERATION).rowcount == 0:  # type: ignore[attr-defined]
            # The row the migration made is gone: start again above every value read so far.
            self.session.add(CredentialGeneration(id=1, value=1))
            self.session.flush()

    def credential_generation(self) -> int:
        return int(self.session.connection().execute(select(GENERATION)).scalar_one())

    # -- users -------------------------------------------------------------------------------

    def user_count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(User)) or 0

    def user_by_id(self, user_id: int) -> User | None:
        """The user row; read once per unit of work (`session.get` answers repeats from the
        identity map, and still knows of a deletion flushed meanwhile)."""
        user = self.session.get(User, user_id)
        if user is not None:
            self._users[user_id] = user
        return user

    def user_standing(self, user_id: int) -> tuple[UserStanding | None, int]:
        """What authentication needs of an account, read now, and the credential generation,
        in one prebuilt Core statement (run on every token request)."""
        row = self.session.connection().execute(_USER_STANDING, {"user_id": user_id}).one()
        generation = int(row[0])
        if row[1] is None:
            return None, generation
        return UserStanding(user_id, row[1], bool(row[2]), bool(row[3])), generation

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
        """The user's grants bearing on the target, read now: a change of
        grants applies from the next request on.

        One round trip: the membership and both grants come as scalar subqueries of one
        statement built once (see _LIVE_GRANTS); an id the target lacks is bound as NULL,
        which matches no row.
        """
        if user is None:
            return LiveGrants()
        if not user.is_active:
            return LiveGrants(active=False)
        workspace_id = target.workspace_id
        project_id = (
            target.project_id
            if target.kind in (ResourceKind.PROJECT, ResourceKind.REPOSITORY)
            else None
        )
        repository_id = target.repository_id
        if workspace_id is None and project_id is None and repository_id is None:
            role = project = repo = None
        else:
            role, project, repo = self.session.execute(
                _LIVE_GRANTS,
                {
                    "user_id": user.id,
                    "workspace_id": workspace_id,
                    "project_id": project_id,
                    "repository_id": repository_id,
                },
            ).one()
        return _live(user, role, project, repo)

    def live_grants_in_workspace(
        self, user: User, workspace_id: int
    ) -> Callable[[Target], LiveGrants]:
        """The user's live grants for every target in one workspace, read in three statements
        whatever the number of targets (listings decide item by item from these)."""
        if not user.is_active:
            return lambda _target: LiveGrants(active=False)
        member = self.membership(workspace_id, user.id)
        project_grants: dict[int, str] = {
            row[0]: row[1]
            for row in self.session.execute(
                select(ProjectGrant.project_id, ProjectGrant.permission)
                .join(Project, Project.id == ProjectGrant.project_id)
                .where(Project.workspace_id == workspace_id, ProjectGrant.user_id == user.id)
            )
        }
        repo_grants: dict[int, str] = {
            row[0]: row[1]
            for row in self.session.execute(
                select(RepositoryGrant.repository_id, RepositoryGrant.permission)
                .join(Repository, Repository.id == RepositoryGrant.repository_id)
                .where(
                    Repository.workspace_id == workspace_id, RepositoryGrant.user_id == user.id
                )
            )
        }
        role = member.role if member else None

        def live(target: Target) -> LiveGrants:
            if target.workspace_id != workspace_id:
                raise ValueError("target outside the workspace these grants were read for")
            project = (
                project_grants.get(target.project_id)
                if target.project_id is not None
                and target.kind in (ResourceKind.PROJECT, ResourceKind.REPOSITORY)
                else None
            )
            repo = (
                repo_grants.get(target.repository_id)
                if target.repository_id is not None
                else None
            )
            return _live(user, role, project, repo)

        return live

    # -- personal access tokens ------------------------------------------------------------

    def pat_count(self, user_id: int) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(PersonalAccessToken)
                .where(PersonalAccessToken.user_id == user_id)
            )
            or 0
        )

    def pats_of(self, user_id: int) -> Sequence[PersonalAccessToken]:
        return self.session.scalars(
            select(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == user_id)
            .order_by(PersonalAccessToken.created_on.desc(), PersonalAccessToken.id.desc())
        ).all()

    def pat_by_id(self, token_id: int) -> PersonalAccessToken | None:
        return self.session.get(PersonalAccessToken, token_id)

    def delete_recovery_codes(self, user_id: int) -> None:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))

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
