"""The site as Bitbucket Server sees it: projects named by key alone, repositories by project
key and slug, the default workspace, and listings across every workspace.

Project keys are unique across the site (migration 0009), so a key names one project
wherever it lives; everything here finds that project's workspace and hands over to the
workspace-level use cases (services/projects.py, services/repositories.py), which decide
access as they always do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitward.domain.permissions import Action, ResourceKind
from gitward.domain.policy import SITE, DenialCode, Denied, Target
from gitward.domain.server_permissions import USER_PERMISSIONS, grant_of
from gitward.gitstore.store import GitStore
from gitward.services import projects, repositories, validation
from gitward.services.caller import (
    Caller,
    account_target,
    listing_is_empty,
    project_target,
    repository_target,
    workspace_target,
)
from gitward.services.errors import BadRequest, Forbidden
from gitward.services.resource_tokens import Resource, resolve
from gitward.storage.common import Page, Window
from gitward.storage.models import (
    Project,
    ProjectGrant,
    Repository,
    RepositoryGrant,
    User,
    Workspace,
)
from gitward.storage.views import RepositoryView


def _text(value: str | None, what: str) -> str | None:
    """A filter's text: None when empty; a 400 for what no row could hold."""
    if not value:
        return None
    if "\x00" in value or len(value) > 255:
        raise BadRequest(f"Invalid {what} filter.")
    return value


def _seen(caller: Caller, action: Action, target: Target, message: str) -> None:
    """404 (401 anonymous) with `message` unless the caller may see the target.

    NOTE: the workspace-level use cases this module hands over to name the workspace in
    their 404s, which would tell a Server caller where a project they may not see lives (and
    so that it exists); deciding visibility first, here, keeps every 404 the same. Whatever is
    visible but not allowed is then refused by the use case with its 403."""
    decision = caller.decide(action, target)
    if isinstance(decision, Denied) and decision.code is not DenialCode.FORBIDDEN:
        raise caller.not_found(message)


def workspace_of(caller: Caller, key: str) -> str:
    """The slug of the workspace holding project `key`, if the caller may see the project
    (404, 401 anonymous, otherwise)."""
    message = f"Project {key} does not exist."
    project = caller.store.repos.project_by_site_key(key)
    if project is None:
        raise caller.not_found(message)
    _seen(caller, Action.PROJECT_READ, project_target(project), message)
    return project.workspace.slug


# -- projects ---------------------------------------------------------------------------------


def find_project(caller: Caller, key: str, action: Action = Action.PROJECT_READ) -> Project:
    return projects.find_project(caller, workspace_of(caller, key), key, action)


def default_workspace(caller: Caller, slug: str) -> Workspace:
    """The site's default workspace, created (with no members: site administrators hold it,
    and may add owners) the first time a project is put there."""
    workspace = caller.store.repos.workspace_by_slug(slug)
    if workspace is not None:
        return workspace
    clean = validation.workspace_slug(slug)
    workspace = Workspace(slug=clean, name=clean.title())
    caller.store.add(workspace)
    caller.store.flush()
    caller.audit("workspace.create", target=f"workspace:{clean}", default=True)
    return workspace


def create_project(
    caller: Caller,
    default_slug: str,
    *,
    key: object,
    name: object,
    description: object = None,
    public: object = None,
) -> Project:
    """A project in the site's default workspace, by its owners and site administrators.

    Bitbucket Server answers 403 to a signed-in user who may not create projects: the
    default workspace (where Server's projects go) is no secret, unlike other workspaces,
    so a denial that would hide it is told as what it is.
    """
    for field, value in (("key", key), ("name", name)):
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"The project {field} is required (a string).")
    if description is not None and not isinstance(description, str):
        raise BadRequest("description must be a string.")
    if public is not None and not isinstance(public, bool):
        raise BadRequest("public must be true or false.")
    assert isinstance(key, str) and isinstance(name, str)  # checked above
    user = caller.require_user()
    workspace = default_workspace(caller, default_slug)
    decision = caller.decide(Action.PROJECT_CREATE, workspace_target(workspace))
    if isinstance(decision, Denied):
        if decision.code is DenialCode.NOT_FOUND:
            raise Forbidden(f"{user.username} is not permitted to create projects.")
        caller.require(Action.PROJECT_CREATE, workspace_target(workspace))
    return projects.create_project(
        caller,
        workspace.slug,
        key=key,
        name=name,
        description=description,
        is_private=not public,
    )


def visible_projects(caller: Caller, window: Window, *, name: str | None = None) -> Page[Project]:
    """One window of the site's projects the caller may read, by key."""
    return caller.permitted_site_projects(
        Action.PROJECT_READ, window, name=_text(name, "name")
    )


def update_project(caller: Caller, key: str, changes: projects.ProjectChanges) -> Project:
    return projects.update_project(caller, workspace_of(caller, key), key, changes)


def delete_project(caller: Caller, key: str) -> None:
    projects.delete_project(caller, workspace_of(caller, key), key)


# -- repositories -----------------------------------------------------------------------------


def repository_workspace(caller: Caller, key: str, slug: str) -> str:
    """The workspace of repository `slug` of project `key`, if the caller may see it (404,
    401 anonymous, otherwise: the same whether it is missing or hidden)."""
    message = f"Repository {key}/{slug} does not exist."
    view = caller.store.repos.repository_view_by_key(key, slug)
    if view is None:
        raise caller.not_found(message)
    _seen(caller, Action.REPO_READ, repository_target(view), message)
    return view.workspace.slug


def read_repository(
    caller: Caller, key: str, slug: str, action: Action = Action.REPO_READ
) -> RepositoryView:
    workspace = repository_workspace(caller, key, slug)
    return repositories.read_repository(caller, workspace, slug, action)


def find_repository(
    caller: Caller, key: str, slug: str, action: Action = Action.REPO_READ
) -> Repository:
    workspace = repository_workspace(caller, key, slug)
    return repositories.find_repository(caller, workspace, slug, action)


def project_repositories(caller: Caller, key: str, window: Window) -> Page[RepositoryView]:
    """One window of project `key`'s repositories the caller may read, by slug; 404 when
    the caller sees neither the project nor any of them."""
    project = caller.store.repos.project_by_site_key(key)
    if project is None:
        raise caller.not_found(f"Project {key} does not exist.")

    def listing(part: Window) -> Page[RepositoryView]:
        return caller.permitted_site_repositories(Action.REPO_READ, part, project_id=project.id)

    page = listing(window)
    if listing_is_empty(page, window, listing) and not caller.can(
        Action.PROJECT_READ, project_target(project)
    ):
        raise caller.not_found(f"Project {key} does not exist.")
    return page


_SLUG_JUNK = re.compile(r"[^a-z0-9._-]+")
#: A branch name git takes (git check-ref-format's rules, the common subset).
_BRANCH = re.compile(r"^(?![-/.])[^\x00-\x20~^:?*\[\\\x7f]{1,255}$")


def slug_of(name: str) -> str:
    """The slug Bitbucket Server derives from a repository's name: lower case, each run of
    other characters a '-'."""
    return _SLUG_JUNK.sub("-", name.strip().lower()).strip("-")


def create_repository(
    caller: Caller,
    git: GitStore,
    key: str,
    *,
    name: object,
    public: object = None,
    description: object = None,
    default_branch: object = None,
) -> Repository:
    """A repository in project `key`, its slug made from its name (as Bitbucket Server)."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("The repository name is required (a string).")
    if public is not None and not isinstance(public, bool):
        raise BadRequest("public must be true or false.")
    if description is not None and not isinstance(description, str):
        raise BadRequest("description must be a string.")
    if default_branch is not None:
        if not isinstance(default_branch, str):
            raise BadRequest("defaultBranch must be a branch name.")
        validation.branch_name(default_branch, "defaultBranch")
        if not _BRANCH.match(default_branch) or ".." in default_branch or (
            default_branch.endswith((".lock", "/", "."))
        ):
            raise BadRequest(f"Invalid defaultBranch: {default_branch[:80]!r}.")
    slug = slug_of(name)
    if not slug:
        raise BadRequest(f"Invalid repository name: {name!r}: it needs a letter or digit.")
    project = find_project(caller, key)
    repo = repositories.create_repository(
        caller,
        git,
        project.workspace.slug,
        slug,
        project_key=project.key,
        is_private=not public,
        name=name.strip(),
        description=description,
    )
    if default_branch is not None:
        git.set_head(repo.storage_name, default_branch)
    return repo


@dataclass(frozen=True)
class RepositoryFilter:
    """`GET /rest/api/1.0/repos`'s query: texts contained in the repository's and the
    project's names, the Server permission the caller needs, state and visibility."""

    name: str | None = None
    project_name: str | None = None
    permission: str | None = None
    state: str | None = None
    visibility: str | None = None


#: Server's repository permissions, as the action each asks the policy about.
PERMISSION_ACTIONS = {
    "REPO_READ": Action.REPO_READ,
    "REPO_WRITE": Action.REPO_WRITE,
    "REPO_ADMIN": Action.REPO_ADMIN,
}
#: Server's repository states: every Gitward repository is AVAILABLE once created.
STATES = ("AVAILABLE", "INITIALISING", "INITIALISATION_FAILED", "OFFLINE")


def search_repositories(
    caller: Caller, window: Window, query: RepositoryFilter
) -> Page[RepositoryView]:
    """One window of the site's repositories the caller may read (or act on with the
    permission asked for), by project key and slug."""
    action = Action.REPO_READ
    if query.permission:
        if query.permission not in PERMISSION_ACTIONS:
            raise BadRequest(
                f"Invalid permission {query.permission[:40]!r}: use one of "
                f"{', '.join(PERMISSION_ACTIONS)}."
            )
        action = PERMISSION_ACTIONS[query.permission]
    if query.state:
        state = query.state.upper()
        if state not in STATES:
            raise BadRequest(f"Invalid state {query.state[:40]!r}: use one of {', '.join(STATES)}.")
        if state != "AVAILABLE":
            return Page((), False)
    is_private = None
    if query.visibility:
        visibility = query.visibility.lower()
        if visibility not in ("public", "private"):
            raise BadRequest(
                f"Invalid visibility {query.visibility[:40]!r}: use public or private."
            )
        is_private = visibility == "private"
    return caller.permitted_site_repositories(
        action,
        window,
        name=_text(query.name, "name"),
        project_name=_text(query.project_name, "projectname"),
        is_private=is_private,
    )


# -- users ------------------------------------------------------------------------------------


def visible_users(caller: Caller, window: Window, *, text: str | None = None) -> Page[User]:
    """The accounts the caller may read: every account for site administrators, one's own
    for everyone else (docs/server-api.md); narrowed to `text`."""
    user = caller.require_user()
    clean = _text(text, "user")
    if caller.can(Action.SITE_ADMIN, SITE):
        return caller.store.accounts.users(window, text=clean)
    return caller.store.accounts.users(window, text=clean, user_id=user.id)


def find_user(caller: Caller, slug: str) -> User:
    """An account the caller may read (404 for the others: they are not revealed)."""
    user = caller.store.accounts.user_by_username(slug)
    message = f"User {slug} does not exist."
    if user is None:
        raise caller.not_found(message)
    caller.require(Action.ACCOUNT_READ, account_target(user), message)
    return user


def admin_users(caller: Caller, window: Window, *, text: str | None = None) -> Page[User]:
    """Every account, for site administrators."""
    caller.require_site_admin()
    return caller.store.accounts.users(window, text=_text(text, "user"))


# -- access tokens of projects and repositories ---------------------------------------------


def token_resource(caller: Caller, key: str, slug: str | None = None) -> Resource:
    """The project, or its repository, if the caller may manage its access tokens."""
    if slug is None:
        return resolve(caller, ResourceKind.PROJECT, workspace_of(caller, key), project_key=key)
    return resolve(caller, ResourceKind.REPOSITORY, repository_workspace(caller, key, slug),
                   repo_slug=slug)


# -- user permissions -------------------------------------------------------------------------


def project_permissions(
    caller: Caller, key: str, window: Window, *, text: str | None = None
) -> Page[ProjectGrant]:
    """The user grants on a project, for its admins."""
    project = find_project(caller, key, Action.PROJECT_ADMIN)
    return caller.store.repos.project_grants(project.id, window, text=_text(text, "filter"))


def repository_permissions(
    caller: Caller, key: str, slug: str, window: Window, *, text: str | None = None
) -> Page[RepositoryGrant]:
    """The user grants on a repository, for its admins."""
    repo = read_repository(caller, key, slug, Action.REPO_ADMIN)
    return caller.store.repos.repository_grants(repo.id, window, text=_text(text, "filter"))


def grant_named(kind: ResourceKind, permission: str | None) -> str:
    """The Gitward grant a Server permission name sets (domain/server_permissions.py)."""
    names = ", ".join(USER_PERMISSIONS[kind])
    if not permission:
        raise BadRequest(f"Missing required parameter: permission ({names}).")
    grant = grant_of(kind, permission)
    if grant is None:
        raise BadRequest(f"Invalid permission {permission[:40]!r}: use one of {names}.")
    return grant


def set_project_permission(
    caller: Caller, key: str, users: list[str], permission: str | None
) -> None:
    grant = grant_named(ResourceKind.PROJECT, permission)
    workspace = workspace_of(caller, key)
    for user in users:
        projects.set_project_grant(caller, workspace, key, user, grant)


def remove_project_permission(caller: Caller, key: str, user: str) -> None:
    projects.remove_project_grant(caller, workspace_of(caller, key), key, user)


def set_repository_permission(
    caller: Caller, key: str, slug: str, users: list[str], permission: str | None
) -> None:
    grant = grant_named(ResourceKind.REPOSITORY, permission)
    workspace = repository_workspace(caller, key, slug)
    for user in users:
        repositories.set_repository_grant(caller, workspace, slug, user, grant)


def remove_repository_permission(caller: Caller, key: str, slug: str, user: str) -> None:
    workspace = repository_workspace(caller, key, slug)
    repositories.remove_repository_grant(caller, workspace, slug, user)
