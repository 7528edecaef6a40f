"""Bitbucket Server projects: `/rest/api/1.0/projects[/{key}]`, and the user permissions on
them (`…/projects/{key}/permissions/users`).

A project is named by its key alone (keys are unique across the site); projects created
here go into the site's default workspace (`GITWARD_DEFAULT_WORKSPACE`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.services import site
from gitward.services.projects import ProjectChanges
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import bodies, render, resources

router = APIRouter(route_class=UnitRoute, prefix="/api/1.0/projects", tags=["server projects"])


class ProjectBody(BaseModel):
    """Types are checked by the services, so that each problem gets its own message."""

    model_config = ConfigDict(extra="ignore")
    key: Any = None
    name: Any = None
    description: Any = None
    public: Any = None


@router.get("")
def list_projects(
    request: Request,
    caller: CallerDep,
    paging: ServerPageDep,
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """The projects the caller may read, by key (`name`: containing it, any case)."""
    page = site.visible_projects(caller, render.window(paging), name=name)
    return render.page(page, paging, lambda p: resources.project(request, p))


@router.post("", status_code=201)
def create_project(
    request: Request, body: ProjectBody, caller: CallerDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """A project in the default workspace: its owners and site administrators."""
    created = site.create_project(
        caller,
        runtime.settings.default_workspace,
        key=body.key,
        name=body.name,
        description=body.description,
        public=body.public,
    )
    return resources.project(request, created)


@router.get("/{project_key}")
def get_project(request: Request, project_key: str, caller: CallerDep) -> dict[str, Any]:
    return resources.project(request, site.find_project(caller, project_key))


@router.put("/{project_key}")
def update_project(
    request: Request, project_key: str, body: ProjectBody, caller: CallerDep
) -> dict[str, Any]:
    """Change the key, name, description or visibility; fields not sent stay."""
    public = bodies.flag(body.public, "public")
    changes = ProjectChanges(
        key=bodies.text(body.key, "key"),
        name=bodies.text(body.name, "name"),
        description=bodies.text(body.description, "description"),
        is_private=None if public is None else not public,
    )
    return resources.project(request, site.update_project(caller, project_key, changes))


@router.delete("/{project_key}", status_code=204)
def delete_project(project_key: str, caller: CallerDep) -> Response:
    """Delete an empty project (one with repositories is a 400: move or delete them)."""
    site.delete_project(caller, project_key)
    return Response(status_code=204)


# -- user permissions -------------------------------------------------------------------------


@router.get("/{project_key}/permissions/users")
def list_user_permissions(
    request: Request,
    project_key: str,
    caller: CallerDep,
    paging: ServerPageDep,
    filter: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """The users granted a permission on the project, by username (project admins)."""
    page = site.project_permissions(caller, project_key, render.window(paging), text=filter)
    return render.page(page, paging, lambda g: resources.user_permission(request, g))


@router.put("/{project_key}/permissions/users", status_code=204)
def set_user_permission(
    project_key: str,
    caller: CallerDep,
    name: Annotated[list[str] | None, Query(max_length=200)] = None,
    permission: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Grant `permission` (PROJECT_READ, PROJECT_WRITE, PROJECT_ADMIN) to each `name`."""
    site.set_project_permission(caller, project_key, bodies.names(name), permission)
    return Response(status_code=204)


@router.delete("/{project_key}/permissions/users", status_code=204)
def revoke_user_permission(
    project_key: str,
    caller: CallerDep,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Take user `name`'s permission on the project away."""
    site.remove_project_permission(caller, project_key, bodies.names([name] if name else None)[0])
    return Response(status_code=204)
