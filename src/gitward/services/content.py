"""Repository content through Bitbucket Server's addressing: refs, history, files.

A repository is found by project key and slug (`server_repository`), the access check is
`Caller.require`, and everything read comes from git through `gitstore.reader`. Creating and
deleting a branch are pushes without a pack: they go through `pushes.check_push` before the
ref moves and `pushes.record_push` after, so the audit log (and what reacts to pushes) sees
them exactly as it sees `git push`, and the ref itself moves by compare-and-swap, so a
concurrent push and a REST call are decided by git's ref lock like two pushes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gitward.domain.permissions import Action
from gitward.gitstore import reader as git_reader
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.reader import (
    ZERO_ID,
    Blob,
    Branch,
    Commit,
    EntryKind,
    LinePage,
    LogPage,
    RepositoryReader,
    Tag,
    TreePage,
)
from gitward.gitstore.store import GitStore
from gitward.services import pushes
from gitward.services.caller import Caller, repository_target
from gitward.services.errors import BadRequest, Conflict, NotFound
from gitward.storage.common import Page, Window
from gitward.storage.models import Repository, utcnow
from gitward.storage.views import RepositoryView

T = TypeVar("T")


class RefOrder(enum.Enum):
    ALPHABETICAL = "ALPHABETICAL"
    MODIFICATION = "MODIFICATION"


def server_repository(
    caller: Caller, project_key: str, slug: str, action: Action = Action.REPO_READ
) -> RepositoryView:
    """The repository `slug` of project `project_key`, if the caller may `action` on it;
    404 (401 for anonymous callers) when it does not exist or is hidden."""
    message = f"Repository {project_key}/{slug} does not exist."
    view = caller.store.repos.repository_view_by_key(project_key, slug)
    if view is None:
        raise caller.not_found(message)
    caller.require(action, repository_target(view), message)
    return view


def open_reader(git: GitStore, view: RepositoryView) -> RepositoryReader:
    return git_reader.open_reader(git, view.storage_name)


def reading(call: Callable[[], T]) -> T:
    """`call()`, with what the reader refuses as the service errors the adapters know."""
    try:
        return call()
    except (git_reader.BadRevision, git_reader.BadPath) as exc:
        raise BadRequest(str(exc)) from None
    except git_reader.NotFound as exc:
        raise NotFound(str(exc)) from None
    except (git_reader.NotAFile, git_reader.NotADirectory) as exc:
        raise BadRequest(str(exc)) from None


# -- branches ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BranchListing:
    page: Page[Branch]
    default: str | None
    #: branch name -> (ahead, behind) of the base, for the branches on the page (when asked)
    ahead_behind: dict[str, tuple[int, int]]


def list_branches(
    caller: Caller,
    git: GitStore,
    project_key: str,
    slug: str,
    window: Window,
    *,
    filter_text: str | None = None,
    order: RefOrder = RefOrder.ALPHABETICAL,
    base: str | None = None,
    details: bool = False,
    boost: bool = False,
) -> BranchListing:
    """One page of the branches; `boost` puts the one named `filter_text` first, then
    those whose names start with it (Server's `boostMatches`)."""
    view = server_repository(caller, project_key, slug)
    reader = open_reader(git, view)
    default = reader.default_branch()
    branches = reader.branches(filter_text)
    if order is RefOrder.MODIFICATION:
        branches.sort(key=lambda b: (-b.commit.committer_date.timestamp(), b.name))
    if boost and filter_text:
        needle = filter_text.casefold()
        branches.sort(key=lambda b: (b.name.casefold() != needle,
                                     not b.name.casefold().startswith(needle)))
    page = Page.of(branches, window)
    compared: dict[str, tuple[int, int]] = {}
    if details:
        base_ref = base if base else default
        if base_ref is not None:
            base_commit = reading(lambda: reader.resolve(base_ref))
            base_name = base_ref.removeprefix("refs/heads/")
            for branch in page.items:
                if branch.name != base_name:
                    compared[branch.name] = reader.ahead_behind(branch.commit.id, base_commit)
    return BranchListing(page, default, compared)


def default_branch(
    caller: Caller, git: GitStore, project_key: str, slug: str
) -> Branch | None:
    """The default branch, or None for an empty repository (no commit on it yet)."""
    view = server_repository(caller, project_key, slug)
    reader = open_reader(git, view)
    name = reader.default_branch()
    return reader.branch(name) if name is not None else None


def set_default_branch(
    caller: Caller, git: GitStore, project_key: str, slug: str, ref: str
) -> None:
    """Make `ref` (refs/heads/NAME or NAME) the default branch: HEAD and `mainbranch`.
    Repository admins. In an empty repository any valid name is taken, as the branch the
    first push will make default."""
    view = server_repository(caller, project_key, slug, Action.REPO_ADMIN)
    name = reading(lambda: git_reader.check_branch_name(ref))
    reader = open_reader(git, view)
    exists = reader.branch(name) is not None
    if not exists and not reader.is_empty():
        raise NotFound(f"Branch {name!r} does not exist in {project_key}/{slug}.")
    repo = _row(caller, view)
    git.set_head(view.storage_name, name)
    if exists:
        repo.mainbranch = name
    repo.updated_on = utcnow()
    caller.audit("repository.update", target=_target(repo), mainbranch=name)


def create_branch(
    caller: Caller, git: GitStore, project_key: str, slug: str, name: str, start_point: str
) -> tuple[Branch, str | None]:
    """Create branch `name` at `start_point` (a branch, tag or commit), as a push that
    creates one ref. Returns the branch and the repository's default branch."""
    view = server_repository(caller, project_key, slug, Action.REPO_WRITE)
    branch = reading(lambda: git_reader.check_branch_name(name))
    if not start_point:
        raise BadRequest("startPoint is required: the branch, tag or commit to start from.")
    reader = open_reader(git, view)
    commit = reading(lambda: reader.resolve(start_point))
    ref = f"refs/heads/{branch}"
    if reader.ref_target(ref) is not None:
        raise Conflict(f"Branch {branch!r} already exists in {project_key}/{slug}.")
    _move(caller, git, view, RefUpdate(ZERO_ID, commit, ref), "branch created")
    created = open_reader(git, view).branch(branch)
    assert created is not None
    return created, open_reader(git, view).default_branch()


def delete_branch(
    caller: Caller,
    git: GitStore,
    project_key: str,
    slug: str,
    name: str,
    *,
    end_point: str | None = None,
    dry_run: bool = False,
) -> None:
    """Delete branch `name`, as a push that deletes one ref; with `end_point`, only if the
    branch is still at that commit. The default branch is not deleted."""
    view = server_repository(caller, project_key, slug, Action.REPO_WRITE)
    branch = reading(lambda: git_reader.check_branch_name(name))
    reader = open_reader(git, view)
    ref = f"refs/heads/{branch}"
    current = reader.ref_target(ref)
    if current is None:
        raise NotFound(f"Branch {branch!r} does not exist in {project_key}/{slug}.")
    if branch == reader.default_branch():
        raise BadRequest(
            f"Branch {branch!r} is the default branch of {project_key}/{slug}: "
            "make another branch the default first."
        )
    if end_point:
        expected = reading(lambda: reader.resolve(end_point))
        if expected != current:
            raise Conflict(
                f"Branch {branch!r} is at {current}, not at the endPoint {end_point}."
            )
    if dry_run:
        # Every check a real deletion makes, the push check included; nothing moves.
        pushes.check_push(caller, _row(caller, view), [RefUpdate(current, ZERO_ID, ref)])
        return
    _move(caller, git, view, RefUpdate(current, ZERO_ID, ref), "branch deleted")


def _move(
    caller: Caller, git: GitStore, view: RepositoryView, update: RefUpdate, message: str
) -> None:
    pushes.move_ref(caller, git, _row(caller, view), update, message)


def _row(caller: Caller, view: RepositoryView) -> Repository:
    repo = caller.store.repos.repository_by_id(view.id)
    if repo is None:  # deleted meanwhile
        raise NotFound(f"Repository {view.project.key}/{view.slug} does not exist.")
    return repo


def _target(repo: Repository) -> str:
    return f"repository:{repo.workspace.slug}/{repo.slug}"


# -- tags -------------------------------------------------------------------------------


def list_tags(
    caller: Caller,
    git: GitStore,
    project_key: str,
    slug: str,
    window: Window,
    *,
    filter_text: str | None = None,
    order: RefOrder = RefOrder.MODIFICATION,
) -> Page[Tag]:
    view = server_repository(caller, project_key, slug)
    tags = open_reader(git, view).tags(filter_text)
    if order is RefOrder.MODIFICATION:
        tags.sort(key=lambda t: (-_tag_time(t), t.name))
    return Page.of(tags, window)


def _tag_time(tag: Tag) -> float:
    if tag.tag_date is not None:
        return tag.tag_date.timestamp()
    return tag.commit.committer_date.timestamp() if tag.commit is not None else 0.0


def get_tag(caller: Caller, git: GitStore, project_key: str, slug: str, name: str) -> Tag:
    view = server_repository(caller, project_key, slug)
    tag = open_reader(git, view).tag(name)
    if tag is None:
        raise NotFound(f"Tag {name!r} does not exist in {project_key}/{slug}.")
    return tag


# -- commits ----------------------------------------------------------------------------


def list_commits(
    caller: Caller,
    git: GitStore,
    project_key: str,
    slug: str,
    window: Window,
    *,
    until: str | None = None,
    since: str | None = None,
    path: str | None = None,
) -> LogPage:
    """Commits reachable from `until` (default: the default branch) and not from `since`,
    newest first; with `path`, those that changed it. An empty repository has none."""
    view = server_repository(caller, project_key, slug)
    reader = open_reader(git, view)
    if not until and reader.default_branch() is None:
        return LogPage((), window.offset, True)
    include = [until or "HEAD"]
    exclude = [since] if since else []
    assert window.limit is not None
    return reading(
        lambda: reader.log(include, exclude, path=path or None, start=window.offset,
                           limit=window.limit or 25)
    )


def get_commit(
    caller: Caller, git: GitStore, project_key: str, slug: str, commit_id: str,
    *, path: str | None = None,
) -> Commit:
    """One commit; with `path`, the first commit from it back that changed `path`."""
    view = server_repository(caller, project_key, slug)
    reader = open_reader(git, view)
    if not path:
        return reading(lambda: reader.commit(commit_id))
    found = reading(lambda: reader.log([commit_id], path=path, limit=1))
    if not found.commits:
        raise NotFound(f"No commit from {commit_id} changed {path!r}.")
    return found.commits[0]


# -- files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """Where a browse request reads: the repository's reader, and the revision (as the
    client named it, or the default branch's ref)."""

    reader: RepositoryReader
    revision: str


def locate(
    caller: Caller, git: GitStore, project_key: str, slug: str, at: str | None
) -> Located:
    view = server_repository(caller, project_key, slug)
    reader = open_reader(git, view)
    if at:
        reading(lambda: reader.resolve(at))
        return Located(reader, at)
    default = reader.default_branch()
    if default is None:
        raise NotFound(f"Repository {project_key}/{slug} is empty: it has no default branch.")
    return Located(reader, f"refs/heads/{default}")


def entry_kind(located: Located, path: str) -> EntryKind:
    return reading(lambda: located.reader.entry_kind(located.revision, path))


def file_lines(located: Located, path: str, start: int, limit: int) -> LinePage:
    return reading(lambda: located.reader.lines(located.revision, path, start=start, limit=limit))


def directory(located: Located, path: str, start: int, limit: int) -> TreePage:
    return reading(lambda: located.reader.tree(located.revision, path, start=start, limit=limit))


def raw_file(located: Located, path: str) -> Blob:
    return reading(lambda: located.reader.blob(located.revision, path))


def file_paths(located: Located, path: str, window: Window) -> Page[str]:
    assert window.limit is not None
    limit = window.limit
    names, last = reading(
        lambda: located.reader.files(located.revision, path, start=window.offset, limit=limit)
    )
    return Page(names, not last)


__all__: Sequence[str] = [
    "BranchListing",
    "Located",
    "RefOrder",
    "create_branch",
    "default_branch",
    "delete_branch",
    "directory",
    "entry_kind",
    "file_lines",
    "file_paths",
    "get_commit",
    "get_tag",
    "list_branches",
    "list_commits",
    "list_tags",
    "locate",
    "raw_file",
    "server_repository",
    "set_default_branch",
]
