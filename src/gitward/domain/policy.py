"""The one place where access is decided.

`authorize(ctx, action, target, live)` answers Allowed or Denied(code, reason) in three gates
(after gate 0: a temporary password set by an administrator does nothing but change itself):

1. may this kind of credential ever do this action?           (ActionRule.pat/scope/interactive)
2. does the credential's own bound allow it?      (addresses, PAT levels, scopes, reach, refs,
                                                  a narrowed token's restrictions)
3. does the principal's live level allow it?                   (grants loaded at request time)

NOTE: a denial on a resource the caller may not see is NOT_FOUND (or UNAUTHENTICATED for an
anonymous caller, so that `git` asks for credentials), never FORBIDDEN: a 403 would tell the
caller that the resource exists. "May see" is the visibility action of the resource kind
(reading it) judged on gates 2's reach and 3 only, so that a credential that lacks a scope or
PAT level on a resource its principal can see gets a 403 naming what is missing.

NOTE: a target may name one ref update (`Target.ref`, a push's or a REST branch change):
gate 2 then also judges it against the credential's ref patterns and fast-forward-only rule
(domain/refs.py). The repository alone (no ref) is what git's check before a push starts
and every other write asks about; each ref is decided just before it moves.

NOTE: a credential used from outside its address allow-list is refused first in gate 2, with a
403 naming the restriction whatever the target: the same answer for every target tells the
caller nothing about what exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from gitward.domain import refs
from gitward.domain.identity import (
    CREDENTIAL_KINDS,
    AuthContext,
    Bound,
    BoundBy,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.permissions import (
    ACTIONS,
    API_SCOPE_FOR,
    PAT_PERMISSION_LEVELS,
    READ_ACTIONS,
    VISIBILITY_ACTION,
    Action,
    ActionRule,
    Level,
    ResourceKind,
    WorkspaceRole,
    repository_level_from_project,
)


@dataclass(frozen=True)
class Target:
    """The resource an action is on, as ids and the facts the decision needs."""

    kind: ResourceKind
    workspace_id: int | None = None
    project_id: int | None = None
    repository_id: int | None = None
    # Public repositories are readable by anyone; public projects likewise.
    is_public: bool = False
    # For ACCOUNT targets: whose account, and which of its credentials (if one) is acted on.
    user_id: int | None = None
    credential_kind: CredentialKind | None = None
    credential_id: int | None = None
    # For a repository write that moves one ref: which, and how (see NOTE above).
    ref: refs.RefChange | None = None


SITE = Target(ResourceKind.SITE)


@dataclass(frozen=True)
class LiveGrants:
    """The principal's standing on the target, loaded from storage on every request."""

    workspace_role: WorkspaceRole | None = None
    project_grant: Level = Level.NONE
    repository_grant: Level = Level.NONE
    is_site_admin: bool = False
    # False when the user is deactivated or deleted, or a token's resource is gone.
    active: bool = True


NO_GRANTS = LiveGrants()


class DenialCode(StrEnum):
    UNAUTHENTICATED = "unauthenticated"  # 401
    NOT_FOUND = "not_found"  # 404
    FORBIDDEN = "forbidden"  # 403


@dataclass(frozen=True)
class Allowed:
    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Denied:
    code: DenialCode
    reason: str
    #: The refusal is of where the request comes from (an address allow-list), not of what
    #: it asks: the caller audits it, and answers it even where a denial would be a quiet
    #: "no" (a listing leaving an item out).
    address: bool = False

    def __bool__(self) -> bool:
        return False


Decision = Allowed | Denied
ALLOWED = Allowed()

#: Gate 1 per BoundBy: may a credential bounded this way ever do this action (with its rule)?
_ADMITS: dict[BoundBy, Callable[[Action, ActionRule], bool]] = {
    BoundBy.NOTHING: lambda action, rule: True,
    BoundBy.PAT_PERMISSIONS: lambda action, rule: rule.pat is not None,
    BoundBy.SCOPES: lambda action, rule: rule.scope is not None or rule.scope_free,
    BoundBy.API_SCOPES: lambda action, rule: action in API_SCOPE_FOR,
    BoundBy.PUBLIC: lambda action, rule: True,  # judged on what is public, in gate 3
}


#: The answer to everything but changing the password, for a temporary password.
PASSWORD_CHANGE_REQUIRED = (
    "Your password was reset by an administrator and must be changed before it can be used: "
    "change it with PUT /rest/api/1.0/users/credentials or at /account/password"
)


def scope_message(scope: str) -> str:
    return f"Your credentials lack one or more required privilege scopes: {scope}"


def address_refusal(ctx: AuthContext) -> Denied | None:
    """Gate 2's first check: the refusal of a request from outside the credential's address
    allow-list (None: no list, or inside it). One attribute read for a credential without."""
    if ctx.bound.networks is None or ctx.inside_allow_list:
        return None
    where = str(ctx.client_address) if ctx.client_address is not None else "an unknown address"
    return Denied(
        DenialCode.FORBIDDEN,
        f"This credential is restricted by an IP address allow-list, and {where} is not in it",
        address=True,
    )


def effective_level(kind: ResourceKind, target: Target, live: LiveGrants) -> Level:
    """A user's effective level on the target (docs/access-model.md, Levels)."""
    if not live.active:
        return Level.NONE
    if live.is_site_admin:
        return Level.ADMIN
    owner = live.workspace_role == WorkspaceRole.OWNER
    if kind is ResourceKind.REPOSITORY:
        return max(
            live.repository_grant,
            repository_level_from_project(min(live.project_grant, Level.ADMIN)),
            Level.ADMIN if owner else Level.NONE,
            Level.READ if target.is_public else Level.NONE,
        )
    if kind is ResourceKind.PROJECT:
        return max(
            live.project_grant,
            Level.ADMIN if owner else Level.NONE,
            Level.READ if target.is_public else Level.NONE,
        )
    if kind is ResourceKind.WORKSPACE:
        if owner:
            return Level.ADMIN
        return Level.READ if live.workspace_role == WorkspaceRole.MEMBER else Level.NONE
    return Level.NONE


def _within(reach: Reach, target: Target) -> bool:
    """Is the target inside the resource a credential is confined to?"""
    if target.kind in (ResourceKind.ACCOUNT, ResourceKind.SITE):
        return False
    if target.workspace_id != reach.workspace_id:
        return False
    if reach.project_id is not None and (
        target.kind is ResourceKind.WORKSPACE or target.project_id != reach.project_id
    ):
        return False
    if reach.repository_id is not None:
        if target.kind is not ResourceKind.REPOSITORY:
            return False
        if target.repository_id != reach.repository_id:
            return False
    return True


def _narrowed_reach(bound: Bound, target: Target) -> bool:
    """Is the target inside a narrowed token's repositories? Its own account is (what the
    parent may do there still bounds it); a project, a workspace or the site is not."""
    repositories = bound.repositories
    if repositories is None or target.kind is ResourceKind.ACCOUNT:
        return True
    return target.kind is ResourceKind.REPOSITORY and target.repository_id in repositories


def _live_level(ctx: AuthContext, rule: ActionRule, target: Target, live: LiveGrants) -> Level:
    """Gate 3's level: what the principal itself holds on the target, right now."""
    principal = ctx.principal
    if isinstance(principal, TokenPrincipal):
        # A resource token (or OAuth client) acts as itself: full standing inside its reach,
        # nothing outside. Its scopes (gate 2) bound what it does there.
        reach = ctx.bound.reach
        if not live.active or reach is None or not _within(reach, target):
            return Level.NONE
        return Level.ADMIN
    if isinstance(principal, UserPrincipal):
        if rule.resource is ResourceKind.ACCOUNT:
            if not live.active:
                return Level.NONE
            if target.user_id == principal.user_id:
                return Level.ADMIN
            return Level.WRITE if live.is_site_admin else Level.NONE
        if rule.resource is ResourceKind.SITE:
            return Level.ADMIN if live.active and live.is_site_admin else Level.NONE
        return effective_level(rule.resource, target, live)
    # Anonymous: only what is public.
    if rule.resource in (ResourceKind.REPOSITORY, ResourceKind.PROJECT) and target.is_public:
        return Level.READ
    return Level.NONE


def _gate_kind(ctx: AuthContext, action: Action, rule: ActionRule) -> str | None:
    """Gate 1: may this kind of credential ever do this action? Returns a reason if not.

    Everything about the kind comes from its row in CREDENTIAL_KINDS.
    """
    facts = CREDENTIAL_KINDS[ctx.credential]
    if facts.bound_by is BoundBy.PUBLIC:
        return None
    if rule.interactive_only and not facts.interactive:
        return f"{facts.name} cannot be used to {_verb(action)}; sign in with your password"
    if not _ADMITS[facts.bound_by](action, rule):
        return f"{facts.name} cannot be used to {_verb(action)}"
    return None


def _gate_bound(
    ctx: AuthContext, action: Action, rule: ActionRule, target: Target
) -> tuple[bool, str | None]:
    """Gate 2: the credential's own bound. Returns (within reach, reason if refused)."""
    bound = ctx.bound
    if bound.reach is not None and not _within(bound.reach, target):
        return False, "outside the resource this credential is limited to"
    if bound.narrowed:
        if not _narrowed_reach(bound, target):
            return False, "outside the repositories this token is narrowed to"
        if rule.self_only or target.credential_id is not None:
            return True, "A narrowed token cannot act on a credential"
        if bound.read_only and action not in READ_ACTIONS:
            return True, "This token is read-only"
    if rule.self_only and not CREDENTIAL_KINDS[ctx.credential].interactive:
        same = (ctx.credential, ctx.credential_id) == (target.credential_kind, target.credential_id)
        if ctx.credential_id is None or not same:
            return True, "A token can only do this to itself; sign in with your password"
    held_by_pat = bound.pat_held  # a project permission reaches its repositories too
    if (
        held_by_pat is not None and rule.pat is not None and rule.pat > Level.NONE
        and held_by_pat.get(rule.resource, Level.NONE) < rule.pat
    ):
        return True, f"This token lacks the permission {_pat_name(rule)}"
    if bound.scopes is not None and rule.scope is not None and rule.scope not in bound.scopes:
        return True, scope_message(rule.scope.value)
    if bound.api_scopes is not None:
        # Gate 1 let only actions that an API token scope names through.
        needed = API_SCOPE_FOR[action]
        if needed not in bound.api_scopes:
            return True, scope_message(needed.value)
    if target.ref is not None and bound.restricts_refs:
        refused = refs.refusal(bound.ref_patterns, bound.fast_forward_only, target.ref)
        if refused is not None:
            return True, refused
    return True, None


def _pat_name(rule: ActionRule) -> str:
    for permission, (kind, level) in PAT_PERMISSION_LEVELS.items():
        if kind is rule.resource and level == rule.pat:
            return permission.value
    return str(rule.pat)


def _verb(action: Action) -> str:
    return {
        Action.CREDENTIAL_CREATE: "create credentials",
        Action.CREDENTIAL_MANAGE: "manage credentials",
        Action.CREDENTIAL_ROTATE: "rotate credentials",
        Action.REPO_CREDENTIALS: "manage access tokens",
        Action.PROJECT_CREDENTIALS: "manage access tokens",
        Action.WORKSPACE_CREDENTIALS: "manage access tokens",
        Action.WORKSPACE_ADMIN: "administer a workspace",
        Action.PROJECT_CREATE: "create projects",
        Action.WORKSPACE_CREATE: "create workspaces",
        Action.SITE_ADMIN: "administer the site",
        Action.PASSWORD_CHANGE: "change the account password",
        Action.REPO_GRANT_ADMIN: "grant admin permission",
        Action.PROJECT_GRANT_ADMIN: "grant admin permission",
        Action.WORKSPACE_GRANT_OWNER: "make someone a workspace owner",
        Action.BUILD_STATUS_WRITE: "report build statuses",
        Action.BUILD_STATUS_OVERWRITE: "replace a build status someone else reported",
    }.get(action, action.value)


#: The live level needed to see that a target of each kind exists.
_VISIBLE_AT: dict[ResourceKind, Level] = {
    kind: ACTIONS[action].level for kind, action in VISIBILITY_ACTION.items()
}


def _visible(ctx: AuthContext, target: Target, level: Level) -> bool:
    """May the caller see that the target exists? Reach and live level only (see NOTE).

    `level` is gate 3's live level on the target, which depends on the action only through
    the kind of resource it acts on — the target's kind, as for the action that sees it."""
    if target.kind is ResourceKind.SITE:
        # The site's existence is no secret: a signed-in user who is not a site
        # administrator gets a 403, as on Bitbucket Server's admin API.
        return True
    if ctx.bound.reach is not None and not _within(ctx.bound.reach, target):
        return False
    if ctx.bound.repositories is not None and not _narrowed_reach(ctx.bound, target):
        return False
    return level >= _VISIBLE_AT[target.kind]


def _hidden(ctx: AuthContext, reason: str) -> Denied:
    """A refusal that does not reveal the target: 401 for anonymous callers, else 404."""
    if ctx.is_anonymous:
        return Denied(DenialCode.UNAUTHENTICATED, "Authentication required")
    return Denied(DenialCode.NOT_FOUND, reason)


def authorize(ctx: AuthContext, action: Action, target: Target, live: LiveGrants) -> Decision:
    """Decide whether `ctx` may do `action` on `target`, given the principal's live grants."""
    rule = ACTIONS[action]
    if target.kind is not rule.resource:
        raise ValueError(f"{action} is an action on a {rule.resource.value}, not {target.kind}")

    level = _live_level(ctx, rule, target, live)
    visible = _visible(ctx, target, level)

    if ctx.must_change_password and not rule.before_password_change:
        # Gate 0. What the user could not see is still a 404, so the answer tells no more
        # about what exists than any other credential of theirs would.
        return (
            Denied(DenialCode.FORBIDDEN, PASSWORD_CHANGE_REQUIRED)
            if visible
            else _hidden(ctx, PASSWORD_CHANGE_REQUIRED)
        )

    if rule.signed_in and ctx.is_anonymous:
        return Denied(DenialCode.UNAUTHENTICATED, "Authentication required")

    refusal = _gate_kind(ctx, action, rule)
    if refusal is not None:
        return Denied(DenialCode.FORBIDDEN, refusal) if visible else _hidden(ctx, refusal)

    if ctx.bound.networks is not None:  # no call at all for a credential without a list
        address = address_refusal(ctx)
        if address is not None:
            return address
    within, refusal = _gate_bound(ctx, action, rule, target)
    if not within:
        return _hidden(ctx, refusal or "not found")
    if refusal is not None:
        return Denied(DenialCode.FORBIDDEN, refusal) if visible else _hidden(ctx, refusal)

    if level < rule.level:
        if not visible:
            return _hidden(ctx, f"no access to this {target.kind.value}")
        if ctx.is_anonymous:
            return Denied(DenialCode.UNAUTHENTICATED, "Authentication required")
        return Denied(
            DenialCode.FORBIDDEN,
            f"You need {_level_name(rule)} permission on this {target.kind.value}",
        )
    return ALLOWED


def _level_name(rule: ActionRule) -> str:
    if rule.resource is ResourceKind.WORKSPACE:
        return "owner" if rule.level == Level.ADMIN else "member"
    if rule.resource is ResourceKind.SITE:
        return "site administrator"
    return {
        Level.READ: "read",
        Level.WRITE: "write",
        Level.CREATE_REPO: "create-repo",
        Level.ADMIN: "admin",
    }.get(rule.level, "more")
