"""Bitbucket Server's repository content: branches, tags, commits, browse, raw and files.

P = /rest/api/1.0/projects/{key}/repos/{slug}; branch deletion (and creation, as Server also
offers it there) under /rest/branch-utils/1.0/projects/{key}/repos/{slug}; `latest` for 1.0
is the surface's alias (web/server_api/surface.py).
Bitbucket Server's JSON: refs with `id` (the full ref), `displayId`, `latestCommit`,
`isDefault`; commits with `authorTimestamp`/`committerTimestamp` in epoch milliseconds; Server
paging (`start`, `limit`, `isLastPage`, `nextPageStart`). A `limit` above an endpoint's
maximum is lowered to it, as Server's fixed system limits do (dependency bots ask for 20,000
lines of a file); a `limit` that is not a positive integer is a 400.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from gitward.gitstore.reader import Branch, Commit, EntryKind, Tag, TreeEntry
from gitward.services import content as service
from gitward.services.content import RefOrder
from gitward.services.errors import BadRequest
from gitward.storage.common import Window
from gitward.web.deps import CallerDep, RuntimeDep
from gitward.web.openapi import media
from gitward.web.pipeline import UnitRoute

JSON = dict[str, Any]

P = "/api/1.0/projects/{project_key}/repos/{slug}"
BRANCH_UTILS = "/branch-utils/1.0/projects/{project_key}/repos/{slug}"

router = APIRouter(route_class=UnitRoute, tags=["server content"])

#: How far a page of each kind may go (a larger `limit` is lowered to it).
MAX_REFS = 1000
MAX_COMMITS = 1000
MAX_CHILDREN = 1000
MAX_LINES = 20_000
MAX_FILES = 10_000
#: Bitbucket Server shows a commit id as its first 11 characters.
DISPLAY_ID = 11

METADATA_LATEST = "com.atlassian.bitbucket.server.bitbucket-branch:latest-commit-metadata"
METADATA_AHEAD_BEHIND = (
    "com.atlassian.bitbucket.server.bitbucket-branch:ahead-behind-metadata-provider"
)


# -- parameters -------------------------------------------------------------------------


def _int(raw: str | None, name: str, default: int, minimum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, not {raw[:40]!r}") from None
    if value < minimum or value > 1_000_000_000:
        raise BadRequest(f"{name} must be an integer from {minimum}, not {value}")
    return value


class Paging:
    def __init__(self, start: int, limit: int) -> None:
        self.start = start
        self.limit = limit

    @property
    def window(self) -> Window:
        return Window(self.start, self.limit)


def _paging(start: str | None, limit: str | None, default: int, maximum: int) -> Paging:
    return Paging(
        _int(start, "start", 0, 0), min(_int(limit, "limit", default, 1), maximum)
    )


def _flag(raw: str | None, name: str, default: bool = False) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false, not {raw[:40]!r}")
    return lowered == "true"


def _order(raw: str | None, default: RefOrder) -> RefOrder:
    if raw is None or raw == "":
        return default
    try:
        return RefOrder(raw.upper())
    except ValueError:
        raise BadRequest(
            f"orderBy must be ALPHABETICAL or MODIFICATION, not {raw[:40]!r}"
        ) from None


Text = Annotated[str | None, Query(max_length=4096)]


# -- JSON -------------------------------------------------------------------------------


def _millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def commit_json(c: Commit) -> JSON:
    """A commit as Bitbucket Server renders it (`GET P/commits/{id}`)."""
    return {
        "id": c.id,
        "displayId": c.id[:DISPLAY_ID],
        "author": {"name": c.author.name, "emailAddress": c.author.email},
        "authorTimestamp": _millis(c.author_date),
        "committer": {"name": c.committer.name, "emailAddress": c.committer.email},
        "committerTimestamp": _millis(c.committer_date),
        "message": c.message.rstrip("\n"),
        "parents": [{"id": p, "displayId": p[:DISPLAY_ID]} for p in c.parents],
    }


def branch_json(b: Branch, default: str | None) -> JSON:
    return {
        "id": b.ref,
        "displayId": b.name,
        "type": "BRANCH",
        "latestCommit": b.commit.id,
        "latestChangeset": b.commit.id,
        "isDefault": b.name == default,
    }


def tag_json(t: Tag) -> JSON:
    commit = t.commit.id if t.commit is not None else t.target
    return {
        "id": t.ref,
        "displayId": t.name,
        "type": "TAG",
        "latestCommit": commit,
        "latestChangeset": commit,
        "hash": t.target,
    }


def path_json(path: str) -> JSON:
    """A path as Server renders one: components, parent, name, extension, toString."""
    components = path.split("/") if path else []
    name = components[-1] if components else ""
    body: JSON = {
        "components": components,
        "parent": "/".join(components[:-1]),
        "name": name,
    }
    stem, dot, extension = name.rpartition(".")
    if dot and stem and extension:
        body["extension"] = extension
    body["toString"] = path
    return body


def server_type(kind: EntryKind) -> str:
    """Server knows FILE, DIRECTORY and SUBMODULE: a symbolic link is a FILE (its content
    is the path it points to), as Bitbucket Server shows it."""
    return "FILE" if kind is EntryKind.SYMLINK else kind.value


def child_json(entry: TreeEntry) -> JSON:
    body: JSON = {"path": path_json(entry.name), "contentId": entry.id,
                  "type": server_type(entry.kind)}
    if entry.size is not None:
        body["size"] = entry.size
    return body


def server_page(values: list[Any], paging: Paging, is_last: bool) -> JSON:
    body: JSON = {
        "size": len(values),
        "limit": paging.limit,
        "isLastPage": is_last,
        "start": paging.start,
        "values": values,
    }
    if not is_last:
        body["nextPageStart"] = paging.start + len(values)
    return body


# -- branches ---------------------------------------------------------------------------


@router.get(P + "/branches")
def list_branches(
    project_key: str,
    slug: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    filterText: Text = None,
    orderBy: Text = None,
    details: Text = None,
    base: Text = None,
    boostMatches: Text = None,
    start: Text = None,
    limit: Text = None,
) -> JSON:
    """Branches, by name (`orderBy=ALPHABETICAL`, the default) or newest commit first
    (`MODIFICATION`); `filterText` keeps names containing it (case-insensitive);
    `details=true` adds the latest commit and ahead/behind of `base` (default branch)."""
    paging = _paging(start, limit, 25, MAX_REFS)
    listing = service.list_branches(
        caller, runtime.git, project_key, slug, paging.window,
        filter_text=filterText or None,
        order=_order(orderBy, RefOrder.ALPHABETICAL),
        base=base or None,
        details=_flag(details, "details"),
        boost=_flag(boostMatches, "boostMatches"),
    )
    with_details = _flag(details, "details")
    values = []
    for branch in listing.page.items:
        body = branch_json(branch, listing.default)
        if with_details:
            metadata: JSON = {METADATA_LATEST: commit_json(branch.commit)}
            compared = listing.ahead_behind.get(branch.name)
            if compared is not None:
                metadata[METADATA_AHEAD_BEHIND] = {"ahead": compared[0], "behind": compared[1]}
            body["metadata"] = metadata
        values.append(body)
    return server_page(values, paging, not listing.page.has_more)


@router.get(P + "/branches/default")
def get_default_branch(
    project_key: str, slug: str, caller: CallerDep, runtime: RuntimeDep
) -> Any:
    """The default branch; 204 No Content while the repository is empty."""
    branch = service.default_branch(caller, runtime.git, project_key, slug)
    if branch is None:
        return Response(status_code=204)
    return branch_json(branch, branch.name)


class DefaultBranch(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    id: str


@router.put(P + "/branches/default", status_code=204)
def set_default_branch(
    project_key: str,
    slug: str,
    body: DefaultBranch,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """Make `id` (`refs/heads/NAME` or `NAME`) the default branch. Repository admins."""
    service.set_default_branch(caller, runtime.git, project_key, slug, body.id)
    return Response(status_code=204)


class BranchCreate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str
    startPoint: str
    message: str | None = None


@router.post(P + "/branches")
@router.post(BRANCH_UTILS + "/branches")
def create_branch(
    project_key: str,
    slug: str,
    body: BranchCreate,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    """Create a branch at `startPoint` (a branch, tag or commit id). Needs write."""
    branch, default = service.create_branch(
        caller, runtime.git, project_key, slug, body.name, body.startPoint
    )
    return branch_json(branch, default)


class BranchDelete(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str
    endPoint: str | None = None
    dryRun: bool = False


@router.delete(BRANCH_UTILS + "/branches", status_code=204)
def delete_branch(
    project_key: str,
    slug: str,
    body: BranchDelete,
    caller: CallerDep,
    runtime: RuntimeDep,
) -> Response:
    """Delete a branch (only if it is still at `endPoint`, when given; `dryRun` checks
    everything and changes nothing). Needs write."""
    service.delete_branch(
        caller, runtime.git, project_key, slug, body.name,
        end_point=body.endPoint or None, dry_run=body.dryRun,
    )
    return Response(status_code=204)


# -- tags -------------------------------------------------------------------------------


@router.get(P + "/tags")
def list_tags(
    project_key: str,
    slug: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    filterText: Text = None,
    orderBy: Text = None,
    start: Text = None,
    limit: Text = None,
) -> JSON:
    """Tags, newest first (`orderBy=MODIFICATION`, the default) or by name."""
    paging = _paging(start, limit, 25, MAX_REFS)
    page = service.list_tags(
        caller, runtime.git, project_key, slug, paging.window,
        filter_text=filterText or None, order=_order(orderBy, RefOrder.MODIFICATION),
    )
    return server_page([tag_json(t) for t in page.items], paging, not page.has_more)


@router.get(P + "/tags/{name:path}")
def get_tag(
    project_key: str, slug: str, name: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    return tag_json(service.get_tag(caller, runtime.git, project_key, slug, name))


# -- commits ----------------------------------------------------------------------------


@router.get(P + "/commits")
def list_commits(
    project_key: str,
    slug: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    until: Text = None,
    since: Text = None,
    path: Text = None,
    start: Text = None,
    limit: Text = None,
) -> JSON:
    """Commits reachable from `until` (default: the default branch) and not from `since`,
    newest first; with `path`, only those that changed it."""
    paging = _paging(start, limit, 25, MAX_COMMITS)
    log = service.list_commits(
        caller, runtime.git, project_key, slug, paging.window,
        until=until or None, since=since or None, path=path or None,
    )
    return server_page([commit_json(c) for c in log.commits], paging, log.is_last)


@router.get(P + "/commits/{commit_id}")
def get_commit(
    project_key: str,
    slug: str,
    commit_id: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    path: Text = None,
) -> JSON:
    return commit_json(
        service.get_commit(caller, runtime.git, project_key, slug, commit_id, path=path or None)
    )


# -- files ------------------------------------------------------------------------------


@router.get(P + "/browse")
@router.get(P + "/browse/{path:path}")
def browse(
    project_key: str,
    slug: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    path: str = "",
    at: Text = None,
    type: Text = None,
    start: Text = None,
    limit: Text = None,
) -> JSON:
    """A file's lines or a directory's children at `at` (default: the default branch);
    `type=true` answers only whether the path is a FILE or a DIRECTORY."""
    located = service.locate(caller, runtime.git, project_key, slug, at or None)
    kind = service.entry_kind(located, path)
    if _flag(type, "type"):
        return {"type": server_type(kind)}
    if kind is EntryKind.DIRECTORY:
        paging = _paging(start, limit, 500, MAX_CHILDREN)
        tree = service.directory(located, path, paging.start, paging.limit)
        return {
            "path": path_json(tree.path),
            "revision": located.revision,
            "children": server_page([child_json(e) for e in tree.entries], paging, tree.is_last),
        }
    if kind is not EntryKind.FILE and kind is not EntryKind.SYMLINK:
        raise BadRequest(f"{path!r} is a {kind.value.lower()}, which has no content here.")
    paging = _paging(start, limit, 500, MAX_LINES)
    lines = service.file_lines(located, path, paging.start, paging.limit)
    body: JSON = {
        "lines": [{"text": text} for text in lines.lines],
        "start": paging.start,
        "size": len(lines.lines),
        "isLastPage": lines.is_last,
    }
    if lines.binary:
        body["binary"] = True
    if not lines.is_last:
        body["nextPageStart"] = paging.start + len(lines.lines)
    return body


#: Types a browser would run or render as a page of this origin: served as plain text.
_ACTIVE_TYPES = {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml",
                 "application/xml", "text/javascript", "application/javascript"}


@router.get(
    P + "/raw/{path:path}",
    **media("text/*", "application/json", "application/x-yaml", "*/*",
            description="The file's bytes: text as its text type (`text/plain` when unknown), "
            "binary as its guessed type (`application/octet-stream` when unknown)"),
)
def raw(
    project_key: str,
    slug: str,
    path: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    at: Text = None,
) -> Response:
    """A file's bytes, with a content type from its name (text without a known type is
    text/plain; binary without one is application/octet-stream)."""
    located = service.locate(caller, runtime.git, project_key, slug, at or None)
    blob = service.raw_file(located, path)
    return Response(blob.data, media_type=_content_type(blob.path, blob.binary),
                    headers=_RAW_HEADERS)


_RAW_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Whatever the file is, it never runs as a page of this origin.
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _content_type(path: str, binary: bool) -> str:
    guessed, _ = mimetypes.guess_type(path, strict=False)
    if binary:
        return guessed if guessed and guessed not in _ACTIVE_TYPES else "application/octet-stream"
    if guessed is None or guessed in _ACTIVE_TYPES or not (
        guessed.startswith("text/") or guessed in ("application/json", "application/x-yaml")
    ):
        return "text/plain; charset=utf-8"
    return f"{guessed}; charset=utf-8"


@router.get(P + "/files")
@router.get(P + "/files/{path:path}")
def files(
    project_key: str,
    slug: str,
    caller: CallerDep,
    runtime: RuntimeDep,
    path: str = "",
    at: Text = None,
    start: Text = None,
    limit: Text = None,
) -> JSON:
    """The paths of every file below `path` (recursively), relative to it, one page."""
    paging = _paging(start, limit, 25, MAX_FILES)
    located = service.locate(caller, runtime.git, project_key, slug, at or None)
    page = service.file_paths(located, path, paging.window)
    return server_page(list(page.items), paging, not page.has_more)
