"""Path tricks on the Git paths: 4xx text/plain answers, never a 500, nothing followed."""

from __future__ import annotations

import base64
import http.client
import shutil
from pathlib import Path

import pytest

from .conftest import GitwardServer, User

pytestmark = pytest.mark.e2e


def raw_request(
    server: GitwardServer, method: str, target: str, user: User | None = None,
    body: bytes | None = None, headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send `target` byte for byte (no client-side normalisation of `..` or `%2F`)."""
    host, port = server.base_url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    all_headers = dict(headers or {})
    if user is not None:
        token = base64.b64encode(f"{user.username}:{user.password}".encode()).decode()
        all_headers["Authorization"] = f"Basic {token}"
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in all_headers.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def setup(gitward_server: GitwardServer, tmp_path_factory: pytest.TempPathFactory):
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    other_ws, other_slug = server.create_repository(server.create_user())
    work = tmp_path_factory.mktemp("paths") / "w"
    server.git("init", "-q", str(work))
    (work / "a.txt").write_text("a\n")
    server.git("add", ".", cwd=work)
    server.git("commit", "-q", "-m", "a", cwd=work)
    server.git("push", "-q", server.clone_url(ws, slug, owner), "main", cwd=work)
    return server, owner, ws, slug, other_ws, other_slug


INFO = "info/refs?service=git-upload-pack"


def _targets(ws: str, slug: str, other_ws: str, other_slug: str) -> list[str]:
    data_abs = "/etc/passwd"
    return [
        f"/{ws}/../{other_ws}/{other_slug}.git/{INFO}",
        f"/../{ws}/{slug}.git/{INFO}",
        f"/{ws}/..%2F{other_ws}%2F{other_slug}.git/{INFO}",
        f"/{ws}/{slug}.git/..%2F..%2F{other_ws}/{INFO}",
        f"/{ws}%2F{slug}.git/{INFO}",
        f"/{ws}/{slug}.git%2Finfo%2Frefs?service=git-upload-pack",
        f"/{ws}%2f{slug}.git/{INFO}",
        f"/%2E%2E/{ws}/{slug}.git/{INFO}",
        f"/{ws}/%2E%2E/{INFO}",
        f"/{ws}/..%5C..%5Crepos/{INFO}",
        f"/{ws}/..\\..\\{slug}.git/{INFO}",
        f"/{ws}/.git/{INFO}",
        f"/{ws}/../{INFO}",
        f"/{ws}/./{INFO}",
        f"/./{slug}.git/{INFO}",
        f"//{slug}.git/{INFO}",
        f"/{ws}//{slug}.git/{INFO}",
        f"/%2Fetc%2Fpasswd/{slug}.git/{INFO}",
        f"/{ws}/%2Fetc%2Fpasswd/{INFO}",
        f"/{ws}/{data_abs}/{INFO}",
        f"{data_abs}/{INFO}",
        f"/{ws}/{slug}%00.git/{INFO}",
        f"/{ws}/{slug}.git%00/{INFO}",
        f"/{ws}/{'a' * 300}.git/{INFO}",
        f"/{ws}/{slug}.git/objects/info/packs",
        f"/{ws}/{slug}.git/HEAD",
        f"/{ws}/{slug}.git/info/refs",
        f"/{ws}/{slug}.git/info/refs?service=git-upload-archive",
        f"/{ws}/{slug}.git/info/refs?service=../../git-upload-pack",
    ]


def test_path_tricks_get_4xx_text(setup):
    server, owner, ws, slug, other_ws, other_slug = setup
    for target in _targets(ws, slug, other_ws, other_slug):
        for user in (owner, None):
            status, headers, body = raw_request(server, "GET", target, user)
            assert 400 <= status < 500, (target, status, body)
            assert headers["content-type"].startswith("text/plain"), (target, headers)
            assert b"Traceback" not in body and b"<html" not in body.lower()
    # ... and the plain path still works.
    status, _, _ = raw_request(server, "GET", f"/{ws}/{slug}.git/{INFO}", owner)
    assert status == 200


def test_rpc_path_tricks(setup):
    server, owner, ws, slug, other_ws, other_slug = setup
    headers = {"Content-Type": "application/x-git-upload-pack-request"}
    for target in (
        f"/{ws}/{slug}.git/git-upload-pack/../git-receive-pack",
        f"/{ws}/{slug}.git/..%2Fgit-receive-pack",
        f"/{ws}%2F{slug}.git/git-upload-pack",
        f"/{ws}/{slug}.git/git-upload-archive",
        f"/{ws}/{slug}.git/%2E%2E",
        f"/{ws}/../{other_ws}/{other_slug}.git/git-upload-pack",
        f"/{other_ws}/{other_slug}.git/git-upload-pack",
    ):
        status, resp_headers, body = raw_request(
            server, "POST", target, owner, body=b"0000", headers=headers
        )
        assert 400 <= status < 500, (target, status, body)
        assert resp_headers["content-type"].startswith("text/plain"), target


def test_planted_symlink_is_not_followed(setup, tmp_path: Path):
    """A repository directory replaced by a symlink (to a repository outside the store)."""
    server, owner, ws, slug, _, _ = setup
    victim_ws, victim_slug = server.create_repository(owner)
    path = server.repo_path(victim_ws, victim_slug)
    outside = tmp_path / "outside.git"
    shutil.copytree(server.repo_path(ws, slug), outside, symlinks=True)
    shutil.rmtree(path)
    path.symlink_to(outside)
    try:
        for target in (f"/{victim_ws}/{victim_slug}.git/{INFO}",
                       f"/{victim_ws}/{victim_slug}.git/info/refs?service=git-receive-pack"):
            status, headers, body = raw_request(server, "GET", target, owner)
            assert 400 <= status < 500, (status, body)
            assert headers["content-type"].startswith("text/plain")
        result = server.git("clone", server.clone_url(victim_ws, victim_slug, owner),
                            str(tmp_path / "c"), check=False)
        assert result.returncode != 0
    finally:
        path.unlink()
