"""The usage report of a credential: per action, how often and when last in the last 90
days, and which of its granted permissions it never used — what it could be narrowed to
(docs/credential-usage.md). The uses are noted by the policy's decisions (services/caller.py,
credentials/usage.py); the token APIs decide who may read a report (whoever may read the
token) before asking for it here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gitward.domain.identity import CredentialKind
from gitward.domain.permissions import (
    ACTIONS,
    API_SCOPE_FOR,
    PAT_PERMISSION_LEVELS,
    Action,
    ApiScope,
    Level,
    PatPermission,
    ResourceKind,
    Scope,
    implied_scopes,
)
from gitward.storage.models import (
    AppPassword,
    PersonalAccessToken,
    ResourceAccessToken,
    utcnow,
)
from gitward.storage.store import Store

#: How far back a report looks (and how long usage is kept).
WINDOW_DAYS = 90


@dataclass(frozen=True)
class ActionUse:
    action: str
    count: int
    last_used_on: datetime


@dataclass(frozen=True)
class Report:
    since: date
    actions: tuple[ActionUse, ...]  # by action name
    granted: tuple[str, ...]  # as the token's JSON names them
    needed: tuple[str, ...]  # the narrowest of the same kind that allows every use
    unused: tuple[str, ...]  # granted and not needed


def _uses(store: Store, kind: CredentialKind, credential_id: int) -> tuple[date, list[ActionUse]]:
    since = utcnow().date() - timedelta(days=WINDOW_DAYS - 1)
    totals: dict[str, tuple[int, datetime]] = {}

    def add(action: str, count: int, last: datetime) -> None:
        before = totals.get(action)
        if before is not None:
            count, last = before[0] + count, max(before[1], last)
        totals[action] = (count, last)

    for row in store.usage.of(kind.value, credential_id, since):
        add(row.action, row.count, row.last_used_on)
    if store.ledger is not None:
        for use in store.ledger.pending_for(kind.value, credential_id):
            if use.day >= since:
                add(use.action, use.count, use.last_used_on)
    actions = [
        ActionUse(action, count, last) for action, (count, last) in sorted(totals.items())
    ]
    return since, actions


def _actions(uses: Iterable[ActionUse]) -> list[Action]:
    known = {a.value: a for a in Action}
    return [known[u.action] for u in uses if u.action in known]


def _report(since: date, uses: list[ActionUse], granted: Sequence[str],
            needed: Sequence[str]) -> Report:
    needed_set = set(needed)
    return Report(
        since, tuple(uses), tuple(granted), tuple(needed),
        tuple(g for g in granted if g not in needed_set),
    )


def _pat_name(kind: ResourceKind, level: Level) -> str:
    fitting = [
        (lvl, p.value) for p, (k, lvl) in PAT_PERMISSION_LEVELS.items()
        if k is kind and lvl >= level
    ]
    return min(fitting)[1]


def pat_report(
    store: Store, token_id: int, repo_permission: str, project_permission: str | None
) -> Report:
    """A personal access token's report: the narrowest permissions are the highest level
    each resource kind's uses needed, at most what the token holds now (a repository
    permission is always needed: a token has one)."""
    since, uses = _uses(store, CredentialKind.PERSONAL_ACCESS_TOKEN, token_id)
    levels: dict[ResourceKind, Level] = {}
    for action in _actions(uses):
        rule = ACTIONS[action]
        if rule.pat is None or rule.pat == Level.NONE:
            continue
        kind = rule.resource if rule.resource is ResourceKind.PROJECT else ResourceKind.REPOSITORY
        levels[kind] = max(levels.get(kind, Level.NONE), rule.pat)
    granted = [p for p in (project_permission, repo_permission) if p]
    held = dict(PAT_PERMISSION_LEVELS[PatPermission(p)] for p in granted)
    # Never more than it holds now: uses from before it was narrowed need what it has.
    needed = []
    if ResourceKind.PROJECT in levels and ResourceKind.PROJECT in held:
        level = min(levels[ResourceKind.PROJECT], held[ResourceKind.PROJECT])
        needed.append(_pat_name(ResourceKind.PROJECT, level))
    level = min(levels.get(ResourceKind.REPOSITORY, Level.READ), held[ResourceKind.REPOSITORY])
    needed.append(_pat_name(ResourceKind.REPOSITORY, level))
    return _report(since, uses, granted, needed)


def pat_reports(store: Store, tokens: Iterable[PersonalAccessToken]) -> dict[int, Report]:
    """The reports of a page of personal access tokens, by id."""
    return {
        t.id: pat_report(store, t.id, t.repo_permission, t.project_permission) for t in tokens
    }


def scoped_report(
    store: Store, kind: CredentialKind, credential_id: int, scopes: Iterable[str]
) -> Report:
    """A scoped credential's report (app passwords, repository, project and workspace
    tokens): the narrowest subset of its scopes whose implications still allow every use —
    for each scope a use needed, that scope if it was granted, else the granted scope with
    the fewest implications that implies it."""
    granted = [s for s in scopes if s in Scope._value2member_map_]
    held = [Scope(s) for s in granted]
    since, uses = _uses(store, kind, credential_id)
    chosen: set[Scope] = set()
    for action in _actions(uses):
        scope = ACTIONS[action].scope
        if scope is None or scope in chosen:
            continue
        if scope in held:
            chosen.add(scope)
            continue
        implying = [s for s in held if scope in implied_scopes(frozenset({s}))]
        if implying:
            chosen.add(min(implying, key=lambda s: (len(implied_scopes(frozenset({s}))), s)))
    needed = [s for s in granted if Scope(s) in chosen]
    return _report(since, uses, granted, needed)


def api_token_report(store: Store, token_id: int, scopes: Iterable[str]) -> Report:
    """An API token's report: its scopes imply nothing, so the narrowest set is the scopes
    the uses named."""
    granted = [s for s in scopes if s in ApiScope._value2member_map_]
    since, uses = _uses(store, CredentialKind.API_TOKEN, token_id)
    named = {API_SCOPE_FOR[a].value for a in _actions(uses) if a in API_SCOPE_FOR}
    return _report(since, uses, granted, [s for s in granted if s in named])


_RESOURCE_KINDS = {
    "repository": CredentialKind.REPOSITORY_ACCESS_TOKEN,
    "project": CredentialKind.PROJECT_ACCESS_TOKEN,
    "workspace": CredentialKind.WORKSPACE_ACCESS_TOKEN,
}


def resource_token_report(store: Store, token: ResourceAccessToken) -> Report:
    return scoped_report(store, _RESOURCE_KINDS[token.kind], token.id, token.scopes.split())


def app_password_report(store: Store, row: AppPassword) -> Report:
    return scoped_report(store, CredentialKind.APP_PASSWORD, row.id, row.scopes.split())
