"""Workspaces, their members (Gitward extension) and their projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gitward.domain.permissions import Action, WorkspaceRole
from gitward.services import projects, workspaces
from gitward.services.caller import account_target
from gitward.services.projects import ProjectChanges
from gitward.storage.models import Project, ProjectGrant, User, WorkspaceMember
from gitward.storage.query import MEMBERS, PROJECTS, WORKSPACES
from gitward.web.cloud_api import render
from gitward.web.cloud_api.bodies import (
    MemberRole,
    Permission,
    ProjectCreate,
    ProjectUpdate,
    WorkspaceCreate,
)
from gitward.web.cloud_api.query import ListingDep
from gitward.web.deps import CallerDep, CloudPageDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, prefix="/workspaces", tags=["workspaces"])


def _membership(request: Request, ws: str, member: WorkspaceMember) -> dict[str, Any]:
    base = render.base_url(request)
    return {
        "type": "workspace_membership",
        "role": member.role,
        "user": render.user(request, member.user),
        "links": {
            "self": render.link(
                f"{base}/2.0/workspaces/{ws}/members/{render.braced(member.user.uuid)}"
            )
        },
    }


@router.post("", status_code=201)
def create_workspace(request: Request, body: WorkspaceCreate, caller: CallerDep) -> dict[str, Any]:
    """Create a workspace; the caller becomes its owner (Gitward extension)."""
    ws = workspaces.create_workspace(caller, body.slug, body.name)
    return render.workspace(request, ws)


@router.get("/{workspace}")
def get_workspace(request: Request, workspace: str, caller: CallerDep) -> dict[str, Any]:
    return render.workspace(request, workspaces.find_workspace(caller, workspace))


@router.get("")
def list_workspaces(
    request: Request, caller: CallerDep, paging: CloudPageDep, listing: ListingDep
) -> dict[str, Any]:
    """The workspaces the caller belongs to; `role` owner or member, `q` and `sort` on
    slug, name, uuid and created_on."""
    user = caller.require_user()
    caller.require(Action.ACCOUNT_READ, account_target(user))
    rows = workspaces.visible_workspaces(
        caller, render.window(paging), listing.criteria(WORKSPACES),
        listing.role_of(WorkspaceRole),
    )
    return render.page(request, rows, paging, lambda row: render.workspace(request, row[0]))


@router.get("/{workspace}/members")
def list_members(
    request: Request, workspace: str, caller: CallerDep, paging: CloudPageDep,
    listing: ListingDep,
) -> dict[str, Any]:
    ws, members = workspaces.list_members(
        caller, workspace, render.window(paging), listing.criteria(MEMBERS)
    )
    return render.page(request, members, paging, lambda m: _membership(request, ws.slug, m))


@router.get("/{workspace}/members/{user}")
def get_member(request: Request, workspace: str, user: str, caller: CallerDep) -> dict[str, Any]:
    """One member of the workspace, named by username, {uuid} or account_id."""
    ws = workspaces.find_workspace(caller, workspace)
    member = workspaces.find_member(caller, ws, user)
    return _membership(request, ws.slug, member)


@router.put("/{workspace}/members/{user}")
def set_member(
    request: Request, workspace: str, user: str, body: MemberRole, caller: CallerDep
) -> dict[str, Any]:
    """Add a member or change their role (Gitward extension)."""
    member = workspaces.set_member(caller, workspace, user, body.role)
    return _membership(request, workspace.lower(), member)


@router.delete("/{workspace}/members/{user}", status_code=204)
def remove_member(workspace: str, user: str, caller: CallerDep) -> Response:
    workspaces.remove_member(caller, workspace, user)
    return Response(status_code=204)


@router.get("/{workspace}/projects")
def list_projects(
    request: Request, workspace: str, caller: CallerDep, paging: CloudPageDep,
    listing: ListingDep,
) -> dict[str, Any]:
    items = projects.visible_projects(
        caller, workspace, render.window(paging), listing.criteria(PROJECTS)
    )
    return render.page(request, items, paging, lambda p: render.project(request, p))


@router.post("/{workspace}/projects", status_code=201)
def create_project(
    request: Request, workspace: str, body: ProjectCreate, caller: CallerDep
) -> dict[str, Any]:
    project = projects.create_project(
        caller,
        workspace,
        key=body.key,
        name=body.name,
        description=body.description,
        is_private=body.is_private,
    )
    return render.project(request, project)


@router.get("/{workspace}/projects/{project_key}")
def get_project(
    request: Request, workspace: str, project_key: str, caller: CallerDep
) -> dict[str, Any]:
    return render.project(request, projects.find_project(caller, workspace, project_key))


@router.put("/{workspace}/projects/{project_key}")
def update_project(
    request: Request, workspace: str, project_key: str, body: ProjectUpdate, caller: CallerDep
) -> dict[str, Any]:
    changes = ProjectChanges(
        key=body.key, name=body.name, description=body.description, is_private=body.is_private
    )
    return render.project(request, projects.update_project(caller, workspace, project_key, changes))


@router.delete("/{workspace}/projects/{project_key}", status_code=204)
def delete_project(workspace: str, project_key: str, caller: CallerDep) -> Response:
    projects.delete_project(caller, workspace, project_key)
    return Response(status_code=204)


@router.put("/{workspace}/projects/{project_key}/permissions-config/users/{user}")
def set_project_permission(
    request: Request,
    response: Response,
    workspace: str,
    project_key: str,
    user: str,
    body: Permission,
    caller: CallerDep,
) -> dict[str, Any]:
    project, member, grant, created = projects.set_project_grant(
        caller, workspace, project_key, user, body.permission
    )
    response.status_code = 201 if created else 200
    return _permission(request, project, member, grant)


@router.get("/{workspace}/projects/{project_key}/permissions-config/users")
def list_project_permissions(
    request: Request, workspace: str, project_key: str, caller: CallerDep,
    paging: CloudPageDep,
) -> dict[str, Any]:
    """The users granted a permission on the project by name, by username (its admins)."""
    project, grants = projects.list_project_grants(caller, workspace, project_key,
                                                   render.window(paging))
    return render.page(request, grants, paging,
                       lambda g: _permission(request, project, g.user, g))


@router.get("/{workspace}/projects/{project_key}/permissions-config/users/{user}")
def get_project_permission(
    request: Request, workspace: str, project_key: str, user: str, caller: CallerDep
) -> dict[str, Any]:
    project, member, grant = projects.find_project_grant(caller, workspace, project_key, user)
    return _permission(request, project, member, grant)


def _permission(
    request: Request, project: Project, member: User, grant: ProjectGrant
) -> dict[str, Any]:
    base = render.base_url(request)
    return {
        "type": "project_user_permission",
        "permission": grant.permission,
        "user": render.user(request, member),
        "project": render.project_ref(request, project),
        "links": {
            "self": render.link(
                f"{base}/2.0/workspaces/{project.workspace.slug}/projects/{project.key}"
                f"/permissions-config/users/{member.account_id}"
            )
        },
    }


@router.delete(
    "/{workspace}/projects/{project_key}/permissions-config/users/{user}", status_code=204
)
def remove_project_permission(
    workspace: str, project_key: str, user: str, caller: CallerDep
) -> Response:
    projects.remove_project_grant(caller, workspace, project_key, user)
    return Response(status_code=204)
