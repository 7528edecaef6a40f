"""A repository's pages: `/{workspace}/{repo}` (clone URL, branches, the main branch's files
and README), `…/src/{ref}/{path}` (a directory or a highlighted file), `…/commits` (history of
a branch) and `…/commits/{sha}` (one commit with its diff).

The access check is the services' (`repositories.read_repository`, through `Caller.require`);
the content comes from git through the repository reader (gitstore/reader.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.responses import RedirectResponse, Response

from gitward.domain.permissions import Action
from gitward.gitstore import reader as git_reader
from gitward.gitstore.reader import EntryKind, RepositoryReader
from gitward.services import content, repositories, validation
from gitward.services.caller import Caller, repository_target
from gitward.services.errors import NotFound
from gitward.storage.views import RepositoryView
from gitward.web.hosts import base_url
from gitward.web.ui.content import (
    MAX_SHOWN_BYTES,
    diff_lines,
    highlighted,
    readme_name,
    render_readme,
)
from gitward.web.ui.pages import Pages, View

pages = Pages()

T = TypeVar("T")
COMMITS_PER_PAGE = 30
MAX_PATCH_BYTES = 1024 * 1024


def _open(view: View, caller: Caller) -> tuple[RepositoryView, RepositoryReader]:
    repo = repositories.read_repository(caller, view.params["workspace"], view.params["repo"])
    return repo, content.open_reader(view.runtime.git, repo)


def _context(view: View, caller: Caller, repo: RepositoryView, reader: RepositoryReader,
             tab: str) -> dict[str, Any]:
    return {
        "repo": repo,
        "base": f"/{repo.workspace.slug}/{repo.slug}",
        "tab": tab,
        "admin": caller.can(Action.REPO_CREDENTIALS, repository_target(repo)),
        "default": reader.default_branch(),
    }


def _read(call: Callable[[], T]) -> T:
    return content.reading(call)


@pages.get("/{workspace}/{repo}.git")
def clone_url_typed(view: View, caller: Caller) -> Response:
    """A clone URL pasted into the browser: the repository's page."""
    return RedirectResponse(f"/{view.params['workspace']}/{view.params['repo']}", 303)


@pages.get("/{workspace}/{repo}")
def repository(view: View, caller: Caller) -> Response:
    repo, reader = _open(view, caller)
    context = _context(view, caller, repo, reader, "source")
    branches = reader.branches()
    default = context["default"]
    tree = readme = None
    if isinstance(default, str) and reader.branch(default) is not None:
        tree = _read(lambda: reader.tree(default))
        name = readme_name([e.name for e in tree.entries if e.kind is EntryKind.FILE])
        if name is not None:
            blob = _read(lambda: reader.blob(default, name))
            if not blob.binary and blob.size <= MAX_SHOWN_BYTES:
                readme = render_readme(name, blob.data.decode("utf-8", "replace"))
    return view.render(
        caller, "repository.html", title=f"{repo.workspace.slug}/{repo.slug}",
        branches=branches, tree=tree, readme=readme, ref=default, path="",
        clone_url=f"{base_url(view.request)}/{repo.workspace.slug}/{repo.slug}.git",
        **context,
    )


def _split_ref(reader: RepositoryReader, rest: str) -> tuple[str, str]:
    """`{ref}/{path}` where the ref itself may hold slashes (`feature/x`): the shortest
    prefix that names a revision (git cannot have both `feature` and `feature/x`)."""
    parts = rest.split("/")
    for cut in range(1, len(parts) + 1):
        ref = "/".join(parts[:cut])
        try:
            reader.resolve(ref)
        except git_reader.ReadError:
            continue
        return ref, "/".join(parts[cut:])
    raise NotFound(f"No branch, tag or commit {parts[0][:60]!r} in this repository.")


@pages.get("/{workspace}/{repo}/src/{rest:path}")
def source(view: View, caller: Caller) -> Response:
    repo, reader = _open(view, caller)
    ref, path = _split_ref(reader, view.params["rest"].strip("/"))
    kind = _read(lambda: reader.entry_kind(ref, path))
    context = _context(view, caller, repo, reader, "source")
    crumbs = _crumbs(path)
    if kind is EntryKind.DIRECTORY:
        tree = _read(lambda: reader.tree(ref, path))
        return view.render(caller, "source.html", title=f"{repo.slug}/{path}", ref=ref,
                           path=path, crumbs=crumbs, tree=tree, file=None, code=None,
                           **context)
    if kind is not EntryKind.FILE and kind is not EntryKind.SYMLINK:
        raise NotFound(f"{path!r} is a {kind.value.lower()}, which has no page here.")
    size = _read(lambda: reader.blob_size(ref, path))
    code = None
    binary = False
    if size <= MAX_SHOWN_BYTES:
        blob = _read(lambda: reader.blob(ref, path))
        binary = blob.binary
        if not binary:
            code = highlighted(path, blob.data.decode("utf-8", "replace"))
    return view.render(caller, "source.html", title=f"{repo.slug}/{path}", ref=ref, path=path,
                       crumbs=crumbs, tree=None, file={"size": size, "binary": binary},
                       code=code, **context)


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [p for p in path.split("/") if p]
    return [(name, "/".join(parts[: i + 1])) for i, name in enumerate(parts)]


@pages.get("/{workspace}/{repo}/commits")
def commits(view: View, caller: Caller) -> Response:
    repo, reader = _open(view, caller)
    context = _context(view, caller, repo, reader, "commits")
    branch = view.query("branch") or context["default"]
    page_number = max(1, min(validation.row_id(view.query("page")) or 1, 10_000))
    log = None
    if isinstance(branch, str) and reader.branch(branch) is not None:
        log = _read(lambda: reader.log([branch], start=(page_number - 1) * COMMITS_PER_PAGE,
                                       limit=COMMITS_PER_PAGE))
    elif view.query("branch"):
        raise NotFound(f"No branch {branch!r} in this repository.")
    return view.render(caller, "commits.html", title=f"Commits of {repo.slug}", log=log,
                       branch=branch, branches=reader.branches(), page=page_number, **context)


@pages.get("/{workspace}/{repo}/commits/{sha}")
def commit(view: View, caller: Caller) -> Response:
    repo, reader = _open(view, caller)
    sha = view.params["sha"]
    if not (4 <= len(sha) <= 64) or not all(c in "0123456789abcdefABCDEF" for c in sha):
        raise NotFound(f"No commit {sha[:64]!r} in this repository.")
    found = _read(lambda: reader.commit(sha))
    changes = _read(lambda: reader.diff(found.id))
    patch = _read(lambda: reader.patch(found.id, max_bytes=MAX_PATCH_BYTES))
    return view.render(caller, "commit.html", title=f"{found.summary} · {repo.slug}",
                       commit=found, changes=changes, lines=diff_lines(patch.text),
                       truncated=patch.truncated or changes.truncated,
                       **_context(view, caller, repo, reader, "commits"))
