"""Listings read a user's grants once per workspace (Caller.permitted); every item must still
get exactly the decision that policy.authorize gives it alone (Caller.can)."""

from __future__ import annotations

import itertools

from sqlalchemy import event

from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.domain.permissions import Action
from gitward.services.caller import Caller, project_target, repository_target


def test_permitted_matches_one_by_one_and_reads_grants_once(world, runtime):
    alice = world.user("alice")
    bob = world.user("bob")
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
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    with runtime.unit_of_work() as store:
        ctx = AuthContext(UserPrincipal(bob.id, "bob"), CredentialKind.PASSWORD)
        caller = Caller(store, ctx)
        workspace = store.workspace_by_slug("acme")
        repos = list(store.repositories_in(workspace.id))
        projects = list(store.projects_in(workspace.id))
        assert len(repos) == 12
        for action in (Action.REPO_READ, Action.REPO_WRITE, Action.REPO_ADMIN):
            one_by_one = [r for r in repos if caller.can(action, repository_target(r))]
            before = len(statements)
            listed = caller.permitted(action, repos, repository_target)
            assert listed == one_by_one
            assert len(statements) - before <= 3
        for action in (Action.PROJECT_READ, Action.PROJECT_CREATE_REPO, Action.PROJECT_ADMIN):
            one_by_one = [p for p in projects if caller.can(action, project_target(p))]
            assert caller.permitted(action, projects, project_target) == one_by_one
        # The data mixes yes and no, so the comparison above means something.
        for action in (Action.REPO_WRITE, Action.REPO_ADMIN):
            assert 0 < len(caller.permitted(action, repos, repository_target)) < 12
