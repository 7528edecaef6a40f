"""A repository's `size`: the bytes its objects take on disk (loose objects and packs),
measured when a push lands and stored, so that answers and listings read no disk."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.gitstore import store as gitstore
from gitward.gitstore.store import git_env
from gitward.services import pushes
from gitward.services.caller import Caller


@pytest.fixture
def alice(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    return alice


def _path(runtime, client, alice, slug) -> Path:
    uuid = client.get(f"/2.0/repositories/acme/{slug}", headers=alice.auth).json()["uuid"]
    return runtime.git.path_of(uuid.strip("{}") + ".git")


def _objects_bytes(repo: Path) -> int:
    """Independently of the server: every file in objects/ but its info/ directory."""
    total = 0
    for top, _dirs, files in os.walk(repo / "objects"):
        if Path(top).name == "info":
            continue
        total += sum((Path(top) / f).stat().st_size for f in files)
    return total


def _write_objects(repo: Path, count: int, tag: str) -> None:
    for i in range(count):
        subprocess.run(["git", "--git-dir", str(repo), "hash-object", "-w", "--stdin"],
                       input=f"{tag} {i}\n".encode() * 40, check=True, env=git_env(),
                       capture_output=True)


def _push_lands(runtime, alice, slug) -> None:
    """What post-receive does once refs have moved (the objects were written above)."""
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("acme")
        repo = store.repos.repository_by_slug(workspace.id, slug)
        ctx = AuthContext(UserPrincipal(alice.id, alice.username), CredentialKind.PASSWORD)
        disk = pushes.settle_on_disk(runtime.git, repo.storage_name)
        pushes.record_push(Caller(store, ctx), repo, [], disk)


def _size(client, alice, slug) -> int:
    r = client.get(f"/2.0/repositories/acme/{slug}", headers=alice.auth)
    assert r.status_code == 200, r.text
    return r.json()["size"]


def test_size_follows_the_objects_on_disk(client, runtime, world, alice):
    world.repository(alice, "acme", "widget", "PRJ")
    repo = _path(runtime, client, alice, "widget")
    assert _size(client, alice, "widget") == 0 == _objects_bytes(repo)

    _write_objects(repo, 20, "first")
    assert _size(client, alice, "widget") == 0  # measured when a push lands, not on reads
    _push_lands(runtime, alice, "widget")
    first = _size(client, alice, "widget")
    assert first == _objects_bytes(repo) > 0

    _write_objects(repo, 20, "second")
    _push_lands(runtime, alice, "widget")
    assert _size(client, alice, "widget") == _objects_bytes(repo) > first

    # Packed (loose objects deleted, a pack written): the size follows.
    subprocess.run(["git", "--git-dir", str(repo), "repack", "-a", "-d", "-q"], check=True,
                   env=git_env(), capture_output=True)
    subprocess.run(["git", "--git-dir", str(repo), "prune-packed"], check=True,
                   env=git_env(), capture_output=True)
    _push_lands(runtime, alice, "widget")
    assert _size(client, alice, "widget") == _objects_bytes(repo)


def test_cached_sums_are_refreshed_when_a_directory_changes(tmp_path, monkeypatch):
    """Directories older than the racy window are cached by mtime; a file added to one changes
    its mtime, so the sum is taken again."""
    store = gitstore.GitStore(tmp_path / "repos")
    name = "0b1f0c36-9e1b-4c55-8b7e-6f1ad0a5b2a1.git"
    repo = store.create(name)
    _write_objects(repo, 5, "x")
    old = time.time() - 60
    for sub in (repo / "objects").iterdir():
        os.utime(sub, (old, old))
    first = store.size(name)
    assert first == _objects_bytes(repo)
    calls: list[str] = []
    real = gitstore._bytes_in
    monkeypatch.setattr(gitstore, "_bytes_in", lambda d: calls.append(d) or real(d))
    assert store.size(name) == first and calls == []  # every directory from the cache
    _write_objects(repo, 5, "y")
    assert store.size(name) == _objects_bytes(repo) > first
    assert calls  # the changed directories were summed again


def test_listing_runs_no_subprocess_per_repository(client, runtime, world, alice, monkeypatch):
    for i in range(5):
        world.repository(alice, "acme", f"r{i}", "PRJ")
        _write_objects(_path(runtime, client, alice, f"r{i}"), 3, f"r{i}")
        _push_lands(runtime, alice, f"r{i}")
    spawned: list[object] = []
    real = subprocess.Popen.__init__

    def counting(self, *args, **kwargs):
        spawned.append(args[0] if args else kwargs.get("args"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", counting)
    r = client.get("/2.0/repositories/acme?pagelen=100", headers=alice.auth)
    assert r.status_code == 200, r.text
    sizes = [v["size"] for v in r.json()["values"]]
    assert len(sizes) == 5 and all(s > 0 for s in sizes)
    assert spawned == []
