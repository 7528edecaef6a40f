"""Build statuses on the Cloud API (R = /repositories/{workspace}/{repo_slug}):
`GET R/commit/{commit}/statuses`, `GET|POST R/commit/{commit}/statuses/build` and
`GET|PUT R/commit/{commit}/statuses/build/{key}`, in Bitbucket Cloud's `commitstatus` JSON
(`type: "build"`, `key`, `state`, `name`, `description`, `url`, `refname`, `created_on`,
`updated_on`, `links.self`, `links.commit`). docs/build-statuses.md has the rules.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Request

from gitward.domain.permissions import Action
from gitward.services import build_statuses as service
from gitward.services import cloud_content
from gitward.storage.models import BuildStatus
from gitward.storage.views import RepositoryView
from gitward.web.cloud_api import render
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, prefix="/repositories", tags=["build statuses"])

R = "/{workspace}/{repo_slug}"
JSON = dict[str, Any]
BodyDep = Annotated[dict[str, Any], Body()]


def status_json(base: str, view: RepositoryView, s: BuildStatus) -> JSON:
    api = f"{base}/2.0/repositories/{view.workspace.slug}/{view.slug}"
    return {
        "type": "build",
        "uuid": render.braced(s.uuid),
        "key": s.key,
        "state": s.state,
        "name": s.name,
        "description": s.description,
        "url": s.url,
        "refname": s.ref,
        "created_on": render.iso(s.created_on),
        "updated_on": render.iso(s.updated_on),
        "links": {
            "self": render.link(
                f"{api}/commit/{s.commit}/statuses/build/{quote(s.key, safe='')}"
            ),
            "commit": render.link(f"{api}/commit/{s.commit}"),
        },
    }


def _list(
    request: Request, workspace: str, repo_slug: str, commit: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    opened = cloud_content.open_repository(
        caller, runtime.git, workspace, repo_slug, Action.BUILD_STATUS_READ
    )
    _, listing = service.statuses(caller, opened, commit, render.window(paging))
    base = render.base_url(request)
    return render.page(request, listing, paging, lambda s: status_json(base, opened.view, s))


@router.get(R + "/commit/{commit}/statuses")
def list_statuses(
    request: Request, workspace: str, repo_slug: str, commit: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """Every status of the commit, first reported first (a Cloud page)."""
    return _list(request, workspace, repo_slug, commit, caller, runtime, paging)


@router.get(R + "/commit/{commit}/statuses/build")
def list_build_statuses(
    request: Request, workspace: str, repo_slug: str, commit: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """The build statuses of the commit (every status Gitward keeps is a build status)."""
    return _list(request, workspace, repo_slug, commit, caller, runtime, paging)


@router.post(R + "/commit/{commit}/statuses/build", status_code=201)
def create_build_status(
    request: Request, workspace: str, repo_slug: str, commit: str, body: BodyDep,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    """Report `{"key", "state", "url", "name"?, "description"?, "refname"?}`: 201 with the
    status, new or (the key was reported before) replaced, as Bitbucket Cloud answers."""
    opened = cloud_content.open_repository(
        caller, runtime.git, workspace, repo_slug, Action.BUILD_STATUS_WRITE
    )
    row, _ = service.report_status(caller, opened, commit, body, service.Surface.CLOUD)
    return status_json(render.base_url(request), opened.view, row)


@router.get(R + "/commit/{commit}/statuses/build/{key:path}")
def get_build_status(
    request: Request, workspace: str, repo_slug: str, commit: str, key: str,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    opened = cloud_content.open_repository(
        caller, runtime.git, workspace, repo_slug, Action.BUILD_STATUS_READ
    )
    row = service.status(caller, opened, commit, key)
    return status_json(render.base_url(request), opened.view, row)


@router.put(R + "/commit/{commit}/statuses/build/{key:path}")
def update_build_status(
    request: Request, workspace: str, repo_slug: str, commit: str, key: str, body: BodyDep,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    """Change a status's `state`, `name`, `description`, `url` or `refname` (the others
    stay); its key cannot change."""
    opened = cloud_content.open_repository(
        caller, runtime.git, workspace, repo_slug, Action.BUILD_STATUS_WRITE
    )
    row = service.update_status(caller, opened, commit, key, body)
    return status_json(render.base_url(request), opened.view, row)
