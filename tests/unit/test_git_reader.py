"""gitstore/reader: what it reads from a bare repository, checked against git itself."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from gitward.gitstore.reader import (
    ZERO_ID,
    BadPath,
    BadRevision,
    ChangeKind,
    EntryKind,
    NotADirectory,
    NotAFile,
    PathNotFound,
    RepositoryReader,
    RevisionNotFound,
    check_branch_name,
    check_path,
    update_ref,
)
from gitward.gitstore.store import git_env


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], check=True, env=git_env(),
        capture_output=True, input=stdin,
    ).stdout.decode()


def fast_import(repo: Path, stream: str | bytes) -> None:
    data = stream.encode() if isinstance(stream, str) else stream
    git(repo, "fast-import", "--quiet", stdin=data)


def blob(data: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(data), data)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main: c1 (root: README, a/x.txt, bin.dat) -> c2 (a/x.txt changed, b/y.txt added) ->
    c3 (README renamed to README.md, with an author offset of +02:00) -> merge of side;
    side: from c1, adds s.txt. Tags: v1 (lightweight, c1), v2 (annotated, c2). HEAD: main."""
    path = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(path)],
                   check=True, env=git_env())
    readme = b"# Title\nline two\n"
    stream = b"".join([
        b"commit refs/heads/main\nmark :1\n",
        b"author Ada <ada@example.com> 1700000000 +0000\n",
        b"committer Ada <ada@example.com> 1700000000 +0000\n", blob(b"first\n\nbody one\n"),
        b"M 100644 inline README\n", blob(readme),
        b"M 100644 inline a/x.txt\n", blob(b"one\ntwo\nthree\n"),
        b"M 100644 inline bin.dat\n", blob(b"\x00\x01\x02binary"),
        b"\n",
        b"commit refs/heads/main\nmark :2\n",
        b"author Bob <bob@example.com> 1700000100 +0000\n",
        b"committer Bob <bob@example.com> 1700000100 +0000\n", blob(b"second\n"),
        b"from :1\n",
        b"M 100644 inline a/x.txt\n", blob(b"one\n2\nthree\nfour\n"),
        b"M 100644 inline b/y.txt\n", blob(b"why\n"),
        b"\n",
        b"commit refs/heads/main\nmark :3\n",
        b"author Cy <cy@example.com> 1700000200 +0200\n",
        b"committer Cy <cy@example.com> 1700000200 +0200\n", blob(b"third: rename\n"),
        b"from :2\n",
        b"D README\n",
        b"M 100644 inline README.md\n", blob(readme),
        b"\n",
        b"commit refs/heads/side\nmark :4\n",
        b"author Dee <dee@example.com> 1700000150 +0000\n",
        b"committer Dee <dee@example.com> 1700000150 +0000\n", blob(b"side work\n"),
        b"from :1\n",
        b"M 100644 inline s.txt\n", blob(b"side\n"),
        b"\n",
        b"commit refs/heads/main\nmark :5\n",
        b"author Ada <ada@example.com> 1700000300 +0000\n",
        b"committer Ada <ada@example.com> 1700000300 +0000\n", blob(b"merge side\n"),
        b"from :3\nmerge :4\n",
        b"M 100644 inline s.txt\n", blob(b"side\n"),
        b"\n",
        b"reset refs/tags/v1\nfrom :1\n\n",
        b"tag v2\nfrom :2\ntagger Tess <t@example.com> 1700000400 +0100\n",
        blob(b"Release two\n"),
    ])
    fast_import(path, stream)
    return path


def ids(repo: Path, *revs: str) -> list[str]:
    return [git(repo, "rev-parse", r).strip() for r in revs]


def test_refs(repo: Path) -> None:
    reader = RepositoryReader(repo)
    assert not reader.is_empty()
    assert reader.default_branch() == "main"
    branches = reader.branches()
    assert [b.name for b in branches] == ["main", "side"]
    assert branches[0].commit.id == ids(repo, "main")[0]
    assert branches[0].ref == "refs/heads/main"
    assert [b.name for b in reader.branches("SID")] == ["side"]
    assert reader.branch("refs/heads/side") == branches[1]
    assert reader.branch("nope") is None
    assert reader.branch("a..b") is None

    v1, v2 = reader.tags()
    assert (v1.name, v1.annotated, v1.target) == ("v1", False, ids(repo, "main~3")[0])
    assert v1.commit is not None and v1.commit.id == v1.target
    assert v2.annotated and v2.target == ids(repo, "refs/tags/v2")[0]
    assert v2.commit is not None and v2.commit.id == ids(repo, "v2^{commit}")[0]
    assert v2.message == "Release two\n"
    assert v2.tagger is not None and v2.tagger.email == "t@example.com"
    assert v2.tag_date is not None and v2.tag_date.utcoffset() == timedelta(hours=1)
    assert [t.name for t in reader.tags("2")] == ["v2"]
    assert reader.tag("refs/tags/v2") == v2
    assert reader.ref_target("refs/tags/v2") == v2.target
    assert reader.ref_target("refs/heads/none") is None


def test_empty_repository(tmp_path: Path) -> None:
    path = tmp_path / "e.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True, env=git_env())
    reader = RepositoryReader(path)
    assert reader.is_empty()
    assert reader.default_branch() is None
    assert reader.branches() == [] and reader.tags() == []
    with pytest.raises(RevisionNotFound):
        reader.resolve("HEAD")


def test_resolve(repo: Path) -> None:
    reader = RepositoryReader(repo)
    main, c2 = ids(repo, "main", "main~1^1~0")
    assert reader.resolve("main") == main
    assert reader.resolve("refs/heads/main") == main
    assert reader.resolve("HEAD") == main
    assert reader.resolve(main) == main
    assert reader.resolve(main[:7]) == main
    assert reader.resolve(main.upper()) == main
    assert reader.resolve("v2") == ids(repo, "v2^{commit}")[0]  # tags peel to their commit
    assert reader.resolve("refs/tags/v2") == ids(repo, "v2^{commit}")[0]
    assert c2
    for bad in ["main~1", "main^", ":/first", "main@{0}", "a..b", "", "x\x00y"]:
        with pytest.raises(BadRevision):
            reader.resolve(bad)
    for missing in ["nope", "refs/heads/nope", "deadbeef", "0" * 40]:
        with pytest.raises(RevisionNotFound):
            reader.resolve(missing)


def test_a_branch_wins_over_a_tag_of_the_same_name(repo: Path) -> None:
    git(repo, "update-ref", "refs/tags/side", ids(repo, "main")[0])
    assert RepositoryReader(repo).resolve("side") == ids(repo, "refs/heads/side")[0]


def test_commit_fields(repo: Path) -> None:
    reader = RepositoryReader(repo)
    c3 = reader.commit(ids(repo, "main^1")[0])
    assert c3.author.name == "Cy" and c3.author.email == "cy@example.com"
    assert c3.author_date.utcoffset() == timedelta(hours=2)
    assert int(c3.author_date.timestamp()) == 1700000200
    assert c3.committer == c3.author
    assert c3.message == "third: rename\n" and c3.summary == "third: rename"
    assert c3.parents == (ids(repo, "main~2")[0],)
    assert c3.tree == ids(repo, "main^1^{tree}")[0]
    merge = reader.commit("main")
    assert merge.parents == tuple(ids(repo, "main^1", "main^2"))


def log_of(repo: Path, *args: str) -> list[str]:
    return git(repo, "log", "--format=%H", *args).split()


def test_log_matches_git_log(repo: Path) -> None:
    reader = RepositoryReader(repo)
    assert [c.id for c in reader.log(["main"], limit=100).commits] == log_of(repo, "main")
    first = reader.log(["main"], limit=2)
    assert not first.is_last and [c.id for c in first.commits] == log_of(repo, "-n2", "main")
    rest = reader.log(["main"], start=2, limit=2)
    assert [c.id for c in rest.commits] == log_of(repo, "--skip=2", "-n2", "main")
    last = reader.log(["main"], start=4, limit=2)
    assert last.is_last and [c.id for c in last.commits] == log_of(repo, "--skip=4", "main")
    # exclude (Server's since, Cloud's exclude)
    assert [c.id for c in reader.log(["main"], ["side"], limit=10).commits] == log_of(
        repo, "side..main")
    # a page that ends exactly at the last commit is the last page
    exact = reader.log(["main"], limit=5)
    assert len(exact.commits) == 5 and exact.is_last


@pytest.mark.parametrize("path", ["a/x.txt", "README", "README.md", "s.txt", "a", "b/y.txt"])
def test_log_with_path_matches_git_log(repo: Path, path: str) -> None:
    reader = RepositoryReader(repo)
    got = [c.id for c in reader.log(["main"], path=path, limit=100).commits]
    assert got == log_of(repo, "main", "--", path)


def test_tree(repo: Path) -> None:
    reader = RepositoryReader(repo)
    page = reader.tree("main")
    assert page.revision == ids(repo, "main")[0] and page.path == ""
    # directories first, then files, each by name
    assert [(e.name, e.kind) for e in page.entries] == [
        ("a", EntryKind.DIRECTORY), ("b", EntryKind.DIRECTORY),
        ("README.md", EntryKind.FILE), ("bin.dat", EntryKind.FILE), ("s.txt", EntryKind.FILE),
    ]
    assert page.is_last
    readme = page.entries[2]
    assert readme.size == len(b"# Title\nline two\n") and readme.mode == 0o100644
    assert readme.id == ids(repo, "main:README.md")[0]
    assert page.entries[0].size is None
    sub = reader.tree("main", "a/")
    assert [e.path for e in sub.entries] == ["a/x.txt"] and sub.path == "a"
    two = reader.tree("main", start=1, limit=2)
    assert [e.name for e in two.entries] == ["b", "README.md"] and not two.is_last
    with pytest.raises(NotADirectory):
        reader.tree("main", "README.md")
    with pytest.raises(PathNotFound):
        reader.tree("main", "nope")
    assert reader.entry_kind("main", "") is EntryKind.DIRECTORY
    assert reader.entry_kind("main", "a") is EntryKind.DIRECTORY
    assert reader.entry_kind("main", "a/x.txt") is EntryKind.FILE
    with pytest.raises(PathNotFound):
        reader.entry_kind("main", "a/none")


def test_files(repo: Path) -> None:
    reader = RepositoryReader(repo)
    expected = git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert reader.files("main", limit=100) == (tuple(expected), True)
    assert reader.files("main", start=1, limit=2) == (tuple(expected[1:3]), False)
    assert reader.files("main", "a") == (("x.txt",), True)


def test_blobs_and_lines(repo: Path) -> None:
    reader = RepositoryReader(repo)
    readme = reader.blob("main", "README.md")
    assert readme.data == b"# Title\nline two\n" and not readme.binary and readme.size == 17
    binary = reader.blob("main", "bin.dat")
    assert binary.binary and binary.data.startswith(b"\x00")
    page = reader.lines("main", "a/x.txt")
    assert page.lines == ("one", "2", "three", "four") and page.is_last and not page.binary
    part = reader.lines("main", "a/x.txt", start=1, limit=2)
    assert part.lines == ("2", "three") and not part.is_last
    end = reader.lines("main", "a/x.txt", start=2, limit=2)
    assert end.lines == ("three", "four") and end.is_last
    assert reader.lines("main", "bin.dat").binary
    assert reader.lines("main", "bin.dat").lines == ()
    with pytest.raises(NotAFile):
        reader.blob("main", "a")
    with pytest.raises(NotAFile):
        reader.lines("main", "")
    with pytest.raises(PathNotFound):
        reader.blob("main", "a/none")
    assert reader.blob_size("main", "README.md") == 17


def test_diff(repo: Path) -> None:
    reader = RepositoryReader(repo)
    c2 = reader.diff(ids(repo, "main~2")[0])
    by_path = {f.new_path: f for f in c2.files}
    assert by_path["a/x.txt"].kind is ChangeKind.MODIFIED
    assert (by_path["a/x.txt"].lines_added, by_path["a/x.txt"].lines_removed) == (2, 1)
    assert by_path["b/y.txt"].kind is ChangeKind.ADDED and by_path["b/y.txt"].old_path is None
    assert not c2.truncated
    # the numbers git's own --numstat gives
    numstat = git(repo, "diff", "--numstat", "main~3", "main~2").split("\n")
    for line in filter(None, numstat):
        added, removed, name = line.split("\t")
        assert (by_path[name].lines_added, by_path[name].lines_removed) == (
            int(added), int(removed))
    rename = reader.diff(ids(repo, "main^1")[0]).files
    assert [(f.kind, f.old_path, f.new_path) for f in rename] == [
        (ChangeKind.RENAMED, "README", "README.md")]
    root = reader.diff(ids(repo, "main~3")[0])
    assert {f.new_path for f in root.files} == {"README", "a/x.txt", "bin.dat"}
    assert all(f.kind is ChangeKind.ADDED for f in root.files)
    assert next(f for f in root.files if f.new_path == "bin.dat").binary
    cut = reader.diff(ids(repo, "main~3")[0], max_files=2)
    assert len(cut.files) == 2 and cut.truncated
    only = reader.diff(ids(repo, "main~2")[0], paths=["b"])
    assert [f.new_path for f in only.files] == ["b/y.txt"]
    between = reader.diff("main", "v1")
    assert {f.new_path for f in between.files} == {"README.md", "a/x.txt", "b/y.txt", "s.txt"}


def test_patch(repo: Path) -> None:
    reader = RepositoryReader(repo)
    c2 = ids(repo, "main~2")[0]
    assert reader.patch(c2).text == git(repo, "diff", "--no-color", "main~3", c2)
    cut = reader.patch(c2, max_bytes=200)
    assert cut.truncated and len(cut.text) <= 200


def test_ahead_behind_and_merge_base(repo: Path) -> None:
    reader = RepositoryReader(repo)
    main, side, c1 = ids(repo, "main", "side", "main~3")
    assert reader.ahead_behind(side, ids(repo, "main~1")[0]) == (1, 2)
    assert reader.merge_base(side, ids(repo, "main~1")[0]) == c1
    assert reader.ahead_behind(main, main) == (0, 0)


def test_update_ref_is_compare_and_swap(repo: Path) -> None:
    main, side = ids(repo, "main", "side")
    ref = "refs/heads/new"
    assert update_ref(repo, ref, main, ZERO_ID)
    assert not update_ref(repo, ref, side, ZERO_ID)  # exists already
    assert not update_ref(repo, ref, side, side)  # old value is not what it holds
    assert update_ref(repo, ref, side, main)
    assert not update_ref(repo, ref, ZERO_ID, main)  # stale delete
    assert update_ref(repo, ref, ZERO_ID, side)
    assert RepositoryReader(repo).branch("new") is None


@pytest.mark.parametrize("bad", ["../x", "a/../b", "./a", "a//b", "a\x00b", "a\nb", "\x7f"])
def test_bad_paths(bad: str) -> None:
    with pytest.raises(BadPath):
        check_path(bad)


def test_paths_normalised() -> None:
    assert check_path("/") == "" and check_path("") == ""
    assert check_path("/a/b/") == "a/b"


@pytest.mark.parametrize("bad", ["", "a..b", "-x", "a b", "x.lock", "HEAD", "a~1", "a:b", "a\x00"])
def test_bad_branch_names(bad: str) -> None:
    with pytest.raises(BadRevision):
        check_branch_name(bad)


def test_branch_names() -> None:
    assert check_branch_name("feature/x") == "feature/x"
    assert check_branch_name("refs/heads/feature/x") == "feature/x"
