"""Repository content for the Cloud API: refs, history, source and diffs, read with
`gitstore.reader` (libgit2), for a repository named by workspace and slug.

Reading needs `repository` read (`repositories.read_repository`, through `Caller.require`).
Creating and deleting a branch or a tag is a push without a pack (`move_ref`): the push check
(`pushes.check_push`) before the ref moves, a compare-and-swap on the ref (git's own ref lock,
so a concurrent `git push` is decided as between two pushes), and `pushes.record_push` after,
so the audit log — and whatever reacts to pushes — sees it exactly as a `git push`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gitward.domain import bbql
from gitward.domain.permissions import Action
from gitward.gitstore import reader as git_reader
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.reader import (
    ZERO_ID,
    Blob,
    Branch,
    CommitDiff,
    EntryKind,
    LogPage,
    PatchText,
    RepositoryReader,
    Tag,
    TreeEntry,
    TreePage,
)
from gitward.gitstore.store import GitStore
from gitward.services import content, pushes
from gitward.services.caller import Caller
from gitward.services.errors import BadRequest, NotFound, ServiceError
from gitward.services.repositories import read_repository
from gitward.storage.common import Page, Window
from gitward.storage.models import Repository
from gitward.storage.views import RepositoryView

T = TypeVar("T")


def reading(call: Callable[[], T]) -> T:
    """`call()`, with what the reader refuses as the errors the adapters answer."""
    try:
        return call()
    except (git_reader.BadRevision, git_reader.BadPath) as exc:
        raise BadRequest(str(exc)) from None
    except git_reader.NotFound as exc:
        raise NotFound(str(exc)) from None
    except (git_reader.NotAFile, git_reader.NotADirectory) as exc:
        raise BadRequest(str(exc)) from None


class StorageUnavailable(ServiceError):
    status = 503


@dataclass(frozen=True)
class Opened:
    """A repository the caller may read, and a reader of it (one per unit of work)."""

    view: RepositoryView
    reader: RepositoryReader


def open_repository(
    caller: Caller, git: GitStore, workspace: str, slug: str, action: Action = Action.REPO_READ
) -> Opened:
    view = read_repository(caller, workspace, slug, action)
    if not git.path_of(view.storage_name).is_dir():
        # The row is there and the directory is not: the server's storage is at fault.
        raise StorageUnavailable("The repository's storage could not be read; try again later.")
    return Opened(view, git_reader.open_reader(git, view.storage_name))


def open_server_repository(
    caller: Caller, git: GitStore, project_key: str, slug: str, action: Action
) -> Opened:
    """A repository named as Bitbucket Server names it (project key and slug), read as
    `action` allows, with its reader."""
    view = content.server_repository(caller, project_key, slug, action)
    return Opened(view, content.open_reader(git, view))


# -- refs ----------------------------------------------------------------------------------

#: BBQL fields of branch and tag listings (evaluated in memory: refs come from git).
REF_FIELDS: bbql.Fields = {
    "name": bbql.Field(bbql.FieldType.TEXT),
    "target.hash": bbql.Field(bbql.FieldType.TEXT),
    "target.message": bbql.Field(bbql.FieldType.TEXT),
    "target.author.raw": bbql.Field(bbql.FieldType.TEXT),
    "target.date": bbql.Field(bbql.FieldType.DATETIME, nullable=True),
}


def _ref_value(ref: Branch | Tag, path: str) -> bbql.Value:
    commit = ref.commit
    if path == "name":
        return ref.name
    if commit is None:
        return None
    if path == "target.hash":
        return commit.id
    if path == "target.message":
        return commit.message
    if path == "target.author.raw":
        return f"{commit.author.name} <{commit.author.email}>"
    return commit.committer_date


R = TypeVar("R", bound=Branch | Tag)


def _listed(refs: list[R], criteria: bbql.Criteria, window: Window) -> Page[R]:
    """One window of `refs`, filtered by `criteria`'s query and ordered by its sort (refs
    without the sort field last)."""
    query = criteria.query
    if query is not None:
        refs = [r for r in refs if bbql.matches(query, _values_of(r))]
    sort = criteria.sort
    if sort is not None:
        keyed = [(_ref_value(r, sort.path), r) for r in refs]
        present = [(k, r) for k, r in keyed if k is not None]
        present.sort(key=lambda pair: pair[0], reverse=sort.descending)
        refs = [r for _, r in present] + [r for k, r in keyed if k is None]
    return Page.of(refs, window)


def _values_of(ref: Branch | Tag) -> Callable[[str], bbql.Value]:
    return lambda path: _ref_value(ref, path)


def list_branches(opened: Opened, criteria: bbql.Criteria, window: Window) -> Page[Branch]:
    return _listed(opened.reader.branches(), criteria, window)


def list_tags(opened: Opened, criteria: bbql.Criteria, window: Window) -> Page[Tag]:
    return _listed(opened.reader.tags(), criteria, window)


def list_refs(
    opened: Opened, criteria: bbql.Criteria, window: Window
) -> Page[Branch | Tag]:
    """Branches and tags together, by name (branches first on a tie)."""
    refs: list[Branch | Tag] = [*opened.reader.branches(), *opened.reader.tags()]
    refs.sort(key=lambda r: (r.name, isinstance(r, Tag)))
    return _listed(refs, criteria, window)


def get_branch(opened: Opened, name: str) -> Branch:
    branch = opened.reader.branch(name)
    if branch is None:
        raise NotFound(f"Branch {name[:200]!r} not found")
    return branch


def get_tag(opened: Opened, name: str) -> Tag:
    tag = opened.reader.tag(name)
    if tag is None:
        raise NotFound(f"Tag {name[:200]!r} not found")
    return tag


def _row(caller: Caller, view: RepositoryView) -> Repository:
    repo = caller.store.repos.repository_by_id(view.id)
    if repo is None:  # deleted meanwhile
        raise NotFound(f"Repository {view.workspace.slug}/{view.slug} not found")
    return repo


def move_ref(
    caller: Caller, git: GitStore, view: RepositoryView, update: RefUpdate, message: str
) -> None:
    """Move one ref as a push without a pack would (`pushes.move_ref`)."""
    pushes.move_ref(caller, git, _row(caller, view), update, message)


def _target_commit(caller: Caller, opened: Opened, target: object, what: str) -> str:
    """The commit a new ref is to point at. A caller who may not create the ref is told so
    before anything about its target: a reader gets the 403, not "does not exist"."""
    try:
        if not isinstance(target, str) or not target:
            raise BadRequest(f'Give the {what} a target: {{"target": {{"hash": "<commit>"}}}}')
        return reading(lambda: opened.reader.resolve(target))
    except ServiceError:
        pushes.check_push(caller, _row(caller, opened.view), [])
        raise


def create_branch(
    caller: Caller, git: GitStore, opened: Opened, name: object, target: object
) -> Branch:
    """Create branch `name` at `target` (a commit, or a branch or tag name)."""
    if not isinstance(name, str) or not name:
        raise BadRequest('Give the branch a name: {"name": "...", "target": {"hash": "..."}}')
    branch = reading(lambda: git_reader.check_branch_name(name))
    commit = _target_commit(caller, opened, target, "branch")
    ref = f"refs/heads/{branch}"
    if opened.reader.ref_target(ref) is not None:
        raise BadRequest(f"Branch {branch!r} already exists.")
    move_ref(caller, git, opened.view, RefUpdate(ZERO_ID, commit, ref), "branch created")
    created = git_reader.open_reader(git, opened.view.storage_name).branch(branch)
    assert created is not None
    return created


def delete_branch(caller: Caller, git: GitStore, opened: Opened, name: str) -> None:
    """Delete branch `name`; the main branch is not deleted."""
    branch = reading(lambda: git_reader.check_branch_name(name))
    ref = f"refs/heads/{branch}"
    current = opened.reader.ref_target(ref)
    if current is None:
        raise NotFound(f"Branch {branch!r} not found")
    if branch == opened.reader.default_branch():
        raise BadRequest(f"Branch {branch!r} is the main branch: it cannot be deleted.")
    move_ref(caller, git, opened.view, RefUpdate(current, ZERO_ID, ref), "branch deleted")


def create_tag(
    caller: Caller, git: GitStore, opened: Opened, name: object, target: object
) -> Tag:
    """Create a lightweight tag `name` at `target`."""
    if not isinstance(name, str) or not name:
        raise BadRequest('Give the tag a name: {"name": "...", "target": {"hash": "..."}}')
    ref = f"refs/tags/{name}"
    reading(lambda: git_reader.check_ref_name(ref))
    commit = _target_commit(caller, opened, target, "tag")
    if opened.reader.ref_target(ref) is not None:
        raise BadRequest(f"Tag {name!r} already exists.")
    move_ref(caller, git, opened.view, RefUpdate(ZERO_ID, commit, ref), "tag created")
    created = git_reader.open_reader(git, opened.view.storage_name).tag(name)
    assert created is not None
    return created


def delete_tag(caller: Caller, git: GitStore, opened: Opened, name: str) -> None:
    ref = f"refs/tags/{name}"
    current = opened.reader.ref_target(ref) if not ref.endswith("/") else None
    if current is None:
        raise NotFound(f"Tag {name[:200]!r} not found")
    move_ref(caller, git, opened.view, RefUpdate(current, ZERO_ID, ref), "tag deleted")


# -- history -------------------------------------------------------------------------------


def commits(
    opened: Opened,
    include: Sequence[str],
    exclude: Sequence[str],
    path: str | None,
    window: Window,
) -> LogPage:
    """Commits reachable from `include` (none: every branch and tag, as `git log --all`)
    and not from `exclude`, newest first; with `path`, those that changed it."""
    reader = opened.reader
    heads = list(include)
    if not heads:
        heads = [b.ref for b in reader.branches()] + [
            t.ref for t in reader.tags() if t.commit is not None
        ]
        if not heads:
            return LogPage((), window.offset, True)
    limit = window.limit if window.limit is not None else 100
    return reading(
        lambda: reader.log(heads, exclude, path=path or None, start=window.offset, limit=limit)
    )


def commit(opened: Opened, revision: str) -> git_reader.Commit:
    return reading(lambda: opened.reader.commit(revision))


# -- source --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What `src/{revision}/{path}` names: a file (its entry) or a directory (a page)."""

    commit: str
    path: str
    entry: TreeEntry | None  # None for the root directory
    kind: EntryKind


def locate(opened: Opened, revision: str | None, path: str) -> Source:
    """The entry at `path` of `revision` (default: the main branch)."""
    reader = opened.reader
    if revision is None:
        main = reader.default_branch()
        if main is None:
            raise NotFound("The repository has no main branch (it is empty)")
        revision = main
    commit_id = reading(lambda: reader.resolve(revision))
    clean = reading(lambda: git_reader.check_path(path))
    if not clean:
        return Source(commit_id, "", None, EntryKind.DIRECTORY)
    parent, _, name = clean.rpartition("/")
    listing = reading(lambda: reader.tree(commit_id, parent, limit=1_000_000))
    for entry in listing.entries:
        if entry.name == name:
            return Source(commit_id, clean, entry, entry.kind)
    raise NotFound(f"Path {clean!r} not found at {revision[:100]!r}")


def directory(opened: Opened, source: Source, window: Window) -> TreePage:
    limit = window.limit if window.limit is not None else 100
    return reading(
        lambda: opened.reader.tree(source.commit, source.path, start=window.offset, limit=limit)
    )


def file(opened: Opened, source: Source) -> Blob:
    return reading(lambda: opened.reader.blob(source.commit, source.path))


# -- diffs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    new: str
    old: str | None  # None: the new commit's first parent


def diff_spec(opened: Opened, spec: str, *, topic: bool = True) -> Spec:
    """`rev` (against its first parent) or `a..b`: what `a` changes against `b` — from their
    merge base (`topic`, the default, as Bitbucket's three-dot diff) or from `b` itself."""
    reader = opened.reader
    if ".." in spec:
        a, _, b = spec.partition("..")
        new = reading(lambda: reader.resolve(a))
        other = reading(lambda: reader.resolve(b))
        old = reader.merge_base(new, other) if topic else other
        return Spec(new, old or other)
    return Spec(reading(lambda: reader.resolve(spec)), None)


def patch(opened: Opened, spec: Spec, paths: Sequence[str]) -> PatchText:
    clean = [reading(lambda p=p: git_reader.check_path(p)) for p in paths]  # type: ignore[misc]
    return reading(lambda: opened.reader.patch(spec.new, spec.old, paths=clean))


def diffstat(opened: Opened, spec: Spec, paths: Sequence[str]) -> CommitDiff:
    clean = [reading(lambda p=p: git_reader.check_path(p)) for p in paths]  # type: ignore[misc]
    return reading(lambda: opened.reader.diff(spec.new, spec.old, paths=clean))
