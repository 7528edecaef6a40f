"""API tokens and address allow-lists with the real git client against a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import GitwardServer, User

API_TOKEN_USERNAME = "x-bitbucket-api-token-auth"


@pytest.fixture(scope="module")
def world(gitward_server: GitwardServer):
    server = gitward_server
    owner = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.seed(owner, workspace, slug)
    return server, owner, workspace, slug


def api_token(server: GitwardServer, user: User, scopes: list[str], **extra) -> str:
    expires = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = server.api("POST", "/2.0/user/api-tokens", auth=user,
                   json={"name": "e2e", "scopes": scopes, "expires_on": expires, **extra})
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def push(server: GitwardServer, clone: Path, name: str, *, check: bool = True):
    (clone / name).write_text(name)
    server.git("add", name, cwd=clone)
    server.git("commit", "-qm", name, cwd=clone)
    return server.git("push", "origin", "HEAD:main", cwd=clone, check=check)


def test_clone_and_push_under_either_username(world, tmp_path):
    server, owner, workspace, slug = world
    token = api_token(server, owner, ["read:repository:bitbucket", "write:repository:bitbucket"],
                      allowed_ips=["127.0.0.0/8", "::1/128"])
    for n, username in enumerate((API_TOKEN_USERNAME, owner.username)):
        clone = tmp_path / f"c{n}"
        server.git("clone", "-q", server.clone_url(workspace, slug, User(username, token)),
                   str(clone))
        assert (clone / "README").exists()
        push(server, clone, f"by-{n}.txt")
    assert "main" in server.branches(owner, workspace, slug)


def test_a_missing_scope_is_named_to_git(world, tmp_path):
    server, owner, workspace, slug = world
    token = api_token(server, owner, ["read:repository:bitbucket"])
    clone = tmp_path / "r"
    server.git("clone", "-q", server.clone_url(workspace, slug, User(API_TOKEN_USERNAME, token)),
               str(clone))
    before = server.branches(owner, workspace, slug)
    result = push(server, clone, "refused.txt", check=False)
    assert result.returncode != 0
    assert ("Your credentials lack one or more required privilege scopes: "
            "write:repository:bitbucket") in result.stderr
    assert server.branches(owner, workspace, slug) == before
    # Write alone does not read: none implies another.
    writer = api_token(server, owner, ["write:repository:bitbucket"])
    result = server.git("clone", "-q",
                        server.clone_url(workspace, slug, User(API_TOKEN_USERNAME, writer)),
                        str(tmp_path / "w"), check=False)
    assert result.returncode != 0 and "read:repository:bitbucket" in result.stderr


def test_outside_the_allow_list_git_is_told_why(world, tmp_path):
    server, owner, workspace, slug = world
    token = api_token(server, owner, ["read:repository:bitbucket"],
                      allowed_ips=["192.0.2.0/24"])
    result = server.git("clone", "-q",
                        server.clone_url(workspace, slug, User(API_TOKEN_USERNAME, token)),
                        str(tmp_path / "x"), check=False)
    assert result.returncode != 0
    assert "IP address allow-list" in result.stderr and "127.0.0.1" in result.stderr
