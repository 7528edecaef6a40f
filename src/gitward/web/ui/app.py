"""The pages' application: every route of web/ui/, its static files and HTML errors."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from gitward.web.ui import (
    account,
    admin,
    browse,
    people,
    pull_requests,
    repository,
    settings,
    signin,
    webhooks,
)
from gitward.web.ui.render import STATIC, STATIC_URL


def routes() -> list[BaseRoute]:
    """Fixed paths first; `/{workspace}/…` patterns last, so that a workspace named like a
    page can never shadow it (those names are reserved for workspaces anyway)."""
    static: list[BaseRoute] = [
        Mount(STATIC_URL, StaticFiles(directory=str(STATIC)), name="ui-static")
    ]
    return [
        *static,
        *signin.pages.routes,
        *account.pages.routes,
        *admin.pages.routes,
        *people.pages.routes,
        *settings.pages.routes,
        *webhooks.pages.routes,
        *pull_requests.pages.routes,
        *repository.pages.routes,
        *browse.pages.routes,
    ]
