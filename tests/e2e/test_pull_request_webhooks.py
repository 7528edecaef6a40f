"""Pull request webhooks end to end: a real `gitward serve` (two workers), the real git
client, a real receiver on loopback (allowed by GITWARD_OUTBOUND_ALLOWED_NETWORKS).

A branch pushed with git, a pull request opened, approved by another user and merged over
REST: a Cloud hook gets `repo:push` (the branch, then the merge moving main) and
`pullrequest:created`, `:approved`, `:fulfilled`; a Server hook gets `pr:opened`,
`pr:reviewer:approved`, `pr:merged` — each hook in the order the changes happened, signed
with its secret, although the receiver fails the first two deliveries (retried, not
reordered). On SQLite, and on PostgreSQL when GITWARD_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import GitwardServer, project_key, start_server
from tests.e2e.test_webhooks import FAST, database_url, signed
from tests.integration.webhook_helpers import Received, Receiver

pytestmark = pytest.mark.e2e

__all__ = ["database_url"]  # the fixture, imported to be used here

CLOUD_EVENTS = ["repo:push", "pullrequest:created", "pullrequest:approved",
                "pullrequest:fulfilled"]
SERVER_EVENTS = ["pr:opened", "pr:reviewer:approved", "pr:merged"]


def add_hooks(server: GitwardServer, workspace: str, slug: str, url: str) -> tuple[str, str]:
    """The Cloud hook's uuid and the Server hook's id."""
    r = server.api("POST", f"/2.0/repositories/{workspace}/{slug}/hooks", auth=server.admin,
                   json={"description": "ci", "url": url + "?cloud", "events": CLOUD_EVENTS,
                         "secret": "cloud-secret"})
    assert r.status_code == 201, r.text
    cloud = r.json()["uuid"]
    r = server.api("POST", f"/rest/api/1.0/projects/{project_key(workspace)}/repos/{slug}"
                   "/webhooks", auth=server.admin,
                   json={"name": "ci", "url": url + "?server", "events": SERVER_EVENTS,
                         "configuration": {"secret": "server-secret"}})
    assert r.status_code == 201, r.text
    return cloud, str(r.json()["id"])


def test_a_pull_request_is_delivered_to_both_hooks_in_order(
    tmp_path: Path, database_url: str | None
) -> None:
    receiver = Receiver().start()
    server = start_server(tmp_path, env=FAST, database_url=database_url)
    try:
        admin = server.admin
        reviewer = server.create_user()
        workspace, slug = server.create_repository(admin)
        server.grant(admin, workspace, slug, reviewer, "write")
        seed = server.seed(admin, workspace, slug)  # main, before the hooks exist
        old_main = server.git("rev-parse", "HEAD", cwd=seed).stdout.strip()
        receiver.statuses = [500, 500]
        cloud_hook, _ = add_hooks(server, workspace, slug, receiver.url)

        server.git("checkout", "-qb", "feature", cwd=seed)
        (seed / "feature.txt").write_text("feature\n")
        server.git("add", "feature.txt", cwd=seed)
        server.git("commit", "-qm", "feature", cwd=seed)
        server.git("push", "-q", "origin", "feature", cwd=seed)
        feature = server.git("rev-parse", "HEAD", cwd=seed).stdout.strip()

        base = f"/2.0/repositories/{workspace}/{slug}/pullrequests"
        r = server.api("POST", base, auth=admin,
                       json={"title": "Feature", "source": {"branch": {"name": "feature"}},
                             "destination": {"branch": {"name": "main"}}})
        assert r.status_code == 201, r.text
        number = r.json()["id"]
        r = server.api("POST", f"{base}/{number}/approve", auth=admin)
        assert r.status_code == 400, r.text  # not one's own
        r = server.api("POST", f"{base}/{number}/approve", auth=reviewer)
        assert r.status_code == 200, r.text
        r = server.api("POST", f"{base}/{number}/merge", auth=admin,
                       json={"merge_strategy": "merge_commit"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "MERGED"
        merge_commit = r.json()["merge_commit"]["hash"]

        # The merge commit on main, as git sees it: the old main and the feature commit.
        [line] = server.git("ls-remote", "origin", "refs/heads/main", cwd=seed
                            ).stdout.splitlines()
        assert line.split()[0] == merge_commit
        server.git("fetch", "-q", "origin", cwd=seed)
        parents = server.git("log", "-1", "--format=%P", merge_commit, cwd=seed).stdout.split()
        assert parents == [old_main, feature]

        # 5 Cloud and 3 Server deliveries, and the two answered 500 sent again.
        receiver.wait(10, timeout=20)
        time.sleep(0.3)
        every = list(receiver.requests)  # nothing more: each delivered once
        failed, arrived = every[:2], every[2:]
        assert len(arrived) == 8, [(r.path, r.event) for r in arrived]
        assert {r.headers.get("x-request-uuid") or r.headers["x-request-id"] for r in failed} \
            <= {r.headers.get("x-request-uuid") or r.headers.get("x-request-id")
                for r in arrived}
        cloud = [r for r in arrived if r.path.endswith("?cloud")]
        srv = [r for r in arrived if r.path.endswith("?server")]
    finally:
        server.stop()
        receiver.stop()

    assert [r.event for r in cloud] == ["repo:push", "pullrequest:created",
                                        "pullrequest:approved", "repo:push",
                                        "pullrequest:fulfilled"]
    check_cloud(cloud, cloud_hook, failed, workspace, slug, number, merge_commit, feature,
                admin.username, reviewer.username)
    assert [r.event for r in srv] == SERVER_EVENTS
    check_server(srv, number, merge_commit, admin.username, reviewer.username)


def check_cloud(
    got: list[Received], hook: str, failed: list[Received], workspace: str, slug: str,
    number: int, merge_commit: str, feature: str, author: str, reviewer: str,
) -> None:
    failures = [r.headers.get("x-request-uuid") for r in failed]
    for r in got:
        assert r.headers["x-hook-uuid"] == hook.strip("{}")  # without braces
        assert r.headers["x-request-uuid"]
        # A delivery answered 500 n times arrives on attempt n + 1.
        attempt = 1 + failures.count(r.headers["x-request-uuid"])
        assert r.headers["x-attempt-number"] == str(attempt)
        assert signed("cloud-secret", r.body, r.headers["x-hub-signature"])
        assert not signed("server-secret", r.body, r.headers["x-hub-signature"])
        assert r.json["repository"]["full_name"] == f"{workspace}/{slug}"
        assert r.json["actor"]["type"] == "user"
    assert len({r.headers["x-request-uuid"] for r in got}) == len(got)
    push, created, approved, moved, fulfilled = got
    [change] = push.json["push"]["changes"]
    assert change["created"] and change["new"]["name"] == "feature"
    assert change["new"]["target"]["hash"] == feature
    [change] = moved.json["push"]["changes"]
    assert change["new"]["name"] == "main" and change["new"]["target"]["hash"] == merge_commit
    for r, state in ((created, "OPEN"), (approved, "OPEN"), (fulfilled, "MERGED")):
        pr = r.json["pullrequest"]
        assert pr["id"] == number and pr["state"] == state
        assert pr["source"]["branch"]["name"] == "feature"
        assert pr["destination"]["branch"]["name"] == "main"
    assert created.json["actor"]["nickname"] == author
    assert approved.json["actor"]["nickname"] == reviewer
    assert approved.json["approval"]["user"]["nickname"] == reviewer
    assert fulfilled.json["actor"]["nickname"] == author
    assert fulfilled.json["pullrequest"]["merge_commit"]["hash"] == merge_commit


def check_server(
    got: list[Received], number: int, merge_commit: str, author: str, reviewer: str
) -> None:
    for r in got:
        assert r.headers["x-request-id"]
        assert "x-hook-uuid" not in r.headers and "x-attempt-number" not in r.headers
        assert signed("server-secret", r.body, r.headers["x-hub-signature"])
    assert len({r.headers["x-request-id"] for r in got}) == len(got)
    opened, approved, merged = got
    for r, state in ((opened, "OPEN"), (approved, "OPEN"), (merged, "MERGED")):
        assert r.json["eventKey"] == r.event
        assert r.json["pullRequest"]["id"] == number
        assert r.json["pullRequest"]["state"] == state
        assert r.json["pullRequest"]["fromRef"]["id"] == "refs/heads/feature"
        assert r.json["pullRequest"]["toRef"]["id"] == "refs/heads/main"
    assert opened.json["actor"]["name"] == author
    assert approved.json["actor"]["name"] == reviewer
    assert approved.json["participant"]["status"] == "APPROVED"
    assert merged.json["actor"]["name"] == author
    assert merged.json["pullRequest"]["properties"]["mergeCommit"]["id"] == merge_commit
