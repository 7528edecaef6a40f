"""atlassian-python-api's pull-request calls, unchanged, against a running server, with the
real git client pushing to a pull request's source branch (the post-receive hook moves the
pull request: its source commit and version).

Cloud: `repositories.get(...).pullrequests.create/each/get`, and a `PullRequest`'s
`comment`, `comments`, `approve`, `unapprove`, `request_changes`, `unrequest_changes`,
`diffstat`, `diff`, `commits`, `statuses`, `participants`, `decline`, `merge`. Server:
`open_pull_request`, `get_pull_requests`, `get_pull_request`, `add_pull_request_comment`,
`change_reviewed_status`, `get_pull_requests_activities`, `get_pull_requests_commits`,
`get_pull_requests_changes`, `decline_pull_request`, `reopen_pull_request`,
`get_pull_request_settings`, `is_pull_request_can_be_merged`.
"""

from __future__ import annotations

import pytest
from atlassian import Bitbucket
from atlassian.bitbucket import Cloud

from tests.e2e.conftest import project_key

pytestmark = pytest.mark.e2e


def test_pull_request_clients_and_a_push_to_the_source(gitward_server):
    server = gitward_server
    owner = server.create_user()
    reviewer = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.grant(owner, workspace, slug, reviewer, "write")
    seed = server.seed(owner, workspace, slug)
    server.git("checkout", "-q", "-b", "feature", cwd=seed)
    (seed / "app.py").write_text("print('x')\n")
    server.git("add", ".", cwd=seed)
    server.git("commit", "-qm", "app", cwd=seed)
    server.git("push", "-q", "origin", "feature", cwd=seed)
    head = server.git("rev-parse", "HEAD", cwd=seed).stdout.strip()

    cloud = Cloud(url=server.base_url, username=owner.username, password=owner.password)
    repo = cloud.workspaces.get(workspace).repositories.get(slug)
    pr = repo.pullrequests.create("Add app", "feature", "main", description="It adds app.py")
    assert (pr.id, pr.is_open, pr.source_branch, pr.destination_branch) == (
        1, True, "feature", "main")
    assert pr.source_commit == head and pr.author.display_name
    assert [p.id for p in repo.pullrequests.each()] == [1]
    assert repo.pullrequests.get(1).title == "Add app"
    pr.comment("Looks fine")
    assert [c.raw for c in pr.comments()] == ["Looks fine"]
    assert [c.hash for c in pr.commits] == [head]
    assert [d.new.path for d in pr.diffstat()] == ["app.py"] and not pr.has_conflict
    assert "+print('x')" in pr.diff()
    assert list(pr.statuses()) == []

    theirs = Cloud(url=server.base_url, username=reviewer.username, password=reviewer.password)
    their_pr = theirs.repositories.get(workspace, slug).pullrequests.get(1)
    their_pr.approve()
    approvals = {p.user.nickname: p.has_approved for p in repo.pullrequests.get(1).participants()}
    assert approvals == {owner.username: False, reviewer.username: True}
    their_pr.unapprove()
    their_pr.request_changes()
    asked = {p.user.nickname: p.has_changes_requested
             for p in repo.pullrequests.get(1).participants()}
    assert asked == {owner.username: False, reviewer.username: True}
    their_pr.unrequest_changes()

    # A push to the source branch moves the pull request.
    (seed / "app.py").write_text("print('y')\n")
    server.git("commit", "-qam", "y", cwd=seed)
    server.git("push", "-q", "origin", "feature", cwd=seed)
    moved = server.git("rev-parse", "HEAD", cwd=seed).stdout.strip()
    assert repo.pullrequests.get(1).source_commit == moved

    bitbucket = Bitbucket(url=server.base_url, username=owner.username,
                          password=owner.password)
    key = project_key(workspace)
    got = bitbucket.get_pull_request(key, slug, 1)
    assert got["fromRef"]["latestCommit"] == moved and got["version"] == 1
    listed = list(bitbucket.get_pull_requests(key, slug))
    assert [p["id"] for p in listed] == [1]
    bitbucket.add_pull_request_comment(key, slug, 1, "Server comment")
    actions = [a["action"] for a in bitbucket.get_pull_requests_activities(key, slug, 1)]
    assert actions[:2] == ["COMMENTED", "RESCOPED"] and actions[-1] == "OPENED"
    assert [c["id"] for c in bitbucket.get_pull_requests_commits(key, slug, 1)] == [moved, head]
    assert [c["path"]["toString"] for c in bitbucket.get_pull_requests_changes(key, slug, 1)] \
        == ["app.py"]
    server_reviewer = Bitbucket(url=server.base_url, username=reviewer.username,
                                password=reviewer.password)
    status = server_reviewer.change_reviewed_status(key, slug, 1, "NEEDS_WORK",
                                                    reviewer.username)
    assert status["status"] == "NEEDS_WORK"
    settings = bitbucket.get_pull_request_settings(key, slug)
    assert settings["mergeConfig"]["defaultStrategy"]["id"] == "no-ff"
    declined = bitbucket.decline_pull_request(key, slug, 1, got["version"])
    assert declined["state"] == "DECLINED"
    reopened = bitbucket.reopen_pull_request(key, slug, 1, declined["version"])
    assert reopened["state"] == "OPEN"
    # Cloud's decline, on the reopened pull request; reopened again, then merged.
    repo.pullrequests.get(1).decline()
    assert repo.pullrequests.get(1).is_declined
    version = bitbucket.get_pull_request(key, slug, 1)["version"]
    bitbucket.reopen_pull_request(key, slug, 1, version)
    check = bitbucket.is_pull_request_can_be_merged(key, slug, 1)
    assert (check["canMerge"], check["conflicted"], check["outcome"]) == (True, False, "CLEAN")
    repo.pullrequests.get(1).merge(merge_strategy="squash", close_source_branch=True)
    done = repo.pullrequests.get(1)
    assert done.is_merged and done.get_data("merge_commit")["hash"]
    assert set(server.branches(owner, workspace, slug)) == {"main"}
    server.git("fetch", "-q", "origin", "main", cwd=seed)
    merged = server.git("show", "FETCH_HEAD:app.py", cwd=seed).stdout
    assert merged == "print('y')\n"
    assert server.git("rev-list", "--count", "FETCH_HEAD", cwd=seed).stdout.strip() == "2"
