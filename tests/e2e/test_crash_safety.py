"""`kill -9` of the server during a push: git's repository stays sound (`git fsck`), no ref is
half-updated or left locked, a retried push works, and no push goes unrecorded — the events of
the pushes that landed are in the audit log once each (their outbox rows, written before git
may move a ref, are recovered by the next start: tests/integration/test_push_callbacks.py).

Merges and webhook deliveries do not exist yet; their crash tests come with them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import GitwardServer, start_server

pytestmark = pytest.mark.e2e


def _push_events(server: GitwardServer) -> list[dict[str, object]]:
    r = server.api("GET", "/rest/audit/1.0/events", auth=server.admin,
                   params={"action": "repository.push", "limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["values"])


def _refs(bare: Path) -> dict[str, str]:
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)"],
                         cwd=bare, capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_kill_9_during_a_push_leaves_the_repository_sound_and_nothing_unrecorded(tmp_path):
    root = tmp_path / "site"
    server = start_server(root)
    try:
        owner = server.create_user()
        ws, slug = server.create_repository(owner)
        work = tmp_path / "work"
        server.git("init", "-q", str(work))
        (work / "a.txt").write_text("a\n")
        server.git("add", ".", cwd=work)
        server.git("commit", "-q", "-m", "a", cwd=work)
        url = server.clone_url(ws, slug, owner)
        server.git("push", "-q", url, "main", cwd=work)
        bare = server.repo_path(ws, slug)
        before = _refs(bare)
        # A push big enough to be still streaming when the server dies.
        (work / "big.bin").write_bytes(os.urandom(48 * 1024 * 1024))
        server.git("add", ".", cwd=work)
        server.git("commit", "-q", "-m", "big", cwd=work)
        pushing = subprocess.Popen(
            ["git", "push", "-q", url, "main"], cwd=work, env=server.git_env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        time.sleep(1.0)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
        _, output = pushing.communicate(timeout=120)
        assert pushing.returncode != 0, output
    finally:
        server.stop()
    # git's own view of the repository: every object sound, the ref where it was, no lock.
    deadline = time.monotonic() + 30  # receive-pack, orphaned, notices its input is gone
    while list(bare.glob("objects/tmp_objdir-incoming-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    fsck = subprocess.run(["git", "fsck", "--full", "--no-dangling"], cwd=bare,
                          capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert _refs(bare) == before
    assert not list(bare.rglob("*.lock")), list(bare.rglob("*.lock"))
    # The same data directory started again: the push goes through, each push recorded once.
    server = start_server(root)
    try:
        server.git("push", "-q", server.clone_url(ws, slug, owner), "main", cwd=work)
        assert _refs(bare)["refs/heads/main"] != before["refs/heads/main"]
        events = _push_events(server)
        assert len(events) == 2, events
        heads = [e["details"]["refs"][0]["new"] for e in events]  # type: ignore[index]
        assert heads[-1] == _refs(bare)["refs/heads/main"]
        assert subprocess.run(["git", "fsck", "--full", "--no-dangling"], cwd=bare,
                              capture_output=True).returncode == 0
    finally:
        server.stop()
