"""The dashboard (`/`), a workspace (`/{workspace}`) and a project
(`/{workspace}/workspace/projects/{key}`): what the caller can see, through the services'
listings (each item decided by the policy)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from gitward.domain.permissions import Action
from gitward.services import leak_notices, projects, repositories, workspaces
from gitward.services.caller import Caller, project_target, workspace_target
from gitward.storage.common import Window
from gitward.storage.views import RepositoryView
from gitward.web.ui.pages import Pages, View

pages = Pages()

PER_WORKSPACE = 20
WORKSPACES = 50


@dataclass(frozen=True)
class Shelf:
    slug: str
    name: str
    role: str
    repositories: tuple[RepositoryView, ...]
    more: bool


@pages.get("/")
def dashboard(view: View, caller: Caller) -> Response:
    shelves: list[Shelf] = []
    seen: set[str] = set()
    if caller.ctx.user is not None:
        for workspace, role in workspaces.visible_workspaces(caller, Window(0, WORKSPACES)).items:
            page = repositories.visible_repositories(caller, workspace.slug,
                                                     Window(0, PER_WORKSPACE))
            shelves.append(Shelf(workspace.slug, workspace.name, role, tuple(page.items),
                                 page.has_more))
            seen.add(workspace.slug)
    for workspace in workspaces.workspaces_with_public_repositories(
        caller, Window(0, WORKSPACES)
    ).items:
        if workspace.slug in seen:
            continue
        page = repositories.visible_repositories(caller, workspace.slug,
                                                 Window(0, PER_WORKSPACE))
        if page.items:
            shelves.append(Shelf(workspace.slug, workspace.name, "", tuple(page.items),
                                 page.has_more))
    return view.render(caller, "dashboard.html", title="Dashboard", shelves=shelves,
                       leaks=leak_notices.leak_notices(caller))


@pages.get("/{workspace}")
def workspace(view: View, caller: Caller) -> Response:
    slug = view.params["workspace"]
    found = workspaces.workspace_exists_for(caller, slug)
    project_page = projects.visible_projects(caller, slug, Window(0, 100))
    repo_page = repositories.visible_repositories(caller, slug, Window(0, 100))
    owner = caller.can(Action.WORKSPACE_ADMIN, workspace_target(found))
    return view.render(
        caller, "workspace.html", title=found.name, workspace=found,
        projects=project_page.items, repositories=repo_page.items,
        more=project_page.has_more or repo_page.has_more, owner=owner,
    )



@pages.get("/{workspace}/workspace/projects/{project}")
def project(view: View, caller: Caller) -> Response:
    """A project (Bitbucket's address for it, which the API's `links.html` gives): its
    repositories the caller can read, and its settings for its admins."""
    slug = view.params["workspace"]
    found, page = repositories.project_repositories(caller, slug, view.params["project"],
                                                    Window(0, 100))
    return view.render(
        caller, "project.html", title=f"{found.name} · {found.workspace.name}",
        workspace=found.workspace, project=found, repositories=page.items, more=page.has_more,
        admin=caller.can(Action.PROJECT_ADMIN, project_target(found)),
    )
