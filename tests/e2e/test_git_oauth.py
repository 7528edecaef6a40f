"""OAuth access tokens with the real git client against a real `gitward serve`: client
credentials → access token → clone as x-token-auth; no push without repository:write."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import GitwardServer, User

SCOPE_MESSAGE = "Your credentials lack one or more required privilege scopes: repository:write"


@pytest.fixture(scope="module")
def world(any_gitward_server: GitwardServer):
    """An owner with one repository holding a commit."""
    server = any_gitward_server
    owner = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.seed(owner, workspace, slug)
    return server, owner, workspace, slug


def client_credentials_token(server: GitwardServer, owner: User, workspace: str,
                             scopes: list[str]) -> str:
    r = server.api("POST", f"/2.0/workspaces/{workspace}/oauth-consumers", auth=owner,
                   json={"name": "ci", "is_private": True, "scopes": scopes})
    assert r.status_code == 201, r.text
    consumer = r.json()
    r = server.api("POST", "/site/oauth2/access_token", auth=(consumer["key"], consumer["secret"]),
                   data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    assert token.startswith("gwoat_")
    return token


def test_clone_and_push_with_client_credentials(world, tmp_path):
    server, owner, workspace, slug = world
    writer = client_credentials_token(server, owner, workspace, ["repository:write"])
    url = server.clone_url(workspace, slug, User("x-token-auth", writer))
    clone = tmp_path / "rw"
    server.git("clone", "-q", url, str(clone))
    assert (clone / "README").read_text() == "hello\n"
    (clone / "b.txt").write_text("b\n")
    server.git("add", "b.txt", cwd=clone)
    server.git("commit", "-qm", "b", cwd=clone)
    server.git("push", "-q", "origin", "HEAD:main", cwd=clone)


def test_read_only_token_cannot_push(world, tmp_path):
    server, owner, workspace, slug = world
    reader = client_credentials_token(server, owner, workspace, ["repository"])
    url = server.clone_url(workspace, slug, User("x-token-auth", reader))
    clone = tmp_path / "ro"
    server.git("clone", "-q", url, str(clone))
    (clone / "c.txt").write_text("c\n")
    server.git("add", "c.txt", cwd=clone)
    server.git("commit", "-qm", "c", cwd=clone)
    result = server.git("push", "origin", "HEAD:main", cwd=clone, check=False)
    assert result.returncode != 0
    assert SCOPE_MESSAGE in result.stderr, result.stderr


def test_bearer_header_and_revoked_consumer(world, tmp_path):
    server, owner, workspace, slug = world
    r = server.api("POST", f"/2.0/workspaces/{workspace}/oauth-consumers", auth=owner,
                   json={"name": "gone", "is_private": True, "scopes": ["repository"]})
    consumer = r.json()
    token = server.api("POST", "/site/oauth2/access_token",
                       auth=(consumer["key"], consumer["secret"]),
                       data={"grant_type": "client_credentials"}).json()["access_token"]
    plain = server.clone_url(workspace, slug)
    header = ["-c", f"http.extraHeader=Authorization: Bearer {token}"]
    server.git(*header, "clone", "-q", plain, str(tmp_path / "bearer"))
    r = server.api("DELETE", f"/2.0/workspaces/{workspace}/oauth-consumers/{consumer['id']}",
                   auth=owner)
    assert r.status_code == 204
    result = server.git(*header, "clone", "-q", plain, str(tmp_path / "after"), check=False)
    assert result.returncode != 0
