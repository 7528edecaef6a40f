"""Bitbucket Server repositories: `/rest/api/1.0/projects/{key}/repos[/{slug}]`, the site-wide
search `/rest/api/1.0/repos`, and the user permissions on a repository.

(Repository content — branches, tags, commits, browse, raw, files — is served by its own
modules.)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.services import repositories as repository_service
from gitward.services import site
from gitward.services.errors import BadRequest
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.push_protection import (
    PushProtectionBody,
    push_protection_json,
    push_protection_setting,
)
from gitward.web.server_api import bodies, render, resources

router = APIRouter(route_class=UnitRoute, prefix="/api/1.0", tags=["server repositories"])

REPOS = "/projects/{project_key}/repos"
REPO = REPOS + "/{repo_slug}"


class ProjectRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: Any = None


class RepositoryBody(BaseModel):
    """Types are checked by the services, so that each problem gets its own message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    scmId: Any = None
    description: Any = None
    public: Any = None
    forkable: Any = None
    defaultBranch: Any = None
    project: ProjectRef | None = None


def _scm(value: Any) -> None:
    if value is not None and value != "git":
        raise BadRequest(f"Unsupported scmId {str(value)[:40]!r}: Gitward serves git only.")


@router.get("/repos")
def search_repositories(
    request: Request,
    caller: CallerDep,
    paging: ServerPageDep,
    name: Annotated[str | None, Query(max_length=255)] = None,
    projectname: Annotated[str | None, Query(max_length=255)] = None,
    permission: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=64)] = None,
    visibility: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The site's repositories the caller may read — or, with `permission`, act on at that
    level — by project key and slug."""
    query = site.RepositoryFilter(name, projectname, permission, state, visibility)
    page = site.search_repositories(caller, render.window(paging), query)
    return render.page(page, paging, lambda r: resources.repository(request, r))


@router.get(REPOS)
def list_repositories(
    request: Request, project_key: str, caller: CallerDep, paging: ServerPageDep
) -> dict[str, Any]:
    """The project's repositories the caller may read, by slug."""
    page = site.project_repositories(caller, project_key, render.window(paging))
    return render.page(page, paging, lambda r: resources.repository(request, r))


@router.post(REPOS, status_code=201)
def create_repository(
    request: Request, project_key: str, body: RepositoryBody, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """A repository in the project, its slug made from its name (project admins, and users
    granted create-repo on it)."""
    _scm(body.scmId)
    bodies.flag(body.forkable, "forkable")
    repo = site.create_repository(
        caller,
        runtime.git,
        project_key,
        name=body.name,
        public=body.public,
        description=body.description,
        default_branch=body.defaultBranch,
    )
    return resources.repository(request, repo)


@router.get(REPO)
def get_repository(
    request: Request, project_key: str, repo_slug: str, caller: CallerDep
) -> dict[str, Any]:
    return resources.repository(request, site.read_repository(caller, project_key, repo_slug))


@router.put(REPO)
def update_repository(
    request: Request, project_key: str, repo_slug: str, body: RepositoryBody,
    caller: CallerDep, runtime: RuntimeDep,
) -> dict[str, Any]:
    """Change the name, description or visibility, or move the repository to another
    project of its workspace (`project.key`); fields not sent stay. The slug stays."""
    _scm(body.scmId)
    bodies.flag(body.forkable, "forkable")
    public = bodies.flag(body.public, "public")
    workspace = site.repository_workspace(caller, project_key, repo_slug)
    changes = repository_service.RepositoryChanges(
        name=bodies.text(body.name, "name"),
        description=bodies.text(body.description, "description"),
        is_private=None if public is None else not public,
        project_key=bodies.text(body.project.key, "project.key") if body.project else None,
    )
    repo = repository_service.update_repository(
        caller, runtime.git, workspace, repo_slug, changes
    )
    return resources.repository(request, repo)


@router.delete(REPO, status_code=202)
def delete_repository(
    project_key: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """Delete the repository (202, as Bitbucket Server, which deletes in the background;
    Gitward deletes at once)."""
    workspace = site.repository_workspace(caller, project_key, repo_slug)
    repository_service.delete_repository(caller, runtime.git, workspace, repo_slug)
    return Response(status_code=202)


# -- user permissions -------------------------------------------------------------------------


@router.get(REPO + "/permissions/users")
def list_user_permissions(
    request: Request,
    project_key: str,
    repo_slug: str,
    caller: CallerDep,
    paging: ServerPageDep,
    filter: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """The users granted a permission on the repository, by username (repository admins)."""
    page = site.repository_permissions(
        caller, project_key, repo_slug, render.window(paging), text=filter
    )
    return render.page(page, paging, lambda g: resources.user_permission(request, g))


@router.put(REPO + "/permissions/users", status_code=204)
def set_user_permission(
    project_key: str,
    repo_slug: str,
    caller: CallerDep,
    name: Annotated[list[str] | None, Query(max_length=200)] = None,
    permission: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Grant `permission` (REPO_READ, REPO_WRITE, REPO_ADMIN) to each `name`."""
    site.set_repository_permission(
        caller, project_key, repo_slug, bodies.names(name), permission
    )
    return Response(status_code=204)


@router.delete(REPO + "/permissions/users", status_code=204)
def revoke_user_permission(
    project_key: str,
    repo_slug: str,
    caller: CallerDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Take user `name`'s permission on the repository away."""
    site.remove_repository_permission(
        caller, project_key, repo_slug, bodies.names([name] if name else None)[0]
    )
    return Response(status_code=204)


# -- push protection --------------------------------------------------------------------------


@router.get(REPO + "/settings/push-protection")
def get_push_protection(
    project_key: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Whether a push carrying a live Gitward credential is refused (repository admins)."""
    workspace = site.repository_workspace(caller, project_key, repo_slug)
    return push_protection_json(repository_service.push_protection(
        caller, workspace, repo_slug, runtime.settings.push_protection
    ))


@router.put(REPO + "/settings/push-protection")
def set_push_protection(
    project_key: str, repo_slug: str, body: PushProtectionBody, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Turn push protection on or off here (`enabled`), or follow the site (`null`)."""
    enabled = push_protection_setting(body)
    workspace = site.repository_workspace(caller, project_key, repo_slug)
    return push_protection_json(repository_service.set_push_protection(
        caller, workspace, repo_slug, enabled, runtime.settings.push_protection
    ))
