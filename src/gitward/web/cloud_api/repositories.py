"""Repositories, their user permissions and branches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gitward.services import repositories
from gitward.services.caller import RepositoryRole
from gitward.services.errors import BadRequest
from gitward.services.repositories import RepositoryChanges
from gitward.storage.models import Repository, RepositoryGrant, User
from gitward.storage.query import REPOSITORIES
from gitward.web.cloud_api import render
from gitward.web.cloud_api.bodies import Permission, RepositoryCreate, RepositoryUpdate
from gitward.web.cloud_api.query import ListingDep
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute
from gitward.web.push_protection import (
    PushProtectionBody,
    push_protection_json,
    push_protection_setting,
)

router = APIRouter(route_class=UnitRoute, prefix="/repositories", tags=["repositories"])


@router.get("")
def list_all_repositories(
    request: Request, caller: CallerDep, paging: CloudPageDep, listing: ListingDep
) -> Response:
    """Without `role`, the public repositories; with `role` (member, contributor, admin,
    owner), the repositories of every workspace the caller holds in that role."""
    repos = repositories.repositories_anywhere(
        caller,
        render.window(paging),
        listing.criteria(REPOSITORIES),
        listing.role_of(RepositoryRole),
    )
    return render.encoded_page(request, repos, paging, lambda r: render.repository(request, r))


@router.get("/{workspace}")
def list_repositories(
    request: Request, workspace: str, caller: CallerDep, paging: CloudPageDep,
    listing: ListingDep,
) -> Response:
    """The workspace's repositories the caller may read; `q`, `sort` and `role` as Cloud."""
    repos = repositories.visible_repositories(
        caller,
        workspace,
        render.window(paging),
        listing.criteria(REPOSITORIES),
        listing.role_of(RepositoryRole),
    )
    return render.encoded_page(request, repos, paging, lambda r: render.repository(request, r))


@router.post("/{workspace}/{repo_slug}", status_code=200)
def create_repository(
    request: Request,
    workspace: str,
    repo_slug: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    body: RepositoryCreate | None = None,
) -> dict[str, Any]:
    """Create a repository (as Cloud: 200 with the repository)."""
    body = body or RepositoryCreate()
    if body.scm != "git":
        raise BadRequest(f"Unsupported scm {body.scm!r}: Gitward hosts git repositories.")
    repo = repositories.create_repository(
        caller,
        runtime.git,
        workspace,
        repo_slug,
        project_key=body.project.key if body.project else None,
        is_private=body.is_private,
        name=body.name,
        description=body.description,
    )
    return render.repository(request, repo)


@router.get("/{workspace}/{repo_slug}")
def get_repository(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep
) -> dict[str, Any]:
    return render.repository(request, repositories.read_repository(caller, workspace, repo_slug))


@router.put("/{workspace}/{repo_slug}")
def update_repository(
    request: Request,
    workspace: str,
    repo_slug: str,
    body: RepositoryUpdate,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    changes = RepositoryChanges(
        name=body.name,
        description=body.description,
        is_private=body.is_private,
        mainbranch=body.mainbranch.name if body.mainbranch else None,
        project_key=body.project.key if body.project else None,
    )
    repo = repositories.update_repository(caller, runtime.git, workspace, repo_slug, changes)
    return render.repository(request, repo)


@router.delete("/{workspace}/{repo_slug}", status_code=204)
def delete_repository(
    workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    repositories.delete_repository(caller, runtime.git, workspace, repo_slug)
    return Response(status_code=204)


@router.put("/{workspace}/{repo_slug}/permissions-config/users/{user}")
def set_repository_permission(
    request: Request,
    response: Response,
    workspace: str,
    repo_slug: str,
    user: str,
    body: Permission,
    caller: CallerDep,
) -> dict[str, Any]:
    repo, member, grant, created = repositories.set_repository_grant(
        caller, workspace, repo_slug, user, body.permission
    )
    response.status_code = 201 if created else 200
    return _permission(request, repo, member, grant)


@router.get("/{workspace}/{repo_slug}/permissions-config/users")
def list_repository_permissions(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, paging: CloudPageDep
) -> dict[str, Any]:
    """The users granted a permission on the repository by name, by username (its admins)."""
    repo, grants = repositories.list_repository_grants(caller, workspace, repo_slug,
                                                       render.window(paging))
    return render.page(request, grants, paging,
                       lambda g: _permission(request, repo, g.user, g))


@router.get("/{workspace}/{repo_slug}/permissions-config/users/{user}")
def get_repository_permission(
    request: Request, workspace: str, repo_slug: str, user: str, caller: CallerDep
) -> dict[str, Any]:
    repo, member, grant = repositories.find_repository_grant(caller, workspace, repo_slug, user)
    return _permission(request, repo, member, grant)


def _permission(
    request: Request, repo: Repository, member: User, grant: RepositoryGrant
) -> dict[str, Any]:
    base = render.base_url(request)
    return {
        "type": "repository_user_permission",
        "permission": grant.permission,
        "user": render.user(request, member),
        "repository": {
            "type": "repository",
            "full_name": f"{repo.workspace.slug}/{repo.slug}",
            "name": repo.name,
            "uuid": render.braced(repo.uuid),
        },
        "links": {
            "self": render.link(
                f"{base}/2.0/repositories/{repo.workspace.slug}/{repo.slug}"
                f"/permissions-config/users/{member.account_id}"
            )
        },
    }


@router.delete("/{workspace}/{repo_slug}/permissions-config/users/{user}", status_code=204)
def remove_repository_permission(
    workspace: str, repo_slug: str, user: str, caller: CallerDep
) -> Response:
    repositories.remove_repository_grant(caller, workspace, repo_slug, user)
    return Response(status_code=204)


@router.get("/{workspace}/{repo_slug}/push-protection")
def get_push_protection(
    workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Whether a push carrying a live Gitward credential is refused (repository admins)."""
    return push_protection_json(repositories.push_protection(
        caller, workspace, repo_slug, runtime.settings.push_protection
    ))


@router.put("/{workspace}/{repo_slug}/push-protection")
def set_push_protection(
    workspace: str, repo_slug: str, body: PushProtectionBody, caller: CallerDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Turn push protection on or off here (`enabled`), or follow the site (`null`)."""
    enabled = push_protection_setting(body)
    return push_protection_json(repositories.set_push_protection(
        caller, workspace, repo_slug, enabled, runtime.settings.push_protection
    ))
