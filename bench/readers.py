"""pygit2 against dulwich on the bench repository: the reads the content endpoints make.

    PYTHONPATH=src .venv/bin/python bench/readers.py [--commits 3000] [--rounds 20] [--repo PATH]

For each operation, the median wall time of `--rounds` runs (after one warm-up), each on a
repository object opened afresh (as a request does), and the ratio dulwich / pygit2.
"""

from __future__ import annotations

import argparse
import difflib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dulwich.diff_tree
import dulwich.objects
import dulwich.repo
import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import BIG_FILE, make_history

PATH_FILTER = "pkg03/file07.txt"


# -- pygit2 -------------------------------------------------------------------------------

def p_resolve(path: str) -> object:
    repo = pygit2.Repository(path)
    return repo.revparse_single("refs/heads/main").id


def p_refs(path: str) -> object:
    repo = pygit2.Repository(path)
    out = []
    for name in repo.references:
        if name.startswith(("refs/heads/", "refs/tags/")):
            ref = repo.references[name]
            out.append((name, ref.peel(pygit2.Commit).id))
    return out


def p_log(path: str) -> object:
    repo = pygit2.Repository(path)
    walker = repo.walk(repo.revparse_single("main").id, pygit2.enums.SortMode.NONE)
    return [(c.id, c.message) for _, c in zip(range(25), walker, strict=False)]


def p_log_path(path: str) -> object:
    repo = pygit2.Repository(path)
    walker = repo.walk(repo.revparse_single("main").id, pygit2.enums.SortMode.NONE)
    out = []
    parts = PATH_FILTER.split("/")
    for commit in walker:
        here = _p_entry(commit.tree, parts)
        before = _p_entry(commit.parents[0].tree, parts) if commit.parents else None
        if here != before:
            out.append(commit.id)
            if len(out) == 25:
                break
    return out


def _p_entry(tree: pygit2.Tree, parts: list[str]) -> object:
    try:
        return tree[PATH_FILTER].id
    except KeyError:
        return None


def p_commit_diff(path: str) -> object:
    repo = pygit2.Repository(path)
    commit = repo.revparse_single("main~10")
    assert isinstance(commit, pygit2.Commit)
    diff = repo.diff(commit.parents[0], commit)
    return [(p.delta.new_file.path, p.line_stats) for p in diff]


def p_tree(path: str) -> object:
    repo = pygit2.Repository(path)
    tree = repo.revparse_single("main^{tree}")
    assert isinstance(tree, pygit2.Tree)
    sub = repo[tree["pkg03"].id]
    return [(e.name, e.filemode, e.id) for e in sub]


def p_blob(path: str) -> object:
    repo = pygit2.Repository(path)
    tree = repo.revparse_single("main^{tree}")
    assert isinstance(tree, pygit2.Tree)
    blob = repo[tree[BIG_FILE].id]
    return blob.data.splitlines()


# -- dulwich ------------------------------------------------------------------------------

def opened(fn: Callable[[dulwich.repo.Repo], object]) -> Callable[[str], object]:
    """Run `fn` on the repository opened afresh, and closed after (its pack files)."""
    def run(path: str) -> object:
        with dulwich.repo.Repo(path) as repo:
            return fn(repo)
    return run


@opened
def d_resolve(repo: dulwich.repo.Repo) -> object:
    return repo.refs[b"refs/heads/main"]


@opened
def d_refs(repo: dulwich.repo.Repo) -> object:
    out = []
    for name, sha in repo.get_refs().items():
        if name.startswith((b"refs/heads/", b"refs/tags/")):
            obj = repo[sha]
            while isinstance(obj, dulwich.objects.Tag):
                obj = repo[obj.object[1]]
            out.append((name, obj.id))
    return out


@opened
def d_log(repo: dulwich.repo.Repo) -> object:
    walker = repo.get_walker(include=[repo.refs[b"refs/heads/main"]], max_entries=25)
    return [(e.commit.id, e.commit.message) for e in walker]


@opened
def d_log_path(repo: dulwich.repo.Repo) -> object:
    walker = repo.get_walker(include=[repo.refs[b"refs/heads/main"]], max_entries=25,
                             paths=[PATH_FILTER.encode()])
    return [e.commit.id for e in walker]


@opened
def d_commit_diff(repo: dulwich.repo.Repo) -> object:
    sha = repo.refs[b"refs/heads/main"]
    for _ in range(10):
        sha = repo[sha].parents[0]
    commit = repo[sha]
    parent = repo[commit.parents[0]]
    out = []
    for change in dulwich.diff_tree.tree_changes(repo.object_store, parent.tree, commit.tree):
        old = repo[change.old.sha].data.decode().splitlines() if change.old.sha else []
        new = repo[change.new.sha].data.decode().splitlines() if change.new.sha else []

        added = removed = 0
        for line in difflib.unified_diff(old, new, lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                added += 1
            elif line.startswith("-") and not line.startswith("---"):
                removed += 1
        out.append((change.new.path, added, removed))
    return out


@opened
def d_tree(repo: dulwich.repo.Repo) -> object:
    tree = repo[repo[repo.refs[b"refs/heads/main"]].tree]
    _, sub = tree[b"pkg03"]
    return [(e.path, e.mode, e.sha) for e in repo[sub].iteritems()]


@opened
def d_blob(repo: dulwich.repo.Repo) -> object:
    tree = repo[repo[repo.refs[b"refs/heads/main"]].tree]
    _, docs = tree[b"docs"]
    _, sha = repo[docs][b"big.txt"]
    return repo[sha].data.splitlines()


OPERATIONS: list[tuple[str, Callable[[str], object], Callable[[str], object]]] = [
    ("resolve a ref", p_resolve, d_resolve),
    ("list branches and tags", p_refs, d_refs),
    ("log of 25 commits", p_log, d_log),
    ("log of 25 commits, path filter", p_log_path, d_log_path),
    ("one commit and its diff stats", p_commit_diff, d_commit_diff),
    ("tree listing (one directory)", p_tree, d_tree),
    ("a file's blob (1,000 lines)", p_blob, d_blob),
]


def median_ms(fn: Callable[[str], object], path: str, rounds: int) -> float:
    fn(path)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(path)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repo", type=Path, help="an existing bench repository")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo = args.repo
        if repo is None:
            repo = Path(tmp) / "history.git"
            make_history(repo, args.commits)
        print(f"pygit2 {pygit2.__version__} (libgit2 {pygit2.LIBGIT2_VERSION}), "
              f"dulwich {'.'.join(map(str, dulwich.__version__))}")
        print(f"{'operation':34} {'pygit2 ms':>10} {'dulwich ms':>11} {'ratio':>7}")
        for name, p, d in OPERATIONS:
            pm = median_ms(p, str(repo), args.rounds)
            dm = median_ms(d, str(repo), args.rounds)
            print(f"{name:34} {pm:10.3f} {dm:11.3f} {dm / pm:6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
