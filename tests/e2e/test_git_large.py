"""Large transfers: a 100 MB push and clone back, and the push size limit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import GitwardServer, start_server, write_random_files

pytestmark = pytest.mark.e2e

MB = 1 << 20
# Random data does not compress: store it without trying, client side, to keep this fast.
FAST = ("-c", "core.compression=0", "-c", "pack.compression=0", "-c", "core.bigFileThreshold=1m")


def _digest(root: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.iterdir())
        if p.is_file()
    }


def _objects_snapshot(repo: Path) -> set[str]:
    """Every file under objects/ and refs/, plus packed-refs: what a push may leave behind."""
    found = set()
    for sub in ("objects", "refs"):
        for p in (repo / sub).rglob("*"):
            found.add(str(p.relative_to(repo)))
    if (repo / "packed-refs").exists():
        found.add("packed-refs:" + (repo / "packed-refs").read_text())
    return found


def test_push_and_clone_100_mb(gitward_server: GitwardServer, tmp_path: Path):
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    write_random_files(work, 100 * MB, files=4)
    server.git(*FAST, "add", ".", cwd=work)
    server.git(*FAST, "commit", "-q", "-m", "100 MB of random data", cwd=work)
    head = server.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    server.git(*FAST, "push", "-q", url, "main", cwd=work)
    assert server.branches(owner, ws, slug) == {"main": head}

    server.git(*FAST, "clone", "-q", url, str(tmp_path / "back"))
    assert server.git("rev-parse", "HEAD", cwd=tmp_path / "back").stdout.strip() == head
    assert _digest(tmp_path / "back") == _digest(work)


LIMIT = 2 * MB
REF_LIMIT = 5


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitwardServer]:
    server = start_server(
        tmp_path_factory.mktemp("gitward-limit"),
        env={"GITWARD_MAX_PUSH_BYTES": str(LIMIT),
             "GITWARD_MAX_REFS_PER_REPOSITORY": str(REF_LIMIT)},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("files", [1, 200], ids=["few-objects", "many-objects"])
def test_push_over_limit_is_refused(limited_server: GitwardServer, tmp_path: Path, files):
    """A 5 MB push against a 2 MB limit: refused with the message, nothing of it remains.

    Few objects are unpacked to loose objects by receive-pack, many are kept as a pack
    (receive.unpackLimit): both must leave the repository exactly as it was.
    """
    server = limited_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    (work / "small.txt").write_text("small\n")
    server.git("add", ".", cwd=work)
    server.git("commit", "-q", "-m", "small", cwd=work)
    head = server.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    server.git("push", "-q", url, "main", cwd=work)  # under the limit: accepted
    repo = server.repo_path(ws, slug)
    before = _objects_snapshot(repo)

    write_random_files(work / "big", 5 * MB, files=files)
    server.git(*FAST, "add", ".", cwd=work)
    server.git(*FAST, "commit", "-q", "-m", "too big", cwd=work)
    server.git(*FAST, "switch", "-q", "-c", "other", cwd=work)
    result = server.git(*FAST, "push", url, "main", "other", cwd=work, check=False)
    assert result.returncode != 0
    assert "larger than the limit" in result.stderr, result.stderr

    assert server.branches(owner, ws, slug) == {"main": head}
    assert _objects_snapshot(repo) == before
    # The repository still works.
    server.git("clone", "-q", url, str(tmp_path / "again"))
    fsck = server.git("--git-dir", str(repo), "fsck", "--no-dangling")
    assert fsck.returncode == 0


def test_a_push_past_the_ref_limit_is_refused_whole(limited_server: GitwardServer, tmp_path):
    """5 refs at most: a push that would make 6 is refused, nothing of it applied (and
    audited); moving and deleting refs still works at the limit."""
    server = limited_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    server.git("add", ".", cwd=work)
    server.git("commit", "-q", "-m", "a", cwd=work)
    head = server.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    server.git("push", "-q", url, "main", "main:b1", "main:b2", "main:b3", cwd=work)
    result = server.git("push", url, "main:b4", "main:b5", cwd=work, check=False)
    assert result.returncode != 0
    assert "more than the limit of 5 refs" in result.stderr, result.stderr
    assert server.branches(owner, ws, slug) == {name: head for name in ("main", "b1", "b2", "b3")}
    # One more fits; then a creation and a deletion together keep the count.
    server.git("push", "-q", url, "main:b4", cwd=work)
    server.git("push", "-q", url, "main:b5", ":b4", cwd=work)
    assert set(server.branches(owner, ws, slug)) == {"main", "b1", "b2", "b3", "b5"}
    (work / "a.txt").write_text("moved\n")
    server.git("commit", "-qam", "moved", cwd=work)
    server.git("push", "-q", url, "main", cwd=work)  # at the limit, a branch still moves
