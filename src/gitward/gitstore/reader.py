"""Reading bare repositories: refs, history, trees, blobs and diffs, with libgit2 (pygit2).

No `git` process is started for a read. pygit2 was measured against dulwich on the 3,000-commit
bench repository (bench/readers.py, figures in bench/README.md): libgit2 is 2–40 times faster
on every read and 55–75 times on a log filtered by path, which dulwich walks in Python.

A `RepositoryReader` is opened per unit of work (opening costs ~0.1 ms) and is not shared
between threads: libgit2 repository handles are not thread-safe. Everything it returns is a
frozen dataclass of plain values, so nothing of libgit2 leaks past this module.

Every read is bounded by what the caller asks for: listings take `start`/`limit` and stop
walking once the page (and one more item, to know whether another page follows) is found;
file lines are paged; a diff stops after `max_files` files and `max_lines` changed lines and
says it was truncated. Revisions and paths typed by a client are checked here
(`BadRevision`, `BadPath`): only ref names, branch and tag names, `HEAD` and hexadecimal ids
are revisions — never git's revision syntax (`main~2`, `:/text`, `@{...}`), some of which
search the whole history.
"""

from __future__ import annotations

import enum
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pygit2
from pygit2.enums import DeltaStatus, DiffFind, FileMode, SortMode

from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.store import GitStore, git_env

ZERO_ID = "0" * 40
_HEX_ID = re.compile(r"^[0-9a-fA-F]{4,40}$")
#: How many bytes git itself looks at to call a file binary (a NUL among them).
BINARY_SNIFF_BYTES = 8000


class ReadError(Exception):
    """Base of what reading a repository refuses; the message is safe to show a client."""


class BadRevision(ReadError, ValueError):
    """Not something a client may name as a revision (a 400)."""


class BadPath(ReadError, ValueError):
    """Not a path inside a repository's tree (a 400)."""


class NotFound(ReadError, LookupError):
    """The revision, ref or path does not exist (a 404)."""


class RevisionNotFound(NotFound):
    pass


class PathNotFound(NotFound):
    pass


class NotAFile(ReadError):
    """A path that names a directory (or submodule) where a file was asked for."""


class NotADirectory(ReadError):
    """A path that names a file where a directory was asked for."""


class EntryKind(enum.Enum):
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"
    SUBMODULE = "SUBMODULE"
    SYMLINK = "SYMLINK"


class ChangeKind(enum.Enum):
    ADDED = "ADD"
    DELETED = "DELETE"
    MODIFIED = "MODIFY"
    RENAMED = "MOVE"
    COPIED = "COPY"
    TYPE_CHANGED = "TYPE_CHANGE"


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class Commit:
    id: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    author_date: datetime  # aware, in the author's own offset
    committer: Person
    committer_date: datetime
    message: str

    @property
    def summary(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class Branch:
    name: str  # without refs/heads/
    commit: Commit

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.name}"


@dataclass(frozen=True)
class Tag:
    name: str  # without refs/tags/
    target: str  # what the ref points at: the tag object of an annotated tag, else the commit
    commit: Commit | None  # the commit it peels to; None for a tag of a tree or a blob
    annotated: bool
    message: str | None = None
    tagger: Person | None = None
    tag_date: datetime | None = None

    @property
    def ref(self) -> str:
        return f"refs/tags/{self.name}"


@dataclass(frozen=True)
class TreeEntry:
    name: str
    path: str  # from the root of the tree, "/"-separated
    kind: EntryKind
    mode: int
    id: str
    size: int | None  # bytes, for files and symlinks


@dataclass(frozen=True)
class TreePage:
    path: str  # "" for the root
    revision: str  # the commit id the tree was read at
    entries: tuple[TreeEntry, ...]
    start: int
    is_last: bool


@dataclass(frozen=True)
class Blob:
    path: str
    id: str
    size: int
    binary: bool
    data: bytes


@dataclass(frozen=True)
class LinePage:
    path: str
    id: str
    lines: tuple[str, ...]
    start: int
    is_last: bool
    binary: bool  # binary files have no lines: `lines` is empty
    size: int  # bytes of the whole file


@dataclass(frozen=True)
class LogPage:
    commits: tuple[Commit, ...]
    start: int
    is_last: bool


@dataclass(frozen=True)
class DiffFile:
    kind: ChangeKind
    old_path: str | None  # None when added
    new_path: str | None  # None when deleted
    old_id: str | None
    new_id: str | None
    old_mode: int | None
    new_mode: int | None
    lines_added: int
    lines_removed: int
    binary: bool


@dataclass(frozen=True)
class CommitDiff:
    files: tuple[DiffFile, ...]
    truncated: bool  # more files or lines changed than were read


@dataclass(frozen=True)
class PatchText:
    text: str
    truncated: bool


# -- checking what a client typed -------------------------------------------------------


def check_path(path: str) -> str:
    """The path, normalised ("" for the root), or BadPath: no NUL or control characters,
    no "." or ".." components, no empty components inside it."""
    if "\x00" in path or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise BadPath("A path may not contain control characters")
    stripped = path.strip("/")
    if not stripped:
        return ""
    parts = stripped.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPath(f"Not a path inside the repository: {path!r}")
    return "/".join(parts)


def check_ref_name(name: str) -> str:
    """A full ref name (refs/…) git would accept, or BadRevision."""
    if not name.startswith("refs/") or not _valid_ref(name):
        raise BadRevision(f"Not a valid ref name: {name!r}")
    return name


def check_branch_name(name: str) -> str:
    """A branch name without refs/heads/, valid as a ref, or BadRevision."""
    if name.startswith("refs/heads/"):
        name = name[len("refs/heads/") :]
    if not name or name == "HEAD" or name.startswith("-") or not _valid_ref(f"refs/heads/{name}"):
        raise BadRevision(f"Not a valid branch name: {name!r}")
    return name


def _valid_ref(name: str) -> bool:
    if "\x00" in name or len(name) > 1024:
        return False
    try:
        return bool(pygit2.reference_is_valid_name(name))
    except (ValueError, TypeError):
        return False


# -- the reader -------------------------------------------------------------------------


class RepositoryReader:
    """Reads one bare repository. Open with `open_reader(store, storage_name)`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repo = pygit2.Repository(str(path), pygit2.enums.RepositoryOpenFlag.BARE)

    # refs

    def is_empty(self) -> bool:
        """No branch or tag at all."""
        for name in self._repo.references:
            if name.startswith(("refs/heads/", "refs/tags/")):
                return False
        return True

    def default_branch(self) -> str | None:
        """The branch HEAD names, if that branch exists."""
        try:
            head = self._repo.references.get("HEAD")
        except pygit2.GitError:
            return None
        if head is None or head.type != pygit2.enums.ReferenceType.SYMBOLIC:
            return None
        target = str(head.target)
        if not target.startswith("refs/heads/") or self._repo.references.get(target) is None:
            return None
        return target[len("refs/heads/") :]

    def branches(self, filter_text: str | None = None) -> list[Branch]:
        """Every branch (sorted by name), or those whose name contains `filter_text`
        (case-insensitive, as Bitbucket's `filterText`)."""
        needle = filter_text.casefold() if filter_text else None
        out = []
        for name in sorted(self._names("refs/heads/")):
            short = name[len("refs/heads/") :]
            if needle is not None and needle not in short.casefold():
                continue
            commit = self._peel_ref(name)
            if commit is not None:
                out.append(Branch(short, self._commit(commit)))
        return out

    def branch(self, name: str) -> Branch | None:
        if name.startswith("refs/heads/"):
            name = name[len("refs/heads/") :]
        if not _valid_ref(f"refs/heads/{name}"):
            return None
        commit = self._peel_ref(f"refs/heads/{name}")
        return Branch(name, self._commit(commit)) if commit is not None else None

    def tags(self, filter_text: str | None = None) -> list[Tag]:
        """Every tag (sorted by name), or those whose name contains `filter_text`."""
        needle = filter_text.casefold() if filter_text else None
        out = []
        for name in sorted(self._names("refs/tags/")):
            short = name[len("refs/tags/") :]
            if needle is not None and needle not in short.casefold():
                continue
            tag = self._tag(name)
            if tag is not None:
                out.append(tag)
        return out

    def tag(self, name: str) -> Tag | None:
        if name.startswith("refs/tags/"):
            name = name[len("refs/tags/") :]
        if not _valid_ref(f"refs/tags/{name}"):
            return None
        return self._tag(f"refs/tags/{name}")

    def ref_target(self, ref: str) -> str | None:
        """The object id a full ref name points at (not peeled), or None."""
        if not _valid_ref(ref):
            return None
        reference = self._repo.references.get(ref)
        if reference is None:
            return None
        try:
            return str(reference.resolve().target)
        except (KeyError, pygit2.GitError):
            return None

    def resolve(self, revision: str) -> str:
        """The commit id a client's revision names: a full ref name, a branch or tag name
        (branches win, as in Bitbucket), `HEAD`, or a (possibly abbreviated) commit id.
        BadRevision for anything else, RevisionNotFound when it names nothing."""
        if not revision or "\x00" in revision or len(revision) > 1024:
            raise BadRevision("Not a valid revision")
        if revision == "HEAD":
            branch = self.default_branch()
            if branch is None:
                raise RevisionNotFound("The repository has no default branch")
            revision = f"refs/heads/{branch}"
        candidates = (
            [revision] if revision.startswith("refs/")
            else [f"refs/heads/{revision}", f"refs/tags/{revision}"]
        )
        for ref in candidates:
            if _valid_ref(ref):
                commit = self._peel_ref(ref)
                if commit is not None:
                    return commit
        if _HEX_ID.match(revision):
            found = self._commit_by_hex(revision)
            if found is not None:
                return found
        if not any(_valid_ref(r) for r in candidates) and not _HEX_ID.match(revision):
            raise BadRevision(f"Not a valid revision: {revision!r}")
        raise RevisionNotFound(f"Revision {revision!r} does not exist")

    def ahead_behind(self, commit: str, base: str) -> tuple[int, int]:
        """(commits in `commit` not in `base`, commits in `base` not in `commit`)."""
        ahead, behind = self._repo.ahead_behind(pygit2.Oid(hex=commit), pygit2.Oid(hex=base))
        return int(ahead), int(behind)

    def merge_base(self, a: str, b: str) -> str | None:
        found = self._repo.merge_base(pygit2.Oid(hex=a), pygit2.Oid(hex=b))
        return str(found) if found is not None else None

    # history

    def commit(self, revision: str) -> Commit:
        return self._commit(self.resolve(revision))

    def log(
        self,
        include: Sequence[str],
        exclude: Sequence[str] = (),
        *,
        path: str | None = None,
        start: int = 0,
        limit: int = 25,
    ) -> LogPage:
        """Commits reachable from `include` and not from `exclude`, newest first (by
        committer date, parents after children); with `path`, only the commits that changed
        it (its entry differs from every parent's, or it appears in a root commit: git log's
        default history simplification, without rewriting parents)."""
        wanted = check_path(path) if path is not None else None
        # git log's own order (newest committer date first, lazily): SortMode.TIME would
        # walk the whole history before handing out the first commit (50 ms on 3,000).
        walker = self._repo.walk(None, SortMode.NONE)
        for revision in include:
            walker.push(pygit2.Oid(hex=self.resolve(revision)))
        for revision in exclude:
            walker.hide(pygit2.Oid(hex=self.resolve(revision)))
        found: list[Commit] = []
        skipped = 0
        for commit in walker:
            if wanted and not self._touches(commit, wanted):
                continue
            if skipped < start:
                skipped += 1
                continue
            if len(found) == limit:
                return LogPage(tuple(found), start, is_last=False)
            found.append(self._to_commit(commit))
        return LogPage(tuple(found), start, is_last=True)

    def _touches(self, commit: pygit2.Commit, path: str) -> bool:
        mine = _entry_id(commit.tree, path)
        if not commit.parent_ids:
            return mine is not None
        return all(_entry_id(parent.tree, path) != mine for parent in commit.parents)

    # trees and files

    def entry_kind(self, revision: str, path: str) -> EntryKind:
        """What `path` names at `revision`: the root is a DIRECTORY."""
        commit = self._repo[pygit2.Oid(hex=self.resolve(revision))]
        clean = check_path(path)
        if not clean:
            return EntryKind.DIRECTORY
        assert isinstance(commit, pygit2.Commit)
        try:
            obj = commit.tree[clean]
        except KeyError:
            raise PathNotFound(f"Path {clean!r} does not exist at {revision!r}") from None
        return _kind(obj.filemode)

    def tree(self, revision: str, path: str = "", *, start: int = 0, limit: int = 500) -> TreePage:
        """One page of a directory's entries: directories first, then by name (Bitbucket's
        order). NotADirectory when `path` is a file."""
        commit_id = self.resolve(revision)
        clean = check_path(path)
        tree = self._tree_at(commit_id, clean, revision)
        entries = sorted(tree, key=lambda e: (e.filemode != FileMode.TREE, _name(e)))
        page = entries[start : start + limit]
        prefix = f"{clean}/" if clean else ""
        out = tuple(self._entry(e, prefix) for e in page)
        return TreePage(clean, commit_id, out, start, is_last=start + limit >= len(entries))

    def files(
        self, revision: str, path: str = "", *, start: int = 0, limit: int = 500
    ) -> tuple[tuple[str, ...], bool]:
        """A page of the paths of every file below `path` (recursively, depth first in git's
        tree order), relative to `path`, and whether it is the last page."""
        commit_id = self.resolve(revision)
        clean = check_path(path)
        tree = self._tree_at(commit_id, clean, revision)
        out: list[str] = []
        for seen, name in enumerate(self._walk_files(tree, "")):
            if seen >= start:
                if len(out) == limit:
                    return tuple(out), False
                out.append(name)
        return tuple(out), True

    def blob(self, revision: str, path: str) -> Blob:
        """A file's whole content. NotAFile for directories and submodules."""
        obj, clean = self._file_at(revision, path)
        data = obj.data
        return Blob(clean, str(obj.id), obj.size, _is_binary(data), data)

    def blob_size(self, revision: str, path: str) -> int:
        obj, _ = self._file_at(revision, path)
        return int(obj.size)

    def lines(self, revision: str, path: str, *, start: int = 0, limit: int = 500) -> LinePage:
        """A page of a text file's lines (UTF-8, undecodable bytes replaced; a final newline
        ends the last line rather than starting an empty one)."""
        obj, clean = self._file_at(revision, path)
        data = obj.data
        if _is_binary(data):
            return LinePage(clean, str(obj.id), (), start, True, True, obj.size)
        raw = data.split(b"\n")
        if raw and raw[-1] == b"":
            raw.pop()
        page = raw[start : start + limit]
        lines = tuple(line.decode("utf-8", "replace").removesuffix("\r") for line in page)
        return LinePage(clean, str(obj.id), lines, start, start + limit >= len(raw), False,
                        obj.size)

    # diffs

    def diff(
        self,
        new: str,
        old: str | None = None,
        *,
        paths: Sequence[str] = (),
        max_files: int = 1000,
        max_lines: int = 100_000,
    ) -> CommitDiff:
        """What changed from `old` (default: `new`'s first parent; nothing for a root
        commit) to `new`, per file, with renames found as git does by default (50 %)."""
        diff = self._diff(new, old, paths)
        deltas = list(diff.deltas)
        files: list[DiffFile] = []
        lines = 0
        truncated = False
        for index in self._selected(diff, paths):
            if len(files) >= max_files or lines >= max_lines:
                truncated = True
                break
            patch = diff[index]
            delta = deltas[index]
            _, added, removed = patch.line_stats if patch is not None else (0, 0, 0)
            lines += added + removed
            files.append(_diff_file(delta, added, removed))
        return CommitDiff(tuple(files), truncated)

    def patch(
        self,
        new: str,
        old: str | None = None,
        *,
        paths: Sequence[str] = (),
        max_bytes: int = 10 * 1024 * 1024,
    ) -> PatchText:
        """The unified diff (git's format) from `old` to `new`, cut after `max_bytes` at a
        file boundary when it is longer."""
        diff = self._diff(new, old, paths)
        parts: list[str] = []
        size = 0
        for index in self._selected(diff, paths):
            patch = diff[index]
            if patch is None:
                continue
            text = patch.text or ""
            if size + len(text) > max_bytes:
                return PatchText("".join(parts), truncated=True)
            parts.append(text)
            size += len(text)
        return PatchText("".join(parts), truncated=False)

    # internals

    def _names(self, prefix: str) -> list[str]:
        return [n for n in self._repo.references if n.startswith(prefix)]

    def _peel_ref(self, ref: str) -> str | None:
        reference = self._repo.references.get(ref)
        if reference is None:
            return None
        try:
            return str(reference.peel(pygit2.Commit).id)
        except (pygit2.InvalidSpecError, pygit2.GitError, KeyError, ValueError):
            return None

    def _tag(self, ref: str) -> Tag | None:
        reference = self._repo.references.get(ref)
        if reference is None:
            return None
        try:
            target = reference.resolve().target
        except (KeyError, pygit2.GitError):
            return None
        obj = self._repo.get(target)
        if obj is None:
            return None
        commit_id = self._peel_ref(ref)
        commit = self._commit(commit_id) if commit_id is not None else None
        name = ref[len("refs/tags/") :]
        if isinstance(obj, pygit2.Tag):
            tagger = obj.tagger
            return Tag(
                name, str(obj.id), commit, True,
                message=(obj.message or ""),
                tagger=Person(tagger.name, tagger.email) if tagger is not None else None,
                tag_date=_when(tagger.time, tagger.offset) if tagger is not None else None,
            )
        return Tag(name, str(obj.id), commit, False)

    def _commit_by_hex(self, hexid: str) -> str | None:
        try:
            obj = self._repo.revparse_single(hexid) if len(hexid) < 40 else self._repo.get(hexid)
        except (KeyError, ValueError, pygit2.GitError):
            return None
        if obj is None:
            return None
        try:
            return str(obj.peel(pygit2.Commit).id)
        except (pygit2.InvalidSpecError, pygit2.GitError, ValueError):
            return None

    def _commit(self, commit_id: str) -> Commit:
        obj = self._repo[pygit2.Oid(hex=commit_id)]
        assert isinstance(obj, pygit2.Commit)
        return self._to_commit(obj)

    def _to_commit(self, commit: pygit2.Commit) -> Commit:
        author, committer = commit.author, commit.committer
        encoding = commit.message_encoding or "utf-8"
        try:
            message = commit.raw_message.decode(encoding, "replace")
        except LookupError:  # an encoding Python does not know
            message = commit.raw_message.decode("utf-8", "replace")
        return Commit(
            id=str(commit.id),
            tree=str(commit.tree_id),
            parents=tuple(str(p) for p in commit.parent_ids),
            author=Person(_text(author.raw_name), _text(author.raw_email)),
            author_date=_when(author.time, author.offset),
            committer=Person(_text(committer.raw_name), _text(committer.raw_email)),
            committer_date=_when(committer.time, committer.offset),
            message=message,
        )

    def _tree_at(self, commit_id: str, path: str, revision: str) -> pygit2.Tree:
        commit = self._repo[pygit2.Oid(hex=commit_id)]
        assert isinstance(commit, pygit2.Commit)
        if not path:
            return commit.tree
        try:
            obj = commit.tree[path]
        except KeyError:
            raise PathNotFound(f"Path {path!r} does not exist at {revision!r}") from None
        if not isinstance(obj, pygit2.Tree):
            raise NotADirectory(f"Path {path!r} is not a directory")
        return obj

    def _file_at(self, revision: str, path: str) -> tuple[pygit2.Blob, str]:
        commit = self._repo[pygit2.Oid(hex=self.resolve(revision))]
        assert isinstance(commit, pygit2.Commit)
        clean = check_path(path)
        if not clean:
            raise NotAFile("The root of a repository is a directory")
        try:
            obj = commit.tree[clean]
        except KeyError:
            raise PathNotFound(f"Path {clean!r} does not exist at {revision!r}") from None
        if not isinstance(obj, pygit2.Blob):
            raise NotAFile(f"Path {clean!r} is not a file")
        return obj, clean

    def _entry(self, obj: pygit2.Object, prefix: str) -> TreeEntry:
        name = _name(obj)
        kind = _kind(obj.filemode)
        size = None
        if kind in (EntryKind.FILE, EntryKind.SYMLINK):
            size = int(self._repo.odb.read_header(obj.id)[1])
        return TreeEntry(name, prefix + name, kind, int(obj.filemode), str(obj.id), size)

    def _walk_files(self, tree: pygit2.Tree, prefix: str) -> Iterator[str]:
        for obj in tree:
            name = prefix + _name(obj)
            if isinstance(obj, pygit2.Tree):
                yield from self._walk_files(obj, name + "/")
            elif obj.filemode != FileMode.COMMIT:
                yield name

    def _diff(self, new: str, old: str | None, paths: Sequence[str]) -> pygit2.Diff:
        new_commit = self._repo[pygit2.Oid(hex=self.resolve(new))]
        assert isinstance(new_commit, pygit2.Commit)
        if old is not None:
            old_obj = self._repo[pygit2.Oid(hex=self.resolve(old))]
            assert isinstance(old_obj, pygit2.Commit)
            old_tree: pygit2.Tree | None = old_obj.tree
        elif new_commit.parents:
            old_tree = new_commit.parents[0].tree
        else:
            old_tree = None
        if old_tree is None:
            diff = new_commit.tree.diff_to_tree(swap=True)
        else:
            diff = old_tree.diff_to_tree(new_commit.tree)
        diff.find_similar(DiffFind.FIND_RENAMES)
        return diff

    def _selected(self, diff: pygit2.Diff, paths: Sequence[str]) -> Iterator[int]:
        """The indexes of the deltas that touch one of `paths` (literal paths: a file, or
        everything below a directory), all of them when `paths` is empty."""
        checked = [c for c in (check_path(p) for p in paths) if c]
        for index, delta in enumerate(diff.deltas):
            if not checked or any(
                _under(d.path, p)
                for d in (delta.old_file, delta.new_file) for p in checked
            ):
                yield index


def open_reader(store: GitStore, storage_name: str) -> RepositoryReader:
    """A reader of the repository stored under `storage_name` (checked by the store)."""
    return RepositoryReader(store.path_of(storage_name))


def update_ref(path: Path, ref: str, new: str, old: str, *, message: str = "") -> bool:
    """Move `ref` from `old` to `new` only if it still holds `old` (ZERO_ID: create, must not
    exist; `new` ZERO_ID: delete), as `git update-ref` does with git's ref lock, so a push
    racing with it is decided exactly as two pushes are. True when it moved."""
    check_ref_name(ref)
    args = ["git", "--git-dir", str(path), "update-ref"]
    if message:
        args += ["-m", message]
    if new == ZERO_ID:
        args += ["-d", ref, old]
    else:
        args += [ref, new, old]
    result = subprocess.run(args, env=git_env(), capture_output=True, timeout=60)
    return result.returncode == 0


def fast_forwards(
    path: Path, quarantine: Path | None, updates: Sequence[RefUpdate]
) -> dict[str, bool]:
    """Which updates of an existing ref to a new value are fast-forwards: the old value and
    the new one are commits and the old is in the new one's history (git's own test for a
    forced update). Creations and deletions are not named. A push's new objects are in its
    `quarantine` (an object directory, checked by the caller) until every hook said yes: it
    is read as an alternate. An object that cannot be read makes no fast-forward."""
    repo = pygit2.Repository(str(path))
    if quarantine is not None:
        repo.odb.add_disk_alternate(str(quarantine))
    found: dict[str, bool] = {}
    for update in updates:
        if update.created or update.deleted:
            continue
        found[update.ref] = _descends(repo, update.new, update.old)
    return found


def _descends(repo: pygit2.Repository, new: str, old: str) -> bool:
    try:
        commits = [repo.get(new), repo.get(old)]
        if not all(isinstance(c, pygit2.Commit) for c in commits):
            return False
        return new == old or bool(repo.descendant_of(new, old))
    except (ValueError, KeyError, pygit2.GitError):
        return False


# -- small helpers ------------------------------------------------------------------------


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _name(obj: pygit2.Object) -> str:
    raw = obj.raw_name
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _when(seconds: int, offset_minutes: int) -> datetime:
    try:
        zone = timezone(timedelta(minutes=offset_minutes))
    except ValueError:  # an offset beyond a day: keep the instant, in UTC
        zone = UTC
    return datetime.fromtimestamp(seconds, tz=zone)


def _kind(mode: int) -> EntryKind:
    if mode == FileMode.TREE:
        return EntryKind.DIRECTORY
    if mode == FileMode.COMMIT:
        return EntryKind.SUBMODULE
    if mode == FileMode.LINK:
        return EntryKind.SYMLINK
    return EntryKind.FILE


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _is_binary(data: bytes) -> bool:
    return b"\x00" in data[:BINARY_SNIFF_BYTES]


def _entry_id(tree: pygit2.Tree, path: str) -> pygit2.Oid | None:
    try:
        return tree[path].id
    except KeyError:
        return None


_CHANGE = {
    DeltaStatus.ADDED: ChangeKind.ADDED,
    DeltaStatus.DELETED: ChangeKind.DELETED,
    DeltaStatus.MODIFIED: ChangeKind.MODIFIED,
    DeltaStatus.RENAMED: ChangeKind.RENAMED,
    DeltaStatus.COPIED: ChangeKind.COPIED,
    DeltaStatus.TYPECHANGE: ChangeKind.TYPE_CHANGED,
}


def _diff_file(delta: pygit2.DiffDelta, added: int, removed: int) -> DiffFile:
    kind = _CHANGE.get(delta.status, ChangeKind.MODIFIED)
    old, new = delta.old_file, delta.new_file
    has_old = kind is not ChangeKind.ADDED
    has_new = kind is not ChangeKind.DELETED
    return DiffFile(
        kind=kind,
        old_path=old.raw_path.decode("utf-8", "replace") if has_old else None,
        new_path=new.raw_path.decode("utf-8", "replace") if has_new else None,
        old_id=str(old.id) if has_old else None,
        new_id=str(new.id) if has_new else None,
        old_mode=int(old.mode) if has_old else None,
        new_mode=int(new.mode) if has_new else None,
        lines_added=added,
        lines_removed=removed,
        binary=bool(delta.is_binary),
    )

