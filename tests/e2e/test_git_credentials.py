"""Every credential kind with the real git client against a real server: personal access
tokens, repository/project/workspace access tokens, app passwords and two-step verification."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from tests.e2e.conftest import GitwardServer, User, project_key

SCOPE_MESSAGE = "Your credentials lack one or more required privilege scopes: repository:write"


def bearer_config(token: str) -> list[str]:
    return ["-c", f"http.extraHeader=Authorization: Bearer {token}"]


def plain_url(server: GitwardServer, workspace: str, slug: str) -> str:
    return server.clone_url(workspace, slug)


def commit_and_push(server: GitwardServer, repo: Path, *config: str, name: str = "f.txt",
                    check: bool = True):
    (repo / name).write_text(name)
    server.git("add", name, cwd=repo)
    server.git("commit", "-qm", f"add {name}", cwd=repo)
    return server.git(*config, "push", "origin", "HEAD:main", cwd=repo, check=check)


@pytest.fixture(scope="module")
def world(gitward_server: GitwardServer):
    """An owner with one repository holding a commit, and a collaborator with write."""
    server = gitward_server
    owner = server.create_user()
    dev = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.grant(owner, workspace, slug, dev, "write")
    seed = server.home / f"seed-{slug}"
    server.git("clone", "-q", server.clone_url(workspace, slug, owner), str(seed))
    commit_and_push(server, seed, name="README")
    return server, owner, dev, workspace, slug


def pat(server: GitwardServer, user: User, permissions: list[str], **extra) -> dict:
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{user.username}", auth=user,
                   json={"name": "e2e", "permissions": permissions, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_pat_as_password_and_as_bearer(world, tmp_path):
    server, _owner, dev, workspace, slug = world
    token = pat(server, dev, ["REPO_WRITE"])["token"]
    as_password = User(dev.username, token)
    clone = tmp_path / "a"
    server.git("clone", "-q", server.clone_url(workspace, slug, as_password), str(clone))
    assert (clone / "README").exists()
    commit_and_push(server, clone, name="by-pat-password")
    clone_b = tmp_path / "b"
    server.git(*bearer_config(token), "clone", "-q", plain_url(server, workspace, slug),
               str(clone_b))
    assert (clone_b / "by-pat-password").exists()
    commit_and_push(server, clone_b, *bearer_config(token), name="by-pat-bearer")
    assert "main" in server.branches(dev, workspace, slug)


def test_read_token_push_is_refused_with_reason(world, tmp_path):
    server, _owner, dev, workspace, slug = world
    token = pat(server, dev, ["REPO_READ"])["token"]
    clone = tmp_path / "c"
    server.git(*bearer_config(token), "clone", "-q", plain_url(server, workspace, slug), str(clone))
    before = server.branches(dev, workspace, slug)
    result = commit_and_push(server, clone, *bearer_config(token), name="nope", check=False)
    assert result.returncode != 0
    assert "This token lacks the permission REPO_WRITE" in result.stderr
    assert server.branches(dev, workspace, slug) == before


def test_downgrade_revoke_and_expiry_cut_access(world, tmp_path):
    server, owner, _dev, workspace, slug = world
    carol = server.create_user()
    server.grant(owner, workspace, slug, carol, "write")
    token = pat(server, carol, ["REPO_WRITE"])
    cfg = bearer_config(token["token"])
    clone = tmp_path / "d"
    server.git(*cfg, "clone", "-q", plain_url(server, workspace, slug), str(clone))
    commit_and_push(server, clone, *cfg, name="carol-1")
    # Downgrade the user: the token's REPO_WRITE no longer pushes.
    server.grant(owner, workspace, slug, carol, "read")
    result = commit_and_push(server, clone, *cfg, name="carol-2", check=False)
    assert result.returncode != 0 and "write permission" in result.stderr
    # Revoke: not even a fetch.
    r = server.api("DELETE", f"/rest/access-tokens/1.0/users/{carol.username}/{token['id']}",
                   auth=carol)
    assert r.status_code == 204
    # With the token in the URL git shows the server's reason; with a bearer header it can
    # only ask for a username, which proves the refusal just as well.
    result = server.git(*cfg, "fetch", cwd=clone, check=False)
    assert result.returncode != 0
    url = server.clone_url(workspace, slug, User(carol.username, token["token"]))
    result = server.git("ls-remote", url, check=False)
    assert result.returncode != 0 and "Invalid or revoked personal access token" in result.stderr


def _set_expiry(server: GitwardServer, token_id: str, moment: datetime) -> None:
    if server.database != "sqlite":
        pytest.skip("expiry is set in the SQLite file directly")
    with sqlite3.connect(server.data_dir / "gitward.db") as db:
        db.execute("UPDATE personal_access_tokens SET expires_on = ? WHERE id = ?",
                   (moment.strftime("%Y-%m-%d %H:%M:%S.%f"), int(token_id)))


def test_expiry_cuts_access_on_the_next_request(world, tmp_path):
    server, _owner, dev, workspace, slug = world
    token = pat(server, dev, ["REPO_READ"], expiryDays=1)
    # Bring the expiry close (before first use, so no process has seen the old date).
    soon = datetime.now(UTC) + timedelta(seconds=3)
    _set_expiry(server, token["id"], soon)
    url = server.clone_url(workspace, slug, User(dev.username, token["token"]))
    server.git("ls-remote", url)
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    result = server.git("ls-remote", url, check=False)
    assert result.returncode != 0 and "expired" in result.stderr


@pytest.mark.parametrize("kind", ["repository", "project", "workspace"])
def test_resource_tokens_clone_push_and_scope_refusal(world, tmp_path, kind):
    server, owner, _dev, workspace, slug = world
    paths = {
        "repository": f"/2.0/repositories/{workspace}/{slug}/access-tokens",
        "project": f"/2.0/workspaces/{workspace}/projects/{project_key(workspace)}/access-tokens",
        "workspace": f"/2.0/workspaces/{workspace}/access-tokens",
    }
    writer = server.api("POST", paths[kind], auth=owner,
                        json={"name": "ci", "scopes": ["repository:write"]}).json()["token"]
    reader = server.api("POST", paths[kind], auth=owner,
                        json={"name": "ro", "scopes": ["repository"]}).json()["token"]
    # x-token-auth as Basic, then a bearer header.
    clone = tmp_path / kind
    server.git("clone", "-q", server.clone_url(workspace, slug, User("x-token-auth", writer)),
               str(clone))
    commit_and_push(server, clone, name=f"{kind}-basic")
    commit_and_push(server, clone, *bearer_config(writer), name=f"{kind}-bearer")
    # A token with `repository` only: the push is refused and git shows the scope message.
    ro = tmp_path / f"{kind}-ro"
    server.git(*bearer_config(reader), "clone", "-q", plain_url(server, workspace, slug), str(ro))
    result = commit_and_push(server, ro, *bearer_config(reader), name="ro", check=False)
    assert result.returncode != 0
    assert SCOPE_MESSAGE in result.stderr


def test_resource_token_survives_creator_not_revocation_or_deletion(gitward_server, tmp_path):
    server = gitward_server
    owner = server.create_user()
    admin = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.grant(owner, workspace, slug, admin, "admin")
    path = f"/2.0/repositories/{workspace}/{slug}/access-tokens"
    kept = server.api("POST", path, auth=admin,
                      json={"name": "kept", "scopes": ["repository"]}).json()
    revoked = server.api("POST", path, auth=admin,
                         json={"name": "gone", "scopes": ["repository"]}).json()
    url = plain_url(server, workspace, slug)
    # The creator loses access, then is deleted: the token keeps working.
    r = server.api("DELETE",
                   f"/2.0/repositories/{workspace}/{slug}/permissions-config/users/{admin.username}",
                   auth=owner)
    assert r.status_code == 204
    r = server.api("DELETE", "/rest/api/1.0/admin/users", auth=server.admin,
                   params={"name": admin.username})
    assert r.status_code == 200
    server.git(*bearer_config(kept["token"]), "ls-remote", url)
    # Revocation cuts access on the next request.
    server.git(*bearer_config(revoked["token"]), "ls-remote", url)
    r = server.api("DELETE", f"{path}/{revoked['id']}", auth=owner)
    assert r.status_code == 204
    assert server.git(*bearer_config(revoked["token"]), "ls-remote", url,
                      check=False).returncode != 0
    # Deleting the repository ends its tokens.
    assert server.api("DELETE", f"/2.0/repositories/{workspace}/{slug}",
                      auth=owner).status_code == 204
    server.create_repository(owner, workspace=workspace, slug=slug)
    assert server.git(*bearer_config(kept["token"]), "ls-remote", url,
                      check=False).returncode != 0


def test_two_step_password_refused_app_passwords_work(gitward_server, tmp_path):
    server = gitward_server
    user = server.create_user()
    workspace, slug = server.create_repository(user)
    rw = server.api("POST", "/2.0/user/app-passwords", auth=user,
                    json={"label": "rw", "scopes": ["repository:write"]}).json()["password"]
    ro = server.api("POST", "/2.0/user/app-passwords", auth=user,
                    json={"label": "ro", "scopes": ["repository"]}).json()["password"]
    enrolment = server.api("POST", "/2.0/user/two-step-verification", auth=user).json()
    code = pyotp.TOTP(enrolment["secret"]).now()
    r = server.api("POST", "/2.0/user/two-step-verification/confirm", auth=user,
                   json={"code": code})
    assert r.status_code == 200, r.text
    # The account password alone: refused, and git shows why.
    result = server.git("clone", "-q", server.clone_url(workspace, slug, user),
                        str(tmp_path / "pw"), check=False)
    assert result.returncode != 0
    assert "Two-step verification is on" in result.stderr
    assert "app password" in result.stderr
    # An app password clones and pushes.
    clone = tmp_path / "app"
    server.git("clone", "-q", server.clone_url(workspace, slug, User(user.username, rw)),
               str(clone))
    commit_and_push(server, clone, name="via-app-password")
    # A read-only app password's push is refused with the scope message.
    ro_clone = tmp_path / "ro"
    server.git("clone", "-q", server.clone_url(workspace, slug, User(user.username, ro)),
               str(ro_clone))
    result = commit_and_push(server, ro_clone, name="ro", check=False)
    assert result.returncode != 0 and SCOPE_MESSAGE in result.stderr


def test_server_log_never_holds_a_secret(world):
    server, _owner, dev, workspace, slug = world
    token = pat(server, dev, ["REPO_READ"])["token"]
    server.git(*bearer_config(token), "ls-remote", plain_url(server, workspace, slug))
    server.api("GET", "/2.0/user", auth=(dev.username, token))
    log = server.log_path.read_text(errors="replace")
    assert token not in log
    # Users' passwords travel in clone URLs and in the admin API's query string: never logged.
    # (The first administrator's password is printed once at first start, by design.)
    assert dev.password not in log
