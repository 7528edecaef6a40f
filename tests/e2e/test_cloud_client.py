"""atlassian-python-api's Bitbucket `Cloud` client (pinned in the test extras), unchanged,
against a running server: workspaces, repositories, branches (each listed branch is fetched
again, as the client does, and checked against its `links.self`), tags, commits, src, and
creating and deleting a branch."""

from __future__ import annotations

import pytest
from atlassian.bitbucket import Cloud

pytestmark = pytest.mark.e2e


def test_cloud_client_reads_and_writes_content(any_gitward_server):
    server = any_gitward_server
    owner = server.create_user()
    workspace, slug = server.create_repository(owner)
    seed = server.seed(owner, workspace, slug)
    server.git("checkout", "-q", "-b", "feature/x", cwd=seed)
    (seed / "src").mkdir()
    (seed / "src" / "app.py").write_text("print('x')\n")
    server.git("add", ".", cwd=seed)
    server.git("commit", "-qm", "app", cwd=seed)
    server.git("push", "-q", "origin", "feature/x", cwd=seed)
    head = server.git("rev-parse", "HEAD", cwd=seed).stdout.strip()
    main = server.git("rev-parse", "main", cwd=seed).stdout.strip()

    cloud = Cloud(url=server.base_url, username=owner.username, password=owner.password)
    assert workspace in [w.slug for w in cloud.workspaces.each()]
    ws = cloud.workspaces.get(workspace)
    assert ws.slug == workspace
    repo = ws.repositories.get(slug)
    assert repo.slug == slug and repo.is_private is True
    assert slug in [r.slug for r in ws.repositories.each(q=f'name = "{slug}"')]
    again = cloud.repositories.get(workspace, slug)
    assert again.uuid == repo.uuid

    branches = list(repo.branches.each())
    assert {b.name: b.hash for b in branches} == {"feature/x": head, "main": main}
    for branch in branches:
        assert branch.url == f"{server.base_url}/2.0/repositories/{workspace}/{slug}/refs/branches/{branch.name}"
        assert repo.branches.get(branch.name).hash == branch.hash
    assert [b.name for b in repo.branches.each(q='name ~ "feat"')] == ["feature/x"]

    created = repo.branches.create("release", main)
    assert created.name == "release" and created.hash == main
    assert repo.branches.get("release").hash == main
    repo.branches.delete("release")  # DELETE relative to the branches URL
    assert "release" not in [b.name for b in repo.branches.each()]

    tag = repo.tags.create("v1", main)
    assert tag.name == "v1" and [t.name for t in repo.tags.each()] == ["v1"]

    commits = list(repo.commits.each(include="feature/x"))
    assert [c.hash for c in commits] == [head, main]
    assert commits[0].message.strip() == "app" and list(commits[1].parents()) == []
    one = repo.commits.get(head)
    assert one.hash == head and [p.hash for p in one.parents()] == [main]

    assert repo.get_source_file("feature/x", "src/app.py") == b"print('x')\n"
    listing = repo.get_source_directory(head)
    assert [v["path"] for v in listing["values"]] == ["src", "README"]
