"""Webhooks on both APIs, and their durable delivery.

Runs on SQLite and PostgreSQL (the `settings` fixture), with a real HTTP receiver on loopback
(tests/integration/webhook_helpers.py), which the site allows here
(GITWARD_OUTBOUND_ALLOWED_NETWORKS=127.0.0.0/8) unless a test says otherwise.

Shapes: Bitbucket Cloud's `webhook_subscription` (REST reference, "Webhooks" group:
`uuid`, `url`, `description`, `subject_type`, `subject`, `active`, `created_at`, `events`,
`secret_set`, `links`) and its event payloads (`push.changes[]` with `old`, `new`, `created`,
`closed`, `forced`, `truncated`, `commits`); Bitbucket Server's webhook (`id`, `name`,
`createdDate`, `updatedDate`, `events`, `configuration`, `url`, `active`) and
`repo:refs_changed` (`changes[]` with `ref`, `refId`, `fromHash`, `toHash`, `type`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from gitward.config import Settings
from gitward.gitstore.store import git_env
from gitward.outbound import OutboundRules
from gitward.services.webhooks import sealer
from gitward.storage.models import utcnow
from gitward.worker.webhooks import DeliveryWorker
from tests.integration.api_checks import cloud_error, server_error
from tests.integration.webhook_helpers import Receiver

R = "/2.0/repositories/acme/widget"
P = "/rest/api/1.0/projects/PRJ/repos/widget"
CLOUD_KEYS = {"type", "uuid", "url", "description", "subject_type", "subject", "active",
              "created_at", "events", "secret_set", "links"}
SERVER_KEYS = {"id", "name", "createdDate", "updatedDate", "events", "configuration", "url",
               "active", "scopeType"}
SECRET = "s3cr3t-hook-key"


@pytest.fixture
def worker_on() -> bool:
    return True


@pytest.fixture
def allowed() -> tuple[str, ...]:
    return ("127.0.0.0/8",)


@pytest.fixture
def poll() -> float:
    return 0.05


@pytest.fixture
def backoff() -> float:
    return 0.05


@pytest.fixture
def settings(settings: Settings, worker_on: bool, allowed: tuple[str, ...],
             poll: float, backoff: float) -> Settings:
    return dataclasses.replace(
        settings, outbound_allowed_networks=allowed, webhook_poll_seconds=poll,
        webhook_backoff_seconds=backoff, webhook_backoff_max_seconds=max(backoff, 0.2),
        webhook_max_attempts=4, webhook_timeout_seconds=2.0, webhook_worker=worker_on,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def history() -> bytes:
    def blob(data: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(data), data)

    head = b"author Ada <ada@example.com> %d +0000\ncommitter Ada <ada@example.com> %d +0000\n"
    return (
        b"commit refs/heads/main\nmark :1\n" + head % (1700000000, 1700000000) + blob(b"one\n")
        + b"M 100644 inline a.txt\n" + blob(b"a\n") + b"\n"
        + b"commit refs/heads/main\nmark :2\n" + head % (1700000100, 1700000100)
        + blob(b"two\n") + b"from :1\nM 100644 inline a.txt\n" + blob(b"b\n") + b"\n"
    )


def fill(world: Any) -> list[str]:
    with world.runtime.unit_of_work() as store:
        view = store.repos.repository_view("acme", "widget")
        assert view is not None
        path = world.runtime.git.path_of(view.storage_name)
    env = git_env()
    subprocess.run(["git", "--git-dir", str(path), "fast-import", "--quiet"], input=history(),
                   check=True, capture_output=True, env=env)
    out = subprocess.run(["git", "--git-dir", str(path), "log", "--format=%H", "main"],
                         check=True, capture_output=True, env=env).stdout.decode().split()
    return out[::-1]


@pytest.fixture
def setup(world: Any) -> dict[str, Any]:
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    return {"alice": alice, "bob": bob, "commits": fill(world)}


def cloud_hook(client: Any, auth: dict[str, str], url: str, events: list[str] | None = None,
               base: str = R, **extra: Any) -> dict[str, Any]:
    r = client.post(f"{base}/hooks", json={
        "description": "ci", "url": url, "active": True, "events": events or ["repo:push"],
        **extra,
    }, headers=auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


def server_hook(client: Any, auth: dict[str, str], url: str, events: list[str] | None = None,
                base: str = P, **extra: Any) -> dict[str, Any]:
    r = client.post(f"{base}/webhooks", json={
        "name": "ci", "url": url, "events": events or ["repo:refs_changed"], **extra,
    }, headers=auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


def branch(client: Any, auth: dict[str, str], name: str, commit: str) -> None:
    r = client.post(f"{R}/refs/branches", json={"name": name, "target": {"hash": commit}},
                    headers=auth)
    assert r.status_code == 201, r.text


def deliveries(client: Any, auth: dict[str, str], hook: dict[str, Any]) -> list[Any]:
    r = client.get(f"{R}/hooks/{hook['uuid']}/deliveries", headers=auth)
    assert r.status_code == 200, r.text
    return list(r.json()["values"])


# -- managing hooks -----------------------------------------------------------------------


def test_cloud_hooks_crud_in_bitbucket_shape(client, setup, receiver):
    alice = setup["alice"].auth
    hook = cloud_hook(client, alice, receiver.url, ["repo:push", "repo:commit_status_created"],
                      secret=SECRET)
    assert set(hook) == CLOUD_KEYS
    assert hook["type"] == "webhook_subscription"
    assert hook["uuid"].startswith("{") and hook["uuid"].endswith("}")
    assert hook["subject_type"] == "repository"
    assert hook["subject"]["full_name"] == "acme/widget"
    assert hook["secret_set"] is True and SECRET not in str(hook)
    assert hook["events"] == ["repo:push", "repo:commit_status_created"]

    listing = client.get(f"{R}/hooks", headers=alice).json()
    assert [h["uuid"] for h in listing["values"]] == [hook["uuid"]]
    bare = hook["uuid"].strip("{}")
    assert client.get(f"{R}/hooks/{bare}", headers=alice).json()["uuid"] == hook["uuid"]

    r = client.put(f"{R}/hooks/{hook['uuid']}",
                   json={"description": "deploy", "active": False, "secret": None},
                   headers=alice)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["description"], changed["active"], changed["secret_set"]) == (
        "deploy", False, False)
    assert changed["url"] == receiver.url and changed["events"] == hook["events"]

    assert client.delete(f"{R}/hooks/{hook['uuid']}", headers=alice).status_code == 204
    cloud_error(client.get(f"{R}/hooks/{hook['uuid']}", headers=alice), 404)


def test_workspace_hooks_are_for_owners(client, setup, receiver):
    alice, bob = setup["alice"], setup["bob"]
    hook = cloud_hook(client, alice.auth, receiver.url, base="/2.0/workspaces/acme")
    assert hook["subject_type"] == "workspace" and hook["subject"]["slug"] == "acme"
    got = client.get(f"/2.0/workspaces/acme/hooks/{hook['uuid']}", headers=alice.auth)
    assert got.status_code == 200, got.text
    # A repository's listing does not show its workspace's hooks.
    assert client.get(f"{R}/hooks", headers=alice.auth).json()["values"] == []
    # Not a member: the workspace is not his to see; a member who is not an owner: 403.
    cloud_error(client.get("/2.0/workspaces/acme/hooks", headers=bob.auth), 404)
    r = client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"},
                   headers=alice.auth)
    assert r.status_code in (200, 201), r.text
    cloud_error(client.get("/2.0/workspaces/acme/hooks", headers=bob.auth), 403)
    cloud_error(client.post("/2.0/workspaces/acme/hooks",
                            json={"url": receiver.url, "events": ["repo:push"]},
                            headers=bob.auth), 403)


def test_server_hooks_crud_in_bitbucket_shape(client, setup, receiver):
    alice = setup["alice"].auth
    hook = server_hook(client, alice, receiver.url,
                       configuration={"secret": SECRET})
    assert set(hook) == SERVER_KEYS
    assert hook["configuration"] == {} and SECRET not in str(hook)
    assert isinstance(hook["id"], int) and hook["scopeType"] == "repository"
    listing = client.get(f"{P}/webhooks", headers=alice).json()
    assert [h["id"] for h in listing["values"]] == [hook["id"]] and listing["isLastPage"]
    r = client.put(f"{P}/webhooks/{hook['id']}", json={"name": "deploy",
                   "events": ["repo:refs_changed", "pr:opened"]}, headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "deploy" and r.json()["events"] == ["repo:refs_changed",
                                                                   "pr:opened"]
    # Each API lists the hooks it made.
    assert client.get(f"{R}/hooks", headers=alice).json()["values"] == []

    project = server_hook(client, alice, receiver.url, base="/rest/api/1.0/projects/PRJ")
    assert project["scopeType"] == "project"
    got = client.get(f"/rest/api/1.0/projects/PRJ/webhooks/{project['id']}", headers=alice)
    assert got.status_code == 200 and got.json()["id"] == project["id"]
    # A project's hook is not one of its repository's.
    server_error(client.get(f"{P}/webhooks/{project['id']}", headers=alice), 404)

    assert client.delete(f"{P}/webhooks/{hook['id']}", headers=alice).status_code == 204
    server_error(client.get(f"{P}/webhooks/{hook['id']}", headers=alice), 404)


def test_managing_needs_repository_admin(client, setup, receiver):
    bob = setup["bob"].auth  # write access only
    cloud_error(client.get(f"{R}/hooks", headers=bob), 403)
    cloud_error(client.post(f"{R}/hooks", json={"url": receiver.url, "events": ["repo:push"]},
                            headers=bob), 403)
    server_error(client.get(f"{P}/webhooks", headers=bob), 403)
    # The project itself is hidden from bob: as any project he cannot see.
    server_error(client.get("/rest/api/1.0/projects/PRJ/webhooks", headers=bob), 404)


def test_unknown_events_and_bad_input_are_400s_naming_them(client, setup, receiver):
    alice = setup["alice"].auth
    r = client.post(f"{R}/hooks", json={"url": receiver.url,
                                        "events": ["repo:push", "repo:explode"]}, headers=alice)
    assert "repo:explode" in cloud_error(r, 400)["error"]["message"]
    r = client.post(f"{P}/webhooks", json={"name": "x", "url": receiver.url,
                                           "events": ["repo:push"]}, headers=alice)
    # Cloud's name is not one of Server's.
    assert "repo:push" in server_error(r, 400)["errors"][0]["message"]
    cloud_error(client.post(f"{R}/hooks", json={"url": receiver.url, "events": []},
                            headers=alice), 400)
    cloud_error(client.post(f"{R}/hooks", json={"events": ["repo:push"]}, headers=alice), 400)
    cloud_error(client.post(f"{R}/hooks", json={"url": receiver.url, "events": ["repo:push"],
                                                "active": "yes"}, headers=alice), 400)
    server_error(client.post(f"{P}/webhooks", json={"url": receiver.url,
                                                    "events": ["repo:refs_changed"]},
                             headers=alice), 400)  # no name


def test_secret_is_sealed_in_the_database(client, setup, receiver, runtime):
    cloud_hook(client, setup["alice"].auth, receiver.url, secret=SECRET)
    with runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM webhooks")).mappings().all()
    assert len(rows) == 1
    assert all(SECRET not in str(value) for value in rows[0].values())
    assert sealer(runtime.secret_key).unseal(rows[0]["secret_sealed"]) == SECRET


def test_urls_the_server_may_not_call_are_refused_when_saved(client, setup):
    alice = setup["alice"].auth
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook",
                "http://user:pw@example.com/hook", "ftp://example.com/hook"):
        r = client.post(f"{R}/hooks", json={"url": url, "events": ["repo:push"]},
                        headers=alice)
        cloud_error(r, 400, "url")
        r = client.post(f"{P}/webhooks", json={"name": "n", "url": url,
                                               "events": ["repo:refs_changed"]}, headers=alice)
        server_error(r, 400)


@pytest.mark.parametrize("allowed", [()])
def test_loopback_is_refused_by_default(client, setup, receiver):
    """Without the site's allowance (GITWARD_OUTBOUND_ALLOWED_NETWORKS), loopback is refused
    when a hook is saved, with the reason."""
    alice = setup["alice"].auth
    r = client.post(f"{R}/hooks", json={"url": receiver.url, "events": ["repo:push"]},
                    headers=alice)
    assert "loopback" in cloud_error(r, 400)["error"]["message"]
    r = client.post(f"{P}/webhooks", json={"name": "n", "url": receiver.url,
                                           "events": ["repo:refs_changed"]}, headers=alice)
    assert "loopback" in server_error(r, 400)["errors"][0]["message"]
    r = client.post(f"{P}/webhooks/test", params={"url": receiver.url}, headers=alice)
    assert "loopback" in r.json()["error"] and receiver.requests == []


@pytest.mark.parametrize("worker_on", [False])
def test_delivery_checks_the_url_again(client, setup, runtime, receiver):
    alice = setup["alice"]
    hook = cloud_hook(client, alice.auth, receiver.url)
    branch(client, alice.auth, "feature", setup["commits"][0])
    worker = DeliveryWorker(runtime, rules=OutboundRules(()))  # loopback not allowed
    assert worker.run_once() == 1
    [delivery] = deliveries(client, alice.auth, hook)
    assert delivery["state"] == "pending" and delivery["attempts"] == 1
    [attempt] = delivery["attempt_history"]
    assert attempt["status_code"] is None and "loopback" in attempt["error"]
    assert receiver.requests == []


# -- delivering ---------------------------------------------------------------------------


def test_push_is_delivered_signed_in_cloud_format(client, setup, receiver):
    alice = setup["alice"]
    first, second = setup["commits"]
    hook = cloud_hook(client, alice.auth, receiver.url, secret=SECRET)
    branch(client, alice.auth, "feature", second)
    [got] = receiver.wait(1)
    assert got.headers["x-event-key"] == "repo:push"
    assert got.headers["x-hook-uuid"] == hook["uuid"].strip("{}")
    assert got.headers["x-attempt-number"] == "1"
    assert got.headers["user-agent"] == "Bitbucket-Webhooks/2.0"
    assert got.headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-hub-signature"], expected)
    body = got.json
    assert body["actor"]["username"] == "alice"
    assert body["repository"]["full_name"] == "acme/widget"
    [change] = body["push"]["changes"]
    assert change["old"] is None and change["created"] and not change["closed"]
    assert change["new"]["type"] == "branch" and change["new"]["name"] == "feature"
    assert change["new"]["target"]["hash"] == second
    assert change["forced"] is False
    # main already holds both commits: a new branch brings none of its own.
    assert change["commits"] == [] and change["truncated"] is False
    [delivery] = deliveries(client, alice.auth, hook)
    assert delivery["state"] == "delivered"
    assert delivery["uuid"].strip("{}") == got.headers["x-request-uuid"]
    assert first


def test_server_hooks_get_refs_changed(client, setup, receiver):
    alice = setup["alice"]
    first, second = setup["commits"]
    server_hook(client, alice.auth, receiver.url, configuration={"secret": SECRET})
    branch(client, alice.auth, "feature", first)
    r = client.delete(f"{R}/refs/branches/feature", headers=alice.auth)
    assert r.status_code == 204, r.text
    created, deleted = receiver.wait(2)
    assert created.headers["x-event-key"] == "repo:refs_changed"
    assert created.headers["x-request-id"]
    assert created.headers["x-hub-signature"] == "sha256=" + hmac.new(
        SECRET.encode(), created.body, hashlib.sha256).hexdigest()
    body = created.json
    assert body["eventKey"] == "repo:refs_changed"
    assert body["repository"]["slug"] == "widget"
    assert body["repository"]["project"]["key"] == "PRJ"
    assert body["changes"] == [{
        "ref": {"id": "refs/heads/feature", "displayId": "feature", "type": "BRANCH"},
        "refId": "refs/heads/feature", "fromHash": "0" * 40, "toHash": first, "type": "ADD",
    }]
    assert deleted.json["changes"][0]["type"] == "DELETE"
    assert deleted.json["changes"][0]["fromHash"] == first
    assert second


def test_project_and_workspace_hooks_hear_their_repositories(client, setup, receiver):
    alice = setup["alice"]
    cloud_hook(client, alice.auth, receiver.url, base="/2.0/workspaces/acme")
    server_hook(client, alice.auth, receiver.url, base="/rest/api/1.0/projects/PRJ")
    branch(client, alice.auth, "feature", setup["commits"][0])
    got = receiver.wait(2)
    assert sorted(r.event for r in got) == ["repo:push", "repo:refs_changed"]


def test_a_hook_hears_only_its_events_and_only_while_active(client, setup, receiver):
    alice = setup["alice"]
    statuses = cloud_hook(client, alice.auth, receiver.url, ["repo:commit_status_created"])
    off = cloud_hook(client, alice.auth, receiver.url + "?off")
    client.put(f"{R}/hooks/{off['uuid']}", json={"active": False}, headers=alice.auth)
    branch(client, alice.auth, "feature", setup["commits"][0])
    r = client.post(f"{R}/commit/{setup['commits'][0]}/statuses/build",
                    json={"key": "ci", "state": "SUCCESSFUL", "url": "https://ci.example.com/1"},
                    headers=alice.auth)
    assert r.status_code == 201, r.text
    [got] = receiver.wait(1)
    assert got.event == "repo:commit_status_created"
    assert got.json["commit_status"]["key"] == "ci"
    assert got.json["commit_status"]["commit"]["hash"] == setup["commits"][0]
    assert deliveries(client, alice.auth, off) == []
    assert len(deliveries(client, alice.auth, statuses)) == 1


def test_failed_attempts_are_retried_with_backoff_and_recorded(client, setup, receiver):
    alice = setup["alice"]
    receiver.statuses = [500, 503]
    hook = cloud_hook(client, alice.auth, receiver.url)
    branch(client, alice.auth, "feature", setup["commits"][0])
    got = receiver.wait(3)
    assert [r.headers["x-attempt-number"] for r in got] == ["1", "2", "3"]
    assert len({r.headers["x-request-uuid"] for r in got}) == 1
    assert len({r.body for r in got}) == 1  # rendered once
    [delivery] = deliveries(client, alice.auth, hook)
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3
    history = delivery["attempt_history"]
    assert [a["status_code"] for a in history] == [500, 503, 200]
    assert len(history[0]["response"]) == 1024  # the first KiB only


@pytest.mark.parametrize("poll", [60.0])
def test_the_worker_wakes_on_commit_and_when_a_retry_is_due(client, setup, receiver):
    """With a poll of a minute, the worker is woken by the commit that wrote the delivery,
    and sleeps only until the retry is due."""
    receiver.statuses = [500]
    cloud_hook(client, setup["alice"].auth, receiver.url)
    branch(client, setup["alice"].auth, "feature", setup["commits"][0])
    assert len(receiver.wait(2, timeout=5)) == 2


def test_a_delivery_is_given_up_after_the_last_attempt(client, setup, receiver):
    alice = setup["alice"]
    receiver.statuses = [500] * 10
    hook = cloud_hook(client, alice.auth, receiver.url)
    branch(client, alice.auth, "feature", setup["commits"][0])
    receiver.wait(4)
    for _ in range(100):
        [delivery] = deliveries(client, alice.auth, hook)
        if delivery["state"] == "failed":
            break
        threading.Event().wait(0.05)
    assert delivery["state"] == "failed" and delivery["attempts"] == 4
    threading.Event().wait(0.3)
    assert len(receiver.requests) == 4


def test_a_hook_gets_its_events_in_order(client, setup, receiver):
    """The first event fails twice: the later ones wait for it."""
    alice = setup["alice"]
    receiver.statuses = [500, 500]
    cloud_hook(client, alice.auth, receiver.url)
    for name in ("one", "two", "three"):
        branch(client, alice.auth, name, setup["commits"][0])
    got = receiver.wait(5)
    names = [r.json["push"]["changes"][0]["new"]["name"] for r in got]
    assert names == ["one", "one", "one", "two", "three"]


def test_redelivery_sends_the_same_body_again(client, setup, receiver):
    alice = setup["alice"]
    hook = cloud_hook(client, alice.auth, receiver.url)
    branch(client, alice.auth, "feature", setup["commits"][0])
    [first] = receiver.wait(1)
    [delivery] = deliveries(client, alice.auth, hook)
    r = client.post(f"{R}/hooks/{hook['uuid']}/deliveries/{delivery['uuid']}/redeliver",
                    headers=alice.auth)
    assert r.status_code == 201, r.text
    assert r.json()["redelivery"] is True
    _, again = receiver.wait(2)
    assert again.body == first.body
    assert again.headers["x-request-uuid"] != first.headers["x-request-uuid"]
    cloud_error(client.post(f"{R}/hooks/{hook['uuid']}/deliveries/{{0}}/redeliver",
                            headers=alice.auth), 404)
    cloud_error(client.post(f"{R}/hooks/{hook['uuid']}/deliveries/{delivery['uuid']}/redeliver",
                            headers=setup["bob"].auth), 403)


def test_server_test_call_pings_the_url(client, setup, receiver):
    alice = setup["alice"]
    r = client.post(f"{P}/webhooks/test", params={"url": receiver.url}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json()["response"]["statusCode"] == 200
    [got] = receiver.wait(1)
    assert got.event == "diagnostics:ping" and got.json["test"] is True
    r = client.post(f"{P}/webhooks/test", params={"url": "http://10.0.0.1/"},
                    headers=alice.auth)
    assert r.status_code == 200 and "refused" in r.json()["error"]
    server_error(client.post(f"{P}/webhooks/test", params={"url": receiver.url},
                             headers=setup["bob"].auth), 403)


# -- claims -------------------------------------------------------------------------------


@pytest.mark.parametrize("worker_on", [False])
def test_an_expired_claim_is_taken_over(client, setup, runtime, receiver):
    """A worker that died mid-delivery (its claim left behind): another delivers it once the
    claim has expired, never before."""
    alice = setup["alice"]
    cloud_hook(client, alice.auth, receiver.url)
    branch(client, alice.auth, "feature", setup["commits"][0])
    now = utcnow()
    with runtime.unit_of_work() as store:
        [dead] = store.webhooks.claim("dead-worker", now, now + timedelta(seconds=0.3), 10)
    other = DeliveryWorker(runtime, name="other")
    assert other.run_once() == 0  # still claimed
    threading.Event().wait(0.4)
    assert other.run_once() == 1
    [got] = receiver.wait(1)
    assert got.headers["x-attempt-number"] == "2"
    assert got.headers["x-request-uuid"] == dead.request_uuid


@pytest.mark.parametrize("worker_on", [False])
def test_two_claimers_never_take_the_same_delivery(client, setup, runtime, receiver):
    alice = setup["alice"]
    for n in range(6):
        cloud_hook(client, alice.auth, f"{receiver.url}?{n}")
    for name in ("a", "b", "c"):
        branch(client, alice.auth, name, setup["commits"][0])
    taken: dict[str, list[int]] = {"one": [], "two": []}
    start = threading.Barrier(2)

    def claim(name: str) -> None:
        start.wait()
        for _ in range(10):
            now = utcnow()
            with runtime.unit_of_work() as store:
                got = store.webhooks.claim(name, now, now + timedelta(seconds=60), 2)
            taken[name] += [c.delivery_id for c in got]

    threads = [threading.Thread(target=claim, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = taken["one"] + taken["two"]
    assert len(everything) == len(set(everything))
    # One per hook at a time: the six heads were claimed, their later events wait.
    assert len(everything) == 6


def test_server_deliveries_and_redelivery(client, setup, receiver):
    alice = setup["alice"].auth
    hook = server_hook(client, alice, receiver.url)
    branch(client, alice, "feature", setup["commits"][0])
    [first] = receiver.wait(1)
    base = f"{P}/webhooks/{hook['id']}/deliveries"
    for _ in range(100):
        [delivery] = client.get(base, headers=alice).json()["values"]
        if delivery["state"] == "DELIVERED":
            break
        threading.Event().wait(0.05)
    assert delivery["id"] == first.headers["x-request-id"]
    assert delivery["eventKey"] == "repo:refs_changed" and delivery["attempts"] == 1
    assert delivery["attemptHistory"][0]["statusCode"] == 200
    r = client.post(f"{base}/{delivery['id']}/redeliver", headers=alice)
    assert r.status_code == 201, r.text
    _, again = receiver.wait(2)
    assert again.body == first.body and again.headers["x-request-id"] == r.json()["id"]
    server_error(client.get(f"{P}/webhooks/999999/deliveries", headers=alice), 404)


@pytest.mark.parametrize("worker_on", [False])
def test_hooks_and_deliveries_go_with_their_repository(client, setup, runtime, receiver):
    alice = setup["alice"].auth
    cloud_hook(client, alice, receiver.url)
    branch(client, alice, "feature", setup["commits"][0])
    assert client.delete(R, headers=alice).status_code == 204
    with runtime.engine.connect() as conn:
        for table in ("webhooks", "webhook_deliveries"):
            assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0
    assert DeliveryWorker(runtime).run_once() == 0


def test_a_recovered_push_sends_its_events(client, setup, runtime, receiver):
    """A push whose process died before recording it: the recovery writes its events too,
    naming who pushed."""
    from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
    from gitward.gitstore.hooks import RefUpdate
    from gitward.web.hooks import callbacks

    alice = setup["alice"]
    cloud_hook(client, alice.auth, receiver.url)
    with runtime.unit_of_work() as store:
        view = store.repos.repository_view("acme", "widget")
        assert view is not None
        repo_id, bare = view.id, runtime.git.path_of(view.storage_name)
    ctx = AuthContext(UserPrincipal(alice.id, alice.username), CredentialKind.PASSWORD)
    grant = callbacks.PushGrant(None, "192.0.2.7", repo_id, ctx)
    commit = setup["commits"][0]
    updates = [RefUpdate("0" * 40, commit, "refs/heads/recovered")]
    pending = callbacks.note_pending(runtime, grant, ctx, updates, 3600)
    assert pending is not None
    subprocess.run(["git", "--git-dir", str(bare), "update-ref", "refs/heads/recovered",
                    commit], check=True, env=git_env())
    with runtime.unit_of_work() as store:  # ... and the server died: its deadline passed
        store.open().execute(text("UPDATE pending_pushes SET deadline = :t"),
                             {"t": utcnow() - timedelta(hours=1)})
    assert callbacks.recover(runtime) == 1
    [got] = receiver.wait(1)
    assert got.json["actor"]["username"] == "alice"
    assert got.json["push"]["changes"][0]["new"]["name"] == "recovered"


@pytest.mark.parametrize(("worker_on", "backoff", "poll"), [(False, 30.0, 60.0)])
def test_a_worker_sleeps_until_the_retry_is_due(client, setup, runtime, receiver):
    """While a hook's first delivery waits for its retry, the next one waits behind it: the
    worker finds nothing to claim and sleeps until the retry is due (it does not spin)."""
    alice = setup["alice"].auth
    receiver.statuses = [500]
    cloud_hook(client, alice, receiver.url)
    branch(client, alice, "one", setup["commits"][0])
    branch(client, alice, "two", setup["commits"][0])
    worker = DeliveryWorker(runtime)
    assert worker.run_once() == 1  # "one", answered 500
    assert worker.run_once() == 0  # "two" waits behind it
    assert 25 < worker._idle_wait() <= 30
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("worker_on", [False])
def test_a_response_any_database_cannot_store_is_still_recorded(client, setup, runtime,
                                                                 receiver):
    alice = setup["alice"].auth
    receiver.payload = b"\x00\xff\xfe not text"
    hook = cloud_hook(client, alice, receiver.url)
    branch(client, alice, "feature", setup["commits"][0])
    assert DeliveryWorker(runtime).run_once() == 1
    [delivery] = deliveries(client, alice, hook)
    assert delivery["state"] == "delivered"
    assert delivery["attempt_history"][0]["response"].endswith("not text")


@pytest.mark.parametrize("worker_on", [False])
def test_two_running_workers_deliver_each_event_once_in_order(client, setup, runtime,
                                                               receiver):
    alice = setup["alice"].auth
    for n in range(3):
        cloud_hook(client, alice, f"{receiver.url}?hook={n}")
    names = ["a", "b", "c", "d"]
    for name in names:
        branch(client, alice, name, setup["commits"][0])
    workers = [DeliveryWorker(runtime, name=f"w{i}") for i in range(2)]
    for w in workers:
        w.start()
    try:
        got = receiver.wait(12)
        threading.Event().wait(0.3)
    finally:
        for w in workers:
            w.stop()
    assert len(receiver.requests) == 12
    assert len({r.headers["x-request-uuid"] for r in got}) == 12
    for n in range(3):
        mine = [r for r in receiver.requests if r.path.endswith(f"hook={n}")]
        assert [r.json["push"]["changes"][0]["new"]["name"] for r in mine] == names


def test_scoped_credentials_need_the_webhook_scope(client, setup, receiver):
    from tests.integration.conftest import basic

    def app_password(scopes: list[str]) -> dict[str, str]:
        r = client.post("/2.0/user/app-passwords", json={"label": "-".join(scopes),
                        "scopes": scopes}, headers=setup["alice"].auth)
        assert r.status_code in (200, 201), r.text
        return basic("alice", r.json()["password"])

    without = app_password(["repository:admin"])
    cloud_error(client.get(f"{R}/hooks", headers=without), 403)
    with_scope = app_password(["webhook"])
    assert client.get(f"{R}/hooks", headers=with_scope).status_code == 200
    cloud_hook(client, with_scope, receiver.url)


@pytest.mark.parametrize("worker_on", [False])
def test_finished_deliveries_are_kept_for_the_history_days(client, setup, runtime, receiver):
    alice = setup["alice"].auth
    hook = cloud_hook(client, alice, receiver.url)
    branch(client, alice, "old", setup["commits"][0])
    branch(client, alice, "new", setup["commits"][0])
    worker = DeliveryWorker(runtime)
    while worker.run_once():
        pass
    with runtime.unit_of_work() as store:
        store.open().execute(
            text("UPDATE webhook_deliveries SET finished_on = :t WHERE id = "
                 "(SELECT MIN(id) FROM webhook_deliveries)"),
            {"t": utcnow() - timedelta(days=runtime.settings.webhook_history_days + 1)})
    assert worker.prune() == 1
    [kept] = deliveries(client, alice, hook)
    assert kept["state"] == "delivered"
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM webhook_attempts")).scalar() == 1


@pytest.mark.parametrize("worker_on", [False])
def test_an_event_is_stored_with_its_change_or_not_at_all(client, setup, runtime, receiver):
    from gitward.services import events

    cloud_hook(client, setup["alice"].auth, receiver.url)
    event = events.Event("repo:push", "repo:refs_changed", {"push": {"changes": []}}, {})

    def count() -> int:
        with runtime.engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM webhook_deliveries")).scalar())

    with pytest.raises(RuntimeError), runtime.unit_of_work() as store:
        repo = store.repos.repository_view("acme", "widget")
        assert repo is not None and events.emit(store, repo, event) == 1
        raise RuntimeError("the change failed")
    assert count() == 0
    with runtime.unit_of_work() as store:
        repo = store.repos.repository_view("acme", "widget")
        assert repo is not None and events.emit(store, repo, event) == 1
    assert count() == 1
