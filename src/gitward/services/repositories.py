"""Repositories: rows in the database, bare repositories on disk, and user grants."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gitward.domain import bbql
from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.domain.permissions import GRANTS_NEED, REPOSITORY_GRANTS, Action, ResourceKind
from gitward.gitstore.store import GitStore
from gitward.services import validation
from gitward.services.caller import (
    Caller,
    RepositoryRole,
    listing_is_empty,
    project_target,
    repository_target,
    workspace_target,
)
from gitward.services.errors import BadRequest, Conflict, NotFound, Unauthenticated
from gitward.services.projects import find_project
from gitward.services.workspaces import workspace_exists_for
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import Project, Repository, RepositoryGrant, User, utcnow
from gitward.storage.query import REPOSITORIES
from gitward.storage.views import RepositoryView

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RepositoryChanges:
    name: str | None = None
    description: str | None = None
    is_private: bool | None = None
    mainbranch: str | None = None
    project_key: str | None = None


def find_repository(
    caller: Caller, workspace_slug: str, repo_slug: str, action: Action = Action.REPO_READ
) -> Repository:
    """As `read_repository`, for changing it: the model, loaded once access is decided."""
    repo = caller.store.repos.repository_by_id(
        read_repository(caller, workspace_slug, repo_slug, action).id
    )
    if repo is None:  # deleted meanwhile
        raise caller.not_found(f"Repository {workspace_slug}/{repo_slug} not found")
    return repo


def read_repository(
    caller: Caller, workspace_slug: str, repo_slug: str, action: Action = Action.REPO_READ
) -> RepositoryView:
    """The repository, if the caller may do `action` on it, as a view read in one statement;
    404 (401 anonymous) if hidden."""
    message = f"Repository {workspace_slug}/{repo_slug} not found"
    repo = caller.store.repos.repository_view(workspace_slug, repo_slug)
    if repo is None:
        raise caller.not_found(message)
    caller.require(action, repository_target(repo), message)
    return repo


def create_repository(
    caller: Caller,
    git: GitStore,
    workspace_slug: str,
    repo_slug: str,
    *,
    project_key: str | None,
    is_private: bool = True,
    name: str | None = None,
    description: str | None = None,
) -> Repository:
    workspace = workspace_exists_for(caller, workspace_slug)
    slug = validation.repository_slug(repo_slug)
    if project_key is None:
        # As Bitbucket Cloud: without a project, the workspace's oldest project.
        oldest = caller.permitted_projects(
            Action.PROJECT_CREATE_REPO, workspace, Window(0, 1), oldest_first=True
        ).items
        if not oldest:
            if not caller.can(Action.WORKSPACE_READ, workspace_target(workspace)):
                raise caller.not_found(f"Workspace {workspace_slug} not found")
            raise BadRequest(
                "Give the repository a project: {\"project\": {\"key\": ...}}. "
                "There is no project in this workspace you may create repositories in."
            )
        project: Project = oldest[0]
    else:
        found = caller.store.repos.project_by_key(workspace.id, project_key)
        if found is None:
            raise caller.not_found(f"Project {project_key} not found in {workspace_slug}")
        project = found
    caller.require(
        Action.PROJECT_CREATE_REPO,
        project_target(project),
        f"Project {project_key} not found in {workspace_slug}",
    )
    if caller.store.repos.repository_by_slug(workspace.id, slug) is not None:
        raise Conflict(
            f"Repository with this Slug and Owner already exists: {workspace.slug}/{slug}"
        )
    repo = Repository(
        workspace_id=workspace.id,
        project_id=project.id,
        slug=slug,
        name=validation.name(name or slug, "repository name"),
        description=validation.description(description or ""),
        is_private=is_private,
    )
    caller.store.add(repo)
    caller.store.flush()
    git.create(repo.storage_name)
    caller.audit("repository.create", target=f"repository:{workspace.slug}/{slug}")
    return repo


def visible_repositories(
    caller: Caller,
    workspace_slug: str,
    window: Window = EVERYTHING,
    criteria: Criteria = NO_CRITERIA,
    role: RepositoryRole | None = None,
) -> Page[RepositoryView]:
    """One window of the workspace's repositories the caller may read, by slug (or
    `criteria`'s sort), matching `criteria` and, with a role, held in that role."""
    workspace = caller.store.repos.workspace_view(workspace_slug)
    if workspace is None:
        raise caller.not_found(f"Workspace {workspace_slug} not found")
    if role is not None and caller.ctx.is_anonymous:
        raise Unauthenticated("Authentication required to list repositories by role")

    def listing(part: Window) -> Page[RepositoryView]:
        return caller.permitted_repositories(Action.REPO_READ, workspace, part, criteria, role)

    def unfiltered(part: Window) -> Page[RepositoryView]:
        return caller.permitted_repositories(Action.REPO_READ, workspace, part)

    page = listing(window)
    # A workspace the caller can see nothing of is hidden; one it can see repositories of
    # is not, whatever the filter leaves of them.
    if (
        listing_is_empty(page, window, listing)
        and listing_is_empty(unfiltered(Window(0, 1)), Window(0, 1), unfiltered)
        and not caller.can(Action.WORKSPACE_READ, workspace_target(workspace))
    ):
        raise caller.not_found(f"Workspace {workspace_slug} not found")
    return page


def repositories_anywhere(
    caller: Caller,
    window: Window = EVERYTHING,
    criteria: Criteria = NO_CRITERIA,
    role: RepositoryRole | None = None,
) -> Page[RepositoryView]:
    """`GET /2.0/repositories`: without a role, the public repositories the caller may read;
    with one, the repositories of every workspace it holds in that role."""
    if role is not None and caller.ctx.is_anonymous:
        raise Unauthenticated("Authentication required to list repositories by role")
    return caller.permitted_repositories_anywhere(Action.REPO_READ, window, criteria, role)


def update_repository(
    caller: Caller, git: GitStore, workspace_slug: str, repo_slug: str, changes: RepositoryChanges
) -> Repository:
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN)
    if changes.name is not None:
        repo.name = validation.name(changes.name, "repository name")
    if changes.description is not None:
        repo.description = validation.description(changes.description)
    if changes.is_private is not None:
        repo.is_private = changes.is_private
    if changes.project_key is not None and changes.project_key.upper() != repo.project.key:
        target = caller.store.repos.project_by_key(repo.workspace_id, changes.project_key)
        if target is None:
            raise BadRequest(f"Project {changes.project_key} not found in {workspace_slug}")
        caller.require(
            Action.PROJECT_CREATE_REPO,
            project_target(target),
            f"Project {changes.project_key} not found in {workspace_slug}",
        )
        repo.project_id = target.id
        repo.project = target
    if changes.mainbranch is not None:
        validation.branch_name(changes.mainbranch, "mainbranch")
        if not git.branch_exists(repo.storage_name, changes.mainbranch):
            raise BadRequest(f"Branch {changes.mainbranch!r} does not exist.")
        git.set_head(repo.storage_name, changes.mainbranch)
        repo.mainbranch = changes.mainbranch
    repo.updated_on = utcnow()
    caller.store.flush()
    caller.audit("repository.update", target=f"repository:{workspace_slug}/{repo.slug}")
    return repo


def delete_repository(caller: Caller, git: GitStore, workspace_slug: str, repo_slug: str) -> None:
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_DELETE)
    storage_name = repo.storage_name
    caller.store.delete(repo)
    caller.store.flush()
    # Its access tokens went with it (cascade); cached look-ups of them must go too.
    caller.store.credentials.changed()
    caller.audit("repository.delete", target=f"repository:{workspace_slug}/{repo.slug}")
    # The row goes with the request's commit; the directory goes now. If the commit then
    # failed, the repository would be empty on disk, never half-visible: an acceptable order
    # for a delete, which the caller asked for.
    git.delete(storage_name)


def set_repository_grant(
    caller: Caller, workspace_slug: str, repo_slug: str, user_ref: str, permission: str
) -> tuple[Repository, User, RepositoryGrant, bool]:
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN)
    if permission not in REPOSITORY_GRANTS:
        raise BadRequest(
            f"Invalid permission {permission!r}: use one of {', '.join(REPOSITORY_GRANTS)}."
        )
    # What granting this level needs (admin: only in person), from the policy's table.
    needed = GRANTS_NEED[ResourceKind.REPOSITORY][REPOSITORY_GRANTS[permission]]
    caller.require(needed, repository_target(repo))
    user = caller.store.accounts.user_by_ref(user_ref)
    if user is None:
        raise NotFound(f"User {user_ref} not found")
    grant = caller.store.repos.repository_grant(repo.id, user.id)
    created = grant is None
    if grant is None:
        grant = RepositoryGrant(repository_id=repo.id, user_id=user.id, permission=permission)
        caller.store.add(grant)
    else:
        grant.permission = permission
    caller.store.flush()
    caller.audit(
        "repository.permission.set",
        target=f"repository:{workspace_slug}/{repo.slug}",
        user=user.username,
        permission=permission,
    )
    return repo, user, grant, created


def list_repository_grants(
    caller: Caller, workspace_slug: str, repo_slug: str, window: Window = EVERYTHING
) -> tuple[Repository, Page[RepositoryGrant]]:
    """The explicit user permissions on the repository, by username (its admins read them)."""
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN)
    return repo, caller.store.repos.repository_grants(repo.id, window)


def project_repositories(
    caller: Caller, workspace_slug: str, key: str, window: Window = EVERYTHING
) -> tuple[Project, Page[RepositoryView]]:
    """A project the caller may see, and one window of its repositories the caller may read."""
    project = find_project(caller, workspace_slug, key)
    # The key as stored: upper-case letters, digits and underscores, nothing to quote.
    in_project = bbql.criteria(f'project.key = "{project.key}"', None, REPOSITORIES.fields)
    return project, caller.permitted_repositories(
        Action.REPO_READ, project.workspace, window, in_project
    )


def find_repository_grant(
    caller: Caller, workspace_slug: str, repo_slug: str, user_ref: str
) -> tuple[Repository, User, RepositoryGrant]:
    """A user's explicit permission on the repository (its admins read it)."""
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN)
    user = caller.store.accounts.user_by_ref(user_ref)
    grant = caller.store.repos.repository_grant(repo.id, user.id) if user else None
    if user is None or grant is None:
        raise NotFound(f"User {user_ref[:100]} has no permission on repository {repo.slug}")
    return repo, user, grant


def remove_repository_grant(
    caller: Caller, workspace_slug: str, repo_slug: str, user_ref: str
) -> None:
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN)
    user = caller.store.accounts.user_by_ref(user_ref)
    grant = caller.store.repos.repository_grant(repo.id, user.id) if user else None
    if user is None or grant is None:
        raise NotFound(f"User {user_ref} has no permission on repository {repo.slug}")
    caller.store.delete(grant)
    caller.audit(
        "repository.permission.remove",
        target=f"repository:{workspace_slug}/{repo.slug}",
        user=user.username,
    )



@dataclass(frozen=True)
class PushProtection:
    """A repository's push protection: its own setting (None: as the site) and the outcome."""

    enabled: bool | None
    effective: bool


def _protection(repo: Repository, site: bool) -> PushProtection:
    return PushProtection(
        repo.push_protection, site if repo.push_protection is None else repo.push_protection
    )


def push_protection(
    caller: Caller, workspace_slug: str, repo_slug: str, site: bool
) -> PushProtection:
    """Read by the repository's admins, as its other settings."""
    return _protection(find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN), site)


def set_push_protection(
    caller: Caller, workspace_slug: str, repo_slug: str, enabled: bool | None, site: bool
) -> PushProtection:
    """Turn push protection on or off for the repository, or (None) let the site decide."""
    repo = find_repository(caller, workspace_slug, repo_slug, Action.REPO_ADMIN)
    before = repo.push_protection
    repo.push_protection = enabled
    repo.updated_on = utcnow()
    caller.store.flush()
    caller.audit(
        "repository.push-protection.update",
        target=f"repository:{workspace_slug}/{repo.slug}",
        enabled=enabled,
        before=before,
    )
    return _protection(repo, site)
