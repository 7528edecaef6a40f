"""Listings decide by standing class (Caller.permitted_*) and page in SQL; every listed item
must still get exactly the decision that policy.authorize gives it alone (Caller.can), for
every kind of credential, and the pages must add up to the whole list."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest
from sqlalchemy import event

from gitward.domain.identity import (
    ANONYMOUS_CONTEXT,
    AuthContext,
    Bound,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.permissions import Action, Scope, implied_scopes
from gitward.services.caller import (
    Caller,
    RepositoryRole,
    project_target,
    repository_target,
    workspace_target,
)
from gitward.storage import views
from gitward.storage.common import Window
from gitward.storage.models import Repository

REPO_ACTIONS = (Action.REPO_READ, Action.REPO_WRITE, Action.REPO_ADMIN)
PROJECT_ACTIONS = (Action.PROJECT_READ, Action.PROJECT_CREATE_REPO, Action.PROJECT_ADMIN)


def _mixed_world(world):
    alice = world.user("alice")
    bob = world.user("bob")
    root = world.user("root", site_admin=True)
    world.workspace(alice, "acme")
    keys = ["PA", "PB", "PC"]
    for key, public in zip(keys, (False, True, False), strict=True):
        world.project(alice, "acme", key, is_private=not public)
    grants = itertools.cycle([None, "read", "write", "admin"])
    project_grants = itertools.cycle([None, "read", "create-repo", "admin"])
    for key in keys:
        grant = next(project_grants)
        if grant:
            world.grant_project(alice, "acme", key, "bob", grant)
        for i in range(4):
            slug = f"{key.lower()}-{i}"
            world.repository(alice, "acme", slug, key, private=bool(i % 2))
            grant = next(grants)
            if grant:
                world.grant_repo(alice, "acme", slug, "bob", grant)
    return alice, bob, root


def _contexts(store, alice, bob, root):
    workspace = store.repos.workspace_by_slug("acme")
    repo = store.repos.repository_by_slug(workspace.id, "pb-1")
    every = implied_scopes(frozenset(Scope))
    reading = implied_scopes(frozenset({Scope.REPOSITORY, Scope.PROJECT}))
    return {
        "bob": AuthContext(UserPrincipal(bob.id, "bob"), CredentialKind.PASSWORD),
        "alice": AuthContext(UserPrincipal(alice.id, "alice"), CredentialKind.PASSWORD),
        "root": AuthContext(UserPrincipal(root.id, "root", True), CredentialKind.PASSWORD),
        "anonymous": ANONYMOUS_CONTEXT,
        "bob-app-reading": AuthContext(UserPrincipal(bob.id, "bob"), CredentialKind.APP_PASSWORD,
                                       Bound(scopes=reading), credential_id=1),
        "bob-app-account": AuthContext(UserPrincipal(bob.id, "bob"), CredentialKind.APP_PASSWORD,
                                       Bound(scopes=frozenset({Scope.ACCOUNT})), credential_id=1),
        "repo-token": AuthContext(
            TokenPrincipal(1, "ci", CredentialKind.REPOSITORY_ACCESS_TOKEN),
            CredentialKind.REPOSITORY_ACCESS_TOKEN,
            Bound(scopes=every, reach=Reach(workspace.id, repo.project_id, repo.id)),
            credential_id=1,
        ),
        "project-token": AuthContext(
            TokenPrincipal(2, "ci", CredentialKind.PROJECT_ACCESS_TOKEN),
            CredentialKind.PROJECT_ACCESS_TOKEN,
            Bound(scopes=every, reach=Reach(workspace.id, repo.project_id)),
            credential_id=2,
        ),
        "workspace-token": AuthContext(
            TokenPrincipal(3, "ci", CredentialKind.WORKSPACE_ACCESS_TOKEN),
            CredentialKind.WORKSPACE_ACCESS_TOKEN,
            Bound(scopes=implied_scopes(frozenset({Scope.REPOSITORY})),
                  reach=Reach(workspace.id)),
            credential_id=3,
        ),
        "elsewhere-token": AuthContext(
            TokenPrincipal(4, "ci", CredentialKind.WORKSPACE_ACCESS_TOKEN),
            CredentialKind.WORKSPACE_ACCESS_TOKEN,
            Bound(scopes=every, reach=Reach(workspace.id + 1000)),
            credential_id=4,
        ),
    }


def _all_pages(listing, size):
    items, offset = [], 0
    while True:
        page = listing(Window(offset, size, count=True))
        items.extend(page.items)
        assert page.total is not None
        if not page.has_more:
            return items, page.total
        assert len(page.items) == size
        offset += size


def test_listings_match_one_by_one_for_every_kind(world, runtime):
    alice, bob, root = _mixed_world(world)
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("acme")
        repos = sorted(store.repos.repositories_in(workspace.id).items, key=lambda r: r.slug)
        projects = sorted(store.repos.projects_in(workspace.id).items, key=lambda p: p.key)
        assert len(repos) == 12 and len(projects) == 3
        sizes: dict[tuple[str, Action], int] = {}
        for name, ctx in _contexts(store, alice, bob, root).items():
            caller = Caller(store, ctx)
            for action in REPO_ACTIONS:
                one_by_one = [r for r in repos if caller.can(action, repository_target(r))]
                for size in (1, 5, 100):
                    listed, total = _all_pages(
                        lambda w, a=action: caller.permitted_repositories(a, workspace, w), size
                    )
                    assert [r.id for r in listed] == [r.id for r in one_by_one], (
                        name, action, size
                    )
                    assert total == len(one_by_one)
                sizes[name, action] = len(one_by_one)
            for action in PROJECT_ACTIONS:
                one_by_one = [p for p in projects if caller.can(action, project_target(p))]
                listed, total = _all_pages(
                    lambda w, a=action: caller.permitted_projects(a, workspace, w), 2
                )
                assert [p.id for p in listed] == [p.id for p in one_by_one], (name, action)
                assert total == len(one_by_one)
            memberships = caller.permitted_memberships(Action.WORKSPACE_READ, Window()).items
            member = isinstance(ctx.principal, UserPrincipal) and (
                store.repos.membership(workspace.id, ctx.principal.user_id) is not None
            )
            readable = caller.can(Action.WORKSPACE_READ, workspace_target(workspace))
            expected = [workspace] if member and readable else []
            assert [ws for ws, _role in memberships] == expected, name
        # The data mixes yes and no, so the comparisons above mean something.
        assert 0 < sizes["bob", Action.REPO_WRITE] < 12
        assert 0 < sizes["bob", Action.REPO_ADMIN] < sizes["bob", Action.REPO_WRITE]
        assert sizes["alice", Action.REPO_ADMIN] == 12
        assert sizes["repo-token", Action.REPO_READ] == 1
        assert sizes["project-token", Action.REPO_READ] == 4
        assert sizes["elsewhere-token", Action.REPO_READ] == 0
        assert sizes["bob-app-account", Action.REPO_READ] == 0
        assert 0 < sizes["anonymous", Action.REPO_READ] < 12


def test_a_listing_reads_in_a_bounded_number_of_statements(world, runtime):
    _alice, bob, _root = _mixed_world(world)
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    with runtime.unit_of_work() as store:
        ctx = AuthContext(UserPrincipal(bob.id, "bob"), CredentialKind.PASSWORD)
        caller = Caller(store, ctx)
        workspace = store.repos.workspace_by_slug("acme")
        caller.user
        for action in REPO_ACTIONS:
            before = len(statements)
            caller.permitted_repositories(action, workspace, Window(2, 3, count=True))
            # At most the generation, the caller's standing in the workspace (both read once
            # per unit of work), the page and its count; nothing per item.
            assert len(statements) - before <= 4


@pytest.fixture
def many(world, runtime):
    """150 repositories in one workspace, alice owning them and bob reading 75."""
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "big")
    world.project(alice, "big", "P")
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("big")
        project = store.repos.project_by_key(workspace.id, "P")
        rows = [Repository(workspace_id=workspace.id, project_id=project.id,
                           slug=f"r{i:03d}", name=f"r{i:03d}", is_private=bool(i % 2))
                for i in range(150)]
        for row in rows:
            store.add(row)
        store.flush()
        # Each row has its repository on disk, as one created through the API has: the
        # links of the listing (branches, commits, source) read it.
        for row in rows:
            runtime.git.create(row.storage_name)
    return alice, bob


def _select_statements(runtime, run):
    statements: list[str] = []

    def note(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and "repositories" in statement:
            statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", note)
    try:
        result = run()
    finally:
        event.remove(runtime.engine, "before_cursor_execute", note)
    return result, statements


def test_page_two_of_150_repositories_is_read_with_limit_and_offset(many, client, runtime):
    client.follow_links = False  # the statements of this one request are counted
    _alice, bob = many
    r, statements = _select_statements(
        runtime, lambda: client.get("/2.0/repositories/big?page=2&pagelen=10", headers=bob.auth)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # bob sees the 75 public ones (odd i is private): r000, r002, ... page 2 is r020 .. r038.
    assert body["size"] == 75 and body["page"] == 2 and body["pagelen"] == 10
    assert [v["slug"] for v in body["values"]] == [f"r{i:03d}" for i in range(20, 40, 2)]
    assert "page=3" in body["next"] and "page=1" in body["previous"]
    listing = [s for s in statements if re.search(r"\bLIMIT\b", s)]
    assert listing, statements
    assert all(re.search(r"\bOFFSET\b", s) for s in listing)
    # No statement read the repositories without a LIMIT except the count.
    unbounded = [s for s in statements if s not in listing and "count(" not in s.lower()]
    assert unbounded == []


def test_rows_loaded_for_a_page_are_the_page(many, client, runtime, monkeypatch):
    client.follow_links = False  # the rows of this one request are counted
    alice, _bob = many
    loaded: list[object] = []
    real = views.repository_view

    def counting(row):
        loaded.append(row)
        return real(row)

    # Every repository row a listing reads becomes a view here.
    monkeypatch.setattr(views, "repository_view", counting)
    r = client.get("/2.0/repositories/big?page=3&pagelen=20", headers=alice.auth)
    assert r.status_code == 200
    body = r.json()
    assert body["size"] == 150
    assert [v["slug"] for v in body["values"]] == [f"r{i:03d}" for i in range(40, 60)]
    # The page and one row past it (to know a next page exists), never all 150.
    assert 20 <= len(loaded) <= 21


def test_the_last_page_and_beyond(many, client):
    alice, _bob = many
    last = client.get("/2.0/repositories/big?page=15&pagelen=10", headers=alice.auth).json()
    assert len(last["values"]) == 10 and "next" not in last and last["size"] == 150
    beyond = client.get("/2.0/repositories/big?page=16&pagelen=10", headers=alice.auth).json()
    assert beyond["values"] == [] and beyond["size"] == 150


def test_an_empty_page_far_out_is_not_a_hidden_workspace(many, client):
    """An anonymous caller paging past the public repositories gets an empty page, as the
    workspace has public repositories; only a workspace with nothing visible is hidden."""
    r = client.get("/2.0/repositories/big?page=50&pagelen=10")
    assert r.status_code == 200
    assert r.json()["values"] == [] and r.json()["size"] == 75


def test_server_pages_use_limit_plus_one(world, runtime, client):
    alice = world.user("alice")
    for i in range(7):
        r = client.put("/rest/access-tokens/1.0/users/alice",
                       json={"name": f"t{i}", "permissions": ["REPO_READ"]}, headers=alice.auth)
        assert r.status_code == 200, r.text
    first = client.get("/rest/access-tokens/1.0/users/alice?limit=3", headers=alice.auth).json()
    assert first["size"] == 3 and first["isLastPage"] is False and first["nextPageStart"] == 3
    last = client.get("/rest/access-tokens/1.0/users/alice?start=6&limit=3",
                      headers=alice.auth).json()
    assert last["size"] == 1 and last["isLastPage"] is True and "nextPageStart" not in last
    names = []
    start = 0
    while True:
        page = client.get(f"/rest/access-tokens/1.0/users/alice?start={start}&limit=2",
                          headers=alice.auth).json()
        names += [v["name"] for v in page["values"]]
        if page["isLastPage"]:
            break
        start = page["nextPageStart"]
    assert names == [f"t{i}" for i in reversed(range(7))]


def test_members_page_in_sql_by_username(world, client):
    alice = world.user("alice")
    world.workspace(alice, "team")
    for name in ("dora", "carl", "bea"):
        world.user(name)
        r = client.put(f"/2.0/workspaces/team/members/{name}", json={"role": "member"},
                       headers=alice.auth)
        assert r.status_code in (200, 201), r.text
    page = client.get("/2.0/workspaces/team/members?pagelen=2", headers=alice.auth).json()
    assert page["size"] == 4
    assert [v["user"]["username"] for v in page["values"]] == ["alice", "bea"]
    page2 = client.get("/2.0/workspaces/team/members?pagelen=2&page=2", headers=alice.auth).json()
    assert [v["user"]["username"] for v in page2["values"]] == ["carl", "dora"]
    assert "next" not in page2



def test_a_remembered_page_is_reread_after_a_change(world, client):
    """Pages are kept while the access generation is unchanged: a new repository, or a grant
    taken away, shows on the very next listing."""
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "P")
    world.repository(alice, "acme", "one", "P", private=True)
    world.grant_repo(alice, "acme", "one", "bob", "read")

    def slugs(who):
        r = client.get("/2.0/repositories/acme?pagelen=5", headers=who.auth)
        assert r.status_code == 200, r.text
        return [v["slug"] for v in r.json()["values"]]

    assert slugs(bob) == ["one"] and slugs(bob) == ["one"]
    world.repository(alice, "acme", "two", "P", private=False)
    assert slugs(bob) == ["one", "two"]
    r = client.delete("/2.0/repositories/acme/one/permissions-config/users/bob",
                      headers=alice.auth)
    assert r.status_code == 204, r.text
    assert slugs(bob) == ["two"]
    assert slugs(alice) == ["one", "two"]


ROLE_ACTIONS = {
    RepositoryRole.MEMBER: Action.REPO_READ,
    RepositoryRole.CONTRIBUTOR: Action.REPO_WRITE,
    RepositoryRole.ADMIN: Action.REPO_ADMIN,
}


def test_roles_match_one_by_one_for_every_kind(world, runtime):
    """`role` keeps exactly the readable items whose private twin the caller may do the
    role's action on (`owner`: those of a workspace it owns), in the workspace's listing and
    in the listing across workspaces; without a role, the latter is the public ones."""
    alice, bob, root = _mixed_world(world)
    world.workspace(bob, "bobs")
    world.project(bob, "bobs", "B")
    world.repository(bob, "bobs", "mine", "B")
    world.repository(bob, "bobs", "open", "B", private=False)
    with runtime.unit_of_work() as store:
        workspace = store.repos.workspace_by_slug("acme")
        bobs = store.repos.workspace_by_slug("bobs")
        everywhere = [
            r for ws in (workspace, bobs) for r in store.repos.repositories_in(ws.id).items
        ]
        sizes: dict[tuple[str, str], int] = {}
        for name, ctx in _contexts(store, alice, bob, root).items():
            caller = Caller(store, ctx)

            def held(r, role, caller=caller, ctx=ctx):
                if not caller.can(Action.REPO_READ, repository_target(r)):
                    return False
                if role is None:
                    return True
                if role is RepositoryRole.OWNER:
                    principal = ctx.principal
                    return isinstance(principal, UserPrincipal) and any(
                        m.role == "owner"
                        for m in [store.repos.membership(r.workspace_id, principal.user_id)]
                        if m is not None
                    )
                private = replace(repository_target(r), is_public=False)
                return caller.can(ROLE_ACTIONS[role], private)

            for role in (None, *RepositoryRole):
                in_acme = [r.id for r in everywhere
                           if r.workspace_id == workspace.id and held(r, role)]
                listed, total = _all_pages(
                    lambda w, role=role: caller.permitted_repositories(
                        Action.REPO_READ, workspace, w, role=role), 3
                )
                assert [r.id for r in listed] == in_acme, (name, role)
                assert total == len(in_acme)
                anywhere = [r.id for r in everywhere if held(r, role)
                            and (role is not None or not r.is_private)]
                listed, total = _all_pages(
                    lambda w, role=role: caller.permitted_repositories_anywhere(
                        Action.REPO_READ, w, role=role), 4
                )
                assert [r.id for r in listed] == anywhere, (name, role)
                sizes[name, str(role)] = len(anywhere)
        # Mixed yes and no, so the comparisons mean something.
        assert 0 < sizes["bob", "contributor"] < sizes["bob", "member"]
        assert sizes["bob", "owner"] == 2 and sizes["alice", "owner"] == 12
        assert sizes["anonymous", "None"] > 0 and sizes["anonymous", "member"] == 0
        assert sizes["repo-token", "member"] == 1
