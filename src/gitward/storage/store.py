"""Queries over one unit of work (a SQLAlchemy session). No access decisions here."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Integer, Select, bindparam, delete, func, select
from sqlalchemy.orm import Session

from gitward.domain.permissions import (
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    Level,
    ResourceKind,
    WorkspaceRole,
)
from gitward.domain.policy import LiveGrants, Target
from gitward.storage import views
from gitward.storage.generation import GENERATION_BUMPED, MISSING, ReadCache, bump_generation
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
from gitward.storage.views import RepositoryView, WorkspaceView


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
_READ_GENERATION = select(GENERATION)
#: The same, as SQL that SQLite and PostgreSQL both run as it is (no parameters).
_RAW_GENERATION = "SELECT coalesce((SELECT value FROM credential_generation WHERE id = 1), 0)"


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


T = TypeVar("T")

_UUID_REF = re.compile(r"^\{([0-9a-fA-F-]{36})\}$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


def _storable(text: str) -> bool:
    """Could a row hold this name? PostgreSQL refuses NUL in text (even in a comparison)."""
    return "\x00" not in text


class Store:
    """The queries of one unit of work. Services never commit: the request does.

    The session opens on first use: a request answered from the read cache needs only the
    generation, which is read on a bare pooled DBAPI connection (`_raw`) for a tenth of what
    the same statement costs through a session (bench/README.md). That connection goes back
    to the pool before a session is opened, so a unit holds one connection at a time; it is
    only used by units that do not write, which on SQLite run without a transaction and on
    PostgreSQL read committed, so the generation read on it comes before anything the session
    reads, as the read cache requires (storage/generation.py).
    """

    def __init__(
        self,
        session: Session | Callable[[], Session],
        reads: ReadCache | None = None,
        raw: Callable[[], Any] | None = None,
    ) -> None:
        if isinstance(session, Session):
            self._session: Session | None = session
            self._open: Callable[[], Session] | None = None
        else:
            self._session, self._open = None, session
        self._connect_raw = raw
        self._raw: Any = None
        self._reads = reads if reads is not None else ReadCache()
        # The generation as this unit of work last read it (None: not yet, or changed since).
        self._generation: int | None = None
        # The session's identity map holds rows weakly: without a reference of our own the
        # user row read while authenticating is gone again by the time the access check asks
        # for it, and is read a second time.
        self._users: dict[int, User] = {}
        #: Best-effort writes to run after this unit of work commits (Runtime.unit_of_work).
        self.deferred: list[Callable[[Store], None]] = []

    @property
    def session(self) -> Session:
        """The unit's session, opened on first use."""
        if self._session is None:
            assert self._open is not None
            self.release_raw()
            self._session = self._open()
        return self._session

    @property
    def opened(self) -> Session | None:
        """The session if the unit opened one (else nothing needs committing)."""
        return self._session

    def _raw_generation(self) -> int | None:
        """The generation read on the bare connection; None if that connection failed (it is
        discarded, and the caller reads through the session, where SQLAlchemy notices a lost
        server and renews the whole pool)."""
        assert self._connect_raw is not None
        if self._raw is None:
            self._raw = self._connect_raw()
        try:
            cursor = self._raw.cursor()
            try:
                cursor.execute(_RAW_GENERATION)
                return int(cursor.fetchone()[0])
            finally:
                cursor.close()
        except Exception:
            raw, self._raw = self._raw, None
            raw.invalidate()
            return None

    def release_raw(self) -> None:
        """Hand the bare connection back to the pool (it only ever read)."""
        raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()

    def defer(self, write: Callable[[Store], None]) -> None:
        """Run `write` after this unit of work, in a short transaction of its own whose
        failure is logged and dropped: for bookkeeping such as a credential's last use,
        which must never fail (or lock) the request that caused it."""
        self.deferred.append(write)

    def credentials_changed(self) -> None:
        """A credential (or what bounds one) ended or changed: bump the credential generation
        in this transaction, so every cached look-up on every process is re-read once it
        commits (see credentials/cache.py)."""
        bump_generation(self.session)
        self._generation = None

    def credential_generation(self) -> int:
        """The generation now (once per unit of work: a change made in it resets it)."""
        session = self._session
        if session is not None and session.info.pop(GENERATION_BUMPED, None):
            self._generation = None
        if self._generation is None:
            if session is None and self._connect_raw is not None:
                self._generation = self._raw_generation()
            if self._generation is None:
                self._generation = int(
                    self.session.connection().execute(_READ_GENERATION).scalar_one()
                )
        return self._generation

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
        """What authentication needs of an account, as of now, and the generation: from the
        read cache while the generation is unchanged (any change to a user row bumps it),
        else in one prebuilt Core statement (run on every token request)."""
        generation = self.credential_generation()
        key = ("standing", user_id)
        hit = self._reads.get(key, generation)
        if hit is MISSING:
            row = self.session.connection().execute(_USER_STANDING, {"user_id": user_id}).one()
            hit = None if row[1] is None else UserStanding(
                user_id, row[1], bool(row[2]), bool(row[3])
            )
            self._reads.put(key, generation, hit)
        return cast(UserStanding | None, hit), generation

    def remembered(self, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """`compute()`, or what it gave under the same key while the generation is unchanged:
        for results derived only from access rows and credentials (which bump it)."""
        generation = self.credential_generation()
        hit = self._reads.get(("derived", *key), generation)
        if hit is MISSING:
            hit = compute()
            self._reads.put(("derived", *key), generation, hit)
        return cast(T, hit)

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

    def repository_view(self, workspace_slug: str, slug: str) -> RepositoryView | None:
        """One repository as a read-only view: from the read cache while the generation is
        unchanged, else one prebuilt statement (no ORM loading)."""
        if not _storable(workspace_slug) or not _storable(slug):
            return None
        key = ("repository", workspace_slug.lower(), slug.lower())
        generation = self.credential_generation()
        hit = self._reads.get(key, generation)
        if hit is not MISSING:
            return cast(RepositoryView | None, hit)
        row = (
            self.session.connection()
            .execute(views.by_slugs(), {"workspace": key[1], "slug": key[2]})
            .one_or_none()
        )
        view = views.repository_view(row) if row is not None else None
        self._reads.put(key, generation, view)
        return view

    def workspace_view(self, slug: str) -> WorkspaceView | None:
        """A workspace as a read-only view (read cache, else one prebuilt statement)."""
        if not _storable(slug):
            return None
        key = ("workspace", slug.lower())
        generation = self.credential_generation()
        hit = self._reads.get(key, generation)
        if hit is MISSING:
            row = self.session.connection().execute(
                views.workspace_by_slug(), {"slug": key[1]}
            ).one_or_none()
            hit = WorkspaceView(row.id, row.uuid, row.slug, row.name) if row else None
            self._reads.put(key, generation, hit)
        return cast(WorkspaceView | None, hit)

    def repository_views_in(self, workspace_id: int) -> list[RepositoryView]:
        """A workspace's repositories as read-only views, by slug (from the read cache while
        the generation is unchanged)."""
        key = ("repositories", workspace_id)
        generation = self.credential_generation()
        hit = self._reads.get(key, generation)
        if hit is MISSING:
            rows = self.session.connection().execute(
                views.in_workspace(), {"workspace_id": workspace_id}
            )
            hit = tuple(views.repository_view(row) for row in rows)
            self._reads.put(key, generation, hit)
        return list(cast(tuple[RepositoryView, ...], hit))

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

    def live_grants_of(self, user_id: int, is_site_admin: bool, target: Target) -> LiveGrants:
        """As `live_grants`, for a principal this unit of work authenticated (so active):
        no user row is loaded, and the grants come from the read cache while the generation
        is unchanged."""
        workspace_id = target.workspace_id
        project_id = (
            target.project_id
            if target.kind in (ResourceKind.PROJECT, ResourceKind.REPOSITORY)
            else None
        )
        repository_id = target.repository_id
        if workspace_id is None and project_id is None and repository_id is None:
            return LiveGrants(is_site_admin=is_site_admin)
        key = ("grants", user_id, workspace_id, project_id, repository_id)
        generation = self.credential_generation()
        hit = self._reads.get(key, generation)
        if hit is MISSING:
            hit = tuple(
                self.session.connection().execute(
                    _LIVE_GRANTS,
                    {
                        "user_id": user_id,
                        "workspace_id": workspace_id,
                        "project_id": project_id,
                        "repository_id": repository_id,
                    },
                ).one()
            )
            self._reads.put(key, generation, hit)
        role, project, repo = cast(tuple[str | None, str | None, str | None], hit)
        return LiveGrants(
            workspace_role=WorkspaceRole(role) if role else None,
            project_grant=PROJECT_GRANTS[project] if project else Level.NONE,
            repository_grant=REPOSITORY_GRANTS[repo] if repo else Level.NONE,
            is_site_admin=is_site_admin,
        )

    def _workspace_grants(
        self, user_id: int, workspace_id: int
    ) -> tuple[str | None, dict[int, str], dict[int, str]]:
        member = self.membership(workspace_id, user_id)
        project_grants: dict[int, str] = {
            row[0]: row[1]
            for row in self.session.execute(
                select(ProjectGrant.project_id, ProjectGrant.permission)
                .join(Project, Project.id == ProjectGrant.project_id)
                .where(Project.workspace_id == workspace_id, ProjectGrant.user_id == user_id)
            )
        }
        repo_grants: dict[int, str] = {
            row[0]: row[1]
            for row in self.session.execute(
                select(RepositoryGrant.repository_id, RepositoryGrant.permission)
                .join(Repository, Repository.id == RepositoryGrant.repository_id)
                .where(
                    Repository.workspace_id == workspace_id, RepositoryGrant.user_id == user_id
                )
            )
        }
        role = member.role if member else None
        return role, project_grants, repo_grants

    def live_grants_in_workspace(
        self, user_id: int, is_site_admin: bool, workspace_id: int
    ) -> Callable[[Target], LiveGrants]:
        """The live grants of an authenticated (so active) user for every target in one
        workspace, read in three statements whatever the number of targets (listings decide
        item by item from these)."""
        key = ("workspace grants", user_id, workspace_id)
        generation = self.credential_generation()
        hit = self._reads.get(key, generation)
        if hit is MISSING:
            hit = self._workspace_grants(user_id, workspace_id)
            self._reads.put(key, generation, hit)
        role, project_grants, repo_grants = cast(
            tuple[str | None, dict[int, str], dict[int, str]], hit
        )

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
            return LiveGrants(
                workspace_role=WorkspaceRole(role) if role else None,
                project_grant=PROJECT_GRANTS[project] if project else Level.NONE,
                repository_grant=REPOSITORY_GRANTS[repo] if repo else Level.NONE,
                is_site_admin=is_site_admin,
            )

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
