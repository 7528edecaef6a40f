"""Pull requests on the Cloud API (R = /repositories/{workspace}/{repo_slug}), in Bitbucket
Cloud's `pullrequest`, `participant`, `pullrequest_comment` and activity JSON:

    GET|POST R/pullrequests               GET|PUT R/pullrequests/{id}
    GET R/pullrequests/{id}/commits|diff|diffstat|activity|statuses
    GET|POST R/pullrequests/{id}/comments GET|PUT|DELETE R/pullrequests/{id}/comments/{cid}
    POST|DELETE R/pullrequests/{id}/approve   POST|DELETE R/pullrequests/{id}/request-changes
    POST R/pullrequests/{id}/decline      GET R/pullrequests/activity
    GET R/effective-default-reviewers, GET R/default-reviewers

The renderers take a request (or `hosts.linking(base)` outside one: webhook bodies).
docs/pull-requests.md has the rules.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request, Response

from gitward.domain.permissions import Action
from gitward.services import build_statuses, cloud_content
from gitward.services import pull_requests as service
from gitward.services.cloud_content import Opened
from gitward.services.errors import BadRequest
from gitward.services.pull_requests import Activity, Role, State, Status
from gitward.storage.common import Page
from gitward.storage.models import (
    PullRequest,
    PullRequestActivity,
    PullRequestComment,
    PullRequestParticipant,
    Repository,
    User,
)
from gitward.storage.views import RepositoryView
from gitward.web.cloud_api import render
from gitward.web.cloud_api.build_statuses import status_json
from gitward.web.cloud_api.content import commit_json
from gitward.web.cloud_api.query import ListingDep
from gitward.web.deps import CallerDep, CloudPageDep, RuntimeDep
from gitward.web.openapi import media
from gitward.web.pipeline import UnitRoute

router = APIRouter(route_class=UnitRoute, prefix="/repositories", tags=["pull requests"])
#: The pull requests of a user, across repositories (`/2.0/pullrequests/{selected_user}`).
users_router = APIRouter(route_class=UnitRoute, tags=["pull requests"])

R = "/{workspace}/{repo_slug}"
PR = R + "/pullrequests/{pull_request_id}"
JSON = dict[str, Any]
BodyDep = Annotated[dict[str, Any], Body()]
States = Annotated[list[str] | None, Query(max_length=20)]


# -- JSON ---------------------------------------------------------------------------------


def _api(base: str, r: Repository | RepositoryView) -> str:
    return f"{base}/2.0/repositories/{r.workspace.slug}/{r.slug}"


def _rendered(raw: str) -> JSON:
    return {"type": "rendered", "raw": raw, "markup": "markdown",
            "html": f"<p>{html.escape(raw)}</p>" if raw else ""}


def actor_json(
    request: Request, user: User | None, kind: str, uuid: str, name: str
) -> JSON:
    """A user, or a credential acting as itself (`app_user`), as it was when it acted."""
    if user is not None:
        return render.user(request, user)
    return {
        "type": "app_user",
        "kind": kind,
        "display_name": name,
        "uuid": render.braced(uuid),
        "account_id": uuid.replace("-", ""),
        "links": {"self": render.link(f"{render.base_url(request)}/2.0/user")},
    }


def _short_repository(base: str, r: Repository | RepositoryView) -> JSON:
    full = f"{r.workspace.slug}/{r.slug}"
    return {
        "type": "repository",
        "full_name": full,
        "name": r.name,
        "uuid": render.braced(r.uuid),
        "links": {"self": render.link(_api(base, r))},
    }


def _commit(base: str, r: Repository | RepositoryView, commit: str | None) -> JSON | None:
    if commit is None:
        return None
    return {"type": "commit", "hash": commit,
            "links": {"self": render.link(f"{_api(base, r)}/commit/{commit}")}}


def _end(base: str, r: Repository, branch: str, commit: str) -> JSON:
    return {
        "branch": {"name": branch},
        "commit": _commit(base, r, commit),
        "repository": _short_repository(base, r),
    }


def participant_json(request: Request, p: PullRequestParticipant) -> JSON:
    state = {Status.APPROVED.value: "approved",
             Status.NEEDS_WORK.value: "changes_requested"}.get(p.status)
    return {
        "type": "participant",
        "user": render.user(request, p.user),
        "role": Role.PARTICIPANT.value if p.role == Role.AUTHOR.value else p.role,
        "approved": p.status == Status.APPROVED.value,
        "state": state,
        "participated_on": render.iso(p.participated_on),
    }


def pr_href(base: str, pr: PullRequest) -> str:
    return f"{_api(base, pr.repository)}/pullrequests/{pr.number}"


def short_json(request: Request, pr: PullRequest) -> JSON:
    base = render.base_url(request)
    return {"type": "pullrequest", "id": pr.number, "title": pr.title,
            "links": {"self": render.link(pr_href(base, pr))}}


def pullrequest_json(request: Request, pr: PullRequest, comment_count: int) -> JSON:
    base = render.base_url(request)
    repo = pr.repository
    href = pr_href(base, pr)
    return {
        "type": "pullrequest",
        "id": pr.number,
        "title": pr.title,
        "description": pr.description,
        "rendered": {"title": _rendered(pr.title), "description": _rendered(pr.description)},
        "summary": _rendered(pr.description),
        "state": pr.state,
        "author": actor_json(request, pr.author_user, pr.author_kind, pr.author_uuid,
                             pr.author_name),
        "source": _end(base, repo, pr.source_branch, pr.source_commit),
        "destination": _end(base, repo, pr.destination_branch, pr.destination_commit),
        "merge_commit": _commit(base, repo, pr.merge_commit),
        "comment_count": comment_count,
        "task_count": 0,
        "close_source_branch": pr.close_source_branch,
        "closed_by": render.user(request, pr.closed_by) if pr.closed_by else None,
        "reason": pr.reason,
        "created_on": render.iso(pr.created_on),
        "updated_on": render.iso(pr.updated_on),
        "reviewers": [render.user(request, p.user) for p in pr.participants
                      if p.role == Role.REVIEWER.value],
        "participants": [participant_json(request, p) for p in pr.participants
                         if p.role != Role.AUTHOR.value or p.participated_on is not None],
        "draft": pr.draft,
        "queued": False,
        "links": {
            "self": render.link(href),
            "html": render.link(
                f"{base}/{pr.repository.workspace.slug}/{pr.repository.slug}"
                f"/pull-requests/{pr.number}"
            ),
            "commits": render.link(f"{href}/commits"),
            "approve": render.link(f"{href}/approve"),
            "request-changes": render.link(f"{href}/request-changes"),
            "diff": render.link(f"{href}/diff"),
            "diffstat": render.link(f"{href}/diffstat"),
            "comments": render.link(f"{href}/comments"),
            "activity": render.link(f"{href}/activity"),
            "merge": render.link(f"{href}/merge"),
            "decline": render.link(f"{href}/decline"),
            "statuses": render.link(f"{href}/statuses"),
        },
    }


def comment_json(request: Request, pr: PullRequest, c: PullRequestComment) -> JSON:
    base = render.base_url(request)
    href = f"{pr_href(base, pr)}/comments"
    body: JSON = {
        "type": "pullrequest_comment",
        "id": c.id,
        "created_on": render.iso(c.created_on),
        "updated_on": render.iso(c.updated_on),
        "content": _rendered(c.text),
        "user": actor_json(request, c.author_user, c.author_kind, c.author_uuid,
                           c.author_name),
        "deleted": c.deleted,
        "pending": False,
        "pullrequest": short_json(request, pr),
        "links": {"self": render.link(f"{href}/{c.id}")},
    }
    if c.parent_id is not None:
        body["parent"] = {"id": c.parent_id,
                          "links": {"self": render.link(f"{href}/{c.parent_id}")}}
    if c.path is not None:
        body["inline"] = {"path": c.path, "from": c.line_from, "to": c.line_to}
    return body


def activity_json(request: Request, pr: PullRequest, a: PullRequestActivity) -> JSON:
    base = render.base_url(request)
    who = actor_json(request, a.actor_user, a.actor_kind, a.actor_uuid, a.actor_name)
    short = short_json(request, pr)
    when = render.iso(a.created_on)
    if a.kind == Activity.APPROVED.value:
        return {"approval": {"date": when, "user": who, "pullrequest": short},
                "pull_request": short}
    if a.kind == Activity.NEEDS_WORK.value:
        return {"changes_requested": {"date": when, "user": who, "pullrequest": short},
                "pull_request": short}
    if a.kind == Activity.COMMENTED.value and a.comment is not None:
        return {"comment": comment_json(request, pr, a.comment), "pull_request": short}
    state = {Activity.MERGED.value: State.MERGED.value,
             Activity.DECLINED.value: State.DECLINED.value}.get(a.kind, State.OPEN.value)
    details = a.details or {}
    source = pr.source_commit
    if a.kind == Activity.RESCOPED.value:
        source = str(details.get("from_hash", source))
    update: JSON = {
        "state": state,
        "title": pr.title,
        "description": pr.description,
        "reason": pr.reason if state == State.DECLINED.value else "",
        "author": who,
        "date": when,
        "source": _end(base, pr.repository, pr.source_branch, source),
        "destination": _end(base, pr.repository, pr.destination_branch,
                            pr.destination_commit),
        "reviewers": [render.user(request, p.user) for p in pr.participants
                      if p.role == Role.REVIEWER.value],
        "changes": {
            name: {"old": change.get("old"), "new": change.get("new")}
            for name, change in dict(details.get("changes", {})).items()
        },
    }
    return {"update": update, "pull_request": short}


# -- reading a request --------------------------------------------------------------------


def _branch_name(end: object, what: str) -> object:
    """`{"branch": {"name": …}}` of a source or destination."""
    if end is None:
        return None
    if not isinstance(end, dict) or not isinstance(end.get("branch"), dict):
        raise BadRequest(f'Give the {what} as {{"branch": {{"name": "..."}}}}.')
    return end["branch"].get("name")


def _reviewer_refs(value: object) -> list[str] | None:
    """Cloud names reviewers by `uuid`, `account_id` or `username`."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest('reviewers must be a list of {"uuid": "{...}"} objects.')
    refs = []
    for item in value:
        ref = None
        if isinstance(item, dict):
            ref = item.get("uuid") or item.get("account_id") or item.get("username")
        if not isinstance(ref, str) or not ref:
            raise BadRequest('Name each reviewer by "uuid", "account_id" or "username".')
        refs.append(ref)
    return refs


def _opened(caller: Any, runtime: Any, workspace: str, repo_slug: str, action: Action) -> Opened:
    return cloud_content.open_repository(caller, runtime.git, workspace, repo_slug, action)


def _one(request: Request, caller: Any, pr: PullRequest) -> JSON:
    return pullrequest_json(request, pr, caller.store.pull_requests.comment_count(pr))


def _states(raw: list[str] | None) -> frozenset[str] | None:
    if not raw:
        return frozenset({State.OPEN.value})
    wanted = set()
    for value in raw:
        for part in value.split(","):
            name = part.strip().upper()
            if name not in State.__members__:
                raise BadRequest(
                    f"Invalid state {part[:40]!r}: use OPEN, MERGED, DECLINED or SUPERSEDED."
                )
            wanted.add(name)
    return frozenset(wanted)


# -- routes -------------------------------------------------------------------------------


@router.get(R + "/pullrequests")
def list_pull_requests(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep, params: ListingDep, state: States = None,
) -> JSON:
    """The repository's pull requests, newest first: `state` (repeatable; default OPEN,
    unless `q` compares the state), `q` and `sort` (BBQL)."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    criteria = params.criteria_of(service.FIELDS)
    states = _states(state)
    if not state and criteria.query is not None and service.names_state(criteria.query):
        states = None  # a query on the state decides it, not the OPEN default
    wanted = service.Filter(states=states, query=criteria.query, sort=criteria.sort)
    listing = service.listing(caller, opened, wanted, render.window(paging))
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(request, listing, paging,
                       lambda pr: pullrequest_json(request, pr, counts[pr.id]))


@router.post(R + "/pullrequests", status_code=201)
def create_pull_request(
    request: Request, workspace: str, repo_slug: str, body: BodyDep, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    """Open a pull request: `title`, `source.branch.name`, and optionally
    `destination.branch.name` (default: the main branch), `description`, `reviewers`
    (`[{"uuid"}]`), `close_source_branch`, `draft`."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    new = service.NewPullRequest(
        title=body.get("title"),
        source=_branch_name(body.get("source"), "source"),
        destination=_branch_name(body.get("destination"), "destination"),
        description=body.get("description"),
        reviewers=_reviewer_refs(body.get("reviewers")) or [],
        close_source_branch=body.get("close_source_branch"),
        draft=body.get("draft"),
    )
    pr = service.create(caller, opened, new)
    return _one(request, caller, pr)


@router.get(R + "/pullrequests/activity")
def list_repository_activity(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep,
) -> JSON:
    """Every pull request's activity in the repository, newest first."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    rows = caller.store.pull_requests.repository_activities(
        opened.view.id, render.window(paging), without=service.CLOUD_HIDDEN
    )
    return render.page(request, rows, paging,
                       lambda pair: activity_json(request, pair[1], pair[0]))


@router.get(PR)
def get_pull_request(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    return _one(request, caller, service.get(caller, opened, pull_request_id))


@router.put(PR)
def update_pull_request(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, body: BodyDep,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    """Change `title`, `description`, `reviewers`, `destination.branch.name`,
    `close_source_branch` or `draft` of an open pull request."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    changes = service.Changes(
        title=body.get("title"),
        description=body.get("description"),
        reviewers=_reviewer_refs(body.get("reviewers")),
        destination=_branch_name(body.get("destination"), "destination"),
        close_source_branch=body.get("close_source_branch"),
        draft=body.get("draft"),
    )
    return _one(request, caller, service.update(caller, opened, pr, changes))


@router.get(PR + "/commits")
def list_commits(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """The source's commits that the destination does not have, newest first."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    found = service.commits(opened, pr, render.window(paging))
    base = render.base_url(request)
    listing = Page(found.commits, not found.is_last)
    body = render.page(request, listing, paging, lambda c: commit_json(base, opened.view, c))
    body.pop("size", None)  # counting every commit would walk the whole range
    return body


@router.get(PR + "/diff", **media("text/plain", description="The unified diff"))
def diff(
    workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """The unified diff of the source against its merge base with the destination."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    text = service.patch(opened, pr)
    headers = {"X-Content-Type-Options": "nosniff"}
    if text.truncated:
        headers["X-Gitward-Diff-Truncated"] = "true"
    return Response(text.text.encode(), media_type="text/plain; charset=utf-8", headers=headers)


@router.get(PR + "/patch", **media("text/plain", description="The commits as patches"))
def patch(
    workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """The pull request's commits as `git format-patch --stdout` writes them, oldest first."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    text = service.patch_series(opened, pr)
    headers = {"X-Content-Type-Options": "nosniff"}
    if text.truncated:
        headers["X-Gitward-Diff-Truncated"] = "true"
    return Response(text.text.encode(), media_type="text/plain; charset=utf-8", headers=headers)


_STATUS = {
    "ADDED": "added", "DELETED": "removed", "MODIFIED": "modified", "RENAMED": "renamed",
    "COPIED": "added", "TYPE_CHANGED": "modified",
}


@router.get(PR + "/diffstat")
def diffstat(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """Per file: `status`, `lines_added`, `lines_removed`, `old`, `new` (Cloud's
    `diffstat`)."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    span, stat = service.diffstat(opened, pr)
    base = render.base_url(request)
    api = _api(base, opened.view)

    def side(commit: str | None, path: str | None) -> JSON | None:
        if commit is None or path is None:
            return None
        return {"type": "commit_file", "path": path, "escaped_path": quote(path),
                "links": {"self": render.link(f"{api}/src/{commit}/{quote(path)}")}}

    def one(f: Any) -> JSON:
        return {
            "type": "diffstat",
            "status": _STATUS.get(f.kind.name, "modified"),
            "lines_added": f.lines_added,
            "lines_removed": f.lines_removed,
            "old": side(span.base or span.destination, f.old_path),
            "new": side(span.source, f.new_path),
        }

    listing = Page.of(list(stat.files), render.window(paging))
    return render.page(request, listing, paging, one)


@router.get(PR + "/activity")
def list_activity(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """What happened to the pull request, newest first: `update`, `approval`,
    `changes_requested` and `comment` entries."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    rows = service.activities(caller, pr, render.window(paging), cloud=True)
    return render.page(request, rows, paging, lambda a: activity_json(request, pr, a))


@router.get(PR + "/statuses")
def list_statuses(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """The build statuses of the source commit."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    listing = build_statuses.statuses_of_known_commit(
        caller, opened, pr.source_commit, render.window(paging))
    base = render.base_url(request)
    return render.page(request, listing, paging, lambda s: status_json(base, opened.view, s))


# -- comments -----------------------------------------------------------------------------


def _comment_fields(body: dict[str, Any]) -> service.NewComment:
    content = body.get("content")
    if not isinstance(content, dict):
        raise BadRequest('Give the comment as {"content": {"raw": "..."}}.')
    parent = body.get("parent")
    parent_id = None
    if parent is not None:
        if not isinstance(parent, dict) or "id" not in parent:
            raise BadRequest('Reply with {"parent": {"id": <comment id>}}.')
        parent_id = parent["id"]
    inline = body.get("inline")
    path = line_from = line_to = None
    if inline is not None:
        if not isinstance(inline, dict):
            raise BadRequest('Comment inline with {"inline": {"path": "...", "to": <line>}}.')
        path = inline.get("path")
        if path is None:
            raise BadRequest("An inline comment needs the file's path.")
        line_from, line_to = inline.get("from"), inline.get("to")
    return service.NewComment(text=content.get("raw"), parent_id=parent_id, path=path,
                              line_from=line_from, line_to=line_to)


@router.get(PR + "/comments")
def list_comments(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    rows = service.comments(caller, pr, render.window(paging))
    return render.page(request, rows, paging, lambda c: comment_json(request, pr, c))


@router.post(PR + "/comments", status_code=201)
def create_comment(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, body: BodyDep,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    """`{"content": {"raw"}}`, a reply with `parent.id`, inline with `inline.path` and
    `inline.to` (new side) or `inline.from` (old side)."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    row = service.add_comment(caller, opened, pr, _comment_fields(body))
    return comment_json(request, pr, row)


@router.get(PR + "/comments/{comment_id}")
def get_comment(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, comment_id: str,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    return comment_json(request, pr, service.comment(caller, pr, comment_id))


@router.put(PR + "/comments/{comment_id}")
def update_comment(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, comment_id: str,
    body: BodyDep, caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    row = service.comment(caller, pr, comment_id)
    content = body.get("content")
    if not isinstance(content, dict):
        raise BadRequest('Give the comment as {"content": {"raw": "..."}}.')
    row = service.edit_comment(caller, opened, pr, row, content.get("raw"), None)
    return comment_json(request, pr, row)


@router.delete(PR + "/comments/{comment_id}", status_code=204)
def delete_comment(
    workspace: str, repo_slug: str, pull_request_id: str, comment_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    service.delete_comment(caller, opened, pr, service.comment(caller, pr, comment_id), None)
    return Response(status_code=204)


# -- reviews and closing ------------------------------------------------------------------


def _review(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: Any,
    runtime: Any, status: Status,
) -> PullRequestParticipant:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    return service.set_status(caller, opened, pr, status)


@router.post(PR + "/approve")
def approve(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    """Approve: the caller's `participant`."""
    mine = _review(request, workspace, repo_slug, pull_request_id, caller, runtime,
                   Status.APPROVED)
    return participant_json(request, mine)


@router.delete(PR + "/approve", status_code=204)
def unapprove(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    service.unapprove(caller, opened, service.get(caller, opened, pull_request_id))
    return Response(status_code=204)


@router.post(PR + "/request-changes")
def request_changes(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    mine = _review(request, workspace, repo_slug, pull_request_id, caller, runtime,
                   Status.NEEDS_WORK)
    return participant_json(request, mine)


@router.delete(PR + "/request-changes", status_code=204)
def remove_change_request(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    service.remove_change_request(caller, opened, pr)
    return Response(status_code=204)


@router.post(PR + "/decline")
def decline(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JSON:
    """Decline an open pull request (an optional `reason`)."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    reason = (body or {}).get("reason")
    return _one(request, caller, service.decline(caller, opened, pr, None, reason))


@router.get(R + "/commit/{commit}/pullrequests")
def pull_requests_of_commit(
    request: Request, workspace: str, repo_slug: str, commit: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep,
) -> JSON:
    """The pull requests whose commits include the commit (any state), newest first."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    listing = service.containing(caller, opened, commit, render.window(paging))
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(request, listing, paging,
                       lambda pr: pullrequest_json(request, pr, counts[pr.id]))


def _authored(
    request: Request, caller: Any, paging: Any, selected_user: str, workspace: str | None,
    state: list[str] | None,
) -> JSON:
    listing = service.authored_by(caller, selected_user, workspace=workspace,
                                  states=_states(state), window=render.window(paging))
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(request, listing, paging,
                       lambda pr: pullrequest_json(request, pr, counts[pr.id]))


@users_router.get("/pullrequests/{selected_user}")
def pull_requests_of_user(
    request: Request, selected_user: str, caller: CallerDep, paging: CloudPageDep,
    state: States = None,
) -> JSON:
    """The pull requests `selected_user` (username, `{uuid}` or account id) opened, in every
    repository the caller may read them in; `state` as in a repository's listing."""
    return _authored(request, caller, paging, selected_user, None, state)


@users_router.get("/workspaces/{workspace}/pullrequests/{selected_user}")
def pull_requests_of_user_in_workspace(
    request: Request, workspace: str, selected_user: str, caller: CallerDep,
    paging: CloudPageDep, state: States = None,
) -> JSON:
    """The same, in one workspace's repositories."""
    return _authored(request, caller, paging, selected_user, workspace, state)


@router.post(PR + "/merge")
def merge(
    request: Request, workspace: str, repo_slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: Annotated[dict[str, Any] | None, Body()] = None,
) -> JSON:
    """Merge: `{"type": "pullrequest", "message"?, "close_source_branch"?, "merge_strategy"?:
    "merge_commit" | "squash" | "fast_forward"}`; the merged pull request."""
    opened = _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    fields = body or {}
    strategy = service.strategy_of(fields.get("merge_strategy"), service.CLOUD_STRATEGIES)
    pr = service.merge(
        caller, runtime.git, opened, pr, strategy=strategy,
        message=fields.get("message"), close_source_branch=fields.get("close_source_branch"),
    )
    return _one(request, caller, pr)


# -- default reviewers ---------------------------------------------------------------------


def _empty(request: Request, paging: Any) -> JSON:
    return render.page(request, Page((), False, 0), paging, lambda item: item)


@router.get(R + "/default-reviewers")
def default_reviewers(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep,
) -> JSON:
    """Always an empty page: Gitward has no default reviewers (docs/pull-requests.md)."""
    _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    return _empty(request, paging)


@router.get(R + "/effective-default-reviewers")
def effective_default_reviewers(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep,
) -> JSON:
    """Always an empty page: Gitward has no default reviewers (docs/pull-requests.md)."""
    _opened(caller, runtime, workspace, repo_slug, Action.PULLREQUEST_READ)
    return _empty(request, paging)

