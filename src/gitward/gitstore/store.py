"""Bare repositories on disk, under one directory, named by the repository's uuid.

Paths never come from what a client typed: the REST and Git layers resolve a slug to a
repository row first, and the row's uuid names its directory. `path_of` still checks the name
and that the resolved path stays inside the store, so that no row can point outside it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_STORAGE_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.git$")
PREFERRED_MAIN_BRANCHES = ("main", "master", "trunk", "develop")


class UnsafePath(ValueError):
    pass


@dataclass(frozen=True)
class Branch:
    name: str
    commit: str
    date: datetime
    message: str
    author: str


def git_env() -> dict[str, str]:
    """An environment for git subprocesses that ignores the host user's configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("HOME", os.devnull)
    return env


#: A directory changed this recently may change again within the same mtime tick: its sum is
#: not cached (the "racily clean" problem git's index has too).
_RACY_SECONDS = 2.0


class GitStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        # storage name -> {objects subdirectory: (its mtime_ns, bytes of its files)}
        self._sizes: dict[str, dict[str, tuple[int, int]]] = {}

    def path_of(self, storage_name: str) -> Path:
        if not _STORAGE_NAME.match(storage_name):
            raise UnsafePath(f"not a repository storage name: {storage_name!r}")
        path = self.root / storage_name
        if path.is_symlink() or not str(path.resolve()).startswith(str(self.root) + os.sep):
            raise UnsafePath(f"repository path escapes the store: {storage_name!r}")
        return path

    def create(self, storage_name: str) -> Path:
        path = self.path_of(storage_name)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{uuid.uuid4()}"
        subprocess.run(
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(tmp)],
            check=True,
            env=git_env(),
            capture_output=True,
        )
        # Pushes must never be applied half-way, and objects of a refused push must go.
        for key, value in (
            ("receive.unpackLimit", "100"),
            ("core.logAllRefUpdates", "true"),
        ):
            self._git(tmp, "config", key, value)
        os.replace(tmp, path)
        return path

    def delete(self, storage_name: str) -> None:
        path = self.path_of(storage_name)
        if not path.exists():
            return
        trash = self.root / f".trash-{uuid.uuid4()}"
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        self._sizes.pop(storage_name, None)

    def size(self, storage_name: str) -> int:
        """Bytes the repository's objects take: loose objects, packs and their indexes (what
        `git count-objects -v` sums as size, size-pack and size-garbage, in bytes rather than
        KiB of disk blocks). No subprocess: one directory scan of objects/, and a subdirectory
        is summed again only when its mtime changed (adding or removing a file changes it;
        git never rewrites an object or pack file in place)."""
        objects = self.path_of(storage_name) / "objects"
        previous = self._sizes.get(storage_name, {})
        current: dict[str, tuple[int, int]] = {}
        total = 0
        racy = (time.time() - _RACY_SECONDS) * 1e9
        try:
            entries = list(os.scandir(objects))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.name == "info" or not entry.is_dir(follow_symlinks=False):
                    continue  # info/ lists packs and alternates: no objects
                mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                cached = previous.get(entry.name)
                if cached is not None and cached[0] == mtime:
                    size = cached[1]
                else:
                    size = _bytes_in(entry.path)
                if mtime < racy:
                    current[entry.name] = (mtime, size)
                total += size
            except FileNotFoundError:  # removed while we looked (a repack): not there now
                continue
        self._sizes[storage_name] = current
        return total

    def exists(self, storage_name: str) -> bool:
        return self.path_of(storage_name).is_dir()

    def _git(self, path: Path, *args: str) -> str:
        result = subprocess.run(
            ["git", "--git-dir", str(path), *args],
            check=True,
            env=git_env(),
            capture_output=True,
            text=True,
        )
        return result.stdout

    def branches(self, storage_name: str) -> list[Branch]:
        path = self.path_of(storage_name)
        out = self._git(
            path,
            "for-each-ref",
            "--sort=refname",
            "--format=%(refname:strip=2)%00%(objectname)%00%(committerdate:iso-strict)"
            "%00%(authorname) <%(authoremail:trim)>%00%(contents:subject)",
            "refs/heads/",
        )
        branches = []
        for line in out.splitlines():
            name, commit, date, author, subject = line.split("\0", 4)
            branches.append(
                Branch(
                    name=name,
                    commit=commit,
                    date=(
                        datetime.fromisoformat(date).astimezone(UTC) if date else datetime.now(UTC)
                    ),
                    message=subject,
                    author=author,
                )
            )
        return branches

    def head_branch(self, storage_name: str) -> str | None:
        """The branch HEAD points at, if that branch exists."""
        path = self.path_of(storage_name)
        result = subprocess.run(
            ["git", "--git-dir", str(path), "symbolic-ref", "--quiet", "HEAD"],
            env=git_env(),
            capture_output=True,
            text=True,
        )
        ref = result.stdout.strip()
        if result.returncode != 0 or not ref.startswith("refs/heads/"):
            return None
        exists = subprocess.run(
            ["git", "--git-dir", str(path), "show-ref", "--verify", "--quiet", ref],
            env=git_env(),
        )
        return ref[len("refs/heads/") :] if exists.returncode == 0 else None

    def settle_main_branch(self, storage_name: str) -> str | None:
        """After a push: make HEAD point at an existing branch and return its name.

        A push to an empty repository sets its main branch: HEAD's branch if it was pushed,
        else the first of PREFERRED_MAIN_BRANCHES that exists, else the first branch by name.
        """
        current = self.head_branch(storage_name)
        if current is not None:
            return current
        names = [b.name for b in self.branches(storage_name)]
        if not names:
            return None
        chosen = next((n for n in PREFERRED_MAIN_BRANCHES if n in names), names[0])
        self.set_head(storage_name, chosen)
        return chosen

    def set_head(self, storage_name: str, branch: str) -> None:
        self._git(self.path_of(storage_name), "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def branch_exists(self, storage_name: str, branch: str) -> bool:
        result = subprocess.run(
            ["git", "--git-dir", str(self.path_of(storage_name)), "show-ref", "--verify",
             "--quiet", f"refs/heads/{branch}"],
            env=git_env(),
        )
        return result.returncode == 0

    def ref_count(self, storage_name: str) -> int:
        """How many refs the repository has (one output byte per ref, whatever their names)."""
        out = self._git(self.path_of(storage_name), "for-each-ref", "--format=")
        return out.count("\n")

    def ref_values(self, storage_name: str, refs: list[str]) -> dict[str, str]:
        """The object each of `refs` points at now; refs that do not exist are left out."""
        if not refs:
            return {}
        wanted = set(refs)
        out = self._git(
            self.path_of(storage_name),
            "for-each-ref",
            "--format=%(refname)%00%(objectname)",
            "--",
            *sorted(wanted),
        )
        values = {}
        for line in out.splitlines():
            name, _, value = line.partition("\0")
            if name in wanted:  # a pattern also matches the refs below it
                values[name] = value
        return values

def _bytes_in(directory: str) -> int:
    """The sizes of the regular files directly in `directory`."""
    total = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
    return total
