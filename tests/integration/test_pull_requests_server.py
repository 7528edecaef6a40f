"""Pull requests on the Server API: P/pull-requests and everything under it.

Runs on SQLite and PostgreSQL (the `settings` fixture). Where the expected shapes come from:
Bitbucket Server's REST reference, "Pull requests" (the pull request: `id`, `version`,
`title`, `description`, `state`, `open`, `closed`, `createdDate`, `updatedDate`,
`closedDate`, `fromRef`/`toRef` with `id`, `displayId`, `latestCommit`, `type`,
`repository`, `locked`, `author`, `reviewers`, `participants` (`user`, `role`, `approved`,
`status`, `lastReviewedCommit`), `properties`, `links.self`; activities with `action`,
`commentAction`, `comment`, RESCOPED's `fromHash`/`previousFromHash`; comments with
`version`, `text`, `author`, `comments`, `anchor` (`path`, `line`, `lineType`, `fileType`);
the stale-version 409 `PullRequestOutOfDateException`; `settings/pull-requests`'
`mergeConfig`), and what atlassian-python-api's `bitbucket/__init__.py` sends (create with
`fromRef`/`toRef` and `reviewers: [{"user": {"name"}}]`, `decline_pull_request` and
`reopen_pull_request` with `?version=`, `change_reviewed_status`'s PUT participants/{slug},
comments with `parent` and `anchor`, DELETE comments with `?version=`).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from gitward.storage.models import PullRequest
from tests.integration import pull_request_helpers as helpers
from tests.integration.api_checks import server_error
from tests.integration.pull_request_helpers import SERVER, pat, repo_token

setup = helpers.setup
emitted = helpers.emitted

PR_KEYS = {"id", "version", "title", "description", "state", "open", "closed",
           "createdDate", "updatedDate", "fromRef", "toRef", "locked", "draft", "author",
           "reviewers", "participants", "properties", "links"}


def body_of(source: str = "feature", **extra: Any) -> dict[str, Any]:
    """What atlassian-python-api's `open_pull_request` sends."""
    repo = {"slug": "widget", "name": "widget", "project": {"key": "PRJ"}}
    return {"title": "Add b", "description": "It adds b.",
            "fromRef": {"id": f"refs/heads/{source}", "repository": repo},
            "toRef": {"id": "refs/heads/main", "repository": repo}, "reviewers": [], **extra}


def open_pr(client: Any, who: Any, source: str = "feature", **extra: Any) -> dict[str, Any]:
    r = client.post(SERVER, json=body_of(source, **extra), headers=who.auth)
    assert r.status_code == 201, r.text
    return r.json()


def page_of(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"size", "limit", "isLastPage", "start", "values"} <= set(body), body
    assert body["size"] == len(body["values"])
    values: list[dict[str, Any]] = body["values"]
    return values


def test_create_get_and_shape(setup, client, emitted):
    _, bob, carol, heads = setup
    made = open_pr(client, bob, reviewers=[{"user": {"name": "carol"}}])
    assert set(made) == PR_KEYS
    assert (made["id"], made["version"], made["state"]) == (1, 0, "OPEN")
    assert (made["open"], made["closed"], made["locked"]) == (True, False, False)
    assert isinstance(made["createdDate"], int) and made["updatedDate"] >= made["createdDate"]
    assert made["fromRef"]["id"] == "refs/heads/feature"
    assert made["fromRef"]["displayId"] == "feature" and made["fromRef"]["type"] == "BRANCH"
    assert made["fromRef"]["latestCommit"] == heads["feature"]
    assert made["toRef"]["latestCommit"] == heads["main"]
    assert made["toRef"]["repository"]["slug"] == "widget"
    assert made["toRef"]["repository"]["project"]["key"] == "PRJ"
    assert made["author"] == {"user": made["author"]["user"], "role": "AUTHOR",
                              "approved": False, "status": "UNAPPROVED"}
    assert made["author"]["user"]["name"] == "bob"
    assert [(r["user"]["name"], r["role"], r["status"]) for r in made["reviewers"]] == [
        ("carol", "REVIEWER", "UNAPPROVED")]
    assert made["participants"] == []
    assert made["properties"]["commentCount"] == 0
    assert made["links"]["self"][0]["href"].endswith(
        "/projects/PRJ/repos/widget/pull-requests/1/overview")
    got = client.get(SERVER + "/1", headers=carol.auth)
    assert got.status_code == 200 and got.json() == made
    assert emitted[0].server_key == "pr:opened"
    assert emitted[0].server_body["pullRequest"]["id"] == 1
    assert emitted[0].server_body["eventKey"] == "pr:opened"
    assert emitted[0].server_body["actor"]["name"] == "bob"


def test_create_refusals(setup, client, world):
    _, bob, _, _ = setup
    post = lambda body: client.post(SERVER, json=body, headers=bob.auth)  # noqa: E731
    server_error(post(body_of("nope")), 400, "does not exist")
    server_error(post(body_of("main")), 400, "differ")
    server_error(post({"title": "x"}), 400, "fromRef")
    other_repo = body_of()
    other_repo["fromRef"]["repository"] = {"slug": "elsewhere", "project": {"key": "PRJ"}}
    server_error(post(other_repo), 400, "forks")
    open_pr(client, bob)
    duplicate = server_error(post(body_of()), 409, "only one pull request")
    assert duplicate["errors"][0]["exceptionName"].startswith("com.atlassian.bitbucket.")
    server_error(client.get(SERVER + "/42", headers=bob.auth), 404)


def test_listing_filters(setup, client):
    alice, bob, carol, _ = setup
    open_pr(client, bob, reviewers=[{"user": {"name": "carol"}}])
    open_pr(client, alice, "other")
    assert [p["id"] for p in page_of(client.get(SERVER, headers=carol.auth))] == [2, 1]
    oldest = client.get(SERVER, params={"order": "OLDEST"}, headers=carol.auth)
    assert [p["id"] for p in page_of(oldest)] == [1, 2]
    version = client.get(SERVER + "/1", headers=carol.auth).json()["version"]
    r = client.post(SERVER + f"/1/decline?version={version}", headers=bob.auth)
    assert r.status_code == 200 and r.json()["state"] == "DECLINED", r.text
    assert r.json()["version"] == version + 1 and r.json()["closed"] is True
    assert "closedDate" in r.json()
    assert [p["id"] for p in page_of(client.get(SERVER, headers=carol.auth))] == [2]
    every = client.get(SERVER, params={"state": "ALL"}, headers=carol.auth)
    assert [p["id"] for p in page_of(every)] == [2, 1]
    declined = client.get(SERVER, params={"state": "DECLINED"}, headers=carol.auth)
    assert [p["id"] for p in page_of(declined)] == [1]
    at = {"state": "ALL", "at": "refs/heads/other", "direction": "OUTGOING"}
    assert [p["id"] for p in page_of(client.get(SERVER, params=at, headers=carol.auth))] == [2]
    at["direction"] = "INCOMING"
    assert page_of(client.get(SERVER, params=at, headers=carol.auth)) == []
    at["at"] = "refs/heads/main"
    assert len(page_of(client.get(SERVER, params=at, headers=carol.auth))) == 2
    role = {"state": "ALL", "role.1": "REVIEWER", "username.1": "carol"}
    assert [p["id"] for p in page_of(client.get(SERVER, params=role, headers=carol.auth))] == [1]
    role = {"state": "ALL", "role.1": "AUTHOR", "username.1": "alice"}
    assert [p["id"] for p in page_of(client.get(SERVER, params=role, headers=carol.auth))] == [2]
    limited = client.get(SERVER, params={"state": "ALL", "limit": 1}, headers=carol.auth).json()
    assert (limited["isLastPage"], limited["nextPageStart"]) == (False, 1)
    server_error(client.get(SERVER, params={"state": "SHUT"}, headers=carol.auth), 400)
    server_error(client.get(SERVER, params={"direction": "UP"}, headers=carol.auth), 400)
    server_error(client.get(SERVER, params={"role.1": "BOSS", "username.1": "x"},
                            headers=carol.auth), 400)


def test_version_is_checked_on_every_change(setup, client, emitted):
    _, bob, carol, heads = setup
    made = open_pr(client, bob)
    r = client.put(SERVER + "/1", json={"version": 0, "title": "Better",
                                        "reviewers": [{"user": {"name": "carol"}}]},
                   headers=bob.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["title"]) == (1, "Better")
    assert [x["user"]["name"] for x in r.json()["reviewers"]] == ["carol"]
    assert r.json()["description"] == made["description"]
    stale = server_error(client.put(SERVER + "/1", json={"version": 0, "title": "Again"},
                                    headers=bob.auth), 409, "out-of-date")
    assert stale["errors"][0]["exceptionName"] == (
        "com.atlassian.bitbucket.pull.PullRequestOutOfDateException")
    server_error(client.put(SERVER + "/1", json={"title": "No version"}, headers=bob.auth),
                 400, "version")
    server_error(client.post(SERVER + "/1/decline?version=0", headers=bob.auth), 409)
    r = client.put(SERVER + "/1", json={"version": 1, "toRef": {"id": "refs/heads/other"}},
                   headers=bob.auth)
    assert r.status_code == 200 and r.json()["toRef"]["latestCommit"] == heads["other"]
    assert r.json()["version"] == 2
    assert client.post(SERVER + "/1/decline?version=2", headers=bob.auth).json()["version"] == 3
    server_error(client.post(SERVER + "/1/reopen?version=2", headers=bob.auth), 409)
    reopened = client.post(SERVER + "/1/reopen?version=3", headers=bob.auth)
    assert reopened.status_code == 200, reopened.text
    assert (reopened.json()["state"], reopened.json()["version"]) == ("OPEN", 4)
    server_error(client.post(SERVER + "/1/reopen?version=4", headers=bob.auth), 409, "open")
    assert [e.server_key for e in emitted] == ["pr:opened", "pr:modified", "pr:modified",
                                              "pr:declined", "pr:opened"]
    actions = [a["action"] for a in page_of(client.get(SERVER + "/1/activities",
                                                       headers=carol.auth))]
    assert actions == ["REOPENED", "DECLINED", "UPDATED", "UPDATED", "OPENED"]
    updated = page_of(client.get(SERVER + "/1/activities", headers=carol.auth))[3]
    assert updated["addedReviewers"] == [{"name": "carol", "slug": "carol"}]
    # Carol reads, cannot write.
    server_error(client.post(SERVER + "/1/decline?version=4", headers=carol.auth), 403)


def test_reviews_through_participants(setup, client, emitted):
    alice, bob, carol, _ = setup
    open_pr(client, bob, reviewers=[{"user": {"name": "alice"}}])
    # What atlassian-python-api's change_reviewed_status sends.
    r = client.put(SERVER + "/1/participants/alice",
                   json={"user": {"name": "alice"}, "approved": True, "status": "APPROVED"},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "APPROVED" and r.json()["approved"] is True
    assert r.json()["lastReviewedCommit"] == client.get(
        SERVER + "/1", headers=carol.auth).json()["fromRef"]["latestCommit"]
    r = client.put(SERVER + "/1/participants/alice", json={"status": "NEEDS_WORK"},
                   headers=alice.auth)
    assert r.json()["status"] == "NEEDS_WORK" and r.json()["approved"] is False
    server_error(client.put(SERVER + "/1/participants/alice", json={"status": "MAYBE"},
                            headers=alice.auth), 400, "status")
    server_error(client.put(SERVER + "/1/participants/bob", json={"status": "APPROVED"},
                            headers=alice.auth), 403, "yourself")
    server_error(client.put(SERVER + "/1/participants/bob", json={"status": "APPROVED"},
                            headers=bob.auth), 400, "own")
    assert client.delete(SERVER + "/1/approve", headers=alice.auth).json()["status"] == (
        "NEEDS_WORK")  # withdrawing an approval she no longer gives changes nothing
    assert client.post(SERVER + "/1/approve", headers=carol.auth).status_code == 403
    pr = client.get(SERVER + "/1", headers=carol.auth).json()
    assert pr["version"] == 0  # reviews are the participants', not the pull request's
    assert [(x["user"]["name"], x["status"]) for x in pr["reviewers"]] == [
        ("alice", "NEEDS_WORK")]
    assert [e.server_key for e in emitted] == ["pr:opened", "pr:reviewer:approved",
                                              "pr:reviewer:needs_work"]
    assert emitted[2].server_body["previousStatus"] == "APPROVED"
    assert emitted[2].server_body["participant"]["user"]["name"] == "alice"
    listed = page_of(client.get(SERVER + "/1/participants", headers=carol.auth))
    assert [(p["user"]["name"], p["role"]) for p in listed] == [("bob", "AUTHOR"),
                                                              ("alice", "REVIEWER")]
    actions = [a["action"] for a in page_of(client.get(SERVER + "/1/activities",
                                                       headers=carol.auth))]
    assert actions == ["REVIEWED", "APPROVED", "OPENED"]
    # Adding and removing a reviewer.
    r = client.post(SERVER + "/1/participants", json={"user": {"name": "carol"},
                                                      "role": "REVIEWER"}, headers=bob.auth)
    assert r.status_code == 200 and r.json()["role"] == "REVIEWER", r.text
    assert client.delete(SERVER + "/1/participants/carol", headers=bob.auth).status_code == 204
    reviewers = client.get(SERVER + "/1", headers=carol.auth).json()["reviewers"]
    assert [x["user"]["name"] for x in reviewers] == ["alice"]


def test_comments_replies_anchor_edit_delete(setup, client, emitted):
    alice, bob, carol, _ = setup
    open_pr(client, bob)
    r = client.post(SERVER + "/1/comments", json={"text": "Looks good"}, headers=alice.auth)
    assert r.status_code == 201, r.text
    top = r.json()
    assert {"id", "version", "text", "author", "createdDate", "updatedDate", "comments",
            "properties", "permittedOperations"} <= set(top)
    assert (top["version"], top["text"], top["author"]["name"]) == (0, "Looks good", "alice")
    reply = client.post(SERVER + "/1/comments", json={"text": "Thanks",
                                                      "parent": {"id": top["id"]}},
                        headers=bob.auth).json()
    anchor = {"path": "a.txt", "line": 2, "lineType": "ADDED", "fileType": "TO",
              "diffType": "EFFECTIVE"}
    inline = client.post(SERVER + "/1/comments", json={"text": "typo", "anchor": anchor},
                         headers=alice.auth).json()
    assert {k: inline["anchor"][k] for k in ("path", "line", "lineType", "fileType")} == {
        "path": "a.txt", "line": 2, "lineType": "ADDED", "fileType": "TO"}
    server_error(client.post(SERVER + "/1/comments",
                             json={"text": "x", "anchor": {**anchor, "fileType": "SIDE"}},
                             headers=alice.auth), 400, "fileType")
    got = client.get(SERVER + f"/1/comments/{top['id']}", headers=carol.auth).json()
    assert [c["id"] for c in got["comments"]] == [reply["id"]]
    listed = page_of(client.get(SERVER + "/1/comments", headers=carol.auth))
    assert [c["id"] for c in listed] == [top["id"], inline["id"]]
    on_file = page_of(client.get(SERVER + "/1/comments", params={"path": "a.txt"},
                                 headers=carol.auth))
    assert [c["id"] for c in on_file] == [inline["id"]]
    # Edits need the current version; only the author edits.
    server_error(client.put(SERVER + f"/1/comments/{top['id']}",
                            json={"text": "x", "version": 0}, headers=bob.auth), 403)
    edited = client.put(SERVER + f"/1/comments/{top['id']}",
                        json={"text": "Looks great", "version": 0}, headers=alice.auth)
    assert edited.status_code == 200 and edited.json()["version"] == 1
    server_error(client.put(SERVER + f"/1/comments/{top['id']}",
                            json={"text": "stale", "version": 0}, headers=alice.auth), 409)
    server_error(client.delete(SERVER + f"/1/comments/{top['id']}?version=0",
                               headers=alice.auth), 409)
    assert client.delete(SERVER + f"/1/comments/{top['id']}?version=1",
                         headers=alice.auth).status_code == 204
    server_error(client.get(SERVER + f"/1/comments/{top['id']}", headers=carol.auth), 404)
    activities = page_of(client.get(SERVER + "/1/activities", headers=carol.auth))
    commented = [a for a in activities if a["action"] == "COMMENTED"]
    assert [a["comment"]["id"] for a in commented] == [inline["id"], reply["id"]]
    assert all(a["commentAction"] == "ADDED" for a in commented)
    assert commented[0]["commentAnchor"]["path"] == "a.txt"
    assert [e.server_key for e in emitted][1:] == ["pr:comment:added"] * 3 + [
        "pr:comment:edited", "pr:comment:deleted"]
    assert client.get(SERVER + "/1", headers=carol.auth).json()["properties"][
        "commentCount"] == 2


def test_commits_changes_and_diff(setup, client):
    _, bob, carol, heads = setup
    open_pr(client, bob)
    commits = page_of(client.get(SERVER + "/1/commits", headers=carol.auth))
    assert [c["id"] for c in commits] == [heads["feature"]]
    assert commits[0]["displayId"] == heads["feature"][:11]
    changes = client.get(SERVER + "/1/changes", headers=carol.auth).json()
    assert changes["toHash"] == heads["feature"] and changes["fromHash"] == heads["main"]
    assert sorted((c["path"]["toString"], c["type"]) for c in changes["values"]) == [
        ("a.txt", "MODIFY"), ("b.txt", "ADD")]
    diff = client.get(SERVER + "/1.diff", headers=carol.auth)
    assert diff.status_code == 200 and "+b" in diff.text


def test_delete_only_author_or_admin(setup, client, world, emitted):
    alice, bob, carol, _ = setup
    open_pr(client, bob)
    dave = world.user("dave")
    world.grant_repo(alice, "acme", "widget", "dave", "write")
    server_error(client.request("DELETE", SERVER + "/1", json={"version": 0},
                                headers=dave.auth), 403, "admin")
    server_error(client.request("DELETE", SERVER + "/1", json={"version": 5},
                                headers=bob.auth), 409)
    r = client.request("DELETE", SERVER + "/1", json={"version": 0}, headers=bob.auth)
    assert r.status_code == 204, r.text
    server_error(client.get(SERVER + "/1", headers=carol.auth), 404)
    assert emitted[-1].server_key == "pr:deleted" and emitted[-1].cloud_key is None
    # Numbers are never handed out again.
    assert open_pr(client, bob)["id"] == 2


def test_settings_and_default_reviewers(setup, client):
    _, _, carol, _ = setup
    r = client.get("/rest/api/1.0/projects/PRJ/repos/widget/settings/pull-requests",
                   headers=carol.auth)
    assert r.status_code == 200, r.text
    merge = r.json()["mergeConfig"]
    assert merge["defaultStrategy"]["id"] == "no-ff"
    assert [s["id"] for s in merge["strategies"]] == ["no-ff", "squash", "ff-only"]
    assert all(s["enabled"] for s in merge["strategies"])
    r = client.get("/rest/default-reviewers/1.0/projects/PRJ/repos/widget/reviewers",
                   params={"sourceRepoId": 1, "targetRepoId": 1,
                           "sourceRefId": "refs/heads/feature",
                           "targetRefId": "refs/heads/main"}, headers=carol.auth)
    assert r.status_code == 200 and r.json() == []


def test_policy_matrix(setup, client):
    alice, bob, _, _ = setup
    open_pr(client, bob)
    read_pat = pat(client, alice, ["REPO_READ"])
    assert client.get(SERVER + "/1", headers=read_pat).status_code == 200
    server_error(client.post(SERVER + "/1/comments", json={"text": "x"}, headers=read_pat),
                 403)
    server_error(client.put(SERVER + "/1/participants/alice", json={"status": "APPROVED"},
                            headers=read_pat), 403)
    write_pat = pat(client, alice, ["REPO_WRITE"])
    assert client.post(SERVER + "/1/comments", json={"text": "x"},
                       headers=write_pat).status_code == 201
    other = repo_token(client, alice, "elsewhere", ["pullrequest:write"])
    server_error(client.get(SERVER + "/1", headers=other), 404)
    server_error(client.get(SERVER, headers=other), 404)


def test_filter_text_and_participant_status(setup, client):
    alice, bob, carol, _ = setup
    open_pr(client, bob, reviewers=[{"user": {"name": "alice"}}])
    open_pr(client, bob, "other", title="Unrelated", description="")
    found = page_of(client.get(SERVER, params={"filterText": "adds B"}, headers=carol.auth))
    assert [p["id"] for p in found] == [1]
    client.put(SERVER + "/1/participants/alice", json={"status": "APPROVED"},
               headers=alice.auth)
    approved = {"username.1": "alice", "approved.1": "true"}
    assert [p["id"] for p in page_of(client.get(SERVER, params=approved,
                                                headers=carol.auth))] == [1]
    needs = {"username.1": "alice", "participantStatus.1": "NEEDS_WORK"}
    assert page_of(client.get(SERVER, params=needs, headers=carol.auth)) == []


def test_dashboard_and_inbox_across_repositories(setup, client, world):
    alice, bob, carol, _ = setup
    open_pr(client, bob, reviewers=[{"user": {"name": "carol"}}])
    open_pr(client, alice, "other", reviewers=[{"user": {"name": "bob"}}])
    dashboard = "/rest/api/1.0/dashboard/pull-requests"
    mine = page_of(client.get(dashboard, headers=bob.auth))
    assert [p["id"] for p in mine] == [2, 1]
    authored = page_of(client.get(dashboard, params={"role": "AUTHOR"}, headers=bob.auth))
    assert [p["title"] for p in authored] == ["Add b"]
    inbox = page_of(client.get("/rest/api/1.0/inbox/pull-requests", headers=carol.auth))
    assert [(p["id"], p["author"]["user"]["name"]) for p in inbox] == [(1, "bob")]
    count = client.get("/rest/api/1.0/inbox/pull-requests/count", headers=bob.auth)
    assert count.status_code == 200 and count.json() == {"count": 1}
    # Losing read access to the repository hides its pull requests from the dashboard.
    r = client.delete("/2.0/repositories/acme/widget/permissions-config/users/carol",
                      headers=alice.auth)
    assert r.status_code == 204, r.text
    assert page_of(client.get("/rest/api/1.0/inbox/pull-requests", headers=carol.auth)) == []
    server_error(client.get(dashboard, params={"role": "OWNER"}, headers=bob.auth), 400)
    server_error(client.get(dashboard), 401)


def test_deleting_users_and_repositories_with_pull_requests(setup, client, world):
    alice, bob, carol, _ = setup
    world.grant_repo(alice, "acme", "widget", "carol", "write")
    open_pr(client, bob, reviewers=[{"user": {"name": "carol"}}])
    assert client.post(SERVER + "/1/comments", json={"text": "hi"},
                       headers=carol.auth).status_code == 201
    assert client.put(SERVER + "/1/participants/carol", json={"status": "APPROVED"},
                      headers=carol.auth).status_code == 200
    root = world.user("root", site_admin=True)
    # The reviewer's account goes: their part in the pull request with it; the comment
    # stays, shown as who wrote it.
    r = client.delete("/rest/api/1.0/admin/users", params={"name": "carol"}, headers=root.auth)
    assert r.status_code in (200, 204), r.text
    pr = client.get(SERVER + "/1", headers=bob.auth).json()
    assert pr["reviewers"] == []
    comments = page_of(client.get(SERVER + "/1/comments", headers=bob.auth))
    assert comments[0]["text"] == "hi" and comments[0]["author"]["displayName"]
    # The author goes: the pull request stays, its author named as they were.
    r = client.delete("/rest/api/1.0/admin/users", params={"name": "bob"}, headers=root.auth)
    assert r.status_code in (200, 204), r.text
    pr = client.get(SERVER + "/1", headers=alice.auth).json()
    assert pr["author"]["user"]["displayName"] == "bob"  # the display name it had
    cloud = client.get("/2.0/repositories/acme/widget/pullrequests/1", headers=alice.auth)
    assert cloud.status_code == 200 and cloud.json()["author"]["type"] == "app_user"
    # The repository goes, with every pull request, comment and activity of it.
    with world.runtime.unit_of_work() as store:
        view = store.repos.repository_view("acme", "widget")
        assert view is not None and len(store.pull_requests.of_repository(view.id, None)) == 1
    r = client.delete("/rest/api/1.0/projects/PRJ/repos/widget", headers=alice.auth)
    assert r.status_code == 202, r.text
    with world.runtime.unit_of_work() as store:
        assert store.pull_requests.of_repository(view.id, None) == []
    world.repository(alice, "acme", "widget", "PRJ")
    server_error(client.get(SERVER + "/1", headers=alice.auth), 404)


def test_the_database_holds_one_open_pull_request_per_branches(setup, client, world):
    """Two requests opening the same pull request at once both pass the service's check;
    the partial unique index refuses the second (answered as a duplicate)."""
    _, bob, _, _ = setup
    made = open_pr(client, bob)
    columns = [c.key for c in PullRequest.__table__.columns
               if c.key not in ("id", "uuid", "number")]

    def copy(state: str) -> None:
        with world.runtime.unit_of_work() as store:
            view = store.repos.repository_view("acme", "widget")
            first = store.pull_requests.by_number(view.id, made["id"])
            fields = {name: getattr(first, name) for name in columns}
            fields.update(state=state, number=store.pull_requests.next_number(view.id))
            store.add(PullRequest(**fields))
            store.flush()

    with pytest.raises(IntegrityError):
        copy("OPEN")
    copy("DECLINED")  # closed ones do not count


def test_merge_check_and_merge(setup, client, world, emitted):
    _, bob, carol, heads = setup
    open_pr(client, bob)
    open_pr(client, bob, "clash")
    check = client.get(SERVER + "/1/merge", headers=bob.auth)
    assert check.status_code == 200, check.text
    assert check.json() == {"canMerge": True, "conflicted": False, "outcome": "CLEAN",
                            "vetoes": []}
    # A reader may look, not merge: the check says so.
    vetoed = client.get(SERVER + "/1/merge", headers=carol.auth).json()
    assert vetoed["canMerge"] is False and vetoed["vetoes"][0]["summaryMessage"]
    server_error(client.post(SERVER + "/1/merge?version=0", headers=carol.auth), 403)
    server_error(client.post(SERVER + "/1/merge?version=3", headers=bob.auth), 409,
                 "out-of-date")
    server_error(client.post(SERVER + "/1/merge?version=0", json={"strategyId": "rebase"},
                             headers=bob.auth), 400, "strategy")
    # What atlassian-python-api's merge_pull_request sends (Cloud's names, ?version=).
    r = client.post(SERVER + "/1/merge", params={"version": 0},
                    json={"type": "pullrequest", "message": "Merge feature",
                          "close_source_branch": False, "merge_strategy": "merge_commit"},
                    headers=bob.auth)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert (merged["state"], merged["version"], merged["closed"]) == ("MERGED", 1, True)
    tip = helpers.git(world, "widget", "rev-parse", "refs/heads/main")
    assert merged["properties"]["mergeCommit"]["id"] == tip
    assert helpers.git(world, "widget", "log", "-1", "--format=%s", tip) == "Merge feature"
    assert helpers.git(world, "widget", "rev-parse", "refs/heads/feature") == heads["feature"]
    actions = [a["action"] for a in page_of(client.get(SERVER + "/1/activities",
                                                       headers=carol.auth))]
    assert actions[0] == "MERGED"
    assert emitted[-1].server_key == "pr:merged"
    assert client.get(SERVER + "/1/merge", headers=bob.auth).json()["canMerge"] is False
    # clash conflicts with the new main now.
    conflicted = client.get(SERVER + "/2/merge", headers=bob.auth).json()
    assert conflicted == {"canMerge": False, "conflicted": True, "outcome": "CONFLICTED",
                          "vetoes": []}
    server_error(client.post(SERVER + "/2/merge?version=0", headers=bob.auth), 409, "a.txt")
    # Server's own strategy ids.
    open_pr(client, bob, "other")
    r = client.post(SERVER + "/3/merge?version=0", json={"strategyId": "ff-only"},
                    headers=bob.auth)
    server_error(r, 409, "fast-forward")
    r = client.post(SERVER + "/3/merge?version=0", json={"strategyId": "squash"},
                    headers=bob.auth)
    assert r.status_code == 200, r.text
    message = helpers.git(world, "widget", "log", "-1", "--format=%B", "refs/heads/main")
    assert message.startswith("Pull request #3: Add b")
    assert "Merge in PRJ/widget from other to main" in message
