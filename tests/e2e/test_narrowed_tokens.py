"""Narrowed tokens end to end: `gitward token narrow` derives one offline (no server, no
network, no database, no data directory), then the real git client clones with it, is refused
a push when it is read-only and another repository it does not name; push protection refuses
a narrowed token found in a pushed file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import SRC, GitwardServer

pytestmark = pytest.mark.e2e

#: Runs `gitward` with every network connection and every import of a database, HTTP or
#: server library refused: what narrowing needs is the token alone.
_OFFLINE = """
import socket, sys
class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"sqlalchemy", "httpx", "psycopg", "redis", "fastapi",
                                  "starlette", "uvicorn", "pygit2", "alembic"}:
            raise ImportError("offline: " + name)
        return None
sys.meta_path.insert(0, _Refuse())
def _no_network(*args, **kwargs):
    raise OSError("offline: no network")
socket.socket.connect = _no_network
socket.create_connection = _no_network
from gitward.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def narrow_offline(tmp: Path, token: str, *options: str) -> str:
    """`gitward token narrow` in an empty directory, with no GITWARD_* settings but a data
    directory that does not exist, the token on standard input."""
    cwd = tmp / "offline"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITWARD_")}
    env.update(PYTHONPATH=str(SRC), GITWARD_DATA=str(tmp / "no-such-data-dir"))
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE, "token", "narrow", "-", *options],
        cwd=cwd, input=token + "\n", capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert list(cwd.iterdir()) == [] and not (tmp / "no-such-data-dir").exists()
    derived = result.stdout.strip()
    assert derived.startswith("gwnar_") and token not in result.stdout + result.stderr
    return derived


def test_narrow_needs_no_server(tmp_path):
    from gitward.credentials import codec, narrowing

    parent = codec.generate("gwpat_")
    derived = narrow_offline(tmp_path, parent, "--repository", "acme/app", "--read-only",
                             "--expires-in", "1h", "--allowed-ip", "10.0.0.0/8")
    again = narrow_offline(tmp_path, derived, "--allowed-ip", "10.1.0.0/16")
    read = narrowing.parse(again)
    assert read.verify() and read.parent_key_hex == narrowing.narrowing_key(parent)
    restrictions = read.restrictions()
    assert restrictions.repositories == {"acme/app"} and restrictions.read_only
    assert restrictions.allow_lists == (("10.0.0.0/8",), ("10.1.0.0/16",))
    # A bad option is a clear error, and exit status 2.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITWARD_")}
    env.update(PYTHONPATH=str(SRC))
    bad = subprocess.run(
        [sys.executable, "-c", _OFFLINE, "token", "narrow", parent, "--expires-in", "soon"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60,
    )
    assert bad.returncode == 2 and "--expires-in takes a number and a unit" in bad.stderr
    assert "Traceback" not in bad.stderr


def _bearer(token: str) -> list[str]:
    return ["-c", f"http.extraHeader=Authorization: Bearer {token}"]


def test_a_narrowed_token_clones_and_is_refused_a_push(gitward_server: GitwardServer, tmp_path):
    server = gitward_server
    owner = server.create_user()
    workspace, slug = server.create_repository(owner)
    _, other = server.create_repository(owner, workspace=workspace)
    server.seed(owner, workspace, slug)
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{owner.username}", auth=owner,
                   json={"name": "ci", "permissions": ["REPO_WRITE"]})
    assert r.status_code == 200, r.text
    parent = r.json()["token"]
    derived = narrow_offline(tmp_path, parent, "--repository", f"{workspace}/{slug}",
                             "--read-only")

    clone = tmp_path / "clone"
    server.git(*_bearer(derived), "clone", "-q", server.clone_url(workspace, slug), str(clone))
    assert any(clone.iterdir())
    (clone / "new.txt").write_text("new\n")
    server.git("add", "new.txt", cwd=clone)
    server.git("commit", "-qm", "new", cwd=clone)
    before = server.branches(owner, workspace, slug)
    refused = server.git(*_bearer(derived), "push", "origin", "HEAD:main", cwd=clone,
                         check=False)
    assert refused.returncode != 0 and "This token is read-only" in refused.stderr
    assert server.branches(owner, workspace, slug) == before
    # The repository it does not name does not exist for it.
    elsewhere = server.git(*_bearer(derived), "clone", "-q", server.clone_url(workspace, other),
                           str(tmp_path / "other"), check=False)
    assert elsewhere.returncode != 0
    # A live narrowed token in a pushed file: push protection refuses the push.
    leak = narrow_offline(tmp_path, parent, "--expires-in", "7d")
    (clone / "deploy.env").write_text(f"TOKEN={leak}\n")
    server.git("add", "deploy.env", cwd=clone)
    server.git("commit", "-qm", "deploy settings", cwd=clone)
    caught = server.git(*_bearer(parent), "push", "origin", "HEAD:main", cwd=clone, check=False)
    assert caught.returncode != 0
    assert "deploy.env" in caught.stderr and "narrowed token" in caught.stderr
    assert leak not in caught.stderr
    assert server.branches(owner, workspace, slug) == before
    # Revoked through the revocation API, it no longer counts: the push goes through.
    r = server.api("POST", "/rest/revocation/1.0/tokens", json={"tokens": [leak]})
    assert r.status_code == 200, r.text
    pushed = server.git(*_bearer(parent), "push", "origin", "HEAD:main", cwd=clone, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert server.branches(owner, workspace, slug) != before
