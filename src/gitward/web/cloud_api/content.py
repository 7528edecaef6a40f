"""Repository content on the Cloud API, in Bitbucket Cloud's JSON: refs (branches, tags),
commits, source (`src`), `diff` and `diffstat`. R = /repositories/{workspace}/{repo_slug}.

Shapes follow Bitbucket Cloud's API reference (the `branch`, `tag`, `commit`,
`commit_file`, `commit_directory` and `diffstat` objects) and what atlassian-python-api's
`atlassian/bitbucket/cloud/repositories/refs.py` and `commits.py` read from them.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from gitward.domain.permissions import Action
from gitward.gitstore.reader import (
    Branch,
    ChangeKind,
    Commit,
    DiffFile,
    EntryKind,
    Tag,
    TreeEntry,
)
from gitward.services import cloud_content as content
from gitward.services.caller import Caller
from gitward.services.cloud_content import Opened, Source, Spec
from gitward.services.errors import BadRequest
from gitward.storage.common import Page, Window
from gitward.storage.views import RepositoryView
from gitward.web.cloud_api import render
from gitward.web.cloud_api.query import ListingDep
from gitward.web.deps import CallerDep, CloudPage, CloudPageDep, RuntimeDep
from gitward.web.openapi import media
from gitward.web.pipeline import Ingress, UnitRoute, pipeline_of

router = APIRouter(route_class=UnitRoute, prefix="/repositories", tags=["repository content"])

R = "/{workspace}/{repo_slug}"
JSON = dict[str, Any]

#: Headers on every raw file: its bytes are never run as a page of this origin.
RAW_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


# -- JSON ------------------------------------------------------------------------------------


def _api(base: str, view: RepositoryView) -> str:
    return f"{base}/2.0/repositories/{view.workspace.slug}/{view.slug}"


def _html(base: str, view: RepositoryView) -> str:
    return f"{base}/{view.workspace.slug}/{view.slug}"


def _ref_path(name: str) -> str:
    return quote(name, safe="/")


def _commit_ref(base: str, view: RepositoryView, commit_id: str) -> JSON:
    return {
        "type": "commit",
        "hash": commit_id,
        "links": {
            "self": render.link(f"{_api(base, view)}/commit/{commit_id}"),
            "html": render.link(f"{_html(base, view)}/commits/{commit_id}"),
        },
    }


def commit_json(base: str, view: RepositoryView, c: Commit) -> JSON:
    api = _api(base, view)
    return {
        "type": "commit",
        "hash": c.id,
        "date": c.author_date.isoformat(),
        "author": {"type": "author", "raw": f"{c.author.name} <{c.author.email}>"},
        "message": c.message,
        "summary": {
            "type": "rendered",
            "raw": c.message,
            "markup": "markdown",
            "html": f"<p>{html.escape(c.message.strip())}</p>",
        },
        "parents": [_commit_ref(base, view, p) for p in c.parents],
        "repository": {
            "type": "repository",
            "full_name": f"{view.workspace.slug}/{view.slug}",
            "name": view.name,
            "uuid": render.braced(view.uuid),
            "links": {"self": render.link(api), "html": render.link(_html(base, view))},
        },
        "links": {
            "self": render.link(f"{api}/commit/{c.id}"),
            "html": render.link(f"{_html(base, view)}/commits/{c.id}"),
            "diff": render.link(f"{api}/diff/{c.id}"),
            "diffstat": render.link(f"{api}/diffstat/{c.id}"),
        },
    }


def branch_json(base: str, view: RepositoryView, b: Branch) -> JSON:
    api = _api(base, view)
    return {
        "type": "branch",
        "name": b.name,
        "default_merge_strategy": "merge_commit",
        "merge_strategies": ["merge_commit", "squash", "fast_forward"],
        "target": commit_json(base, view, b.commit),
        "links": {
            "self": render.link(f"{api}/refs/branches/{_ref_path(b.name)}"),
            "commits": render.link(f"{api}/commits/{_ref_path(b.name)}"),
            "html": render.link(f"{_html(base, view)}/src/{_ref_path(b.name)}"),
        },
    }


def tag_json(base: str, view: RepositoryView, t: Tag) -> JSON:
    api = _api(base, view)
    body: JSON = {
        "type": "tag",
        "name": t.name,
        "target": commit_json(base, view, t.commit) if t.commit is not None else None,
        "message": t.message,
        "date": t.tag_date.isoformat() if t.tag_date else None,
        "tagger": (
            {"type": "author", "raw": f"{t.tagger.name} <{t.tagger.email}>"}
            if t.tagger else None
        ),
        "links": {
            "self": render.link(f"{api}/refs/tags/{_ref_path(t.name)}"),
            "commits": render.link(f"{api}/commits/{_ref_path(t.name)}"),
            "html": render.link(f"{_html(base, view)}/src/{_ref_path(t.name)}"),
        },
    }
    return body


def _src(base: str, view: RepositoryView, commit_id: str, path: str) -> str:
    return f"{_api(base, view)}/src/{commit_id}/{quote(path)}"


_ATTRIBUTES = {EntryKind.SYMLINK: ["link"], EntryKind.SUBMODULE: ["subrepository"]}


def entry_json(
    base: str, view: RepositoryView, commit_id: str, path: str, kind: EntryKind,
    entry: TreeEntry | None,
) -> JSON:
    href = _src(base, view, commit_id, path)
    commit = _commit_ref(base, view, commit_id)
    if kind is EntryKind.DIRECTORY:
        slash = f"{href}/" if path else href
        return {
            "type": "commit_directory",
            "path": path,
            "escaped_path": quote(path),
            "commit": commit,
            "links": {
                "self": render.link(slash),
                "meta": render.link(f"{slash}?format=meta"),
            },
        }
    attributes = list(_ATTRIBUTES.get(kind, []))
    if entry is not None and entry.mode == 0o100755:
        attributes.append("executable")
    return {
        "type": "commit_file",
        "path": path,
        "escaped_path": quote(path),
        "size": entry.size if entry is not None else None,
        "mimetype": None,
        "attributes": attributes,
        "commit": commit,
        "links": {
            "self": render.link(href),
            "meta": render.link(f"{href}?format=meta"),
        },
    }


def _open_page(
    request: Request, values: list[JSON], paging: CloudPage, has_more: bool
) -> JSON:
    """A Cloud page whose total is not counted (history, trees): no `size`."""
    body: JSON = {"pagelen": paging.pagelen, "page": paging.page, "values": values}
    for present, number, key in (
        (has_more, paging.page + 1, "next"), (paging.page > 1, paging.page - 1, "previous"),
    ):
        if present:
            query = dict(request.query_params)
            query.update(page=str(number), pagelen=str(paging.pagelen))
            body[key] = f"{render.base_url(request)}{request.url.path}?{urlencode(query)}"
    return body


# -- refs ------------------------------------------------------------------------------------


class RefCreate(BaseModel):
    """Types are checked by the service, so that each problem has its own message."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    target: Any = None

    def target_hash(self) -> object:
        return self.target.get("hash") if isinstance(self.target, dict) else None


def _opened(caller: Any, runtime: Any, workspace: str, repo_slug: str,
            action: Action = Action.REPO_READ) -> Opened:
    return content.open_repository(caller, runtime.git, workspace, repo_slug, action)


@router.get(R + "/refs")
def list_refs(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep, listing: ListingDep,
) -> JSON:
    """Branches and tags, by name; `q` and `sort` on name and target fields."""
    opened = _opened(caller, runtime, workspace, repo_slug)
    criteria = listing.criteria_of(content.REF_FIELDS)
    refs = content.list_refs(opened, criteria, render.window(paging))
    base = render.base_url(request)

    def one(ref: Branch | Tag) -> JSON:
        if isinstance(ref, Branch):
            return branch_json(base, opened.view, ref)
        return tag_json(base, opened.view, ref)

    return render.page(request, refs, paging, one)


@router.get(R + "/refs/branches")
def list_branches(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep, listing: ListingDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug)
    branches = content.list_branches(
        opened, listing.criteria_of(content.REF_FIELDS), render.window(paging)
    )
    base = render.base_url(request)
    return render.page(request, branches, paging, lambda b: branch_json(base, opened.view, b))


@router.post(R + "/refs/branches", status_code=201)
def create_branch(
    request: Request, workspace: str, repo_slug: str, body: RefCreate, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    """Create a branch `{"name", "target": {"hash"}}` (a commit, or a branch or tag name):
    the same checks and records as a push."""
    opened = _opened(caller, runtime, workspace, repo_slug)
    branch = content.create_branch(caller, runtime.git, opened, body.name, body.target_hash())
    return branch_json(render.base_url(request), opened.view, branch)


@router.get(R + "/refs/branches/{name:path}")
def get_branch(
    request: Request, workspace: str, repo_slug: str, name: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug)
    return branch_json(render.base_url(request), opened.view, content.get_branch(opened, name))


@router.delete(R + "/refs/branches/{name:path}", status_code=204)
def delete_branch(
    workspace: str, repo_slug: str, name: str, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    opened = _opened(caller, runtime, workspace, repo_slug)
    content.delete_branch(caller, runtime.git, opened, name)
    return Response(status_code=204)


@router.get(R + "/refs/tags")
def list_tags(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep, listing: ListingDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug)
    tags = content.list_tags(
        opened, listing.criteria_of(content.REF_FIELDS), render.window(paging)
    )
    base = render.base_url(request)
    return render.page(request, tags, paging, lambda t: tag_json(base, opened.view, t))


@router.post(R + "/refs/tags", status_code=201)
def create_tag(
    request: Request, workspace: str, repo_slug: str, body: RefCreate, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    """Create a lightweight tag `{"name", "target": {"hash"}}`, as a push."""
    opened = _opened(caller, runtime, workspace, repo_slug)
    tag = content.create_tag(caller, runtime.git, opened, body.name, body.target_hash())
    return tag_json(render.base_url(request), opened.view, tag)


@router.get(R + "/refs/tags/{name:path}")
def get_tag(
    request: Request, workspace: str, repo_slug: str, name: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug)
    return tag_json(render.base_url(request), opened.view, content.get_tag(opened, name))


@router.delete(R + "/refs/tags/{name:path}", status_code=204)
def delete_tag(
    workspace: str, repo_slug: str, name: str, caller: CallerDep, runtime: RuntimeDep
) -> Response:
    opened = _opened(caller, runtime, workspace, repo_slug)
    content.delete_tag(caller, runtime.git, opened, name)
    return Response(status_code=204)


# -- commits ---------------------------------------------------------------------------------

Revisions = Annotated[list[str] | None, Query()]


def _commits_page(
    request: Request, caller: Any, runtime: Any, workspace: str, repo_slug: str,
    paging: CloudPage, include: list[str], exclude: list[str], path: str | None,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug)
    window = Window((paging.page - 1) * paging.pagelen, paging.pagelen)
    log = content.commits(opened, include, exclude, path, window)
    base = render.base_url(request)
    values = [commit_json(base, opened.view, c) for c in log.commits]
    return _open_page(request, values, paging, not log.is_last)


async def _form_revisions(request: Request) -> tuple[list[str], list[str]]:
    """`include` and `exclude` of a form body (application/x-www-form-urlencoded)."""
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), max_num_fields=1000)
    include = [value for key, value in pairs if key == "include"]
    exclude = [value for key, value in pairs if key == "exclude"]
    return include, exclude


@router.get(R + "/commits")
def list_commits(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep, include: Revisions = None, exclude: Revisions = None,
    path: str | None = None,
) -> JSON:
    """Commits reachable from `include` (default: every branch and tag) and not from
    `exclude`, newest first; `path`: only those that changed it."""
    return _commits_page(request, caller, runtime, workspace, repo_slug, paging,
                         include or [], exclude or [], path)


@router.get(R + "/commits/{revision:path}")
def list_commits_of(
    request: Request, workspace: str, repo_slug: str, revision: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep, include: Revisions = None,
    exclude: Revisions = None, path: str | None = None,
) -> JSON:
    """Commits reachable from `revision` (and `include`), not from `exclude`."""
    return _commits_page(request, caller, runtime, workspace, repo_slug, paging,
                         [revision, *(include or [])], exclude or [], path)


@router.post(R + "/commits")
async def post_commits(
    request: Request, workspace: str, repo_slug: str, runtime: RuntimeDep,
    paging: CloudPageDep, path: str | None = None,
) -> Response:
    """As GET, with `include` and `exclude` in a form body (for long lists)."""
    include, exclude = await _form_revisions(request)
    return await _posted(request, runtime, workspace, repo_slug, paging, include, exclude, path)


@router.post(R + "/commits/{revision:path}")
async def post_commits_of(
    request: Request, workspace: str, repo_slug: str, revision: str, runtime: RuntimeDep,
    paging: CloudPageDep, path: str | None = None,
) -> Response:
    include, exclude = await _form_revisions(request)
    return await _posted(request, runtime, workspace, repo_slug, paging,
                         [revision, *include], exclude, path)


async def _posted(
    request: Request, runtime: Any, workspace: str, repo_slug: str,
    paging: CloudPage, include: list[str], exclude: list[str], path: str | None,
) -> Response:
    """The form's listing, through the pipeline like every other request (the body had to
    be read on the event loop first)."""

    def work(caller: Caller) -> JSON:
        return _commits_page(request, caller, runtime, workspace, repo_slug, paging,
                             include, exclude, path)

    # A POST that only reads: its unit of work takes no write lock.
    body = await pipeline_of(request).call(Ingress.of(request, write=False), work)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(R + "/commit/{revision}")
def get_commit(
    request: Request, workspace: str, repo_slug: str, revision: str, caller: CallerDep,
    runtime: RuntimeDep,
) -> JSON:
    opened = _opened(caller, runtime, workspace, repo_slug)
    return commit_json(render.base_url(request), opened.view, content.commit(opened, revision))


# -- source ----------------------------------------------------------------------------------


def _source(
    request: Request, caller: Any, runtime: Any, workspace: str, repo_slug: str,
    revision: str | None, path: str, paging: CloudPage, format: str | None,
) -> Response | JSON:
    if format not in (None, "", "meta", "rendered"):
        raise BadRequest(f"Unsupported format {format[:40]!r}: use meta.")
    opened = _opened(caller, runtime, workspace, repo_slug)
    if revision is None and format != "meta" and opened.reader.default_branch() is None:
        # An empty repository: its main branch's root has nothing in it (yet).
        return _open_page(request, [], paging, False)
    source: Source = content.locate(opened, revision, path)
    base = render.base_url(request)
    if format == "meta":
        return entry_json(base, opened.view, source.commit, source.path, source.kind,
                          source.entry)
    if source.kind is EntryKind.DIRECTORY:
        window = Window((paging.page - 1) * paging.pagelen, paging.pagelen)
        tree = content.directory(opened, source, window)
        values = [
            entry_json(base, opened.view, source.commit, e.path, e.kind, e)
            for e in tree.entries
        ]
        return _open_page(request, values, paging, not tree.is_last)
    if source.kind is EntryKind.SUBMODULE:
        raise BadRequest(f"{source.path!r} is a submodule: it has no content here.")
    blob = content.file(opened, source)
    media = "application/octet-stream" if blob.binary else "text/plain; charset=utf-8"
    return Response(blob.data, media_type=media, headers=RAW_HEADERS)


@router.get(R + "/src")
def source_root(
    request: Request, workspace: str, repo_slug: str, caller: CallerDep, runtime: RuntimeDep,
    paging: CloudPageDep, format: str | None = None,
) -> Any:
    """The main branch's root directory."""
    return _source(request, caller, runtime, workspace, repo_slug, None, "", paging, format)


@router.get(R + "/src/{revision}")
def source_revision_root(
    request: Request, workspace: str, repo_slug: str, revision: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep, format: str | None = None,
) -> Any:
    return _source(request, caller, runtime, workspace, repo_slug, revision, "", paging, format)


@router.get(
    R + "/src/{revision}/{path:path}",
    **media("application/json", "text/plain", "application/octet-stream",
            description="A directory's page or an entry's meta (JSON), or a file's bytes"),
)
def source(
    request: Request, workspace: str, repo_slug: str, revision: str, path: str,
    caller: CallerDep, runtime: RuntimeDep, paging: CloudPageDep, format: str | None = None,
) -> Any:
    """A file's raw bytes, a directory's page of entries, or (`format=meta`) the entry.
    A revision with a slash in it (a branch `feature/x`) is given percent-encoded
    (`feature%2Fx`), as Bitbucket's clients send it."""
    revision, path = _revision_and_path(request, revision, path)
    return _source(request, caller, runtime, workspace, repo_slug, revision, path, paging,
                   format)


def _revision_and_path(request: Request, revision: str, path: str) -> tuple[str, str]:
    """The revision segment as sent (before its `%2F` were decoded into slashes)."""
    raw: bytes = request.scope.get("raw_path") or b""
    parts = raw.split(b"?", 1)[0].split(b"/")
    try:
        at = parts.index(b"repositories")
    except ValueError:
        return revision, path
    if len(parts) <= at + 5 or parts[at + 3] != b"src":
        return revision, path
    segment = unquote(parts[at + 4].decode("utf-8", "replace"))
    rest = unquote(b"/".join(parts[at + 5 :]).decode("utf-8", "replace"))
    return segment, rest


# -- diffs -----------------------------------------------------------------------------------

_STATUS = {
    ChangeKind.ADDED: "added",
    ChangeKind.DELETED: "removed",
    ChangeKind.MODIFIED: "modified",
    ChangeKind.RENAMED: "renamed",
    ChangeKind.COPIED: "added",
    ChangeKind.TYPE_CHANGED: "modified",
}


def _truthy(raw: str | None, name: str, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false, not {raw[:20]!r}")


@router.get(R + "/diff/{spec:path}", **media("text/plain", description="The unified diff"))
def diff(
    workspace: str, repo_slug: str, spec: str, caller: CallerDep, runtime: RuntimeDep,
    path: Revisions = None, topic: str | None = None,
) -> Response:
    """The unified diff of `spec` (`rev`, or `a..b`), as text/plain; `path` narrows it."""
    opened = _opened(caller, runtime, workspace, repo_slug)
    parsed: Spec = content.diff_spec(opened, spec, topic=_truthy(topic, "topic", True))
    text = content.patch(opened, parsed, path or [])
    headers = dict(RAW_HEADERS)
    if text.truncated:
        headers["X-Gitward-Diff-Truncated"] = "true"
    return Response(text.text.encode(), media_type="text/plain; charset=utf-8", headers=headers)


@router.get(R + "/diffstat/{spec:path}")
def diffstat(
    request: Request, workspace: str, repo_slug: str, spec: str, caller: CallerDep,
    runtime: RuntimeDep, paging: CloudPageDep, path: Revisions = None,
    topic: str | None = None,
) -> JSON:
    """Per file: `status`, `lines_added`, `lines_removed`, `old` and `new`."""
    opened = _opened(caller, runtime, workspace, repo_slug)
    parsed = content.diff_spec(opened, spec, topic=_truthy(topic, "topic", True))
    stat = content.diffstat(opened, parsed, path or [])
    old_commit = parsed.old
    if old_commit is None:
        parents = content.commit(opened, parsed.new).parents
        old_commit = parents[0] if parents else None
    base = render.base_url(request)

    def side(commit_id: str | None, file_path: str | None) -> JSON | None:
        if commit_id is None or file_path is None:
            return None
        return {
            "type": "commit_file",
            "path": file_path,
            "escaped_path": quote(file_path),
            "links": {"self": render.link(_src(base, opened.view, commit_id, file_path))},
        }

    def one(f: DiffFile) -> JSON:
        return {
            "type": "diffstat",
            "status": _STATUS[f.kind],
            "lines_added": f.lines_added,
            "lines_removed": f.lines_removed,
            "old": side(old_commit, f.old_path),
            "new": side(parsed.new, f.new_path),
        }

    listing = Page.of(list(stat.files), render.window(paging))
    return render.page(request, listing, paging, one)
