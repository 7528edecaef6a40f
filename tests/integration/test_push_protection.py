"""Push protection in process: every credential kind is recognised as live and revoked, the
refusal names files and kinds, the site and repository settings, and the setting over REST
on both surfaces."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gitward.credentials import codec, narrowing
from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.gitstore.hook_client import call
from gitward.gitstore.hooks import RefUpdate
from gitward.gitstore.secret_scan import Candidate, ScanResult
from gitward.gitstore.store import git_env
from gitward.runtime import Runtime
from gitward.services import pushes
from gitward.storage.models import AuditEvent
from gitward.web.hooks import callbacks
from gitward.web.hooks import server as hook_server
from gitward.web.hooks.callbacks import PushGrant
from gitward.web.pipeline import Pipeline

from .api_checks import cloud_error, server_error
from .conftest import Account, World, basic, bearer
from .oauth_helpers import TOKEN, create_consumer, oauth_client
from .web_helpers import sign_in

CLOUD = "/2.0/repositories/acme/widget/push-protection"
SERVER = "/rest/api/1.0/projects/PRJ/repos/widget/settings/push-protection"
UPDATES = [RefUpdate("0" * 40, "1" * 40, "refs/heads/main")]


@pytest.fixture
def alice(world: World) -> Account:
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


def _repository_id(runtime: Runtime) -> int:
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("acme")
        assert workspace is not None
        repo = store.repos.repository_by_slug(workspace.id, "widget")
        assert repo is not None
        return repo.id


def _secrets_of_every_kind(client: Any, alice: Account) -> dict[str, tuple[str, str]]:
    """A live secret of each kind the registry knows: prefix -> (secret, owner target)."""
    pat = client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth,
                     json={"name": "p", "permissions": ["REPO_READ"]}).json()["token"]
    app = client.post("/2.0/user/app-passwords", headers=alice.auth,
                      json={"label": "a", "scopes": ["repository"]}).json()["password"]
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    api = client.post("/2.0/user/api-tokens", headers=alice.auth,
                      json={"name": "i", "scopes": ["read:repository:bitbucket"],
                            "expires_on": expires})
    assert api.status_code == 201, api.text
    parent = client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth,
                        json={"name": "n", "permissions": ["REPO_READ"]}).json()["token"]
    narrowed = narrowing.narrow(parent, narrowing.caveat_of(read_only=True))
    found = {"gwpat_": (pat, "user:alice"), "gwapp_": (app, "user:alice"),
             "gwapi_": (api.json()["token"], "user:alice"), "gwnar_": (narrowed, "user:alice")}
    for kind, path, owner in (
        ("gwrep_", "/2.0/repositories/acme/widget/access-tokens", "repository:acme/widget"),
        ("gwprj_", "/2.0/workspaces/acme/projects/PRJ/access-tokens", "project:acme/PRJ"),
        ("gwwsp_", "/2.0/workspaces/acme/access-tokens", "workspace:acme"),
    ):
        r = client.post(path, headers=alice.auth, json={"name": kind, "scopes": ["repository"]})
        assert r.status_code == 201, r.text
        found[kind] = (r.json()["token"], owner)
    consumer = create_consumer(client, alice)
    token = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    found["gwoat_"] = (token["access_token"], "workspace:acme")
    assert sign_in(client, alice).status_code == 303
    found["gwses_"] = (client.cookies["gitward_session"], "user:alice")
    client.cookies.clear()
    return found


def _authenticates(client: Any, prefix: str, secret: str) -> bool:
    if prefix == "gwses_":
        client.cookies.set("gitward_session", secret)
        try:
            r = client.get("/account/sessions", follow_redirects=False)
        finally:
            client.cookies.clear()
        return r.status_code == 200
    headers = basic("alice", secret) if prefix in ("gwapp_", "gwapi_") else bearer(secret)
    r = client.get("/2.0/repositories/acme/widget", headers=headers)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _scan(*found: tuple[str, str]) -> ScanResult:
    return ScanResult(
        candidates=[
            Candidate(s, codec.prefix_of(s) or narrowing.PREFIX, where) for s, where in found
        ]
    )


def _judge(runtime: Runtime, alice: Account, refuse: bool, scanned: ScanResult) -> Any:
    ctx = AuthContext(UserPrincipal(alice.id, alice.username), CredentialKind.PASSWORD)
    grant = PushGrant(None, "192.0.2.9", _repository_id(runtime), ctx)
    plan = pushes.ScanPlan("unused.git", refuse=refuse)
    return callbacks.judge_secrets(runtime, grant, ctx, plan, UPDATES, scanned)


def _events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.unit_of_work() as store:
        return [e for e in store.audit.events() if e.action == action]


def test_every_kind_is_recognised_live_and_revoked_at_once(client, runtime, world, alice):
    # A kind that cannot say whether one of its secrets is live would pass push protection.
    assert runtime.credentials.leak_prefixes() == runtime.credentials.prefixes
    secrets = _secrets_of_every_kind(client, alice)
    assert set(secrets) == runtime.credentials.prefixes
    for prefix, (secret, _) in secrets.items():
        assert _authenticates(client, prefix, secret), prefix

    verdict = _judge(runtime, alice, False, _scan(
        *((secret, f"leak/{prefix}.txt") for prefix, (secret, _) in secrets.items())
    ))

    assert verdict.allowed
    assert "revoked" in verdict.message
    for prefix, (secret, _) in secrets.items():
        assert f"leak/{prefix}.txt" in verdict.message
        assert secret not in verdict.message
        assert not _authenticates(client, prefix, secret), prefix
        with runtime.unit_of_work() as store:
            assert runtime.credentials.leaked(store, secret) is None
    events = {e.details["path"]: e for e in _events(runtime, "credential.leak.revoke")}
    assert set(events) == {f"leak/{prefix}.txt" for prefix in secrets}
    for prefix, (secret, owner) in secrets.items():
        event = events[f"leak/{prefix}.txt"]
        assert event.target == owner, prefix
        assert event.actor == "user:alice"
        assert event.details["repository"] == "repository:acme/widget"
        assert secret not in str(event.details)

    # The owner is told on their dashboard: their own credentials' revocations, nobody else's.
    assert sign_in(client, alice).status_code == 303
    page = client.get("/").text
    client.cookies.clear()
    assert 'id="leak-notices"' in page
    for prefix, (secret, owner) in secrets.items():
        assert (f"leak/{prefix}.txt" in page) == (owner == "user:alice"), prefix
        assert secret not in page
    bob = world.user("bob")
    assert sign_in(client, bob).status_code == 303
    assert 'id="leak-notices"' not in client.get("/").text
    client.cookies.clear()


def test_protection_refuses_naming_file_and_kind_and_revokes_nothing(client, runtime, alice):
    pat = client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth,
                     json={"name": "p", "permissions": ["REPO_READ"]}).json()["token"]
    typo = pat[:-1] + ("A" if pat[-1] != "A" else "B")  # checksum fails: never looked up
    unknown = codec.generate("gwrep_")  # well formed, but no such token
    verdict = _judge(runtime, alice, True, _scan(
        (pat, "src/settings.py"), (unknown, "other.txt"), (typo, "typo.txt")
    ))
    assert not verdict.allowed
    assert "src/settings.py: personal access token" in verdict.message
    assert "other.txt" not in verdict.message and "typo.txt" not in verdict.message
    assert pat not in verdict.message
    assert _authenticates(client, "gwpat_", pat)
    [refused] = _events(runtime, "repository.push.refused")
    assert "src/settings.py" in refused.details["reason"] and pat not in str(refused.details)
    assert _events(runtime, "credential.leak.revoke") == []
    # Nothing live: the push goes on, with nothing to say.
    verdict = _judge(runtime, alice, True, _scan((unknown, "other.txt")))
    assert verdict.allowed and verdict.message == ""
    # Too many candidates to check: refused under protection only.
    too_many = ScanResult(too_many=True)
    refused = _judge(runtime, alice, True, too_many)
    assert not refused.allowed and "cannot check them all" in refused.message
    assert _judge(runtime, alice, False, too_many).allowed


def test_an_expired_token_is_not_live(client, runtime, alice):
    r = client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth,
                   json={"name": "p", "permissions": ["REPO_READ"], "expiryDays": 1})
    secret = r.json()["token"]
    with runtime.unit_of_work() as store:
        assert runtime.credentials.leaked(store, secret) is not None
        later = runtime.personal_tokens.clock
        runtime.personal_tokens.clock = lambda: later() + timedelta(days=2)
        try:
            assert runtime.credentials.leaked(store, secret) is None
        finally:
            runtime.personal_tokens.clock = later


def test_what_is_scanned_follows_the_site_and_the_repository(runtime, alice, monkeypatch):
    repo_id = _repository_id(runtime)
    with runtime.unit_of_work() as store:
        repo = store.repos.repository_by_id(repo_id)
        assert repo is not None
        assert pushes.scan_plan(repo, True) == pushes.ScanPlan(repo.storage_name, refuse=True)
        assert pushes.scan_plan(repo, False) is None  # private, protection off: nothing
        repo.is_private = False
        assert pushes.scan_plan(repo, False) == pushes.ScanPlan(repo.storage_name, refuse=False)
        repo.push_protection = True  # the repository wins over the site, both ways
        assert pushes.scan_plan(repo, False) == pushes.ScanPlan(repo.storage_name, refuse=True)
        repo.push_protection = False
        assert pushes.scan_plan(repo, True) == pushes.ScanPlan(repo.storage_name, refuse=False)
        repo.is_private = True
        assert pushes.scan_plan(repo, True) is None
        store.open().rollback()
    # pre-receive hands the hook server what to scan, from the repository and the site.
    ctx = AuthContext(UserPrincipal(alice.id, alice.username), CredentialKind.PASSWORD)
    grant = PushGrant(basic("alice", alice.password)["Authorization"], "192.0.2.9",
                      _repository_id(runtime), ctx)
    pipeline = Pipeline(runtime)
    try:
        on = callbacks.pre_receive(pipeline, grant, UPDATES)
        assert on.allowed and on.scan is not None and on.scan.refuse
        monkeypatch.setattr(runtime, "settings", replace(runtime.settings, push_protection=False))
        off = callbacks.pre_receive(pipeline, grant, UPDATES)
        assert off.allowed and off.scan is None  # a private repository: nothing to scan
    finally:
        pipeline.close()


def test_the_setting_over_rest(client, runtime, alice):
    for path in (CLOUD, SERVER):
        _setting_round_trip(client, alice, path)
    events = _events(runtime, "repository.push-protection.update")
    assert [e.target for e in events] == ["repository:acme/widget"] * 4
    assert [e.details["enabled"] for e in events] == [False, None] * 2


def _setting_round_trip(client: Any, alice: Account, path: str) -> None:
    assert client.get(path, headers=alice.auth).json() == {"enabled": None, "effective": True}
    r = client.put(path, json={"enabled": False}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"enabled": False, "effective": False}
    assert client.get(path, headers=alice.auth).json() == {"enabled": False, "effective": False}
    r = client.put(path, json={"enabled": None}, headers=alice.auth)
    assert r.json() == {"enabled": None, "effective": True}


def test_only_the_repositorys_admins_change_it(client, world, alice):
    writer = world.user("writer")
    reader = world.user("reader")
    stranger = world.user("stranger")
    world.grant_repo(alice, "acme", "widget", "writer", "write")
    world.grant_repo(alice, "acme", "widget", "reader", "read")
    pat = client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth,
                     json={"name": "w", "permissions": ["REPO_WRITE"]}).json()["token"]
    for path, check in ((CLOUD, cloud_error), (SERVER, server_error)):
        for account in (writer, reader):
            check(client.put(path, json={"enabled": False}, headers=account.auth), 403)
            check(client.get(path, headers=account.auth), 403)
        check(client.put(path, json={"enabled": False}, headers=stranger.auth), 404)
        check(client.put(path, json={"enabled": False}), 401)
        check(client.put(path, json={"enabled": True}, headers=bearer(pat)), 403)
    world.grant_repo(alice, "acme", "widget", "writer", "admin")
    for path in (CLOUD, SERVER):
        assert client.put(path, json={"enabled": False}, headers=writer.auth).status_code == 200


def test_a_bad_setting_is_a_400_in_the_surfaces_shape(client, alice):
    for path, check in ((CLOUD, cloud_error), (SERVER, server_error)):
        for body in ({}, {"enabled": "no"}, {"enabled": 0}, [], "x"):
            r = client.put(path, json=body, headers=alice.auth)
            assert r.status_code in (400, 422), (body, r.text)
            check(r, r.status_code)
        assert client.get(path, headers=alice.auth).json()["enabled"] is None


def test_the_hook_server_checks_the_quarantine_it_is_told(runtime, alice, tmp_path):
    """A quarantine that is not one of the repository's, or not a string, refuses the push
    (protection fails closed), audited."""
    repo_id = _repository_id(runtime)
    with runtime.unit_of_work() as store:
        repo = store.repos.repository_by_id(repo_id)
        assert repo is not None
        bare = runtime.git.path_of(repo.storage_name)
    work = tmp_path / "work"
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(work)], check=True, env=git_env())
    (work / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "a.txt"], cwd=work, check=True, env=git_env())
    subprocess.run([*git, "commit", "-qm", "a"], cwd=work, check=True, env=git_env())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, check=True, env=git_env(),
                          capture_output=True, text=True).stdout.strip()
    elsewhere = tmp_path / "tmp_objdir-incoming-evil"
    shutil.copytree(work / ".git" / "objects", elsewhere)
    ctx = AuthContext(UserPrincipal(alice.id, alice.username), CredentialKind.PASSWORD)
    grant = PushGrant(basic("alice", alice.password)["Authorization"], "192.0.2.9", repo_id, ctx)

    async def scenario() -> list[dict[str, object]]:
        hooks = hook_server.HookServer(Pipeline(runtime))
        await hooks.start()
        try:
            answers = []
            for quarantine in (5, str(elsewhere), None):
                session = hooks.open_push(grant, 60.0)
                env = session.env()
                request = {"hook": "pre-receive", "push": env["GITWARD_HOOK_PUSH"],
                           "nonce": env["GITWARD_HOOK_NONCE"], "quarantine": quarantine,
                           "updates": [["0" * 40, head, "refs/heads/main"]]}
                answers.append(await asyncio.to_thread(call, env["GITWARD_HOOK_SOCKET"], request))
                hooks.end_push(session)
            return answers
        finally:
            await hooks.close()

    malformed, outside, absent = asyncio.run(scenario())
    assert malformed == {"ok": False, "message": "push refused: the hook's request is malformed"}
    for answer in (outside, absent):  # absent: the objects are not in the repository either
        assert answer == {"ok": False, "message": "push refused: Gitward could not read the "
                                                  "pushed objects (push protection)"}
    assert not (bare / "refs" / "heads" / "main").exists()
    refused = _events(runtime, "repository.push.refused")
    assert [e.details["reason"] for e in refused] == [
        "Gitward could not read the pushed objects (push protection)"
    ] * 2
