"""The usage report of every token API: per action, how often and when last, and what the
credential was granted and never used (docs/credential-usage.md)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from gitward.credentials.usage import Noted, UsageLedger
from tests.integration.conftest import basic, bearer

REPO = "/2.0/repositories/acme/widget"
PATS = "/rest/access-tokens/1.0/users/alice"


@pytest.fixture
def setup(world, client):
    client.follow_links = False  # the link walker's requests would be uses too
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "other", "PRJ")
    return alice


def pat(client, alice, permissions):
    r = client.put(PATS, json={"name": "ci", "permissions": permissions}, headers=alice.auth)
    assert r.status_code == 200, r.text
    return r.json()["id"], r.json()["token"]


def actions(report):
    return {a["action"]: a["count"] for a in report["actions"]}


def test_a_known_sequence_is_reported_exactly(client, setup):
    token_id, secret = pat(client, setup, ["PROJECT_READ", "REPO_WRITE"])
    for _ in range(3):
        assert client.get(REPO, headers=bearer(secret)).status_code == 200
    assert client.get("/2.0/repositories/acme", headers=bearer(secret)).status_code == 200
    r = client.get(f"{PATS}/{token_id}/usage", headers=setup.auth)
    assert r.status_code == 200, r.text
    report = r.json()
    assert actions(report) == {"repository:read": 4}
    assert report["granted"] == ["PROJECT_READ", "REPO_WRITE"]
    assert report["needed"] == ["REPO_READ"]
    assert report["unused"] == ["PROJECT_READ", "REPO_WRITE"]
    assert report["since"] == (date.today() - timedelta(days=89)).isoformat()
    (used,) = report["actions"]
    last = datetime.fromtimestamp(used["lastUsedDate"] / 1000, UTC)
    assert abs((datetime.now(UTC) - last).total_seconds()) < 60


def test_a_write_names_the_write_permission_needed(client, setup):
    token_id, secret = pat(client, setup, ["REPO_ADMIN"])
    r = client.put(REPO, json={"description": "x"}, headers=bearer(secret))
    assert r.status_code == 200, r.text
    report = client.get(f"{PATS}/{token_id}/usage", headers=setup.auth).json()
    assert "repository:admin" in actions(report)
    assert report["needed"] == ["REPO_ADMIN"]
    assert report["unused"] == []


def test_an_unused_token_needs_the_least_and_refusals_are_not_uses(client, setup):
    token_id, secret = pat(client, setup, ["REPO_READ"])
    # refused (a write with a read token): not a use
    assert client.put(REPO, json={"description": "x"}, headers=bearer(secret)).status_code == 403
    report = client.get(f"{PATS}/{token_id}/usage", headers=setup.auth).json()
    assert report["actions"] == []
    assert report["needed"] == ["REPO_READ"]


def test_uses_written_to_the_database_add_up_with_the_pending_ones(client, runtime, setup):
    runtime.usage.interval = 0  # every use is written after its request
    token_id, secret = pat(client, setup, ["REPO_READ"])
    for _ in range(2):
        assert client.get(REPO, headers=bearer(secret)).status_code == 200
    with runtime.unit_of_work() as store:
        rows = store.usage.of("personal_access_token", int(token_id), date.today())
        assert [(r.action, r.count) for r in rows] == [("repository:read", 2)]
    runtime.usage.interval = 3600
    assert client.get(REPO, headers=bearer(secret)).status_code == 200  # pending only
    report = client.get(f"{PATS}/{token_id}/usage", headers=setup.auth).json()
    assert actions(report) == {"repository:read": 3}


def test_each_process_adds_to_the_days_row(runtime):
    day = date.today()
    when = datetime.now(UTC)
    with runtime.unit_of_work() as store:
        store.usage.add([Noted("api_token", 7, "repository:read", day, 2, when)])
    with runtime.unit_of_work() as store:
        store.usage.add([Noted("api_token", 7, "repository:read", day, 3,
                               when - timedelta(hours=1))])
    with runtime.unit_of_work() as store:
        (row,) = store.usage.of("api_token", 7, day)
        assert row.count == 5
        assert abs((row.last_used_on - when).total_seconds()) < 1


def test_a_failed_write_puts_the_uses_back():
    ledger = UsageLedger(interval=0)
    assert ledger.note(("api_token", 1, "repository:read"))
    uses = ledger.drain()
    assert ledger.drain() == []
    ledger.restore(uses)
    assert ledger.pending_for("api_token", 1)[0].count == 1
    ledger.note(("api_token", 1, "repository:read"))
    (again,) = ledger.drain()
    assert again.count == 2
    assert ledger.drain() == []


def test_uses_noted_from_many_threads_are_all_counted():
    """The request's side takes no lock: every use still counts, once, whatever the
    interleaving with other threads and with the writer."""
    ledger = UsageLedger(interval=3600)
    written: list[int] = []

    def use(n: int) -> None:
        for i in range(n):
            ledger.note(("api_token", 1 + i % 3, "repository:read"))

    def write() -> None:
        for _ in range(50):
            written.extend(u.count for u in ledger.drain())

    threads = [threading.Thread(target=use, args=(3000,)) for _ in range(4)]
    threads.append(threading.Thread(target=write))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    written.extend(u.count for u in ledger.drain())
    assert sum(written) == 4 * 3000


def test_interactive_credentials_are_not_noted(client, runtime, setup):
    assert client.get(REPO, headers=setup.auth).status_code == 200
    assert runtime.usage.drain() == []


def test_api_token_report_names_atlassian_scopes(client, setup):
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = client.post("/2.0/user/api-tokens", headers=setup.auth, json={
        "name": "ci", "expires_on": expires,
        "scopes": ["read:repository:bitbucket", "write:repository:bitbucket",
                   "read:pullrequest:bitbucket"],
    })
    assert r.status_code == 201, r.text
    token_id, secret = r.json()["id"], r.json()["token"]
    assert client.get(REPO, headers=basic("alice", secret)).status_code == 200
    r = client.get(f"/2.0/user/api-tokens/{token_id}/usage", headers=setup.auth)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["type"] == "credential_usage"
    assert actions(report) == {"repository:read": 1}
    assert report["needed"] == ["read:repository:bitbucket"]
    assert sorted(report["unused"]) == ["read:pullrequest:bitbucket", "write:repository:bitbucket"]
    assert report["actions"][0]["last_used_on"].endswith("Z")


def test_repository_token_report_picks_the_granted_scope_with_fewest_implications(
    client, setup
):
    r = client.post(f"{REPO}/access-tokens", headers=setup.auth, json={
        "name": "bot", "scopes": ["repository:write", "repository:admin"],
    })
    assert r.status_code == 201, r.text
    token_id, secret = r.json()["id"], r.json()["token"]
    assert client.get(REPO, headers=bearer(secret)).status_code == 200
    report = client.get(f"{REPO}/access-tokens/{token_id}/usage", headers=setup.auth).json()
    assert actions(report) == {"repository:read": 1}
    assert report["needed"] == ["repository:write"]
    assert report["unused"] == ["repository:admin"]
    server = client.get(
        f"/rest/access-tokens/1.0/projects/PRJ/repos/widget/{token_id}/usage",
        headers=setup.auth,
    )
    assert server.status_code == 200, server.text
    assert server.json()["needed"] == ["repository:write"]


def test_only_who_may_read_the_token_reads_its_report(client, world, setup):
    token_id, _ = pat(client, setup, ["REPO_READ"])
    bob = world.user("bob")
    r = client.get(f"{PATS}/{token_id}/usage", headers=bob.auth)
    assert r.status_code in (403, 404)
    assert "errors" in r.json()
    r = client.get(f"{PATS}/999999/usage", headers=setup.auth)
    assert r.status_code == 404
    assert client.get(f"{REPO}/access-tokens/999999/usage", headers=setup.auth).status_code == 404
    assert client.get("/2.0/user/app-passwords/999999/usage",
                      headers=setup.auth).status_code == 404


def test_days_past_the_window_are_forgotten(client, runtime, setup):
    old = date.today() - timedelta(days=120)
    with runtime.unit_of_work() as store:
        store.usage.add([Noted("personal_access_token", 1, "repository:read", old, 9,
                               datetime.now(UTC) - timedelta(days=120))])
    runtime.usage.interval = 0
    _, secret = pat(client, setup, ["REPO_READ"])
    assert client.get(REPO, headers=bearer(secret)).status_code == 200  # written: prunes
    with runtime.unit_of_work() as store:
        assert [row.day for row in store.usage.of("personal_access_token", 1, old)
                if row.day == old] == []


def test_uses_from_before_a_narrowing_need_no_more_than_the_token_now_holds(client, setup):
    token_id, secret = pat(client, setup, ["REPO_ADMIN"])
    assert client.put(REPO, json={"description": "x"}, headers=bearer(secret)).status_code == 200
    r = client.post(f"{PATS}/{token_id}", json={"permissions": ["REPO_READ"]},
                    headers=setup.auth)
    assert r.status_code == 200, r.text
    report = client.get(f"{PATS}/{token_id}/usage", headers=setup.auth).json()
    assert "repository:admin" in actions(report)
    assert report["granted"] == ["REPO_READ"]
    assert report["needed"] == ["REPO_READ"]
    assert report["unused"] == []
