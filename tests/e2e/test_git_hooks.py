"""The hooks of every push call back into the server: checks just before refs move, the
record after, a time limit, and many pushes at once (real git, real `gitward serve`)."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gitward.gitstore.hook_client import call

from .conftest import GitwardServer, User, start_server
from .holding_proxy import HoldingProxy

pytestmark = pytest.mark.e2e


def _port(server: GitwardServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _commit(server: GitwardServer, work: Path, name: str) -> str:
    (work / name).write_text(f"{name}\n")
    server.git("add", name, cwd=work)
    server.git("commit", "-qm", f"add {name}", cwd=work)
    return server.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _receive_pack_env(repo: Path, timeout: float = 20.0) -> dict[str, str]:
    """The environment of the receive-pack running on `repo`, once there is one."""
    deadline = time.monotonic() + timeout
    needle = str(repo).encode()
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"receive-pack" not in cmdline or needle not in cmdline:
                    continue
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue  # it ended meanwhile
            pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
            return {k.decode(): v.decode() for k, v in pairs}
        time.sleep(0.02)
    raise AssertionError(f"no receive-pack started on {repo}")


def _audit(server: GitwardServer, target: str, prefix: str = "repository.push") -> list[Any]:
    """The server's audit events on `target` whose action starts with `prefix`, oldest first."""
    engine = create_engine(server.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as db:
            rows = db.execute(
                text("SELECT action, actor, details FROM audit_events"
                     " WHERE target = :target AND action LIKE :action ORDER BY id"),
                {"target": target, "action": prefix + "%"},
            ).all()
    finally:
        engine.dispose()
    return [
        (action, actor, details if isinstance(details, dict) else json.loads(details))
        for action, actor, details in rows
    ]


def _wait_for_audit(
    server: GitwardServer, target: str, count: int, timeout: float = 30.0
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        events = _audit(server, target)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def _no_quarantine(repo: Path) -> None:
    assert not list((repo / "objects").glob("tmp_objdir-incoming-*"))
    assert not list((repo / "objects").glob("incoming-*"))


def _pat(server: GitwardServer, user: User) -> dict[str, Any]:
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{user.username}", auth=user,
                   json={"name": "hooks", "permissions": ["REPO_WRITE"]})
    assert r.status_code == 200, r.text
    return dict(r.json())


class Held:
    """Runs `action` in the proxy once the server's receive-pack is waiting for the pack."""

    def __init__(self, server: GitwardServer, repo: Path, action: Any) -> None:
        self.server, self.repo, self.action = server, repo, action
        self.env: dict[str, str] = {}
        self.error: BaseException | None = None

    def __call__(self) -> None:
        try:
            self.env = _receive_pack_env(self.repo)
            self.action(self)
        except BaseException as error:  # reported by the test, never hangs the push
            self.error = error


def test_token_revoked_while_its_push_streams_moves_no_ref(any_gitward_server, tmp_path):
    server = any_gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    before = server.branches(owner, ws, slug)
    token = _pat(server, owner)
    repo = server.repo_path(ws, slug)

    def revoke(_held: Held) -> None:
        r = server.api("DELETE", f"/rest/access-tokens/1.0/users/{owner.username}/{token['id']}",
                       auth=owner)
        assert r.status_code == 204, r.text

    held = Held(server, repo, revoke)
    proxy = HoldingProxy(_port(server), after_headers=held)
    try:
        new = _commit(server, seed, "while-revoked.txt")
        url = proxy.url(server.clone_url(ws, slug, User(owner.username, token["token"])))
        result = server.git("push", url, "HEAD:main", cwd=seed, check=False)
    finally:
        proxy.close()
    assert held.error is None, held.error
    assert result.returncode != 0
    # The credential was good when the push began; pre-receive found it revoked.
    assert "remote: push refused: Invalid or revoked personal access token" in result.stderr, (
        result.stderr
    )
    assert "[remote rejected] HEAD -> main (pre-receive hook declined)" in result.stderr
    assert "RPC failed" not in result.stderr
    assert server.branches(owner, ws, slug) == before
    # Not a ref moved, and not an object of the push landed (it stayed in quarantine).
    assert server.git("--git-dir", str(repo), "cat-file", "-e", new, check=False).returncode != 0
    _no_quarantine(repo)
    assert [a for a, _, _ in _audit(server, f"repository:{ws}/{slug}")] == ["repository.push"]


def test_write_taken_away_while_a_push_streams_is_refused_and_audited(
    any_gitward_server, tmp_path
):
    server = any_gitward_server
    owner = server.create_user()
    dev = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    server.grant(owner, ws, slug, dev, "write")
    before = server.branches(owner, ws, slug)
    held = Held(server, server.repo_path(ws, slug),
                lambda _h: server.grant(owner, ws, slug, dev, "read"))
    proxy = HoldingProxy(_port(server), after_headers=held)
    try:
        new = _commit(server, seed, "downgraded.txt")
        result = server.git("push", proxy.url(server.clone_url(ws, slug, dev)), "HEAD:main",
                            cwd=seed, check=False)
    finally:
        proxy.close()
    assert held.error is None, held.error
    assert result.returncode != 0
    assert "remote: push refused: You need write permission" in result.stderr, result.stderr
    assert server.branches(owner, ws, slug) == before
    refused = _audit(server, f"repository:{ws}/{slug}", "repository.push.refused")
    assert len(refused) == 1
    _action, actor, details = refused[0]
    assert actor == f"user:{dev.username}"
    assert details["refs"] == [{"ref": "refs/heads/main", "old": before["main"], "new": new}]
    assert "write permission" in details["reason"]


def test_callback_nonce_is_good_for_one_running_push_only(gitward_server, tmp_path):
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    repo = server.repo_path(ws, slug)
    answers: dict[str, Any] = {}

    def forge(held: Held) -> None:
        env = held.env
        base = {"hook": "pre-receive", "push": env["GITWARD_HOOK_PUSH"],
                "updates": [["0" * 40, "1" * 40, "refs/heads/forged"]]}
        answers["wrong nonce"] = call(env["GITWARD_HOOK_SOCKET"], {**base, "nonce": "x" * 43})
        answers["other push"] = call(env["GITWARD_HOOK_SOCKET"], {
            **base, "push": "0" * 16, "nonce": env["GITWARD_HOOK_NONCE"]})
        answers["malformed"] = call(env["GITWARD_HOOK_SOCKET"], {
            **base, "nonce": env["GITWARD_HOOK_NONCE"], "updates": [["zz", "1", "main"]]})

    held = Held(server, repo, forge)
    proxy = HoldingProxy(_port(server), after_headers=held)
    try:
        new = _commit(server, seed, "nonce.txt")
        server.git("push", "-q", proxy.url(server.clone_url(ws, slug, owner)), "HEAD:main",
                   cwd=seed)
    finally:
        proxy.close()
    assert held.error is None, held.error
    assert server.branches(owner, ws, slug)["main"] == new
    assert answers["wrong nonce"]["ok"] is False
    assert "not running" in answers["wrong nonce"]["message"]
    assert answers["other push"]["ok"] is False
    assert answers["malformed"] == {
        "ok": False, "message": "push refused: the hook's request is malformed"}
    # Once the push has ended its own nonce is worthless.
    env = held.env
    late = call(env["GITWARD_HOOK_SOCKET"], {
        "hook": "pre-receive", "push": env["GITWARD_HOOK_PUSH"],
        "nonce": env["GITWARD_HOOK_NONCE"],
        "updates": [["0" * 40, "1" * 40, "refs/heads/late"]]})
    assert late["ok"] is False and "not running" in late["message"]
    assert "late" not in server.branches(owner, ws, slug)
    # Only this user may reach the socket; nothing else listens for the hooks.
    sock = Path(env["GITWARD_HOOK_SOCKET"])
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


def test_repository_hooks_are_never_run(gitward_server, tmp_path):
    """Only the server's hooks directory runs: not a hook planted in a repository."""
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    repo = server.repo_path(ws, slug)
    marker = tmp_path / "planted-hook-ran"
    for name in ("pre-receive", "update", "post-receive"):
        planted = repo / "hooks" / name
        planted.parent.mkdir(exist_ok=True)
        planted.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        planted.chmod(0o755)
    new = _commit(server, seed, "planted.txt")
    server.git("push", "-q", "origin", "HEAD:main", cwd=seed)
    assert server.branches(owner, ws, slug)["main"] == new
    assert not marker.exists()
    hooks = server.data_dir / "hooks"
    for name in ("pre-receive", "post-receive"):
        assert stat.S_IMODE((hooks / name).stat().st_mode) == 0o700
        assert "hook_client.py" in (hooks / name).read_text()


def test_a_hooks_directory_tampered_with_is_restored_before_the_next_push(gitward_server):
    """git would apply a push without a hook it cannot run: the server puts it back first."""
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    hooks = server.data_dir / "hooks"
    (hooks / "pre-receive").chmod(0o600)
    (hooks / "post-receive").unlink()
    new = _commit(server, seed, "after-tampering.txt")
    server.git("push", "-q", "origin", "HEAD:main", cwd=seed)
    assert stat.S_IMODE((hooks / "pre-receive").stat().st_mode) == 0o700
    assert (hooks / "post-receive").is_file()
    pushed = _audit(server, f"repository:{ws}/{slug}")
    assert pushed[-1][2]["refs"][0]["new"] == new


PUSHES = 16


def test_concurrent_pushes_to_one_ref(any_gitward_server, tmp_path):
    """16 pushes to main, all told the same old value: one wins, 15 are refused by git's ref
    lock with a message `git push` shows, each is audited, and the repository is sound."""
    server = any_gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    base = server.branches(owner, ws, slug)["main"]
    commits = []
    for i in range(PUSHES):
        server.git("switch", "-q", "-c", f"b{i}", "main", cwd=seed)
        commits.append(_commit(server, seed, f"concurrent-{i}.txt"))
    # Every push has read the refs before any of them goes on: they truly race.
    barrier = threading.Barrier(PUSHES, timeout=60)
    proxy = HoldingProxy(_port(server), before_post=lambda: barrier.wait())
    url = proxy.url(server.clone_url(ws, slug, owner))
    results: list[Any] = [None] * PUSHES

    def push(i: int) -> None:
        results[i] = server.git("push", url, f"b{i}:main", cwd=seed, check=False, timeout=120)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(PUSHES)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
    finally:
        proxy.close()
    winners = [i for i, r in enumerate(results) if r.returncode == 0]
    assert len(winners) == 1, [r.stderr for r in results]
    (winner,) = winners
    for i, result in enumerate(results):
        assert "RPC failed" not in result.stderr and "curl" not in result.stderr, result.stderr
        if i != winner:
            assert f"! [remote rejected] b{i} -> main" in result.stderr, result.stderr
            assert "lock" in result.stderr or "failed to update ref" in result.stderr
    assert server.branches(owner, ws, slug)["main"] == commits[winner]

    target = f"repository:{ws}/{slug}"
    seeded = 1  # the seed's push
    events = _wait_for_audit(server, target, seeded + PUSHES)[seeded:]
    assert len(events) == PUSHES, events
    pushed = [d["refs"] for a, _, d in events if a == "repository.push"]
    assert pushed == [[{"ref": "refs/heads/main", "old": base, "new": commits[winner]}]]
    rejected = sorted(d["refs"][0]["new"] for a, _, d in events
                      if a == "repository.push.rejected")
    assert rejected == sorted(c for i, c in enumerate(commits) if i != winner)
    repo = server.repo_path(ws, slug)
    server.git("--git-dir", str(repo), "fsck", "--no-dangling")
    _no_quarantine(repo)


TIMEOUT = 2


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitwardServer]:
    server = start_server(
        tmp_path_factory.mktemp("gitward-timeout"),
        env={"GITWARD_PUSH_TIMEOUT_SECONDS": str(TIMEOUT)},
    )
    try:
        yield server
    finally:
        server.stop()


def test_push_over_the_time_limit_is_stopped_cleanly(impatient_server, tmp_path):
    server = impatient_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)  # well within the limit
    before = server.branches(owner, ws, slug)
    repo = server.repo_path(ws, slug)
    # The client stalls mid-push for longer than the limit, then goes on.
    held = Held(server, repo, lambda _h: time.sleep(TIMEOUT + 2))
    proxy = HoldingProxy(_port(server), after_headers=held)
    try:
        new = _commit(server, seed, "slow.txt")
        result = server.git("push", proxy.url(server.clone_url(ws, slug, owner)), "HEAD:main",
                            cwd=seed, check=False)
    finally:
        proxy.close()
    assert held.error is None, held.error
    assert result.returncode != 0
    message = f"push refused: it took longer than the limit of {TIMEOUT} seconds"
    assert f"! [remote rejected] HEAD -> main ({message})" in result.stderr, result.stderr
    assert "RPC failed" not in result.stderr
    assert server.branches(owner, ws, slug) == before
    assert server.git("--git-dir", str(repo), "cat-file", "-e", new, check=False).returncode != 0
    _no_quarantine(repo)
    server.git("--git-dir", str(repo), "fsck", "--no-dangling")
    # The same push without the stall is accepted.
    server.git("push", "-q", server.clone_url(ws, slug, owner), "HEAD:main", cwd=seed)
    assert server.branches(owner, ws, slug)["main"] == new


def test_a_hook_rewritten_to_allow_everything_is_replaced_before_the_next_push(gitward_server):
    """git runs whatever the hook says: one that no longer calls back is put back first, so
    the push is still checked and recorded."""
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    seed = server.seed(owner, ws, slug)
    pre_receive = server.data_dir / "hooks" / "pre-receive"
    original = pre_receive.read_text()
    pre_receive.write_text("#!/bin/sh\nexit 0\n")
    new = _commit(server, seed, "after-rewrite.txt")
    server.git("push", "-q", "origin", "HEAD:main", cwd=seed)
    assert pre_receive.read_text() == original
    pushed = _audit(server, f"repository:{ws}/{slug}")
    assert pushed[-1][2]["refs"][0]["new"] == new
