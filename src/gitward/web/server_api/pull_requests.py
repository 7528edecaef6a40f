"""Pull requests on the Server API (P = /rest/api/1.0/projects/{key}/repos/{slug}), in
Bitbucket Server's JSON: pull requests with `version`, `fromRef`/`toRef`, `author`,
`reviewers`, `participants`; activities; comments with `anchor`, replies in `comments`;
Server paging.

    GET|POST P/pull-requests                  GET|PUT|DELETE P/pull-requests/{id}
    GET P/pull-requests/{id}/activities|commits|changes   GET P/pull-requests/{id}.diff
    GET|POST P/pull-requests/{id}/participants
    PUT|DELETE P/pull-requests/{id}/participants/{userSlug}
    POST|DELETE P/pull-requests/{id}/approve
    GET|POST P/pull-requests/{id}/comments    GET|PUT|DELETE P/pull-requests/{id}/comments/{cid}
    POST P/pull-requests/{id}/decline|reopen?version=
    GET P/settings/pull-requests, GET /rest/default-reviewers/1.0/projects/{k}/repos/{s}/reviewers
    GET /rest/api/1.0/dashboard/pull-requests, GET /rest/api/1.0/inbox/pull-requests[/count]

The renderers take a request (or `hosts.linking(base)` outside one: webhook bodies).
docs/pull-requests.md has the rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from gitward.domain.permissions import Action
from gitward.gitstore.reader import ChangeKind, DiffFile
from gitward.services import cloud_content
from gitward.services import pull_requests as service
from gitward.services.cloud_content import Opened
from gitward.services.errors import BadRequest, NotFound
from gitward.services.pull_requests import Activity, Direction, Role, State, Status
from gitward.storage.common import EVERYTHING, Page
from gitward.storage.models import (
    PullRequest,
    PullRequestActivity,
    PullRequestComment,
    PullRequestParticipant,
    Repository,
    User,
)
from gitward.web.deps import CallerDep, RuntimeDep, ServerPageDep
from gitward.web.openapi import media
from gitward.web.pipeline import UnitRoute
from gitward.web.server_api import render
from gitward.web.server_api.content import DISPLAY_ID, commit_json, path_json
from gitward.web.server_api.resources import repository as repository_json

router = APIRouter(route_class=UnitRoute, tags=["server pull requests"])

P = "/api/1.0/projects/{project_key}/repos/{slug}"
PR = P + "/pull-requests/{pull_request_id}"
JSON = dict[str, Any]
OptionalBody = Annotated[dict[str, Any] | None, Body()]
Text = Annotated[str | None, Query(max_length=1024)]


# -- JSON ---------------------------------------------------------------------------------


def actor_json(request: Request, user: User | None, kind: str, uuid: str, name: str) -> JSON:
    """A user, or the service user a credential acting as itself is shown as."""
    if user is not None:
        return render.user(request, user)
    slug = f"{kind}-{uuid[:8]}"
    return {"name": slug, "emailAddress": None, "displayName": name, "active": True,
            "slug": slug, "type": "SERVICE"}


def participant_json(request: Request, p: PullRequestParticipant) -> JSON:
    body: JSON = {
        "user": render.user(request, p.user),
        "role": p.role,
        "approved": p.status == Status.APPROVED.value,
        "status": p.status,
    }
    if p.reviewed_commit is not None:
        body["lastReviewedCommit"] = p.reviewed_commit
    return body


def _author(request: Request, pr: PullRequest) -> JSON:
    mine = next((p for p in pr.participants if p.role == Role.AUTHOR.value), None)
    if mine is not None:
        return participant_json(request, mine)
    return {
        "user": actor_json(request, pr.author_user, pr.author_kind, pr.author_uuid,
                           pr.author_name),
        "role": Role.AUTHOR.value, "approved": False, "status": Status.UNAPPROVED.value,
    }


def _ref(request: Request, repo: Repository, branch: str, commit: str) -> JSON:
    return {
        "id": f"refs/heads/{branch}",
        "displayId": branch,
        "latestCommit": commit,
        "type": "BRANCH",
        "repository": repository_json(request, repo),
    }


def pr_html(base: str, pr: PullRequest) -> str:
    repo = pr.repository
    return f"{base}/projects/{repo.project.key}/repos/{repo.slug}/pull-requests/{pr.number}"


def pullrequest_json(request: Request, pr: PullRequest, comment_count: int) -> JSON:
    repo = pr.repository
    body: JSON = {"id": pr.number, "version": pr.version, "title": pr.title}
    if pr.description:
        body["description"] = pr.description
    body.update({
        "state": pr.state,
        "open": pr.state == State.OPEN.value,
        "closed": pr.state != State.OPEN.value,
        "createdDate": render.millis(pr.created_on),
        "updatedDate": render.millis(pr.updated_on),
    })
    if pr.closed_on is not None:
        body["closedDate"] = render.millis(pr.closed_on)
    body.update({
        "fromRef": _ref(request, repo, pr.source_branch, pr.source_commit),
        "toRef": _ref(request, repo, pr.destination_branch, pr.destination_commit),
        "locked": False,
        "draft": pr.draft,
        "author": _author(request, pr),
        "reviewers": [participant_json(request, p) for p in pr.participants
                      if p.role == Role.REVIEWER.value],
        "participants": [participant_json(request, p) for p in pr.participants
                         if p.role == Role.PARTICIPANT.value],
        "properties": {"commentCount": comment_count, "openTaskCount": 0,
                       "resolvedTaskCount": 0},
        "links": {"self": [{"href": f"{pr_html(render.base_url(request), pr)}/overview"}]},
    })
    if pr.merge_commit is not None:
        body["properties"]["mergeCommit"] = {"id": pr.merge_commit,
                                             "displayId": pr.merge_commit[:DISPLAY_ID]}
    return body


def _anchor(pr: PullRequest, c: PullRequestComment) -> JSON | None:
    if c.path is None:
        return None
    anchor: JSON = {"path": c.path, "srcPath": c.path, "diffType": "EFFECTIVE",
                    "fromHash": pr.destination_commit, "toHash": pr.source_commit,
                    "orphaned": False}
    if c.line_to is not None or c.line_from is not None:
        on_to = c.line_to is not None
        anchor.update(line=c.line_to if on_to else c.line_from,
                      lineType=c.line_type or "CONTEXT", fileType="TO" if on_to else "FROM")
    return anchor


def comment_json(
    request: Request, pr: PullRequest, c: PullRequestComment,
    replies: dict[int, list[PullRequestComment]] | None = None, *, editable: bool = False,
) -> JSON:
    body: JSON = {
        "properties": {"repositoryId": pr.repository_id},
        "id": c.id,
        "version": c.version,
        "text": c.text,
        "author": actor_json(request, c.author_user, c.author_kind, c.author_uuid,
                             c.author_name),
        "createdDate": render.millis(c.created_on),
        "updatedDate": render.millis(c.updated_on),
        "comments": [comment_json(request, pr, r, replies, editable=editable)
                     for r in (replies or {}).get(c.id, [])],
        "tasks": [],
        "severity": "NORMAL",
        "state": "OPEN",
        "threadResolved": False,
        "permittedOperations": {"editable": editable, "deletable": editable,
                                "transitionable": editable},
    }
    anchor = _anchor(pr, c)
    if anchor is not None:
        body["anchor"] = anchor
    return body


def activity_json(
    request: Request, pr: PullRequest, a: PullRequestActivity,
    replies: dict[int, list[PullRequestComment]] | None = None,
) -> JSON:
    action = "REVIEWED" if a.kind == Activity.NEEDS_WORK.value else a.kind
    body: JSON = {
        "id": a.id,
        "createdDate": render.millis(a.created_on),
        "user": actor_json(request, a.actor_user, a.actor_kind, a.actor_uuid, a.actor_name),
        "action": action,
    }
    details = a.details or {}
    if a.kind == Activity.COMMENTED.value and a.comment is not None:
        body["commentAction"] = "ADDED"
        body["comment"] = comment_json(request, pr, a.comment, replies)
        anchor = _anchor(pr, a.comment)
        if anchor is not None:
            body["commentAnchor"] = anchor
    elif a.kind == Activity.RESCOPED.value:
        body.update(
            fromHash=details.get("from_hash"),
            previousFromHash=details.get("previous_from_hash"),
            previousToHash=details.get("to_hash"),
            toHash=details.get("to_hash"),
            added={"commits": [], "total": 0},
            removed={"commits": [], "total": 0},
        )
    elif a.kind == Activity.MERGED.value and pr.merge_commit is not None:
        body["commit"] = {"id": pr.merge_commit, "displayId": pr.merge_commit[:DISPLAY_ID]}
    elif a.kind == Activity.UPDATED.value:
        changes = dict(details.get("changes", {}))
        reviewers = changes.get("reviewers")
        if reviewers:
            old, new = set(reviewers.get("old", [])), set(reviewers.get("new", []))
            body["addedReviewers"] = [{"name": n, "slug": n} for n in sorted(new - old)]
            body["removedReviewers"] = [{"name": n, "slug": n} for n in sorted(old - new)]
    return body


# -- reading a request --------------------------------------------------------------------


def _opened(caller: Any, runtime: Any, project_key: str, slug: str, action: Action) -> Opened:
    return cloud_content.open_server_repository(caller, runtime.git, project_key, slug, action)


def _one(request: Request, caller: Any, pr: PullRequest) -> JSON:
    return pullrequest_json(request, pr, caller.store.pull_requests.comment_count(pr))


def _ref_id(ref: object, what: str) -> object:
    """`{"id": "refs/heads/x"}` of fromRef or toRef (another repository is refused: pull
    requests are inside one repository)."""
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise BadRequest(f'Give {what} as {{"id": "refs/heads/..."}}.')
    return ref.get("id")


def _same_repository(ref: object, opened: Opened, what: str) -> None:
    if not isinstance(ref, dict) or not isinstance(ref.get("repository"), dict):
        return
    repo = ref["repository"]
    slug = repo.get("slug")
    key = (repo.get("project") or {}).get("key") if isinstance(repo.get("project"), dict) else None
    if (slug is not None and slug != opened.view.slug) or (
        key is not None and str(key).upper() != opened.view.project.key
    ):
        raise BadRequest(f"{what} must be in this repository: pull requests between "
                         "repositories (forks) are not supported.")


def _reviewer_refs(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest('reviewers must be a list of {"user": {"name": "..."}} objects.')
    refs = []
    for item in value:
        user = item.get("user") if isinstance(item, dict) else None
        name = (user.get("name") or user.get("slug")) if isinstance(user, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest('Name each reviewer as {"user": {"name": "..."}}.')
        refs.append(name)
    return refs


def _states(raw: str | None) -> frozenset[str] | None:
    if raw is None or raw == "":
        return frozenset({State.OPEN.value})
    value = raw.upper()
    if value == "ALL":
        return None
    if value not in (State.OPEN.value, State.MERGED.value, State.DECLINED.value):
        raise BadRequest(f"Invalid state {raw[:40]!r}: use OPEN, MERGED, DECLINED or ALL.")
    return frozenset({value})


def _participant_filters(
    request: Request,
) -> tuple[tuple[Role | None, str, Status | None], ...]:
    """`username.N` with `role.N` and `approved.N` / `participantStatus.N` (N = 1, 2, …)."""
    params = request.query_params
    found = []
    for n in range(1, 11):
        username = params.get(f"username.{n}")
        if username is None:
            continue
        role_raw = params.get(f"role.{n}")
        role = None
        if role_raw:
            try:
                role = Role(role_raw.upper())
            except ValueError:
                raise BadRequest(
                    f"Invalid role.{n} {role_raw[:40]!r}: use AUTHOR, REVIEWER or PARTICIPANT."
                ) from None
        status = None
        approved = params.get(f"approved.{n}")
        if approved:
            if approved.lower() not in ("true", "false"):
                raise BadRequest(f"approved.{n} must be true or false.")
            status = Status.APPROVED if approved.lower() == "true" else Status.UNAPPROVED
        status_raw = params.get(f"participantStatus.{n}")
        if status_raw:
            try:
                status = Status(status_raw.upper())
            except ValueError:
                raise BadRequest(f"Invalid participantStatus.{n} {status_raw[:40]!r}: use "
                                 "APPROVED, UNAPPROVED or NEEDS_WORK.") from None
        found.append((role, username, status))
    return tuple(found)


def _version_param(request: Request, body: dict[str, Any] | None = None) -> int | None:
    raw: object = request.query_params.get("version")
    if raw is None and body:
        raw = body.get("version")
    return service.version_of(raw)


# -- pull requests ------------------------------------------------------------------------


@router.get(P + "/pull-requests")
def list_pull_requests(
    request: Request, project_key: str, slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: ServerPageDep, state: Text = None, direction: Text = None, at: Text = None,
    order: Text = None, filterText: Text = None,
) -> JSON:
    """`state` (OPEN default, MERGED, DECLINED, ALL), `direction` (INCOMING default: `at` is
    the destination; OUTGOING: the source), `at` (refs/heads/x), `order` (NEWEST default,
    OLDEST), `filterText`, `username.N` with `role.N`, `approved.N` or
    `participantStatus.N`."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    try:
        way = Direction((direction or "INCOMING").upper())
    except ValueError:
        raise BadRequest("direction must be INCOMING or OUTGOING.") from None
    if (order or "NEWEST").upper() not in ("NEWEST", "OLDEST"):
        raise BadRequest("order must be NEWEST or OLDEST.")
    wanted = service.Filter(
        states=_states(state), direction=way, at=at or None,
        participants=_participant_filters(request),
        newest_first=(order or "NEWEST").upper() == "NEWEST", text=filterText or None,
    )
    listing = service.listing(caller, opened, wanted, render.window(paging))
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(listing, paging, lambda pr: pullrequest_json(request, pr, counts[pr.id]))


@router.post(P + "/pull-requests", status_code=201)
def create_pull_request(
    request: Request, project_key: str, slug: str, caller: CallerDep, runtime: RuntimeDep,
    body: Annotated[dict[str, Any], Body()],
) -> JSON:
    """`title`, `description`, `fromRef.id`, `toRef.id` (refs/heads/…, in this repository),
    `reviewers` (`[{"user": {"name"}}]`), `draft`."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    _same_repository(body.get("fromRef"), opened, "fromRef")
    _same_repository(body.get("toRef"), opened, "toRef")
    source = _ref_id(body.get("fromRef"), "fromRef")
    if source is None:
        raise BadRequest('fromRef is required: {"fromRef": {"id": "refs/heads/..."}}.')
    new = service.NewPullRequest(
        title=body.get("title"), source=source,
        destination=_ref_id(body.get("toRef"), "toRef"),
        description=body.get("description"),
        reviewers=_reviewer_refs(body.get("reviewers")) or [],
        draft=body.get("draft"),
    )
    return _one(request, caller, service.create(caller, opened, new))


@router.get(PR + ".diff", **media("text/plain", description="The unified diff"))
def diff(
    project_key: str, slug: str, pull_request_id: str, caller: CallerDep, runtime: RuntimeDep,
) -> Response:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    text = service.patch(opened, pr)
    return Response(text.text.encode(), media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff"})


@router.get(PR)
def get_pull_request(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    return _one(request, caller, service.get(caller, opened, pull_request_id))


@router.put(PR)
def update_pull_request(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: Annotated[dict[str, Any], Body()],
) -> JSON:
    """`version` (required), and what changes: `title`, `description`, `reviewers`,
    `toRef.id`, `draft`."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    version = service.version_of(body.get("version"))
    if version is None:
        raise BadRequest("version is required: the version of the pull request you change.")
    _same_repository(body.get("toRef"), opened, "toRef")
    changes = service.Changes(
        title=body.get("title"), description=body.get("description"),
        reviewers=_reviewer_refs(body.get("reviewers")),
        destination=_ref_id(body.get("toRef"), "toRef"), draft=body.get("draft"),
        version=version,
    )
    return _one(request, caller, service.update(caller, opened, pr, changes))


@router.delete(PR, status_code=204)
def delete_pull_request(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: OptionalBody = None,
) -> Response:
    """Delete it (`version` in the body or the query): its author or a repository admin."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    service.delete(caller, opened, pr, _version_param(request, body))
    return Response(status_code=204)


@router.get(PR + "/activities")
def list_activities(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: ServerPageDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    rows = service.activities(caller, pr, render.window(paging), cloud=False)
    replies = service.replies(caller, pr)
    return render.page(rows, paging, lambda a: activity_json(request, pr, a, replies))


@router.get(PR + "/commits")
def list_commits(
    project_key: str, slug: str, pull_request_id: str, caller: CallerDep, runtime: RuntimeDep,
    paging: ServerPageDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    found = service.commits(opened, pr, render.window(paging))
    return render.page(Page(found.commits, not found.is_last), paging, commit_json)


_CHANGE = {
    ChangeKind.ADDED: "ADD", ChangeKind.DELETED: "DELETE", ChangeKind.MODIFIED: "MODIFY",
    ChangeKind.RENAMED: "MOVE", ChangeKind.COPIED: "COPY", ChangeKind.TYPE_CHANGED: "MODIFY",
}


@router.get(PR + "/changes")
def list_changes(
    project_key: str, slug: str, pull_request_id: str, caller: CallerDep, runtime: RuntimeDep,
    paging: ServerPageDep,
) -> JSON:
    """The files the pull request changes (against the merge base), Server's `changes`."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    span, stat = service.diffstat(opened, pr)

    def one(f: DiffFile) -> JSON:
        kind = _CHANGE.get(f.kind, "MODIFY")
        body: JSON = {
            "contentId": f.new_id, "fromContentId": f.old_id,
            "path": path_json(f.new_path or f.old_path or ""),
            "executable": bool(f.new_mode and f.new_mode & 0o111),
            "percentUnchanged": -1, "type": kind, "nodeType": "FILE",
            "properties": {"gitChangeType": kind},
        }
        if f.old_path is not None and f.old_path != f.new_path and f.new_path is not None:
            body["srcPath"] = path_json(f.old_path)
        return body

    page = render.page(Page.of(list(stat.files), render.window(paging)), paging, one)
    return {"fromHash": span.base or span.destination, "toHash": span.source,
            "properties": {"changeScope": "ALL"}, **page}


# -- participants and reviews -------------------------------------------------------------


@router.get(PR + "/participants")
def list_participants(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: ServerPageDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    listing = Page.of(list(pr.participants), render.window(paging))
    return render.page(listing, paging, lambda p: participant_json(request, p))


@router.post(PR + "/participants")
def add_participant(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: Annotated[dict[str, Any], Body()],
) -> JSON:
    """`{"user": {"name"}, "role": "REVIEWER"}`: add a reviewer (only REVIEWER can be given)."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    role = body.get("role", Role.REVIEWER.value)
    if role != Role.REVIEWER.value:
        raise BadRequest("Only the REVIEWER role can be given to a participant.")
    names = _reviewer_refs([body]) or []
    current = [p.user.username for p in pr.participants if p.role == Role.REVIEWER.value]
    service.update(caller, opened, pr, service.Changes(reviewers=[*current, *names]))
    added = next(p for p in pr.participants if p.user.username == names[0]
                 or p.user.uuid == names[0].strip("{}"))
    return participant_json(request, added)


@router.delete(PR + "/participants/{user_slug}", status_code=204)
def remove_participant(
    project_key: str, slug: str, pull_request_id: str, user_slug: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """Remove a reviewer."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    current = [p.user.username for p in pr.participants if p.role == Role.REVIEWER.value]
    if user_slug not in current:
        raise BadRequest(f"{user_slug[:80]!r} is not a reviewer of this pull request.")
    service.update(caller, opened, pr, service.Changes(
        reviewers=[name for name in current if name != user_slug]))
    return Response(status_code=204)


@router.put(PR + "/participants/{user_slug}")
def set_participant_status(
    request: Request, project_key: str, slug: str, pull_request_id: str, user_slug: str,
    caller: CallerDep, runtime: RuntimeDep, body: Annotated[dict[str, Any], Body()],
) -> JSON:
    """`{"status": "APPROVED" | "UNAPPROVED" | "NEEDS_WORK"}` (or `approved`), for yourself."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    raw = body.get("status")
    if raw is None and isinstance(body.get("approved"), bool):
        raw = Status.APPROVED.value if body["approved"] else Status.UNAPPROVED.value
    try:
        status = Status(str(raw).upper()) if isinstance(raw, str) else None
    except ValueError:
        status = None
    if status is None:
        raise BadRequest("status must be APPROVED, UNAPPROVED or NEEDS_WORK.")
    mine = service.set_status(caller, opened, pr, status, user_slug)
    return participant_json(request, mine)


@router.post(PR + "/approve")
def approve(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    return participant_json(request, service.set_status(caller, opened, pr, Status.APPROVED))


@router.delete(PR + "/approve")
def unapprove(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    return participant_json(request, service.unapprove(caller, opened, pr))


# -- closing ------------------------------------------------------------------------------


@router.post(PR + "/decline")
def decline(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: OptionalBody = None,
) -> JSON:
    """Decline (`?version=`): the pull request."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    version = _version_param(request, body)
    return _one(request, caller, service.decline(caller, opened, pr, version))


@router.post(PR + "/reopen")
def reopen(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: OptionalBody = None,
) -> JSON:
    """Reopen a declined pull request (`?version=`)."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    version = _version_param(request, body)
    return _one(request, caller, service.reopen(caller, opened, pr, version))


@router.get(PR + "/merge")
def merge_status(
    project_key: str, slug: str, pull_request_id: str, caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    """Whether the pull request can be merged now: `canMerge`, `conflicted`, `outcome`
    (CLEAN, CONFLICTED), `vetoes` (`summaryMessage`, `detailedMessage`)."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    found = service.merge_check(caller, runtime.git, opened, pr)
    return {
        "canMerge": found.can_merge,
        "conflicted": found.conflicted,
        "outcome": found.outcome,
        "vetoes": [{"summaryMessage": summary, "detailedMessage": detail}
                   for summary, detail in found.vetoes],
    }


@router.post(PR + "/merge")
def merge(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: OptionalBody = None,
) -> JSON:
    """Merge (`?version=`): `{"strategyId"?: "no-ff" | "squash" | "ff-only", "message"?}`
    (Cloud's `merge_strategy` and `close_source_branch` are taken too); the merged pull
    request."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    fields = body or {}
    version = _version_param(request, fields)
    strategy = service.strategy_of(fields.get("strategyId", fields.get("merge_strategy")),
                                   service.SERVER_STRATEGIES)
    repo = opened.view
    pr = service.merge(
        caller, runtime.git, opened, pr, strategy=strategy,
        message=fields.get("message"), close_source_branch=fields.get("close_source_branch"),
        version=version,
        default_message=(f"Pull request #{pr.number}: {pr.title}\n\nMerge in "
                         f"{repo.project.key}/{repo.slug} from {pr.source_branch} to "
                         f"{pr.destination_branch}\n"),
    )
    return _one(request, caller, pr)


# -- comments -----------------------------------------------------------------------------


def _editable(caller: Any, c: PullRequestComment) -> bool:
    try:
        who = service.actor_of(caller)
    except Exception:  # anonymous readers edit nothing
        return False
    return c.author_uuid == who.uuid and c.author_kind == who.kind


def _comment_fields(body: dict[str, Any]) -> service.NewComment:
    parent = body.get("parent")
    parent_id = None
    if parent is not None:
        if not isinstance(parent, dict) or "id" not in parent:
            raise BadRequest('Reply with {"parent": {"id": <comment id>}}.')
        parent_id = parent["id"]
    anchor = body.get("anchor")
    path = line_from = line_to = line_type = None
    if anchor is not None:
        if not isinstance(anchor, dict):
            raise BadRequest('anchor must be {"path", "line", "lineType", "fileType"}.')
        path = anchor.get("path")
        if path is None:
            raise BadRequest("An inline comment's anchor needs the file's path.")
        line = anchor.get("line")
        if line is not None:
            file_type = anchor.get("fileType", "TO")
            if file_type not in ("FROM", "TO"):
                raise BadRequest("anchor.fileType must be FROM or TO.")
            line_type = anchor.get("lineType", "CONTEXT")
            if file_type == "FROM":
                line_from = line
            else:
                line_to = line
    return service.NewComment(text=body.get("text"), parent_id=parent_id, path=path,
                              line_from=line_from, line_to=line_to, line_type=line_type)


@router.get(PR + "/comments")
def list_comments(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: ServerPageDep, path: Text = None,
) -> JSON:
    """Top-level comments, oldest first, replies nested in `comments`; `path` keeps the
    inline comments on that file."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    replies = service.replies(caller, pr)
    rows = [c for c in caller.store.pull_requests.all_comments(pr)
            if c.parent_id is None and not c.deleted and (path is None or c.path == path)]
    listing = Page.of(rows, render.window(paging))
    return render.page(listing, paging, lambda c: comment_json(
        request, pr, c, replies, editable=_editable(caller, c)))


@router.post(PR + "/comments", status_code=201)
def create_comment(
    request: Request, project_key: str, slug: str, pull_request_id: str, caller: CallerDep,
    runtime: RuntimeDep, body: Annotated[dict[str, Any], Body()],
) -> JSON:
    """`{"text"}`, a reply with `parent.id`, inline with `anchor` (`path`, `line`,
    `lineType`, `fileType`)."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    row = service.add_comment(caller, opened, pr, _comment_fields(body))
    return comment_json(request, pr, row, editable=True)


def _visible_comment(caller: Any, pr: PullRequest, comment_id: str) -> PullRequestComment:
    row = service.comment(caller, pr, comment_id)
    if row.deleted:
        raise NotFound(f"Comment {row.id} does not exist on this pull request.")
    return row


@router.get(PR + "/comments/{comment_id}")
def get_comment(
    request: Request, project_key: str, slug: str, pull_request_id: str, comment_id: str,
    caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    pr = service.get(caller, opened, pull_request_id)
    row = _visible_comment(caller, pr, comment_id)
    return comment_json(request, pr, row, service.replies(caller, pr),
                        editable=_editable(caller, row))


@router.put(PR + "/comments/{comment_id}")
def update_comment(
    request: Request, project_key: str, slug: str, pull_request_id: str, comment_id: str,
    caller: CallerDep, runtime: RuntimeDep, body: Annotated[dict[str, Any], Body()],
) -> JSON:
    """`{"text", "version"}`: the comment's author only."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    row = _visible_comment(caller, pr, comment_id)
    version = service.version_of(body.get("version"))
    if version is None:
        raise BadRequest("version is required: the version of the comment you change.")
    row = service.edit_comment(caller, opened, pr, row, body.get("text"), version)
    return comment_json(request, pr, row, service.replies(caller, pr), editable=True)


@router.delete(PR + "/comments/{comment_id}", status_code=204)
def delete_comment(
    request: Request, project_key: str, slug: str, pull_request_id: str, comment_id: str,
    caller: CallerDep, runtime: RuntimeDep,
) -> Response:
    """`?version=`: the comment's author or a repository admin."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_WRITE)
    pr = service.get(caller, opened, pull_request_id)
    row = _visible_comment(caller, pr, comment_id)
    service.delete_comment(caller, opened, pr, row, _version_param(request))
    return Response(status_code=204)


@router.get(P + "/commits/{commit_id}/pull-requests")
def pull_requests_of_commit(
    request: Request, project_key: str, slug: str, commit_id: str, caller: CallerDep,
    runtime: RuntimeDep, paging: ServerPageDep,
) -> JSON:
    """The pull requests whose commits include the commit (any state), newest first."""
    opened = _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    listing = service.containing(caller, opened, commit_id, render.window(paging))
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(listing, paging, lambda pr: pullrequest_json(request, pr, counts[pr.id]))


# -- the caller's pull requests across repositories --------------------------------------


def _roles(raw: str | None, default: frozenset[str] | None) -> frozenset[str] | None:
    if raw is None or raw == "":
        return default
    try:
        return frozenset({Role(raw.upper()).value})
    except ValueError:
        raise BadRequest("role must be AUTHOR, REVIEWER or PARTICIPANT.") from None


def _status(raw: str | None) -> Status | None:
    if raw is None or raw == "":
        return None
    try:
        return Status(raw.upper())
    except ValueError:
        raise BadRequest("participantStatus must be APPROVED, UNAPPROVED or NEEDS_WORK.") from None


@router.get("/api/1.0/dashboard/pull-requests")
def dashboard(
    request: Request, caller: CallerDep, paging: ServerPageDep, state: Text = None,
    role: Text = None, participantStatus: Text = None, order: Text = None,
    closedSince: Text = None,
) -> JSON:
    """The caller's pull requests in every repository they may read them: `state` (any by
    default; OPEN, MERGED, DECLINED), `role` (AUTHOR, REVIEWER, PARTICIPANT; any by
    default), `participantStatus`, `order` (NEWEST default, OLDEST)."""
    user = caller.require_user()
    del closedSince
    states = None if not state or state.upper() == "ALL" else _states(state)
    if (order or "NEWEST").upper() not in ("NEWEST", "OLDEST"):
        raise BadRequest("order must be NEWEST or OLDEST.")
    listing = service.of_participant(
        caller, user, states=states, roles=_roles(role, None),
        status=_status(participantStatus), newest_first=(order or "NEWEST").upper() == "NEWEST",
        window=render.window(paging),
    )
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(listing, paging, lambda pr: pullrequest_json(request, pr, counts[pr.id]))


_REVIEWING = frozenset({Role.REVIEWER.value})
_OPEN = frozenset({State.OPEN.value})


@router.get("/api/1.0/inbox/pull-requests")
def inbox(
    request: Request, caller: CallerDep, paging: ServerPageDep, role: Text = None,
) -> JSON:
    """The open pull requests the caller is a reviewer of (or has `role` in)."""
    user = caller.require_user()
    listing = service.of_participant(
        caller, user, states=_OPEN, roles=_roles(role, _REVIEWING), status=None,
        newest_first=True, window=render.window(paging),
    )
    counts = service.comment_counts(caller, list(listing.items))
    return render.page(listing, paging, lambda pr: pullrequest_json(request, pr, counts[pr.id]))


@router.get("/api/1.0/inbox/pull-requests/count")
def inbox_count(caller: CallerDep) -> JSON:
    """`{"count"}`: how many open pull requests the caller is a reviewer of."""
    user = caller.require_user()
    listing = service.of_participant(
        caller, user, states=_OPEN, roles=_REVIEWING, status=None, newest_first=True,
        window=EVERYTHING,
    )
    return {"count": len(listing.items)}


# -- settings -----------------------------------------------------------------------------

MERGE_STRATEGIES = [
    {"id": "no-ff", "name": "Merge commit", "enabled": True,
     "description": "Always create a new merge commit", "flag": "--no-ff",
     "links": {}},
    {"id": "squash", "name": "Squash", "enabled": True,
     "description": "Combine all commits into one new non-merge commit", "flag": "--squash",
     "links": {}},
    {"id": "ff-only", "name": "Fast-forward only", "enabled": True,
     "description": "Never create a merge commit", "flag": "--ff-only", "links": {}},
]


@router.get(P + "/settings/pull-requests")
def pull_request_settings(
    project_key: str, slug: str, caller: CallerDep, runtime: RuntimeDep,
) -> JSON:
    """Bitbucket Server's pull request settings: the merge strategies Gitward has (merge
    commit by default), no required approvers or builds."""
    _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    return {
        "mergeConfig": {
            "defaultStrategy": MERGE_STRATEGIES[0],
            "strategies": MERGE_STRATEGIES,
            "type": "DEFAULT",
        },
        "requiredAllApprovers": False,
        "requiredAllTasksComplete": False,
        "requiredApprovers": 0,
        "requiredSuccessfulBuilds": 0,
    }


@router.get("/default-reviewers/1.0/projects/{project_key}/repos/{slug}/reviewers")
def default_reviewers(
    project_key: str, slug: str, caller: CallerDep, runtime: RuntimeDep,
    sourceRepoId: Text = None, targetRepoId: Text = None,
    sourceRefId: Text = None, targetRefId: Text = None,
) -> list[JSON]:
    """The reviewers a new pull request gets by default: none (Gitward has no default
    reviewers, docs/pull-requests.md), a JSON array as Server answers."""
    _opened(caller, runtime, project_key, slug, Action.PULLREQUEST_READ)
    del sourceRepoId, targetRepoId, sourceRefId, targetRefId
    return []
