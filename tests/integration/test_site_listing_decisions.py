"""The site-wide listings of the Server API (`GET /rest/api/1.0/repos`, `…/projects`) decide
by standing class, workspace role included, and page in SQL: every listed item must get the
decision policy.authorize gives it alone, for every kind of credential, across workspaces."""

from __future__ import annotations

from gitward.domain.identity import UserPrincipal
from gitward.services.caller import Caller, project_target, repository_target
from tests.integration.test_listing_decisions import (
    PROJECT_ACTIONS,
    REPO_ACTIONS,
    _all_pages,
    _contexts,
    _mixed_world,
)


def _more_workspaces(world, client, alice, bob):
    """beta: bob is a member; gamma: bob owns it; delta: bob is a stranger."""
    carol = world.user("carol")
    for slug, owner in (("beta", alice), ("gamma", bob), ("delta", carol)):
        world.workspace(owner, slug)
        for key, public in ((f"{slug[0].upper()}X", False), (f"{slug[0].upper()}Y", True)):
            world.project(owner, slug, key, is_private=not public)
            for i, private in enumerate((True, False)):
                world.repository(owner, slug, f"{slug}-{key.lower()}-{i}", key, private=private)
    r = client.put("/2.0/workspaces/beta/members/bob", json={"role": "member"}, headers=alice.auth)
    assert r.status_code == 200, r.text
    world.grant_repo(alice, "beta", "beta-bx-0", "bob", "write")


def test_site_listings_match_one_by_one_for_every_kind(world, client, runtime):
    alice, bob, root = _mixed_world(world)
    _more_workspaces(world, client, alice, bob)
    with runtime.unit_of_work() as store:
        repos = sorted(store.repos.repositories_on_site().items,
                       key=lambda r: (r.project.key, r.slug))
        projects = sorted(store.repos.projects_on_site().items, key=lambda p: p.key)
        assert len(repos) == 12 + 12 and len(projects) == 3 + 6
        sizes = {}
        for name, ctx in _contexts(store, alice, bob, root).items():
            caller = Caller(store, ctx)
            for action in REPO_ACTIONS:
                one_by_one = [r for r in repos if caller.can(action, repository_target(r))]
                for size in (1, 7, 100):
                    listed, total = _all_pages(
                        lambda w, a=action: caller.permitted_site_repositories(a, w), size
                    )
                    assert [r.id for r in listed] == [r.id for r in one_by_one], (
                        name, action, size)
                    assert total == len(one_by_one)
                sizes[name, action] = len(one_by_one)
            for action in PROJECT_ACTIONS:
                one_by_one = [p for p in projects if caller.can(action, project_target(p))]
                listed, total = _all_pages(
                    lambda w, a=action: caller.permitted_site_projects(a, w), 2
                )
                assert [p.id for p in listed] == [p.id for p in one_by_one], (name, action)
                assert total == len(one_by_one)
            # Within one project, as `GET /projects/{key}/repos` asks.
            if isinstance(ctx.principal, UserPrincipal):
                project = next(p for p in projects if p.key == "PB")
                inside = [r for r in repos if r.project_id == project.id
                          and caller.can(REPO_ACTIONS[0], repository_target(r))]
                listed = caller.permitted_site_repositories(
                    REPO_ACTIONS[0], _window(), project_id=project.id).items
                assert [r.id for r in listed] == [r.id for r in inside], name
        # The data mixes yes and no across workspaces and roles.
        assert 0 < sizes["bob", REPO_ACTIONS[0]] < 24
        assert sizes["root", REPO_ACTIONS[2]] == 24
        assert sizes["alice", REPO_ACTIONS[2]] == 12 + 4  # acme and beta, which she owns
        assert sizes["project-token", REPO_ACTIONS[0]] == 4
        assert sizes["repo-token", REPO_ACTIONS[0]] == 1
        assert sizes["elsewhere-token", REPO_ACTIONS[0]] == 0


def _window():
    from gitward.storage.common import Window

    return Window()
