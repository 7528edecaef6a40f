"""Projects and the user grants on them."""

from __future__ import annotations

from dataclasses import dataclass

from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.domain.permissions import GRANTS_NEED, PROJECT_GRANTS, Action, ResourceKind
from gitward.services import validation
from gitward.services.caller import Caller, listing_is_empty, project_target, workspace_target
from gitward.services.errors import BadRequest, Conflict, NotFound
from gitward.services.workspaces import find_workspace, workspace_exists_for
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import Project, ProjectGrant, User, utcnow


@dataclass(frozen=True)
class ProjectChanges:
    key: str | None = None
    name: str | None = None
    description: str | None = None
    is_private: bool | None = None


def create_project(
    caller: Caller,
    workspace_slug: str,
    *,
    key: str,
    name: str,
    description: str | None = None,
    is_private: bool = True,
) -> Project:
    workspace = find_workspace(caller, workspace_slug, Action.PROJECT_CREATE)
    clean_key = validation.project_key(key)
    _key_is_free(caller, clean_key, workspace.id, workspace.slug)
    project = Project(
        workspace_id=workspace.id,
        key=clean_key,
        name=validation.name(name, "project name"),
        description=validation.description(description or ""),
        is_private=is_private,
    )
    caller.store.add(project)
    caller.store.flush()
    caller.audit("project.create", target=f"project:{workspace.slug}/{clean_key}")
    return project


def _key_is_free(caller: Caller, key: str, workspace_id: int, workspace_slug: str) -> None:
    """Conflict unless no project of the site holds `key` (keys are unique site-wide, as on
    Bitbucket Server, which names projects by key alone). The other workspace is not named:
    the caller may not see it."""
    holder = caller.store.repos.project_by_site_key(key)
    if holder is None:
        return
    if holder.workspace_id == workspace_id:
        raise Conflict(f"A project with the key {key!r} already exists in {workspace_slug}.")
    raise Conflict(
        f"The project key {key!r} is already used by a project in another workspace: "
        "project keys are unique across the site."
    )


def find_project(
    caller: Caller, workspace_slug: str, key: str, action: Action = Action.PROJECT_READ
) -> Project:
    workspace = workspace_exists_for(caller, workspace_slug)
    project = caller.store.repos.project_by_key(workspace.id, key)
    message = f"Project {key} not found in {workspace_slug}"
    if project is None:
        raise caller.not_found(message)
    caller.require(action, project_target(project), message)
    return project


def visible_projects(
    caller: Caller,
    workspace_slug: str,
    window: Window = EVERYTHING,
    criteria: Criteria = NO_CRITERIA,
) -> Page[Project]:
    """One window of the workspace's projects the caller may read, by key (or `criteria`'s
    sort), matching `criteria`'s query."""
    workspace = workspace_exists_for(caller, workspace_slug)

    def listing(part: Window) -> Page[Project]:
        return caller.permitted_projects(Action.PROJECT_READ, workspace, part, criteria=criteria)

    def unfiltered(part: Window) -> Page[Project]:
        return caller.permitted_projects(Action.PROJECT_READ, workspace, part)

    page = listing(window)
    if (
        listing_is_empty(page, window, listing)
        and listing_is_empty(unfiltered(Window(0, 1)), Window(0, 1), unfiltered)
        and not caller.can(Action.WORKSPACE_READ, workspace_target(workspace))
    ):
        raise caller.not_found(f"Workspace {workspace_slug} not found")
    return page


def update_project(
    caller: Caller, workspace_slug: str, key: str, changes: ProjectChanges
) -> Project:
    project = find_project(caller, workspace_slug, key, Action.PROJECT_ADMIN)
    if changes.key is not None:
        new_key = validation.project_key(changes.key)
        if new_key != project.key:
            _key_is_free(caller, new_key, project.workspace_id, workspace_slug)
            project.key = new_key
    if changes.name is not None:
        project.name = validation.name(changes.name, "project name")
    if changes.description is not None:
        project.description = validation.description(changes.description)
    if changes.is_private is not None:
        project.is_private = changes.is_private
    project.updated_on = utcnow()
    caller.store.flush()
    caller.audit("project.update", target=f"project:{workspace_slug}/{project.key}")
    return project


def delete_project(caller: Caller, workspace_slug: str, key: str) -> None:
    project = find_project(caller, workspace_slug, key, Action.PROJECT_ADMIN)
    if caller.store.repos.repository_count(project.id) > 0:
        raise BadRequest(
            f"Project {project.key} still has repositories: move or delete them first."
        )
    caller.store.delete(project)
    caller.store.credentials.changed()  # its access tokens went with it (cascade)
    caller.audit("project.delete", target=f"project:{workspace_slug}/{project.key}")


def set_project_grant(
    caller: Caller, workspace_slug: str, key: str, user_ref: str, permission: str
) -> tuple[Project, User, ProjectGrant, bool]:
    project = find_project(caller, workspace_slug, key, Action.PROJECT_ADMIN)
    if permission not in PROJECT_GRANTS:
        raise BadRequest(
            f"Invalid permission {permission!r}: use one of {', '.join(PROJECT_GRANTS)}."
        )
    # What granting this level needs (admin: only in person), from the policy's table.
    caller.require(GRANTS_NEED[ResourceKind.PROJECT][PROJECT_GRANTS[permission]],
                   project_target(project))
    user = caller.store.accounts.user_by_ref(user_ref)
    if user is None:
        raise NotFound(f"User {user_ref} not found")
    grant = caller.store.repos.project_grant(project.id, user.id)
    created = grant is None
    if grant is None:
        grant = ProjectGrant(project_id=project.id, user_id=user.id, permission=permission)
        caller.store.add(grant)
    else:
        grant.permission = permission
    caller.store.flush()
    caller.audit(
        "project.permission.set",
        target=f"project:{workspace_slug}/{project.key}",
        user=user.username,
        permission=permission,
    )
    return project, user, grant, created


def list_project_grants(
    caller: Caller, workspace_slug: str, key: str, window: Window = EVERYTHING
) -> tuple[Project, Page[ProjectGrant]]:
    """The explicit user permissions on the project, by username (its admins read them)."""
    project = find_project(caller, workspace_slug, key, Action.PROJECT_ADMIN)
    return project, caller.store.repos.project_grants(project.id, window)


def find_project_grant(
    caller: Caller, workspace_slug: str, key: str, user_ref: str
) -> tuple[Project, User, ProjectGrant]:
    """A user's explicit permission on the project (its admins read it)."""
    project = find_project(caller, workspace_slug, key, Action.PROJECT_ADMIN)
    user = caller.store.accounts.user_by_ref(user_ref)
    grant = caller.store.repos.project_grant(project.id, user.id) if user else None
    if user is None or grant is None:
        raise NotFound(f"User {user_ref[:100]} has no permission on project {project.key}")
    return project, user, grant


def remove_project_grant(caller: Caller, workspace_slug: str, key: str, user_ref: str) -> None:
    project = find_project(caller, workspace_slug, key, Action.PROJECT_ADMIN)
    user = caller.store.accounts.user_by_ref(user_ref)
    grant = caller.store.repos.project_grant(project.id, user.id) if user else None
    if user is None or grant is None:
        raise NotFound(f"User {user_ref} has no permission on project {project.key}")
    caller.store.delete(grant)
    caller.audit(
        "project.permission.remove",
        target=f"project:{workspace_slug}/{project.key}",
        user=user.username,
    )
