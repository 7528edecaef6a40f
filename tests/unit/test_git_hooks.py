"""The hooks directory and the hook process, without a server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from gitward.gitstore.hooks import (
    CLIENT,
    HOOK_NAMES,
    HooksUnusable,
    hooks_ready,
    receive_pack_args,
    write_hooks_dir,
)

UPDATE = f"{'0' * 40} {'1' * 40} refs/heads/main\n"


def _hook(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITWARD_HOOK_")}
    return subprocess.run(
        [sys.executable, "-I", "-S", str(CLIENT), name],
        input=UPDATE, env={**base, **env}, capture_output=True, text=True, timeout=60,
    )


def test_hooks_directory_is_written_once_and_refreshed_when_the_install_moves(tmp_path: Path):
    hooks = write_hooks_dir(tmp_path / "hooks", python="/opt/gitward/bin/python")
    for name in HOOK_NAMES:
        script = hooks / name
        assert stat.S_IMODE(script.stat().st_mode) == 0o700
        assert script.read_text().splitlines()[-1] == (
            f"exec /opt/gitward/bin/python -I -S {CLIENT} {name}"
        )
    before = (hooks / "pre-receive").stat().st_mtime_ns
    write_hooks_dir(hooks, python="/opt/gitward/bin/python")
    assert (hooks / "pre-receive").stat().st_mtime_ns == before
    write_hooks_dir(hooks, python="/new place/bin/python")
    assert "exec '/new place/bin/python' -I -S" in (hooks / "pre-receive").read_text()
    assert sorted(p.name for p in hooks.iterdir()) == sorted(HOOK_NAMES)


def test_receive_pack_uses_only_our_hooks(tmp_path: Path):
    args = receive_pack_args(tmp_path / "hooks", tmp_path / "r.git")
    assert args[:3] == ["git", "-c", f"core.hooksPath={tmp_path / 'hooks'}"]
    assert args[3:] == ["receive-pack", "--stateless-rpc", str(tmp_path / "r.git")]


def test_pre_receive_outside_gitward_refuses():
    result = _hook("pre-receive", {})
    assert result.returncode == 1
    assert "accepts pushes only through Gitward" in result.stderr


def test_pre_receive_refuses_when_the_server_cannot_be_reached(tmp_path: Path):
    env = {"GITWARD_HOOK_SOCKET": str(tmp_path / "gone.sock"), "GITWARD_HOOK_PUSH": "p",
           "GITWARD_HOOK_NONCE": "n"}
    result = _hook("pre-receive", env)
    assert result.returncode == 1
    assert "push refused: Gitward could not check this push" in result.stderr


def test_post_receive_never_fails_the_push(tmp_path: Path):
    env = {"GITWARD_HOOK_SOCKET": str(tmp_path / "gone.sock"), "GITWARD_HOOK_PUSH": "p",
           "GITWARD_HOOK_NONCE": "n"}
    result = _hook("post-receive", env)
    assert result.returncode == 0
    assert "could not record this push" in result.stderr
    assert _hook("post-receive", {}).returncode == 0


def test_hook_process_needs_nothing_but_the_standard_library(tmp_path: Path):
    """It runs twice per push, isolated: a copy on its own, with no package around it, works."""
    alone = tmp_path / "hook_client.py"
    alone.write_text(CLIENT.read_text())
    result = subprocess.run([sys.executable, "-I", "-S", str(alone), "pre-receive"],
                            input=UPDATE, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 1
    assert "accepts pushes only through Gitward" in result.stderr


def _answering(tmp_path: Path, answer: bytes) -> tuple[dict[str, str], list[bytes]]:
    """A one-shot socket server that records the request and sends `answer`."""
    import socket
    import threading

    path = tmp_path / "h.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            seen.append(data)
            conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    env = {"GITWARD_HOOK_SOCKET": str(path), "GITWARD_HOOK_PUSH": "p1", "GITWARD_HOOK_NONCE": "n1"}
    return env, seen


def test_pre_receive_sends_every_update_and_obeys_the_answer(tmp_path: Path):
    import json

    env, seen = _answering(tmp_path, b'{"ok": false, "message": "push refused: because"}\n')
    result = _hook("pre-receive", env)
    assert result.returncode == 1
    assert result.stderr == "push refused: because\n"
    assert json.loads(seen[0]) == {
        "hook": "pre-receive", "push": "p1", "nonce": "n1",
        "updates": [["0" * 40, "1" * 40, "refs/heads/main"]],
    }
    (tmp_path / "again").mkdir()
    env, _ = _answering(tmp_path / "again", b'{"ok": true, "message": ""}\n')
    assert _hook("pre-receive", env).returncode == 0


def test_post_receive_shows_a_warning_but_succeeds(tmp_path: Path):
    env, _ = _answering(tmp_path, b'{"ok": false, "message": "warning: not recorded"}\n')
    result = _hook("post-receive", env)
    assert result.returncode == 0
    assert result.stderr == "warning: not recorded\n"


def test_a_hook_that_lost_its_execute_bit_is_written_again(tmp_path: Path):
    hooks = write_hooks_dir(tmp_path / "hooks")
    (hooks / "pre-receive").chmod(0o600)
    assert not hooks_ready(hooks)
    write_hooks_dir(hooks)
    assert hooks_ready(hooks)


def test_hooks_git_could_not_run_are_an_error(tmp_path: Path, monkeypatch):
    """git skips a hook it cannot execute and applies the push: never serve like that."""
    import pytest

    from gitward.gitstore import hooks as module

    monkeypatch.setattr(module.os, "access", lambda _path, _mode: False)
    with pytest.raises(HooksUnusable, match="noexec"):
        write_hooks_dir(tmp_path / "hooks")


def test_pre_receive_names_the_quarantine_git_gave_it(tmp_path: Path):
    """Push protection reads the pushed objects where git holds them until the hooks agree."""
    import json

    env, seen = _answering(tmp_path, b'{"ok": true, "message": "warning: revoked"}\n')
    quarantine = "/data/repos/x.git/objects/tmp_objdir-incoming-abc"
    result = _hook("pre-receive", {**env, "GIT_QUARANTINE_PATH": quarantine})
    assert result.returncode == 0 and result.stderr == "warning: revoked\n"
    assert json.loads(seen[0])["quarantine"] == quarantine
