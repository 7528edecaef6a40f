"""Pull requests on the Cloud API: R/pullrequests and everything under it.

Runs on SQLite and PostgreSQL (the `settings` fixture). Where the expected shapes come from:
Bitbucket Cloud's REST reference, "Pullrequests" group (the `pullrequest` object: `type`,
`id`, `title`, `description`, `rendered`, `summary`, `state`, `author`, `source` and
`destination` with `branch.name`, `commit.hash`, `repository`, `merge_commit`,
`comment_count`, `task_count`, `close_source_branch`, `closed_by`, `reason`, `created_on`,
`updated_on`, `reviewers`, `participants` (`participant`: `user`, `role`, `approved`,
`state`, `participated_on`), `draft`, `links`), `pullrequest_comment` (`content.raw`,
`parent.id`, `inline.path|from|to`, `deleted`), the activity entries (`update`, `approval`,
`changes_requested`, `comment`), and what atlassian-python-api's
`bitbucket/cloud/repositories/pullRequests.py` sends and reads.
"""

from __future__ import annotations

from typing import Any

from tests.integration import pull_request_helpers as helpers
from tests.integration.api_checks import cloud_error, cloud_page
from tests.integration.pull_request_helpers import CLOUD, app_password, git, pat, repo_token

setup = helpers.setup
emitted = helpers.emitted

PR_KEYS = {
    "type", "id", "title", "description", "rendered", "summary", "state", "author", "source",
    "destination", "merge_commit", "comment_count", "task_count", "close_source_branch",
    "closed_by", "reason", "created_on", "updated_on", "reviewers", "participants", "draft",
    "queued", "links",
}


def open_pr(client: Any, who: Any, source: str = "feature", **extra: Any) -> dict[str, Any]:
    body = {"title": "Add b", "source": {"branch": {"name": source}}, **extra}
    r = client.post(CLOUD, json=body, headers=who.auth)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_and_shape(setup, client, world, emitted):
    _, bob, carol, heads = setup
    made = open_pr(client, bob, description="It adds b.", reviewers=[{"username": "carol"}],
                   close_source_branch=True)
    assert set(made) == PR_KEYS
    assert made["type"] == "pullrequest" and made["id"] == 1 and made["state"] == "OPEN"
    assert made["title"] == "Add b" and made["description"] == "It adds b."
    assert made["summary"]["raw"] == "It adds b." and made["summary"]["markup"] == "markdown"
    assert made["author"]["username"] == "bob" and made["author"]["type"] == "user"
    assert made["source"]["branch"] == {"name": "feature"}
    assert made["source"]["commit"]["hash"] == heads["feature"]
    assert made["source"]["repository"]["full_name"] == "acme/widget"
    assert made["destination"]["branch"] == {"name": "main"}  # the main branch by default
    assert made["destination"]["commit"]["hash"] == heads["main"]
    assert made["merge_commit"] is None and made["closed_by"] is None
    assert made["close_source_branch"] is True and made["draft"] is False
    assert (made["comment_count"], made["task_count"]) == (0, 0)
    assert [u["username"] for u in made["reviewers"]] == ["carol"]
    assert made["participants"] == [{
        "type": "participant", "user": made["reviewers"][0], "role": "REVIEWER",
        "approved": False, "state": None, "participated_on": None}]
    assert made["created_on"].endswith("Z")
    href = made["links"]["self"]["href"]
    assert href == "http://testserver" + CLOUD + "/1"
    assert set(made["links"]) == {"self", "html", "commits", "approve", "request-changes",
                                  "diff", "diffstat", "comments", "activity", "merge",
                                  "decline", "statuses"}
    # the page, at Bitbucket Cloud's address (the link walker GETs it too)
    assert made["links"]["html"]["href"] == "http://testserver/acme/widget/pull-requests/1"
    got = client.get(CLOUD + "/1", headers=carol.auth)
    assert got.status_code == 200 and got.json() == made
    # Numbers go on per repository.
    assert open_pr(client, bob, "other")["id"] == 2
    assert [e.cloud_key for e in emitted] == ["pullrequest:created"] * 2
    assert [e.server_key for e in emitted] == ["pr:opened"] * 2
    body = emitted[0].cloud_body
    assert body["pullrequest"]["id"] == 1 and body["actor"]["username"] == "bob"
    assert body["repository"]["full_name"] == "acme/widget"
    assert emitted[0].server_body["pullRequest"]["fromRef"]["id"] == "refs/heads/feature"
    with world.runtime.unit_of_work() as store:
        audited = [(e.actor, e.target, dict(e.details)) for e in store.audit.events()
                   if e.action == "pullrequest.create"]
    assert audited[0] == ("user:bob", "repository:acme/widget", {
        "id": 1, "source": "feature", "destination": "main", "credential": "password"})


def test_create_refusals(setup, client):
    _, bob, _, _ = setup
    post = lambda body: client.post(CLOUD, json=body, headers=bob.auth)  # noqa: E731
    cloud_error(post({"source": {"branch": {"name": "feature"}}}), 400, "title")
    cloud_error(post({"title": "x"}), 400, "source")
    cloud_error(post({"title": "x", "source": {"branch": {"name": "nope"}}}), 400,
                "does not exist")
    cloud_error(post({"title": "x", "source": {"branch": {"name": "feature"}},
                      "destination": {"branch": {"name": "gone"}}}), 400, "does not exist")
    cloud_error(post({"title": "x", "source": {"branch": {"name": "main"}}}), 400, "differ")
    cloud_error(post({"title": "x", "source": "feature"}), 400, "branch")
    cloud_error(post({"title": "x", "source": {"branch": {"name": "feature"}},
                      "reviewers": [{"username": "nobody"}]}), 400, "nobody")
    cloud_error(post({"title": "x", "source": {"branch": {"name": "feature"}},
                      "reviewers": [{"username": "bob"}]}), 400, "author")
    cloud_error(post({"title": "x\x00", "source": {"branch": {"name": "feature"}}}), 400)
    open_pr(client, bob)
    # One open pull request per source and destination, as Bitbucket (400 on Cloud).
    cloud_error(post({"title": "again", "source": {"branch": {"name": "feature"}}}), 400,
                "only one pull request")
    cloud_error(client.get(CLOUD + "/99", headers=bob.auth), 404)
    cloud_error(client.get(CLOUD + "/abc", headers=bob.auth), 404)


def test_listing_states_and_query(setup, client):
    alice, bob, _, _ = setup
    first = open_pr(client, bob)
    second = open_pr(client, alice, "other", title="Other work")
    r = client.post(CLOUD + f"/{first['id']}/decline", headers=bob.auth)
    assert r.status_code == 200 and r.json()["state"] == "DECLINED", r.text
    assert r.json()["closed_by"]["username"] == "bob"
    page = client.get(CLOUD, headers=bob.auth).json()
    assert [p["id"] for p in cloud_page(page, size=1)] == [second["id"]]  # OPEN by default
    both = client.get(CLOUD + "?state=OPEN&state=DECLINED", headers=bob.auth).json()
    assert [p["id"] for p in cloud_page(both, size=2)] == [2, 1]  # newest first
    declined = client.get(CLOUD + "?state=DECLINED", headers=bob.auth).json()
    assert [p["id"] for p in declined["values"]] == [1]
    q = client.get(CLOUD, params={"q": 'author.username = "alice"', "state": "DECLINED,OPEN"},
                   headers=bob.auth).json()
    assert [p["id"] for p in q["values"]] == [2]
    q = client.get(CLOUD, params={"q": 'source.branch.name = "feature"', "state": "DECLINED"},
                   headers=bob.auth).json()
    assert [p["id"] for p in q["values"]] == [1]
    q = client.get(CLOUD, params={"q": 'title ~ "other"'}, headers=bob.auth).json()
    assert [p["id"] for p in q["values"]] == [2]
    # A query on the state decides it: no OPEN default then.
    q = client.get(CLOUD, params={"q": 'state = "DECLINED"'}, headers=bob.auth).json()
    assert [p["id"] for p in q["values"]] == [1]
    # Every pull request's activity, newest first.
    activity = client.get(CLOUD + "/activity", headers=bob.auth).json()["values"]
    assert [(v["pull_request"]["id"], v["update"]["state"]) for v in activity] == [
        (1, "DECLINED"), (2, "OPEN"), (1, "OPEN")]
    sort = client.get(CLOUD, params={"state": ["OPEN", "DECLINED"], "sort": "id"},
                      headers=bob.auth).json()
    assert [p["id"] for p in sort["values"]] == [1, 2]
    paged = client.get(CLOUD + "/?state=OPEN&state=DECLINED&pagelen=1", headers=bob.auth)
    assert paged.status_code == 200 and "page=2" in paged.json()["next"]
    cloud_error(client.get(CLOUD + "?state=CLOSED", headers=bob.auth), 400, "state")
    cloud_error(client.get(CLOUD, params={"q": 'nope = "x"'}, headers=bob.auth), 400)
    # Declining twice: it is not open.
    cloud_error(client.post(CLOUD + "/1/decline", headers=bob.auth), 400, "declined")


def test_update_title_description_reviewers_destination(setup, client, emitted):
    _alice, bob, carol, heads = setup
    open_pr(client, bob)
    r = client.put(CLOUD + "/1", json={"title": "Better", "description": "More.",
                                       "reviewers": [{"username": "carol"},
                                                     {"username": "alice"}]},
                   headers=bob.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["description"]) == ("Better", "More.")
    assert sorted(u["username"] for u in body["reviewers"]) == ["alice", "carol"]
    r = client.put(CLOUD + "/1", json={"reviewers": [{"username": "alice"}],
                                       "destination": {"branch": {"name": "other"}}},
                   headers=bob.auth)
    assert r.status_code == 200, r.text
    assert [u["username"] for u in r.json()["reviewers"]] == ["alice"]
    assert r.json()["destination"]["branch"]["name"] == "other"
    assert r.json()["destination"]["commit"]["hash"] == heads["other"]
    cloud_error(client.put(CLOUD + "/1", json={"destination": {"branch": {"name": "feature"}}},
                           headers=bob.auth), 400, "differ")
    cloud_error(client.put(CLOUD + "/1", json={"title": ""}, headers=bob.auth), 400, "title")
    # Carol reads but may not write: 403 naming what is missing.
    cloud_error(client.put(CLOUD + "/1", json={"title": "x"}, headers=carol.auth), 403)
    assert [e.cloud_key for e in emitted] == ["pullrequest:created", "pullrequest:updated",
                                             "pullrequest:updated"]
    assert emitted[1].server_key == "pr:modified"
    assert emitted[1].server_body["previousTitle"] == "Add b"
    assert emitted[2].server_body["previousTarget"]["id"] == "refs/heads/main"
    activity = client.get(CLOUD + "/1/activity", headers=carol.auth).json()
    updates = [v["update"] for v in activity["values"]]
    assert updates[0]["changes"]["destination"] == {"old": "main", "new": "other"}
    assert updates[1]["changes"]["title"] == {"old": "Add b", "new": "Better"}
    assert updates[2]["state"] == "OPEN" and updates[2]["author"]["username"] == "bob"
    assert all(v["pull_request"]["id"] == 1 for v in activity["values"])


def test_commits_diff_diffstat(setup, client):
    _, bob, carol, heads = setup
    open_pr(client, bob)
    commits = client.get(CLOUD + "/1/commits", headers=carol.auth)
    assert commits.status_code == 200, commits.text
    assert [c["hash"] for c in commits.json()["values"]] == [heads["feature"]]
    assert commits.json()["values"][0]["type"] == "commit"
    diff = client.get(CLOUD + "/1/diff", headers=carol.auth)
    assert diff.status_code == 200 and diff.headers["content-type"].startswith("text/plain")
    assert "diff --git a/a.txt b/a.txt" in diff.text and "+b" in diff.text
    assert "b.txt" in diff.text and "c.txt" not in diff.text
    patch = client.get(CLOUD + "/1/patch", headers=carol.auth)
    assert patch.status_code == 200 and patch.text.startswith(f"From {heads['feature']} ")
    assert "Subject: [PATCH 1/1] two" in patch.text and "+b" in patch.text
    stat = client.get(CLOUD + "/1/diffstat", headers=carol.auth).json()
    files = cloud_page(stat, size=2)
    by_path = {(f["new"] or f["old"])["path"]: f for f in files}
    assert by_path["a.txt"]["status"] == "modified"
    assert (by_path["a.txt"]["lines_added"], by_path["a.txt"]["lines_removed"]) == (1, 0)
    assert by_path["b.txt"]["status"] == "added" and by_path["b.txt"]["old"] is None
    assert by_path["b.txt"]["new"]["type"] == "commit_file"


def test_comments_replies_inline_edit_delete(setup, client, emitted):
    alice, bob, carol, _ = setup
    open_pr(client, bob)
    r = client.post(CLOUD + "/1/comments", json={"content": {"raw": "Looks good"}},
                    headers=alice.auth)
    assert r.status_code == 201, r.text
    top = r.json()
    assert top["type"] == "pullrequest_comment" and top["content"]["raw"] == "Looks good"
    assert top["user"]["username"] == "alice" and top["deleted"] is False
    assert top["pullrequest"]["id"] == 1 and "parent" not in top and "inline" not in top
    reply = client.post(CLOUD + "/1/comments", json={"content": {"raw": "Thanks"},
                                                     "parent": {"id": top["id"]}},
                        headers=bob.auth).json()
    assert reply["parent"]["id"] == top["id"]
    inline = client.post(CLOUD + "/1/comments", json={"content": {"raw": "typo"},
                                                      "inline": {"path": "a.txt", "to": 2}},
                         headers=alice.auth).json()
    assert inline["inline"] == {"path": "a.txt", "from": None, "to": 2}
    cloud_error(client.post(CLOUD + "/1/comments", json={"content": {"raw": ""}},
                            headers=alice.auth), 400)
    for parent in (999, 10**30, -1, True, "abc"):
        cloud_error(client.post(CLOUD + "/1/comments", json={"content": {"raw": "x"},
                                                             "parent": {"id": parent}},
                                headers=alice.auth), 400)
    cloud_error(client.get(CLOUD + "/1/comments/99999999999999", headers=alice.auth), 404)
    cloud_error(client.post(CLOUD + "/1/comments", json={"content": {"raw": "x"},
                                                         "inline": {"to": 1}},
                            headers=alice.auth), 400, "path")
    # Only the author edits; the author or an admin deletes.
    cloud_error(client.put(CLOUD + f"/1/comments/{top['id']}",
                           json={"content": {"raw": "hijack"}}, headers=bob.auth), 403)
    edited = client.put(CLOUD + f"/1/comments/{top['id']}",
                        json={"content": {"raw": "Looks great"}}, headers=alice.auth)
    assert edited.status_code == 200 and edited.json()["content"]["raw"] == "Looks great"
    cloud_error(client.delete(CLOUD + f"/1/comments/{inline['id']}", headers=bob.auth), 403)
    assert client.delete(CLOUD + f"/1/comments/{reply['id']}",
                         headers=alice.auth).status_code == 204  # alice is the admin
    gone = client.get(CLOUD + f"/1/comments/{reply['id']}", headers=carol.auth).json()
    assert gone["deleted"] is True
    page = client.get(CLOUD + "/1/comments", headers=carol.auth).json()
    assert [c["id"] for c in cloud_page(page, size=3)] == [top["id"], reply["id"], inline["id"]]
    assert client.get(CLOUD + "/1", headers=carol.auth).json()["comment_count"] == 2
    keys = [e.cloud_key for e in emitted]
    assert keys == ["pullrequest:created", "pullrequest:comment_created",
                    "pullrequest:comment_created", "pullrequest:comment_created",
                    "pullrequest:comment_updated", "pullrequest:comment_deleted"]
    assert [e.server_key for e in emitted][1:] == ["pr:comment:added"] * 3 + [
        "pr:comment:edited", "pr:comment:deleted"]
    assert emitted[1].cloud_body["comment"]["content"]["raw"] == "Looks good"
    assert emitted[2].server_body["commentParentId"] == top["id"]
    assert emitted[4].server_body["previousComment"] == "Looks good"
    # Alice commented: a participant now; so is bob, the author, who replied.
    participants = client.get(CLOUD + "/1", headers=carol.auth).json()["participants"]
    assert [(p["user"]["username"], p["role"]) for p in participants] == [
        ("bob", "PARTICIPANT"), ("alice", "PARTICIPANT")]
    assert all(p["participated_on"] is not None for p in participants)


def test_approve_request_changes_and_events(setup, client, emitted):
    alice, bob, carol, _ = setup
    open_pr(client, bob, reviewers=[{"username": "alice"}])
    r = client.post(CLOUD + "/1/approve", headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "participant" and r.json()["approved"] is True
    assert r.json()["state"] == "approved" and r.json()["role"] == "REVIEWER"
    pr = client.get(CLOUD + "/1", headers=carol.auth).json()
    assert pr["participants"][0]["approved"] is True
    cloud_error(client.post(CLOUD + "/1/approve", headers=bob.auth), 400, "own")
    assert client.delete(CLOUD + "/1/approve", headers=alice.auth).status_code == 204
    r = client.post(CLOUD + "/1/request-changes", headers=alice.auth)
    assert r.status_code == 200 and r.json()["state"] == "changes_requested"
    # Withdrawing an approval that is not there changes nothing.
    assert client.delete(CLOUD + "/1/approve", headers=alice.auth).status_code == 204
    assert client.delete(CLOUD + "/1/request-changes", headers=alice.auth).status_code == 204
    assert [e.cloud_key for e in emitted] == [
        "pullrequest:created", "pullrequest:approved", "pullrequest:unapproved",
        "pullrequest:changes_request_created", "pullrequest:changes_request_removed"]
    assert [e.server_key for e in emitted][1:] == [
        "pr:reviewer:approved", "pr:reviewer:unapproved", "pr:reviewer:needs_work",
        "pr:reviewer:unapproved"]
    assert emitted[1].cloud_body["approval"]["user"]["username"] == "alice"
    assert emitted[3].cloud_body["changes_request"]["user"]["username"] == "alice"
    assert emitted[2].server_body["participant"]["status"] == "UNAPPROVED"
    assert emitted[2].server_body["previousStatus"] == "APPROVED"
    activity = client.get(CLOUD + "/1/activity", headers=carol.auth).json()["values"]
    kinds = [next(k for k in v if k != "pull_request") for v in activity]
    # Cloud's activity shows approvals and change requests, not their withdrawal.
    assert kinds == ["changes_requested", "approval", "update"]
    assert activity[1]["approval"]["user"]["username"] == "alice"
    # A declined pull request takes no more reviews.
    client.post(CLOUD + "/1/decline", headers=bob.auth)
    cloud_error(client.post(CLOUD + "/1/approve", headers=alice.auth), 400, "declined")
    assert emitted[-1].cloud_key == "pullrequest:rejected"
    assert emitted[-1].server_key == "pr:declined"


def test_statuses_of_the_source_commit(setup, client):
    alice, bob, carol, heads = setup
    open_pr(client, bob)
    status = {"key": "ci", "state": "SUCCESSFUL", "url": "https://ci.example.com/1"}
    r = client.post(f"/2.0/repositories/acme/widget/commit/{heads['feature']}/statuses/build",
                    json=status, headers=alice.auth)
    assert r.status_code == 201, r.text
    client.post(f"/2.0/repositories/acme/widget/commit/{heads['main']}/statuses/build",
                json={**status, "key": "main-ci"}, headers=alice.auth)
    page = client.get(CLOUD + "/1/statuses", headers=carol.auth).json()
    assert [(s["key"], s["state"]) for s in cloud_page(page, size=1)] == [("ci", "SUCCESSFUL")]


def test_default_reviewers_are_empty_pages(setup, client):
    _, _, carol, _ = setup
    for path in ("effective-default-reviewers", "default-reviewers"):
        page = client.get(f"/2.0/repositories/acme/widget/{path}", headers=carol.auth).json()
        assert cloud_page(page, size=0) == []


def test_policy_matrix(setup, client, world):
    alice, bob, _, _ = setup
    open_pr(client, bob)
    comment = {"content": {"raw": "hi"}}
    # An app password with `pullrequest` reads pull requests but cannot comment or approve.
    reader = app_password(client, alice, ["pullrequest"])
    assert client.get(CLOUD, headers=reader).status_code == 200
    assert client.get(CLOUD + "/1/comments", headers=reader).status_code == 200
    cloud_error(client.post(CLOUD + "/1/comments", json=comment, headers=reader), 403,
                "pullrequest:write")
    cloud_error(client.post(CLOUD + "/1/approve", headers=reader), 403, "pullrequest:write")
    # `repository` alone does not read pull requests.
    cloud_error(client.get(CLOUD, headers=app_password(client, alice, ["repository"])), 403,
                "pullrequest")
    writer = app_password(client, alice, ["pullrequest:write"])
    assert client.post(CLOUD + "/1/approve", headers=writer).status_code == 200
    # A REPO_READ personal token reads, cannot comment; REPO_WRITE comments.
    read_pat = pat(client, alice, ["REPO_READ"])
    assert client.get(CLOUD + "/1", headers=read_pat).status_code == 200
    cloud_error(client.post(CLOUD + "/1/comments", json=comment, headers=read_pat), 403)
    write_pat = pat(client, bob, ["REPO_WRITE"])
    assert client.post(CLOUD + "/1/comments", json=comment,
                       headers=write_pat).status_code == 201
    # Another repository's token sees no pull request of this one: 404.
    other = repo_token(client, alice, "elsewhere", ["pullrequest:write"])
    cloud_error(client.get(CLOUD, headers=other), 404)
    cloud_error(client.get(CLOUD + "/1", headers=other), 404)
    cloud_error(client.post(CLOUD + "/1/comments", json=comment, headers=other), 404)
    # This repository's token acts as itself: it may comment and open, not approve.
    own = repo_token(client, alice, "widget", ["pullrequest:write"])
    made = client.post(CLOUD + "/1/comments", json=comment, headers=own)
    assert made.status_code == 201 and made.json()["user"]["type"] == "app_user"
    cloud_error(client.post(CLOUD + "/1/approve", headers=own), 403, "user")
    r = client.post(CLOUD, json={"title": "bot", "source": {"branch": {"name": "other"}}},
                    headers=own)
    assert r.status_code == 201 and r.json()["author"]["type"] == "app_user"
    # Outsiders see nothing; anonymous callers are asked to sign in.
    dave = world.user("dave")
    cloud_error(client.get(CLOUD, headers=dave.auth), 404)
    cloud_error(client.get(CLOUD), 401)


def test_push_moving_the_source_updates_the_pull_request(setup, client, world, emitted):
    alice, bob, carol, heads = setup
    open_pr(client, bob)
    client.post(CLOUD + "/1/approve", headers=alice.auth)
    # The source moved by REST (deleted, created elsewhere): pushes without a pack.
    deleted = client.delete("/2.0/repositories/acme/widget/refs/branches/feature",
                            headers=bob.auth)
    assert deleted.status_code == 204
    # Deleting the source branch leaves the pull request open at its last commit.
    pr = client.get(CLOUD + "/1", headers=carol.auth).json()
    assert pr["state"] == "OPEN" and pr["source"]["commit"]["hash"] == heads["feature"]
    made = client.post("/2.0/repositories/acme/widget/refs/branches",
                       json={"name": "feature", "target": {"hash": heads["other"]}},
                       headers=bob.auth)
    assert made.status_code == 201, made.text
    pr = client.get(CLOUD + "/1", headers=carol.auth).json()
    assert pr["source"]["commit"]["hash"] == heads["other"]
    assert pr["updated_on"] > pr["created_on"]
    keys = [(e.cloud_key, e.server_key) for e in emitted]
    assert keys[-1] == ("pullrequest:updated", "pr:from_ref_updated")
    assert emitted[-1].server_body["previousFromHash"] == heads["feature"]
    assert emitted[-1].server_body["actor"]["name"] == "bob"
    # Rendered as the request that moved the ref links (Caller.base_url).
    assert emitted[-1].cloud_body["pullrequest"]["links"]["self"]["href"] == (
        "http://testserver" + CLOUD + "/1")
    assert emitted[-1].server_body["pullRequest"]["fromRef"]["latestCommit"] == heads["other"]
    activity = client.get(CLOUD + "/1/activity", headers=carol.auth).json()["values"]
    assert activity[0]["update"]["source"]["commit"]["hash"] == heads["other"]
    server = client.get("/rest/api/1.0/projects/PRJ/repos/widget/pull-requests/1/activities",
                        headers=carol.auth).json()["values"][0]
    assert server["action"] == "RESCOPED"
    assert (server["previousFromHash"], server["fromHash"]) == (heads["feature"],
                                                                heads["other"])


def test_a_removed_reviewer_who_reviewed_stays_a_participant(setup, client):
    alice, bob, carol, _ = setup
    made = open_pr(client, bob, draft=True, reviewers=[{"username": "alice"},
                                                        {"username": "carol"}])
    assert made["draft"] is True
    assert client.post(CLOUD + "/1/approve", headers=alice.auth).status_code == 200
    r = client.put(CLOUD + "/1", json={"reviewers": [], "draft": False}, headers=bob.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reviewers"] == [] and body["draft"] is False
    # Carol had not reviewed: gone. Alice approved: her approval stays, as a participant.
    assert [(p["user"]["username"], p["role"], p["approved"]) for p in body["participants"]] \
        == [("alice", "PARTICIPANT", True)]
    del carol


def test_pull_requests_of_a_commit(setup, client):
    _, bob, carol, heads = setup
    open_pr(client, bob)
    open_pr(client, bob, "other")
    base = "/2.0/repositories/acme/widget/commit/{}/pullrequests"
    page = client.get(base.format(heads["feature"]), headers=carol.auth).json()
    assert [p["id"] for p in cloud_page(page, size=1)] == [1]
    assert cloud_page(client.get(base.format(heads["main"]), headers=carol.auth).json(),
                      size=0) == []
    cloud_error(client.get(base.format("0" * 40), headers=carol.auth), 404)
    server = client.get("/rest/api/1.0/projects/PRJ/repos/widget/commits/"
                        f"{heads['other']}/pull-requests", headers=carol.auth).json()
    assert [p["id"] for p in server["values"]] == [2]


def test_pull_requests_of_a_user(setup, client, world):
    alice, bob, carol, _ = setup
    open_pr(client, bob)
    open_pr(client, alice, "other")
    mine = client.get("/2.0/pullrequests/bob", headers=carol.auth).json()
    assert [(p["id"], p["author"]["username"]) for p in cloud_page(mine, size=1)] == [
        (1, "bob")]
    in_workspace = client.get("/2.0/workspaces/acme/pullrequests/alice", headers=carol.auth)
    assert [p["id"] for p in in_workspace.json()["values"]] == [2]
    # What the caller cannot read is not listed.
    dave = world.user("dave")
    assert cloud_page(client.get("/2.0/pullrequests/bob", headers=dave.auth).json(),
                      size=0) == []
    cloud_error(client.get("/2.0/pullrequests/nobody", headers=carol.auth), 404)
    cloud_error(client.get("/2.0/workspaces/nowhere/pullrequests/bob", headers=carol.auth),
                404)


def test_merge_strategies_close_source_and_events(setup, client, world, emitted):
    _alice, bob, carol, heads = setup
    open_pr(client, bob, close_source_branch=True)
    # main is the source of another pull request: it follows main when the merge moves it.
    follower = open_pr(client, bob, "main", destination={"branch": {"name": "other"}},
                       close_source_branch=True)
    assert follower["id"] == 2
    cloud_error(client.post(CLOUD + "/1/merge", json={"merge_strategy": "octopus"},
                            headers=bob.auth), 400, "strategy")
    cloud_error(client.post(CLOUD + "/1/merge", json={"merge_strategy": "no-ff"},
                            headers=bob.auth), 400, "strategy")  # Server's id, not Cloud's
    cloud_error(client.post(CLOUD + "/1/merge", headers=carol.auth), 403)
    # What atlassian-python-api's PullRequest.merge sends.
    r = client.post(CLOUD + "/1/merge", json={"close_source_branch": True,
                                              "merge_strategy": "merge_commit"},
                    headers=bob.auth)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["state"] == "MERGED" and merged["closed_by"]["username"] == "bob"
    tip = git(world, "widget", "rev-parse", "refs/heads/main")
    assert merged["merge_commit"]["hash"] == tip
    parents = git(world, "widget", "rev-list", "--parents", "-n", "1", tip).split()[1:]
    assert parents == [heads["main"], heads["feature"]]
    assert "Merged in feature (pull request #1)" in git(world, "widget", "log", "-1",
                                                        "--format=%B", tip)
    # The source branch went with the merge; the merged pull request keeps its commits.
    assert git(world, "widget", "branch", "--list", "feature") == ""
    assert [c["hash"] for c in client.get(CLOUD + "/1/commits",
                                          headers=carol.auth).json()["values"]] == [
        heads["feature"]]
    assert merged["destination"]["commit"]["hash"] == heads["main"]
    cloud_error(client.post(CLOUD + "/1/merge", headers=bob.auth), 400, "merged")
    keys = [(e.cloud_key, e.server_key) for e in emitted]
    assert ("pullrequest:fulfilled", "pr:merged") in keys
    fulfilled = next(e for e in emitted if e.cloud_key == "pullrequest:fulfilled")
    assert fulfilled.cloud_body["pullrequest"]["state"] == "MERGED"
    assert fulfilled.server_body["pullRequest"]["properties"]["mergeCommit"]["id"] == tip
    activity = client.get(CLOUD + "/1/activity", headers=carol.auth).json()["values"]
    assert activity[0]["update"]["state"] == "MERGED"
    merged_list = client.get(CLOUD + "?state=MERGED", headers=carol.auth).json()
    assert [p["id"] for p in merged_list["values"]] == [1]
    assert client.get(CLOUD + "/2", headers=carol.auth).json()["source"]["commit"][
        "hash"] == tip
    with world.runtime.unit_of_work() as store:
        audited = [dict(e.details) for e in store.audit.events()
                   if e.action == "pullrequest.merge"]
    assert audited == [{"id": 1, "strategy": "merge_commit", "commit": tip,
                        "credential": "password"}]
    # close_source_branch never deletes the main branch.
    r = client.post(CLOUD + "/2/merge", headers=bob.auth)
    assert r.status_code == 200, r.text
    assert git(world, "widget", "rev-parse", "refs/heads/main") == tip

    # Squash: one new commit on main, its only parent main's head.
    tip = git(world, "widget", "rev-parse", "refs/heads/main")
    other = git(world, "widget", "rev-parse", "refs/heads/other")
    open_pr(client, bob, "other")
    squashed = client.post(CLOUD + "/3/merge", json={"merge_strategy": "squash",
                                                     "message": "Squashed other"},
                           headers=bob.auth)
    assert squashed.status_code == 200, squashed.text
    new_tip = git(world, "widget", "rev-parse", "refs/heads/main")
    assert git(world, "widget", "rev-list", "--parents", "-n", "1", new_tip).split()[1:] == [
        tip]
    assert git(world, "widget", "log", "-1", "--format=%s", new_tip) == "Squashed other"
    assert git(world, "widget", "rev-parse", "refs/heads/other") == other  # kept


def test_conflicts_and_fast_forward_refusals(setup, client, world):
    _, bob, _, heads = setup
    open_pr(client, bob)
    open_pr(client, bob, "clash")
    # main has not moved: feature fast-forwards it.
    r = client.post(CLOUD + "/1/merge", json={"merge_strategy": "fast_forward"},
                    headers=bob.auth)
    assert r.status_code == 200, r.text
    assert r.json()["merge_commit"]["hash"] == heads["feature"]
    # clash now conflicts with main in a.txt: refused, named, nothing moved.
    cloud_error(client.post(CLOUD + "/2/merge", headers=bob.auth), 400, "a.txt")
    cloud_error(client.post(CLOUD + "/2/merge", json={"merge_strategy": "fast_forward"},
                            headers=bob.auth), 400, "fast-forward")
    assert git(world, "widget", "rev-parse", "refs/heads/main") == heads["feature"]
    assert client.get(CLOUD + "/2", headers=bob.auth).json()["state"] == "OPEN"
