"""Ref-scoped tokens on every token API: `ref_patterns` / `fast_forward_only` (Server:
`refPatterns` / `fastForwardOnly`) are validated with a 400 naming the problem, shown in
the token's JSON wherever it is shown, changed where tokens can be changed, and obeyed by
branch and tag creation and deletion over REST (both APIs), audited when refused."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gitward.credentials.personal import PatPermissions
from gitward.domain.identity import AuthContext, Bound, CredentialKind, UserPrincipal
from gitward.domain.permissions import Level
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.store import git_env
from gitward.web.hooks import callbacks
from gitward.web.hooks.callbacks import PushGrant
from gitward.web.pipeline import Pipeline
from tests.integration.api_checks import cloud_error, server_error
from tests.integration.conftest import Account, bearer
from tests.integration.web_helpers import sign_in

R = "/2.0/repositories/acme/widget"
PAT = "/rest/access-tokens/1.0/users/alice"
SERVER_PROJECT = "/rest/access-tokens/1.0/projects/PRJ"
SERVER_REPO = "/rest/access-tokens/1.0/projects/PRJ/repos/widget"
BRANCHES = "/rest/api/1.0/projects/PRJ/repos/widget/branches"
UTILS = "/rest/branch-utils/1.0/projects/PRJ/repos/widget/branches"
PATTERNS = ["refs/heads/bot/*", "refs/tags/v*"]


@pytest.fixture
def setup(world, runtime, tmp_path: Path) -> Account:
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    body = world.repository(alice, "acme", "widget", "PRJ")
    bare = runtime.git.path_of(body["uuid"].strip("{}") + ".git")
    work = tmp_path / "work"

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=work if work.exists() else None, check=True,
                       capture_output=True, env={**git_env(), "GIT_AUTHOR_NAME": "A",
                                                 "GIT_AUTHOR_EMAIL": "a@example.com",
                                                 "GIT_COMMITTER_NAME": "A",
                                                 "GIT_COMMITTER_EMAIL": "a@example.com"})

    git("init", "-q", "-b", "main", str(work))
    (work / "README").write_text("hi\n")
    git("add", ".")
    git("commit", "-qm", "first")
    git("push", "-q", str(bare), "main")
    return alice


# Each API: (client, alice, extra body fields) -> the created token's JSON; and the names of
# its two fields there.
Cloud = Callable[..., dict[str, Any]]


def _cloud(path: str) -> Cloud:
    def create(client, alice, status: int = 201, **extra: Any) -> dict[str, Any]:
        r = client.post(path, json={"name": "bot", "scopes": ["repository:write"], **extra},
                        headers=alice.auth)
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        return body
    return create


def _server(path: str, method: str = "PUT") -> Cloud:
    def create(client, alice, status: int = 200, **extra: Any) -> dict[str, Any]:
        r = client.request(method, path,
                           json={"name": "bot", "permissions": ["REPO_WRITE"], **extra},
                           headers=alice.auth)
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        return body
    return create


APIS: dict[str, tuple[Cloud, str, tuple[str, str]]] = {
    "repository": (_cloud(f"{R}/access-tokens"), f"{R}/access-tokens",
                   ("ref_patterns", "fast_forward_only")),
    "project": (_cloud("/2.0/workspaces/acme/projects/PRJ/access-tokens"),
                "/2.0/workspaces/acme/projects/PRJ/access-tokens",
                ("ref_patterns", "fast_forward_only")),
    "workspace": (_cloud("/2.0/workspaces/acme/access-tokens"),
                  "/2.0/workspaces/acme/access-tokens", ("ref_patterns", "fast_forward_only")),
    "personal": (_server(PAT), PAT, ("refPatterns", "fastForwardOnly")),
    "server-project": (_server(SERVER_PROJECT), SERVER_PROJECT,
                       ("refPatterns", "fastForwardOnly")),
    "server-repository": (_server(SERVER_REPO), SERVER_REPO, ("refPatterns", "fastForwardOnly")),
}


def _error(name: str) -> Callable[..., dict[str, Any]]:
    return server_error if name.startswith(("personal", "server")) else cloud_error


@pytest.mark.parametrize("api", list(APIS))
def test_the_fields_are_shown_wherever_the_token_is(client, setup, api):
    create, path, (patterns, forward) = APIS[api]
    plain = create(client, setup)
    assert plain[patterns] is None and plain[forward] is False
    made = create(client, setup, **{patterns: [*PATTERNS, "refs/tags/v*"], forward: True})
    assert made[patterns] == PATTERNS and made[forward] is True  # repeats dropped
    listed = client.get(path, headers=setup.auth).json()["values"]
    shown = {str(t["id"]): (t[patterns], t[forward]) for t in listed}
    assert shown == {str(plain["id"]): (None, False), str(made["id"]): (PATTERNS, True)}
    one = client.get(f"{path}/{made['id']}", headers=setup.auth)
    assert one.status_code == 200, one.text
    assert (one.json()[patterns], one.json()[forward]) == (PATTERNS, True)
    assert "token" not in one.json()


BAD = [
    ("refs/heads/*", "must be a list of ref patterns"),
    ([], "at least one ref pattern"),
    (["heads/main"], "must start with refs/"),
    (["refs/heads/a b"], "character git does not allow"),
    (["refs/heads/../x"], "'..'"),
    (["refs/heads/" + "x" * 300], "longer than 255"),
    ([f"refs/heads/{n}" for n in range(51)], "at most 50"),
    ([None], "not a ref pattern"),
]


@pytest.mark.parametrize("api", list(APIS))
def test_bad_patterns_are_400_naming_the_field(client, setup, api):
    _create, path, (patterns, forward) = APIS[api]
    server = api.startswith(("personal", "server"))
    base = {"name": "bot", "scopes": ["repository:write"], "permissions": ["REPO_WRITE"]}
    for value, message in [*BAD, ("yes", f"{forward} must be true or false")]:
        field = forward if value == "yes" else patterns
        r = client.request("PUT" if server else "POST", path, json={**base, field: value},
                           headers=setup.auth)
        body = _error(api)(r, 400, message)
        assert field in str(body)
    assert client.get(path, headers=setup.auth).json()["values"] == []  # nothing was made


@pytest.mark.parametrize("api", ["personal", "server-project", "server-repository"])
def test_server_tokens_change_their_restriction(client, setup, api):
    create, path, _fields = APIS[api]
    made = create(client, setup, refPatterns=["refs/heads/bot/*"])
    token = bearer(made["token"])
    url = f"{path}/{made['id']}"

    def branch(name: str) -> int:
        r = client.post(BRANCHES, json={"name": name, "startPoint": "main"}, headers=token)
        return int(r.status_code)

    assert branch("bot/one") == 200
    assert branch("other") == 403
    r = client.post(url, json={"refPatterns": ["refs/heads/other"]}, headers=setup.auth)
    assert r.status_code == 200 and r.json()["refPatterns"] == ["refs/heads/other"], r.text
    assert branch("bot/two") == 403 and branch("other") == 200  # from the next request
    server_error(client.post(url, json={"refPatterns": ["nope"]}, headers=setup.auth), 400,
                 "refPatterns")
    r = client.post(url, json={"fastForwardOnly": True}, headers=setup.auth)
    assert r.json()["refPatterns"] == ["refs/heads/other"] and r.json()["fastForwardOnly"]
    delete = client.request("DELETE", UTILS, json={"name": "other"}, headers=token)
    server_error(delete, 403, "not delete them")
    r = client.post(url, json={"refPatterns": None, "fastForwardOnly": False},
                    headers=setup.auth)
    assert r.json()["refPatterns"] is None and r.json()["fastForwardOnly"] is False
    assert branch("anything") == 200
    assert client.request("DELETE", UTILS, json={"name": "other"},
                          headers=token).status_code == 204


def _refusals(world) -> list[dict[str, Any]]:
    with world.runtime.unit_of_work() as store:
        return [dict(e.details) for e in store.audit.events()
                if e.action == "repository.push.refused"]


def test_cloud_branches_and_tags_obey_the_patterns(client, setup, world):
    made = APIS["repository"][0](client, setup, ref_patterns=PATTERNS)
    token = bearer(made["token"])
    create = lambda what, name: client.post(  # noqa: E731
        f"{R}/refs/{what}", json={"name": name, "target": {"hash": "main"}}, headers=token)
    assert create("branches", "bot/x").status_code == 201
    assert create("tags", "v1.0").status_code == 201
    cloud_error(create("branches", "feature"), 403,
                "refs/heads/feature: this token may only update refs matching "
                "refs/heads/bot/*, refs/tags/v*")
    cloud_error(create("tags", "release-1"), 403, "refs/tags/release-1")
    refused = _refusals(world)
    assert [r["refs"][0]["ref"] for r in refused] == ["refs/heads/feature", "refs/tags/release-1"]
    assert "refs/heads/feature" not in str(client.get(f"{R}/refs/branches",
                                                      headers=setup.auth).json())
    # Deleting follows the same patterns.
    assert client.post(f"{R}/refs/branches", json={"name": "feature", "target": {"hash": "main"}},
                       headers=setup.auth).status_code == 201
    cloud_error(client.delete(f"{R}/refs/branches/feature", headers=token), 403,
                "may only update refs matching")
    assert client.delete(f"{R}/refs/branches/bot/x", headers=token).status_code == 204
    assert client.get(f"{R}/refs/branches/feature", headers=setup.auth).status_code == 200


def test_fast_forward_only_may_create_but_not_delete_over_rest(client, setup):
    made = APIS["workspace"][0](client, setup, fast_forward_only=True)
    token = bearer(made["token"])
    r = client.post(f"{R}/refs/branches", json={"name": "made", "target": {"hash": "main"}},
                    headers=token)
    assert r.status_code == 201, r.text
    cloud_error(client.delete(f"{R}/refs/branches/made", headers=token), 403,
                "only fast-forward refs, not delete them")
    cloud_error(client.delete(f"{R}/refs/tags/none", headers=token), 404)


def test_a_pats_owner_still_bounds_it(client, setup, world):
    world.user("bob")
    world.grant_repo(setup, "acme", "widget", "bob", "read")
    bob = Account("bob", setup.password, 0)
    r = client.put("/rest/access-tokens/1.0/users/bob",
                   json={"name": "bot", "permissions": ["REPO_WRITE"],
                         "refPatterns": ["refs/heads/*"]},
                   headers=bob.auth)
    assert r.status_code == 200, r.text
    r = client.post(BRANCHES, json={"name": "bobs", "startPoint": "main"},
                    headers=bearer(r.json()["token"]))
    server_error(r, 403, "write permission")


def test_the_token_pages_show_the_restriction(client, setup):
    APIS["personal"][0](client, setup, refPatterns=["refs/heads/bot/*"], fastForwardOnly=True)
    APIS["repository"][0](client, setup, ref_patterns=["refs/tags/v*"])
    sign_in(client, setup)
    page = client.get("/account/personal-access-tokens").text
    assert "writes only <code>refs/heads/bot/*</code> (fast-forward only)" in page
    page = client.get("/acme/widget/settings/access-tokens").text
    assert "writes only <code>refs/tags/v*</code>" in page and "fast-forward only" not in page


def test_create_and_modify_are_audited_with_the_restriction(client, setup, world):
    made = APIS["personal"][0](client, setup, refPatterns=["refs/heads/bot/*"])
    client.post(f"{PAT}/{made['id']}", json={"fastForwardOnly": True}, headers=setup.auth)
    APIS["server-repository"][0](client, setup, fastForwardOnly=True)
    with world.runtime.unit_of_work() as store:
        events = {e.action: dict(e.details) for e in store.audit.events()
                  if e.action in ("pat.create", "pat.modify", "repository-token.create")}
    assert events["pat.create"]["ref_patterns"] == ["refs/heads/bot/*"]
    assert events["pat.create"]["fast_forward_only"] is False
    assert events["pat.modify"]["fast_forward_only"] is True
    assert "ref_patterns" not in events["pat.modify"]  # not sent: unchanged
    assert events["repository-token.create"]["ref_patterns"] is None
    assert events["repository-token.create"]["fast_forward_only"] is True


def test_pre_receive_fails_closed_when_fast_forward_only_came_mid_push(client, setup, runtime):
    """Which updates are fast-forwards is worked out before the push's decision for a token
    that was fast-forward only when the push began; one that became so meanwhile has its
    updates of existing refs refused, as not known to be fast-forwards."""
    made = APIS["personal"][0](client, setup)
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("acme")
        assert workspace is not None
        repo = store.repos.repository_by_slug(workspace.id, "widget")
        assert repo is not None
        repo_id, path = repo.id, runtime.git.path_of(repo.storage_name)
    main = subprocess.run(["git", "--git-dir", str(path), "rev-parse", "main"], check=True,
                          capture_output=True, text=True, env=git_env()).stdout.strip()
    r = client.post(f"{PAT}/{made['id']}", json={"fastForwardOnly": True}, headers=setup.auth)
    assert r.status_code == 200, r.text
    pipeline = Pipeline(runtime)
    at_start = PatPermissions(Level.WRITE).bound()

    def pre_receive(bound: Bound) -> callbacks.Verdict:
        ctx = AuthContext(UserPrincipal(setup.id, "alice"), CredentialKind.PERSONAL_ACCESS_TOKEN,
                          bound, credential_id=int(made["id"]))
        grant = PushGrant(bearer(made["token"])["Authorization"], "127.0.0.1", repo_id, ctx)
        return callbacks.pre_receive(pipeline, grant, [RefUpdate(main, main, "refs/heads/main")])

    late = pre_receive(at_start)
    assert not late.allowed and late.refs == {
        "refs/heads/main": "this token may only fast-forward refs, and this update could not "
                           "be checked"}
    assert pre_receive(replace(at_start, fast_forward_only=True)).allowed
