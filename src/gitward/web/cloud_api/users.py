"""The signed-in caller: `/2.0/user` and its workspaces."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gitward.domain.identity import TokenPrincipal
from gitward.domain.permissions import Action, WorkspaceRole
from gitward.services import users, workspaces
from gitward.services.caller import account_target
from gitward.storage.query import WORKSPACES
from gitward.web.cloud_api import render
from gitward.web.cloud_api.query import ListingDep
from gitward.web.deps import CallerDep, CloudPageDep
from gitward.web.openapi import media
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, tags=["users"])


@router.get("/user")
def current_user(request: Request, caller: CallerDep) -> dict[str, Any]:
    """The account of the caller; for a token that acts as itself, that token (`app_user`)."""
    principal = caller.ctx.principal
    if isinstance(principal, TokenPrincipal):
        return render.app_user(request, principal)
    user = caller.require_user()
    caller.require(Action.ACCOUNT_READ, account_target(user))
    return render.user(request, user)


@router.get("/user/workspaces")
def my_workspaces(
    request: Request, caller: CallerDep, paging: CloudPageDep, listing: ListingDep
) -> dict[str, Any]:
    """Workspaces the caller belongs to, with whether they administer each."""
    user = caller.require_user()
    caller.require(Action.ACCOUNT_READ, account_target(user))
    rows = workspaces.visible_workspaces(
        caller, render.window(paging), listing.criteria(WORKSPACES),
        listing.role_of(WorkspaceRole),
    )
    return render.page(request, rows, paging, lambda row: _access(request, row))


def _access(request: Request, row: tuple[Any, str]) -> dict[str, Any]:
    ws, role = row
    base = render.base_url(request)
    return {
        "type": "workspace_access",
        "administrator": role == "owner",
        "workspace": render.workspace_ref(request, ws),
        "links": {"self": render.link(f"{base}/2.0/user/workspaces/{ws.slug}")},
    }


@router.get("/user/workspaces/{workspace}")
def my_workspace(request: Request, workspace: str, caller: CallerDep) -> dict[str, Any]:
    """The caller's access to one of its workspaces."""
    user = caller.require_user()
    caller.require(Action.ACCOUNT_READ, account_target(user))
    return _access(request, workspaces.my_membership(caller, user, workspace))


@router.get("/users/{selected_user}")
def user_profile(request: Request, selected_user: str, caller: CallerDep) -> dict[str, Any]:
    """A user's public profile: `{uuid}` or account_id (or username); never the email."""
    return render.user(request, users.public_profile(caller, selected_user))


@router.get(
    "/users/{selected_user}/avatar", **media("image/svg+xml", description="The avatar, as SVG")
)
def user_avatar(selected_user: str, caller: CallerDep) -> Response:
    """The avatar the user JSON links to: the initial of the user's name on a colour drawn
    from their uuid, as SVG (no external service: the server works offline)."""
    user = users.public_profile(caller, selected_user)
    return Response(
        render.avatar_svg(user.display_name or user.username, user.uuid),
        media_type="image/svg+xml",
        headers={"Cache-Control": "max-age=3600"},
    )
