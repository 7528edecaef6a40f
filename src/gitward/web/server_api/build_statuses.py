"""Build statuses on the Server API, in Bitbucket Server's JSON and paging:

- the build-status module, which names a commit without a repository:
  `GET|POST /rest/build-status/1.0/commits/{commitId}` (POST answers 204) and
  `GET /rest/build-status/1.0/commits/stats/{commitId}`
  (`{"successful","failed","inProgress","cancelled","unknown"}`);
- the newer repository API: `POST|GET P/commits/{commitId}/builds`
  (P = /rest/api/1.0/projects/{key}/repos/{slug}), with `buildNumber`, `duration`, `ref`,
  `parent` and `testResults`.

Server calls a stopped build CANCELLED. docs/build-statuses.md has the rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from gitward.domain.permissions import Action
from gitward.services import build_statuses as service
from gitward.services import cloud_content
from gitward.services.build_statuses import SERVER_NAMES, State
from gitward.storage.models import BuildStatus
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render

router = APIRouter(route_class=UnitRoute, tags=["build statuses"])

JSON = dict[str, Any]
BodyDep = Annotated[dict[str, Any], Body()]
LEGACY = "/build-status/1.0/commits"
P = "/api/1.0/projects/{project_key}/repos/{slug}"


def legacy_json(s: BuildStatus) -> JSON:
    """A status as the build-status module answers it."""
    body: JSON = {
        "state": SERVER_NAMES[State(s.state)],
        "key": s.key,
        "url": s.url,
        "dateAdded": render.millis(s.created_on),
    }
    if s.name is not None:
        body["name"] = s.name
    if s.description is not None:
        body["description"] = s.description
    return body


def build_json(s: BuildStatus) -> JSON:
    """A status as the newer `P/commits/{id}/builds` API answers it."""
    body: JSON = {
        "key": s.key,
        "state": SERVER_NAMES[State(s.state)],
        "url": s.url,
        "createdDate": render.millis(s.created_on),
        "updatedDate": render.millis(s.updated_on),
    }
    optional = {
        "name": s.name,
        "description": s.description,
        "ref": s.ref,
        "buildNumber": s.build_number,
        "parent": s.parent,
        "duration": s.duration_ms,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if s.tests_successful is not None:
        body["testResults"] = {
            "successful": s.tests_successful,
            "failed": s.tests_failed or 0,
            "skipped": s.tests_skipped or 0,
        }
    return body


# -- the build-status module ------------------------------------------------------------


@router.get(LEGACY + "/stats/{commit_id}")
def build_stats(commit_id: str, caller: CallerDep) -> JSON:
    """How many statuses of the commit are in each state, over the repositories the caller
    may read. `unknown` is always 0: Gitward refuses UNKNOWN reports."""
    counts = service.stats_anywhere(caller, commit_id)
    return {
        "successful": counts[State.SUCCESSFUL],
        "failed": counts[State.FAILED],
        "inProgress": counts[State.INPROGRESS],
        "cancelled": counts[State.STOPPED],
        "unknown": 0,
    }


@router.get(LEGACY + "/{commit_id}")
def list_legacy(commit_id: str, caller: CallerDep, paging: ServerPageDep) -> JSON:
    """The commit's statuses in every repository the caller may read, first reported first."""
    listing = service.statuses_anywhere(caller, commit_id, render.window(paging))
    return render.page(listing, paging, legacy_json)


@router.post(LEGACY + "/{commit_id}", status_code=204)
def report_legacy(
    commit_id: str, body: BodyDep, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    """Report `{"state", "key", "url", "name"?, "description"?}` on every repository that
    holds the commit and that the caller may report to: 204."""
    service.report_anywhere(caller, runtime.git, commit_id, body)
    return Response(status_code=204)


# -- the repository API -----------------------------------------------------------------


@router.post(P + "/commits/{commit_id}/builds", status_code=204)
def report_build(
    project_key: str, slug: str, commit_id: str, body: BodyDep, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """Report a build: `key`, `state`, `url`, and optionally `name`, `description`,
    `buildNumber`, `duration` (ms), `ref`, `parent`, `testResults`. 204."""
    opened = cloud_content.open_server_repository(
        caller, runtime.git, project_key, slug, Action.BUILD_STATUS_WRITE
    )
    service.report_status(caller, opened, commit_id, body, service.Surface.SERVER,
                          extended=True)
    return Response(status_code=204)


@router.get(P + "/commits/{commit_id}/builds")
def get_builds(
    project_key: str, slug: str, commit_id: str, caller: CallerDep, runtime: RuntimeDep,
    paging: ServerPageDep, key: Annotated[str | None, Query(max_length=1024)] = None,
) -> JSON:
    """With `key`, that build's status (404 if none), as Bitbucket Server answers; without,
    a page of every status of the commit in this repository."""
    opened = cloud_content.open_server_repository(
        caller, runtime.git, project_key, slug, Action.BUILD_STATUS_READ
    )
    if key is not None:
        return build_json(service.status(caller, opened, commit_id, key))
    _, listing = service.statuses(caller, opened, commit_id, render.window(paging))
    return render.page(listing, paging, build_json)
