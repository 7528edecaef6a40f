"""The REST API never follows a repository directory out of the data dir, and never answers 500
when the storage is damaged."""

from __future__ import annotations

import shutil


def test_planted_symlink_and_missing_directory(world, client, runtime, tmp_path):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    repo = world.repository(alice, "acme", "widget", "PRJ")
    path = runtime.git.root / (repo["uuid"].strip("{}") + ".git")
    assert path.is_dir()
    outside = tmp_path / "outside.git"
    shutil.move(path, outside)
    path.symlink_to(outside)
    r = client.get("/2.0/repositories/acme/widget/refs/branches", headers=alice.auth)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Repository not found"
    path.unlink()
    r = client.get("/2.0/repositories/acme/widget/refs/branches", headers=alice.auth)
    assert r.status_code == 503 and r.json()["type"] == "error"
