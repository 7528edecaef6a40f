"""Bitbucket Server users: `GET /rest/api/1.0/users` (`filter`) and `…/users/{slug}`.

Site administrators see every account; everyone else their own (docs/server-api.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gitward.services import site
from gitward.web.deps import CallerDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render

router = APIRouter(route_class=UnitRoute, prefix="/api/1.0/users", tags=["server users"])


@router.get("")
def list_users(
    request: Request,
    caller: CallerDep,
    paging: ServerPageDep,
    filter: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """Users by username; `filter`: contained in the username, display name or email."""
    page = site.visible_users(caller, render.window(paging), text=filter)
    return render.page(page, paging, lambda u: render.user(request, u))


@router.get("/{user_slug}")
def get_user(request: Request, user_slug: str, caller: CallerDep) -> dict[str, Any]:
    return render.user(request, site.find_user(caller, user_slug))
