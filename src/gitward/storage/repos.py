"""Queries of the workspaces-and-repositories aggregate: workspaces and their members,
projects, repositories, the grants on them, and the live grants the policy reads."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.domain.permissions import (
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    Level,
    ResourceKind,
    WorkspaceRole,
)
from gitward.domain.policy import LiveGrants, Target
from gitward.storage import views
from gitward.storage.common import (
    EVERYTHING,
    Page,
    Window,
    contains,
    rows_page,
    scalars_page,
    storable,
)
from gitward.storage.models import (
    Project,
    ProjectGrant,
    Repository,
    RepositoryGrant,
    User,
    Workspace,
    WorkspaceMember,
)
from gitward.storage.query import MEMBERS, PROJECTS, REPOSITORIES, WORKSPACES
from gitward.storage.unit import Unit
from gitward.storage.views import RepositoryView, WorkspaceView


def _live_grants_statement() -> Select[str | None, str | None, str | None]:
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


def _live(is_site_admin: bool, role: str | None, project: str | None, repo: str | None
          ) -> LiveGrants:
    return LiveGrants(
        workspace_role=WorkspaceRole(role) if role else None,
        project_grant=PROJECT_GRANTS[project] if project else Level.NONE,
        repository_grant=REPOSITORY_GRANTS[repo] if repo else Level.NONE,
        is_site_admin=is_site_admin,
    )


@dataclass(frozen=True)
class Standing:
    """One class of listed item, as far as a user's access to it can differ: private or not,
    and the user's own grant names on its project and on itself (None: no grant). A listing
    is filtered in SQL to the classes the caller was allowed (services decide them)."""

    is_private: bool
    project_grant: str | None = None
    repository_grant: str | None = None
    # The user's role in the item's workspace: only for listings across workspaces (within
    # one workspace it is the same for every item, and decided before the query).
    workspace_role: str | None = None


def _grant_is(column: Any, name: str | None) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = column.is_(None) if name is None else column == name
    return clause


def _standing_filter(
    classes: Collection[Standing],
    is_private: Any,
    project_grant: Any | None,
    repository_grant: Any | None,
    workspace_role: Any | None = None,
) -> ColumnElement[bool] | None:
    """The WHERE clause choosing rows of the given classes (None: every row qualifies).

    `project_grant`/`repository_grant` (and `workspace_role`, across workspaces) are the
    joined columns, or None when no user is asking (then only classes without grants can
    match) — or, for the role, when the listing is inside one workspace."""
    by_grants: dict[tuple[str | None, str | None, str | None], set[bool]] = {}
    for cls in classes:
        if project_grant is None and cls.project_grant is not None:
            continue
        if repository_grant is None and cls.repository_grant is not None:
            continue
        role = cls.workspace_role if workspace_role is not None else None
        key = (cls.project_grant, cls.repository_grant, role)
        by_grants.setdefault(key, set()).add(cls.is_private)
    clauses: list[ColumnElement[bool]] = []
    for (project, repo, role), privacy in by_grants.items():
        parts: list[ColumnElement[bool]] = []
        if project_grant is not None:
            parts.append(_grant_is(project_grant, project))
        if repository_grant is not None:
            parts.append(_grant_is(repository_grant, repo))
        if workspace_role is not None:
            parts.append(_grant_is(workspace_role, role))
        if len(privacy) == 1:
            parts.append(is_private.is_(next(iter(privacy))))
        if not parts:
            return None  # a class that every row is in
        clauses.append(and_(*parts))
    if not clauses:
        return false()
    return or_(*clauses)


class Repos:
    """Workspaces, members, projects, repositories and grants."""

    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    # -- workspaces ----------------------------------------------------------------------

    def workspace_by_slug(self, slug: str) -> Workspace | None:
        if not storable(slug):
            return None
        return self._unit.session.scalar(select(Workspace).where(Workspace.slug == slug.lower()))

    def workspace_by_id(self, workspace_id: int) -> Workspace | None:
        return self._unit.session.get(Workspace, workspace_id)

    def membership(self, workspace_id: int, user_id: int) -> WorkspaceMember | None:
        return self._unit.session.get(WorkspaceMember, (workspace_id, user_id))

    def members(
        self, workspace_id: int, window: Window = EVERYTHING, criteria: Criteria = NO_CRITERIA
    ) -> Page[WorkspaceMember]:
        """A workspace's members, by username (or `criteria`'s sort), filtered by its query."""
        query = (
            select(WorkspaceMember)
            .join(User, User.id == WorkspaceMember.user_id)
            .where(WorkspaceMember.workspace_id == workspace_id)
        )
        clause = MEMBERS.where(criteria)
        if clause is not None:
            query = query.where(clause)
        query = query.order_by(*MEMBERS.order_by(criteria, [User.username]))
        return scalars_page(self._unit.session, query, window)

    def owner_count(self, workspace_id: int) -> int:
        return (
            self._unit.session.scalar(
                select(func.count())
                .select_from(WorkspaceMember)
                .where(
                    WorkspaceMember.workspace_id == workspace_id,
                    WorkspaceMember.role == WorkspaceRole.OWNER.value,
                )
            )
            or 0
        )

    def workspaces_of_user(
        self,
        user_id: int,
        window: Window = EVERYTHING,
        *,
        roles: Collection[str] | None = None,
        workspace_id: int | None = None,
        criteria: Criteria = NO_CRITERIA,
    ) -> Page[tuple[Workspace, str]]:
        """The workspaces a user belongs to, with the role, by slug (or `criteria`'s sort);
        `roles`, `workspace_id` and `criteria`'s query narrow the listing (in SQL)."""
        query = (
            select(Workspace, WorkspaceMember.role)
            .join(WorkspaceMember, WorkspaceMember.workspace_id == Workspace.id)
            .where(WorkspaceMember.user_id == user_id)
        )
        if roles is not None:
            query = query.where(WorkspaceMember.role.in_(list(roles)))
        if workspace_id is not None:
            query = query.where(Workspace.id == workspace_id)
        clause = WORKSPACES.where(criteria)
        if clause is not None:
            query = query.where(clause)
        query = query.order_by(*WORKSPACES.order_by(criteria, [Workspace.slug]))
        return rows_page(self._unit.session, query, window)

    def workspaces_with_public_repositories(self, window: Window) -> Page[Workspace]:
        """Workspaces that hold at least one public repository, by slug."""
        public = select(Repository.workspace_id).where(Repository.is_private.is_(False))
        query = select(Workspace).where(Workspace.id.in_(public)).order_by(Workspace.slug)
        return scalars_page(self._unit.session, query, window)

    # -- projects ------------------------------------------------------------------------

    def project_by_key(self, workspace_id: int, key: str) -> Project | None:
        if not storable(key):
            return None
        return self._unit.session.scalar(
            select(Project).where(Project.workspace_id == workspace_id, Project.key == key.upper())
        )

    def project_by_site_key(self, key: str) -> Project | None:
        """The project holding `key`, in whichever workspace (keys are unique site-wide)."""
        if not storable(key):
            return None
        return self._unit.session.scalar(select(Project).where(Project.key == key.upper()))

    def project_by_id(self, project_id: int) -> Project | None:
        return self._unit.session.get(Project, project_id)

    def projects_in(
        self,
        workspace_id: int,
        window: Window = EVERYTHING,
        *,
        user_id: int | None = None,
        classes: Collection[Standing] | None = None,
        project_id: int | None = None,
        order_by_id: bool = False,
        criteria: Criteria = NO_CRITERIA,
    ) -> Page[Project]:
        """A workspace's projects by key (or oldest first, or `criteria`'s sort), narrowed in
        SQL to one project, to the given classes of the user's standing, when those are
        given, and to `criteria`'s query."""
        query = select(Project).where(Project.workspace_id == workspace_id)
        clause = PROJECTS.where(criteria)
        if clause is not None:
            query = query.where(clause)
        if project_id is not None:
            query = query.where(Project.id == project_id)
        if classes is not None:
            grant = None
            if user_id is not None:
                pg = aliased(ProjectGrant)
                query = query.outerjoin(
                    pg, and_(pg.project_id == Project.id, pg.user_id == user_id)
                )
                grant = pg.permission
            clause = _standing_filter(classes, Project.is_private, grant, None)
            if clause is not None:
                query = query.where(clause)
        default = [Project.id] if order_by_id else [Project.key]
        query = query.order_by(*PROJECTS.order_by(criteria, default))
        return scalars_page(self._unit.session, query, window)

    # -- repositories --------------------------------------------------------------------

    def repository_by_slug(self, workspace_id: int, slug: str) -> Repository | None:
        if not storable(slug):
            return None
        return self._unit.session.scalar(
            select(Repository).where(
                Repository.workspace_id == workspace_id, Repository.slug == slug.lower()
            )
        )

    def repository_by_id(self, repository_id: int) -> Repository | None:
        return self._unit.session.get(Repository, repository_id)

    def repository_view(self, workspace_slug: str, slug: str) -> RepositoryView | None:
        """One repository as a read-only view: from the read cache while the generation is
        unchanged, else one prebuilt statement (no ORM loading)."""
        if not storable(workspace_slug) or not storable(slug):
            return None
        workspace, repo = workspace_slug.lower(), slug.lower()

        def read() -> RepositoryView | None:
            row = (
                self._unit.session.connection()
                .execute(views.BY_SLUGS, {"workspace": workspace, "slug": repo})
                .one_or_none()
            )
            return views.repository_view(row) if row is not None else None

        return self._unit.cached(("repository", workspace, repo), read)

    def repository_view_by_key(self, project_key: str, slug: str) -> RepositoryView | None:
        """The repository `slug` of the project whose key is `project_key` (any case; keys
        are unique across the site), as `repository_view` reads one."""
        if not storable(project_key) or not storable(slug):
            return None
        key, repo = project_key.upper(), slug.lower()

        def read() -> RepositoryView | None:
            row = (
                self._unit.session.connection()
                .execute(views.BY_KEY_AND_SLUG, {"key": key, "slug": repo})
                .one_or_none()
            )
            return views.repository_view(row) if row is not None else None

        return self._unit.cached(("repository-by-key", key, repo), read)

    def workspace_view(self, slug: str) -> WorkspaceView | None:
        """A workspace as a read-only view (read cache, else one prebuilt statement)."""
        if not storable(slug):
            return None
        clean = slug.lower()

        def read() -> WorkspaceView | None:
            row = self._unit.session.connection().execute(
                views.WORKSPACE_BY_SLUG, {"slug": clean}
            ).one_or_none()
            return WorkspaceView(row.id, row.uuid, row.slug, row.name) if row else None

        return self._unit.cached(("workspace", clean), read)

    def repositories_in(
        self,
        workspace_id: int,
        window: Window = EVERYTHING,
        *,
        user_id: int | None = None,
        classes: Collection[Standing] | None = None,
        project_id: int | None = None,
        repository_id: int | None = None,
        criteria: Criteria = NO_CRITERIA,
    ) -> Page[RepositoryView]:
        """A workspace's repositories by slug (or `criteria`'s sort) as read-only views,
        narrowed in SQL to one project or repository, to the given classes of the user's
        standing, when those are given, and to `criteria`'s query; one Core statement per
        page (and a count when one is wanted)."""
        repositories = Repository.__table__.c
        query = views.JOINED.where(repositories.workspace_id == workspace_id)
        clause = REPOSITORIES.where(criteria)
        if clause is not None:
            query = query.where(clause)
        if project_id is not None:
            query = query.where(repositories.project_id == project_id)
        if repository_id is not None:
            query = query.where(repositories.id == repository_id)
        if classes is not None:
            project_grant = repo_grant = None
            if user_id is not None:
                pg = ProjectGrant.__table__.alias("pg")
                rg = RepositoryGrant.__table__.alias("rg")
                query = query.outerjoin(
                    pg, and_(pg.c.project_id == repositories.project_id, pg.c.user_id == user_id)
                ).outerjoin(
                    rg, and_(rg.c.repository_id == repositories.id, rg.c.user_id == user_id)
                )
                project_grant, repo_grant = pg.c.permission, rg.c.permission
            clause = _standing_filter(
                classes, repositories.is_private, project_grant, repo_grant
            )
            if clause is not None:
                query = query.where(clause)
        query = query.order_by(*REPOSITORIES.order_by(criteria, [repositories.slug]))
        return self._view_page(query, window)

    def _view_page(self, query: Select[*tuple[Any, ...]], window: Window) -> Page[RepositoryView]:
        page = rows_page(self._unit.session, query, window)
        # A tuple: the page may be kept in the read cache and shared (Caller._remembered).
        return Page(
            tuple(views.repository_view(row) for row in page.items), page.has_more, page.total
        )

    def projects_on_site(
        self,
        window: Window = EVERYTHING,
        *,
        user_id: int | None = None,
        classes: Collection[Standing] | None = None,
        workspace_id: int | None = None,
        project_id: int | None = None,
        name: str | None = None,
    ) -> Page[Project]:
        """The site's projects by key (keys are unique site-wide), narrowed in SQL to one
        workspace or project, to names containing `name` (any case), and to the given
        classes of the user's standing, membership included."""
        query = select(Project)
        if workspace_id is not None:
            query = query.where(Project.workspace_id == workspace_id)
        if project_id is not None:
            query = query.where(Project.id == project_id)
        if name:
            query = query.where(contains(Project.name, name))
        if classes is not None:
            grant = role = None
            if user_id is not None:
                pg = aliased(ProjectGrant)
                member = aliased(WorkspaceMember)
                query = query.outerjoin(
                    pg, and_(pg.project_id == Project.id, pg.user_id == user_id)
                ).outerjoin(
                    member,
                    and_(member.workspace_id == Project.workspace_id, member.user_id == user_id),
                )
                grant, role = pg.permission, member.role
            clause = _standing_filter(classes, Project.is_private, grant, None, role)
            if clause is not None:
                query = query.where(clause)
        return scalars_page(self._unit.session, query.order_by(Project.key), window)

    def repositories_on_site(
        self,
        window: Window = EVERYTHING,
        *,
        user_id: int | None = None,
        classes: Collection[Standing] | None = None,
        workspace_id: int | None = None,
        project_id: int | None = None,
        repository_id: int | None = None,
        name: str | None = None,
        project_name: str | None = None,
        is_private: bool | None = None,
    ) -> Page[RepositoryView]:
        """The site's repositories by project key, then slug, as read-only views; narrowed
        in SQL as `projects_on_site`, and to repository names and project names containing
        the given text and to one visibility."""
        repositories = Repository.__table__.c
        projects = Project.__table__.c
        query = views.JOINED
        if workspace_id is not None:
            query = query.where(repositories.workspace_id == workspace_id)
        if project_id is not None:
            query = query.where(repositories.project_id == project_id)
        if repository_id is not None:
            query = query.where(repositories.id == repository_id)
        if name:
            query = query.where(contains(repositories.name, name))
        if project_name:
            query = query.where(contains(projects.name, project_name))
        if is_private is not None:
            query = query.where(repositories.is_private.is_(is_private))
        if classes is not None:
            project_grant = repo_grant = role = None
            if user_id is not None:
                pg = ProjectGrant.__table__.alias("pg")
                rg = RepositoryGrant.__table__.alias("rg")
                member = WorkspaceMember.__table__.alias("wm")
                query = query.outerjoin(
                    pg, and_(pg.c.project_id == repositories.project_id, pg.c.user_id == user_id)
                ).outerjoin(
                    rg, and_(rg.c.repository_id == repositories.id, rg.c.user_id == user_id)
                ).outerjoin(
                    member,
                    and_(
                        member.c.workspace_id == repositories.workspace_id,
                        member.c.user_id == user_id,
                    ),
                )
                project_grant, repo_grant, role = (
                    pg.c.permission, rg.c.permission, member.c.role
                )
            clause = _standing_filter(
                classes, repositories.is_private, project_grant, repo_grant, role
            )
            if clause is not None:
                query = query.where(clause)
        page = rows_page(
            self._unit.session, query.order_by(projects.key, repositories.slug), window
        )
        return Page(
            tuple(views.repository_view(row) for row in page.items), page.has_more, page.total
        )

    def repositories_anywhere(
        self,
        window: Window = EVERYTHING,
        *,
        user_id: int | None = None,
        classes: Collection[Standing] | None = None,
        workspace_id: int | None = None,
        project_id: int | None = None,
        repository_id: int | None = None,
        criteria: Criteria = NO_CRITERIA,
    ) -> Page[RepositoryView]:
        """Repositories of every workspace, by workspace and slug (or `criteria`'s sort),
        narrowed as `repositories_in`; the classes may also name the user's workspace role."""
        repositories = Repository.__table__.c
        query = views.JOINED
        for column, value in (
            (repositories.workspace_id, workspace_id),
            (repositories.project_id, project_id),
            (repositories.id, repository_id),
        ):
            if value is not None:
                query = query.where(column == value)
        clause = REPOSITORIES.where(criteria)
        if clause is not None:
            query = query.where(clause)
        if classes is not None:
            project_grant = repo_grant = role = None
            if user_id is not None:
                pg = ProjectGrant.__table__.alias("pg")
                rg = RepositoryGrant.__table__.alias("rg")
                wm = WorkspaceMember.__table__.alias("wm")
                query = (
                    query.outerjoin(
                        pg,
                        and_(pg.c.project_id == repositories.project_id, pg.c.user_id == user_id),
                    )
                    .outerjoin(
                        rg, and_(rg.c.repository_id == repositories.id, rg.c.user_id == user_id)
                    )
                    .outerjoin(
                        wm,
                        and_(
                            wm.c.workspace_id == repositories.workspace_id,
                            wm.c.user_id == user_id,
                        ),
                    )
                )
                project_grant, repo_grant, role = pg.c.permission, rg.c.permission, wm.c.role
            standing = _standing_filter(
                classes, repositories.is_private, project_grant, repo_grant, role
            )
            if standing is not None:
                query = query.where(standing)
        workspaces = Workspace.__table__.c
        default = [workspaces.slug, repositories.slug]
        return self._view_page(query.order_by(*REPOSITORIES.order_by(criteria, default)), window)

    def repository_count(self, project_id: int) -> int:
        return (
            self._unit.session.scalar(
                select(func.count())
                .select_from(Repository)
                .where(Repository.project_id == project_id)
            )
            or 0
        )

    # -- grants --------------------------------------------------------------------------

    def project_grant(self, project_id: int, user_id: int) -> ProjectGrant | None:
        return self._unit.session.get(ProjectGrant, (project_id, user_id))

    def repository_grant(self, repository_id: int, user_id: int) -> RepositoryGrant | None:
        return self._unit.session.get(RepositoryGrant, (repository_id, user_id))

    def project_grants(
        self, project_id: int, window: Window = EVERYTHING, *, text: str | None = None
    ) -> Page[ProjectGrant]:
        """The user grants on a project by username (narrowed to usernames and display
        names containing `text`)."""
        query = (
            select(ProjectGrant)
            .join(User, User.id == ProjectGrant.user_id)
            .where(ProjectGrant.project_id == project_id)
        )
        if text:
            query = query.where(or_(contains(User.username, text),
                                    contains(User.display_name, text)))
        return scalars_page(self._unit.session, query.order_by(User.username), window)

    def repository_grants(
        self, repository_id: int, window: Window = EVERYTHING, *, text: str | None = None
    ) -> Page[RepositoryGrant]:
        """The user grants on a repository by username (narrowed as `project_grants`)."""
        query = (
            select(RepositoryGrant)
            .join(User, User.id == RepositoryGrant.user_id)
            .where(RepositoryGrant.repository_id == repository_id)
        )
        if text:
            query = query.where(or_(contains(User.username, text),
                                    contains(User.display_name, text)))
        return scalars_page(self._unit.session, query.order_by(User.username), window)

    def live_grants_of(self, user_id: int, is_site_admin: bool, target: Target) -> LiveGrants:
        """The grants bearing on the target of a principal this unit of work authenticated
        (so active), as of now (a change of grants counts from the next request): no user
        row is loaded, and the grants come from the read cache while the generation is
        unchanged, else from one statement built once (see _LIVE_GRANTS; an id the target
        lacks is bound as NULL, which matches no row)."""
        workspace_id = target.workspace_id
        project_id = (
            target.project_id
            if target.kind in (ResourceKind.PROJECT, ResourceKind.REPOSITORY)
            else None
        )
        repository_id = target.repository_id
        if workspace_id is None and project_id is None and repository_id is None:
            return LiveGrants(is_site_admin=is_site_admin)

        def read() -> tuple[str | None, str | None, str | None]:
            row = self._unit.session.connection().execute(
                _LIVE_GRANTS,
                {
                    "user_id": user_id,
                    "workspace_id": workspace_id,
                    "project_id": project_id,
                    "repository_id": repository_id,
                },
            ).one()
            return (row[0], row[1], row[2])

        role, project, repo = self._unit.cached(
            ("grants", user_id, workspace_id, project_id, repository_id), read
        )
        return _live(is_site_admin, role, project, repo)

