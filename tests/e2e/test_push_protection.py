"""Push protection with the real git client against one `gitward serve`: a live secret in a
pushed file refuses the push naming the file and the kind, a revoked one passes, the
repository setting turns it off, and a public repository with protection off revokes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from .conftest import GitwardServer, User

pytestmark = pytest.mark.e2e


def _pat(server: GitwardServer, user: User, name: str = "leaky") -> dict[str, Any]:
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{user.username}", auth=user,
                   json={"name": name, "permissions": ["REPO_READ"]})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _token_works(server: GitwardServer, secret: str) -> bool:
    r = server.api("GET", "/2.0/user", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _commit_secret(server: GitwardServer, work: Path, path: str, secret: str) -> None:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"# settings\nAPI_TOKEN = \"{secret}\"\n")
    server.git("add", path, cwd=work)
    server.git("commit", "-qm", f"add {path}", cwd=work)


def _events(server: GitwardServer, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    engine = create_engine(server.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as db:
            rows = db.execute(
                text("SELECT actor, target, details FROM audit_events WHERE action = :action"
                     " ORDER BY id"),
                {"action": action},
            ).all()
    finally:
        engine.dispose()
    return [(a, t, d if isinstance(d, dict) else json.loads(d)) for a, t, d in rows]


def _set_protection(server: GitwardServer, owner: User, ws: str, slug: str, on: bool) -> None:
    r = server.api("PUT", f"/2.0/repositories/{ws}/{slug}/push-protection", auth=owner,
                   json={"enabled": on})
    assert r.status_code == 200, r.text
    assert r.json() == {"enabled": on, "effective": on}


def test_a_live_token_in_a_pushed_file_refuses_the_push_naming_file_and_kind(gitward_server):
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    work = server.seed(owner, ws, slug)
    before = server.branches(owner, ws, slug)
    token = _pat(server, owner)
    _commit_secret(server, work, "deploy/settings.py", token["token"])

    pushed = server.git("push", "origin", "HEAD:main", cwd=work, check=False)

    assert pushed.returncode != 0
    assert "deploy/settings.py: personal access token" in pushed.stderr
    assert "push protection" in pushed.stderr
    assert "pre-receive hook declined" in pushed.stderr
    assert token["token"] not in pushed.stderr + pushed.stdout
    assert server.branches(owner, ws, slug) == before
    assert _token_works(server, token["token"])  # refused, not revoked: it was not published
    refused = [d for _, t, d in _events(server, "repository.push.refused")
               if t == f"repository:{ws}/{slug}"]
    assert len(refused) == 1 and "deploy/settings.py" in refused[0]["reason"]
    assert token["token"] not in json.dumps(refused) + server.log_tail(400)

    # Revoked, the same secret is no credential any more: the same push goes through.
    r = server.api("DELETE", f"/rest/access-tokens/1.0/users/{owner.username}/{token['id']}",
                   auth=owner)
    assert r.status_code == 204, r.text
    server.git("push", "-q", "origin", "HEAD:main", cwd=work)
    assert server.branches(owner, ws, slug)["main"] != before["main"]


def test_protection_off_for_the_repository_lets_a_live_token_through(gitward_server):
    server = gitward_server
    owner = server.create_user()
    ws, slug = server.create_repository(owner)
    work = server.seed(owner, ws, slug)
    token = _pat(server, owner)
    _set_protection(server, owner, ws, slug, False)
    _commit_secret(server, work, "ci/env", token["token"])

    pushed = server.git("push", "origin", "HEAD:main", cwd=work, check=False)

    assert pushed.returncode == 0, pushed.stderr
    assert "ci/env" not in pushed.stderr
    assert _token_works(server, token["token"])  # a private repository: nothing revoked

    # On again, a second live token in the next push is refused.
    _set_protection(server, owner, ws, slug, True)
    second = _pat(server, owner, "second")
    _commit_secret(server, work, "ci/env2", second["token"])
    pushed = server.git("push", "origin", "HEAD:main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert "ci/env2: personal access token" in pushed.stderr


def test_a_public_repository_with_protection_off_revokes_the_token_at_once(gitward_server):
    server = gitward_server
    owner = server.create_user()
    pusher = server.create_user()
    ws, slug = server.create_repository(owner, private=False)
    server.grant(owner, ws, slug, pusher, "write")
    work = server.seed(owner, ws, slug)
    _set_protection(server, owner, ws, slug, False)
    # The owner's token, pushed by someone else: revoked, and its owner is the target.
    token = _pat(server, owner)
    server.git("remote", "set-url", "origin", server.clone_url(ws, slug, pusher), cwd=work)
    _commit_secret(server, work, "notes/leak.txt", token["token"])
    assert _token_works(server, token["token"])

    pushed = server.git("push", "origin", "HEAD:main", cwd=work, check=False)

    assert pushed.returncode == 0, pushed.stderr
    assert "notes/leak.txt: personal access token" in pushed.stderr
    assert "revoked" in pushed.stderr
    assert token["token"] not in pushed.stderr
    assert not _token_works(server, token["token"])
    r = server.api("GET", f"/rest/access-tokens/1.0/users/{owner.username}/{token['id']}",
                   auth=owner)
    assert r.status_code == 404, r.text
    revoked = [(a, d) for a, t, d in _events(server, "credential.leak.revoke")
               if t == f"user:{owner.username}"]
    assert len(revoked) == 1
    actor, details = revoked[0]
    assert actor == f"user:{pusher.username}"
    assert details["credential_id"] == int(token["id"])
    assert details["kind"] == "personal access token"
    assert details["repository"] == f"repository:{ws}/{slug}"
    assert details["path"] == "notes/leak.txt"
    assert token["token"] not in json.dumps(details)
