"""What the pull-request tests share: a repository with a main branch and two topic branches
written with `git fast-import`, tokens, and the events a change emits."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from gitward.gitstore.store import git_env
from gitward.services import events as events_module
from tests.integration.conftest import bearer

CLOUD = "/2.0/repositories/acme/widget/pullrequests"
SERVER = "/rest/api/1.0/projects/PRJ/repos/widget/pull-requests"


def _blob(data: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(data), data)


def history() -> bytes:
    """main: a.txt; feature (from main): a.txt changed, b.txt added; other: c.txt added;
    clash: a.txt changed otherwise than feature changes it."""
    head = b"author Ada <ada@example.com> %d +0000\ncommitter Ada <ada@example.com> %d +0000\n"
    return (
        b"commit refs/heads/main\nmark :1\n" + head % (1700000000, 1700000000)
        + _blob(b"one\n") + b"M 100644 inline a.txt\n" + _blob(b"a\n") + b"\n"
        + b"commit refs/heads/feature\nmark :2\n" + head % (1700000100, 1700000100)
        + _blob(b"two\n") + b"from :1\nM 100644 inline a.txt\n" + _blob(b"a\nb\n")
        + b"M 100644 inline b.txt\n" + _blob(b"new\n") + b"\n"
        + b"commit refs/heads/other\nmark :3\n" + head % (1700000200, 1700000200)
        + _blob(b"three\n") + b"from :1\nM 100644 inline c.txt\n" + _blob(b"c\n") + b"\n"
        + b"commit refs/heads/clash\nmark :4\n" + head % (1700000300, 1700000300)
        + _blob(b"four\n") + b"from :1\nM 100644 inline a.txt\n" + _blob(b"a\nz\n") + b"\n"
    )


def git(world: Any, slug: str, *args: str, stdin: bytes | None = None) -> str:
    with world.runtime.unit_of_work() as store:
        view = store.repos.repository_view("acme", slug)
        assert view is not None
        path = world.runtime.git.path_of(view.storage_name)
    done = subprocess.run(["git", "--git-dir", str(path), *args], input=stdin, check=True,
                          capture_output=True, env=git_env())
    return done.stdout.decode().strip()


def fill(world: Any, slug: str) -> dict[str, str]:
    git(world, slug, "fast-import", "--quiet", stdin=history())
    return {b: git(world, slug, "rev-parse", f"refs/heads/{b}")
            for b in ("main", "feature", "other", "clash")}


def pat(client: Any, account: Any, permissions: list[str]) -> dict[str, str]:
    r = client.put(f"/rest/access-tokens/1.0/users/{account.username}",
                   json={"name": "ci", "permissions": permissions}, headers=account.auth)
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


def app_password(client: Any, account: Any, scopes: list[str]) -> dict[str, str]:
    r = client.post("/2.0/user/app-passwords", json={"label": "ci", "scopes": scopes},
                    headers=account.auth)
    assert r.status_code in (200, 201), r.text
    from tests.integration.conftest import basic

    return basic(account.username, r.json()["password"])


def repo_token(client: Any, admin: Any, repo: str, scopes: list[str]) -> dict[str, str]:
    r = client.post(f"/2.0/repositories/acme/{repo}/access-tokens",
                    json={"name": "ci", "scopes": scopes}, headers=admin.auth)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[events_module.Event]:
    """Every event emitted, in order (delivery is the webhooks' business)."""
    found: list[events_module.Event] = []

    def emit(store: Any, repository: Any, event: events_module.Event) -> None:
        # Stored as JSON by the outbox: both bodies must be plain JSON, each keyed as its
        # surface names the event.
        json.dumps(event.cloud_body)
        json.dumps(event.server_body)
        assert event.server_body["eventKey"] == event.server_key
        assert repository.id == store.repos.repository_by_id(repository.id).id
        found.append(event)

    monkeypatch.setattr(events_module, "emit", emit)
    return found


@pytest.fixture
def setup(world: Any) -> tuple[Any, Any, Any, dict[str, str]]:
    """alice owns acme (PRJ/widget, PRJ/other-repo); bob may write widget; carol reads it."""
    alice = world.user("alice")
    bob = world.user("bob")
    carol = world.user("carol")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "elsewhere", "PRJ")
    heads = fill(world, "widget")
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    world.grant_repo(alice, "acme", "widget", "carol", "read")
    return alice, bob, carol, heads
