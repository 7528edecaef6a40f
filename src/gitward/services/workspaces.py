"""Workspaces and their members."""

from __future__ import annotations

from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.domain.permissions import ROLES_NEED, Action, WorkspaceRole
from gitward.services import validation
from gitward.services.caller import Caller, account_target, workspace_target
from gitward.services.errors import BadRequest, Conflict, NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import User, Workspace, WorkspaceMember


def create_workspace(caller: Caller, slug: str, name: str | None) -> Workspace:
    """Create a workspace; the caller becomes its owner (Gitward extension)."""
    user = caller.require_user()
    caller.require(Action.WORKSPACE_CREATE, account_target(user))
    clean = validation.workspace_slug(slug)
    if caller.store.repos.workspace_by_slug(clean) is not None:
        raise Conflict(f"A workspace with the slug {clean!r} already exists.")
    workspace = Workspace(slug=clean, name=validation.name(name or clean, "workspace name"))
    caller.store.add(workspace)
    caller.store.flush()
    caller.store.add(
        WorkspaceMember(workspace_id=workspace.id, user_id=user.id, role=WorkspaceRole.OWNER.value)
    )
    caller.audit("workspace.create", target=f"workspace:{clean}")
    return workspace


def find_workspace(caller: Caller, slug: str, action: Action = Action.WORKSPACE_READ) -> Workspace:
    workspace = caller.store.repos.workspace_by_slug(slug)
    if workspace is None:
        raise caller.not_found(f"Workspace {slug} not found")
    caller.require(action, workspace_target(workspace), f"Workspace {slug} not found")
    return workspace


def workspace_exists_for(caller: Caller, slug: str) -> Workspace:
    """The workspace, without requiring membership (listings filter what is inside)."""
    workspace = caller.store.repos.workspace_by_slug(slug)
    if workspace is None:
        raise caller.not_found(f"Workspace {slug} not found")
    return workspace


def workspaces_with_public_repositories(caller: Caller, window: Window) -> Page[Workspace]:
    """Workspaces holding at least one public repository, by slug: where anyone, anonymous
    included, finds something to read (each repository is still decided when listed)."""
    return caller.store.repos.workspaces_with_public_repositories(window)


def visible_workspaces(
    caller: Caller,
    window: Window = EVERYTHING,
    criteria: Criteria = NO_CRITERIA,
    role: WorkspaceRole | None = None,
) -> Page[tuple[Workspace, str]]:
    """One window of the workspaces the caller belongs to (in `role`, when given) and may
    read, with the role, matching `criteria`."""
    return caller.permitted_memberships(Action.WORKSPACE_READ, window, criteria, role)


def my_membership(caller: Caller, user: User, slug: str) -> tuple[Workspace, str]:
    """A workspace the calling user belongs to, with the user's role in it."""
    workspace = find_workspace(caller, slug)
    member = caller.store.repos.membership(workspace.id, user.id)
    if member is None:
        raise caller.not_found(f"Workspace {slug} not found")
    return workspace, member.role


def list_members(
    caller: Caller, slug: str, window: Window = EVERYTHING, criteria: Criteria = NO_CRITERIA
) -> tuple[Workspace, Page[WorkspaceMember]]:
    """The workspace, if the caller may read it, and one window of its members by username
    (or `criteria`'s sort), matching `criteria`'s query."""
    workspace = find_workspace(caller, slug)
    return workspace, caller.store.repos.members(workspace.id, window, criteria)


def set_member(caller: Caller, slug: str, user_ref: str, role: str) -> WorkspaceMember:
    workspace = find_workspace(caller, slug, Action.WORKSPACE_ADMIN)
    try:
        new_role = WorkspaceRole(role)
    except ValueError:
        raise BadRequest(f"Invalid role {role!r}: use 'owner' or 'member'.") from None
    # What granting this role needs (owner: only in person), from the policy's table.
    caller.require(ROLES_NEED[new_role], workspace_target(workspace))
    member_user = _user(caller, user_ref)
    member = caller.store.repos.membership(workspace.id, member_user.id)
    if member is None:
        member = WorkspaceMember(
            workspace_id=workspace.id, user_id=member_user.id, role=new_role.value
        )
        caller.store.add(member)
    else:
        if member.role == WorkspaceRole.OWNER and new_role != WorkspaceRole.OWNER:
            _keep_an_owner(caller, workspace)
        member.role = new_role.value
    caller.store.flush()
    caller.audit(
        "workspace.member.set",
        target=f"workspace:{workspace.slug}",
        member=member_user.username,
        role=new_role.value,
    )
    return member


def find_member(caller: Caller, workspace: Workspace, user_ref: str) -> WorkspaceMember:
    """A membership of a workspace the caller has already been allowed to see."""
    user = caller.store.accounts.user_by_ref(user_ref)
    member = caller.store.repos.membership(workspace.id, user.id) if user else None
    if member is None:
        raise NotFound(f"{user_ref} is not a member of {workspace.slug}")
    return member


def remove_member(caller: Caller, slug: str, user_ref: str) -> None:
    workspace = find_workspace(caller, slug, Action.WORKSPACE_ADMIN)
    member_user = _user(caller, user_ref)
    member = caller.store.repos.membership(workspace.id, member_user.id)
    if member is None:
        raise NotFound(f"{member_user.username} is not a member of {workspace.slug}")
    if member.role == WorkspaceRole.OWNER:
        _keep_an_owner(caller, workspace)
    caller.store.delete(member)
    caller.audit(
        "workspace.member.remove", target=f"workspace:{workspace.slug}", member=member_user.username
    )


def _keep_an_owner(caller: Caller, workspace: Workspace) -> None:
    if caller.store.repos.owner_count(workspace.id) <= 1:
        raise BadRequest("A workspace must keep at least one owner.")


def _user(caller: Caller, ref: str) -> User:
    user = caller.store.accounts.user_by_ref(ref)
    if user is None:
        raise NotFound(f"User {ref} not found")
    return user
