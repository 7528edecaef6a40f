"""The caller of a use case: its unit of work, its AuthContext, and the one access check."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gitward.domain.identity import AuthContext, TokenPrincipal, UserPrincipal
from gitward.domain.permissions import Action, ResourceKind
from gitward.domain.policy import (
    ALLOWED,
    SITE,
    Decision,
    Denied,
    LiveGrants,
    Target,
    authorize,
)
from gitward.services.errors import (
    Forbidden,
    NotFound,
    ServiceError,
    Unauthenticated,
    from_denial,
)
from gitward.storage.models import Project, Repository, User, Workspace
from gitward.storage.store import Store
from gitward.storage.views import RepositoryView, WorkspaceView

T = TypeVar("T")


def repository_target(repo: Repository | RepositoryView) -> Target:
    return Target(
        ResourceKind.REPOSITORY,
        workspace_id=repo.workspace_id,
        project_id=repo.project_id,
        repository_id=repo.id,
        is_public=not repo.is_private,
    )


def project_target(project: Project) -> Target:
    return Target(
        ResourceKind.PROJECT,
        workspace_id=project.workspace_id,
        project_id=project.id,
        is_public=not project.is_private,
    )


def workspace_target(workspace: Workspace | WorkspaceView) -> Target:
    return Target(ResourceKind.WORKSPACE, workspace_id=workspace.id)


def account_target(user: User) -> Target:
    return Target(ResourceKind.ACCOUNT, user_id=user.id)


def _context_key(ctx: AuthContext) -> Hashable:
    """An AuthContext as a dictionary key (its bound holds a dict)."""
    bound = ctx.bound
    pat = tuple(sorted(bound.pat.items())) if bound.pat is not None else None
    return (ctx.principal, ctx.credential, ctx.credential_id, pat, bound.scopes, bound.reach)


@dataclass
class Caller:
    """Who is calling a use case, over which unit of work. Every access check goes through here."""

    store: Store
    ctx: AuthContext
    client_ip: str | None = None

    @property
    def user(self) -> User | None:
        """The principal's account row, loaded once per request."""
        principal = self.ctx.user
        if principal is None:
            return None
        cached: User | None = getattr(self, "_user", None)
        if cached is None:
            cached = self.store.user_by_id(principal.user_id)
            self._user = cached
        return cached

    def require_own_account(self, action: Action) -> User:
        """The caller's account, if the policy allows `action` on it (e.g. creating or managing
        one's own credentials, which only an interactive credential may)."""
        user = self.require_user()
        self.require(action, account_target(user))
        return user

    def require_user(self) -> User:
        """The caller's account: 401 for anonymous callers, 403 for tokens acting as themselves."""
        user = self.user
        if user is not None and user.is_active:
            return user
        if self.ctx.is_anonymous:
            raise Unauthenticated("Authentication required")
        if isinstance(self.ctx.principal, TokenPrincipal):
            raise Forbidden("This credential acts for a resource, not for a user account.")
        raise Unauthenticated("This account no longer exists or is deactivated.")

    def live(self, target: Target) -> LiveGrants:
        principal = self.ctx.principal
        if isinstance(principal, UserPrincipal):
            # The principal was read, active, by this unit of work's authentication: its
            # grants are all that is left to read (from the generation-checked cache).
            return self.store.live_grants_of(principal.user_id, principal.is_site_admin, target)
        # Tokens acting as themselves are checked for life when they authenticate.
        return LiveGrants()

    def decide(self, action: Action, target: Target) -> Decision:
        principal = self.ctx.principal
        if target.is_public and isinstance(principal, UserPrincipal):
            # Grants only ever raise a user's level (authorize is monotonic in them), so what
            # an active user may do on a public resource with no grants at all it may do
            # whatever its grants are: no need to read them. The principal was read, active,
            # by this request's authentication. Denials still read the grants, for the right
            # answer (403 or 404) and message.
            floor = LiveGrants(is_site_admin=principal.is_site_admin)
            if authorize(self.ctx, action, target, floor):
                return ALLOWED
        return authorize(self.ctx, action, target, self.live(target))

    def permitted(
        self, action: Action, items: Sequence[T], target_of: Callable[[T], Target]
    ) -> list[T]:
        """The items of one workspace the caller may `action`, each decided by authorize, with
        a user's grants in that workspace read once for the whole list instead of per item."""
        if not items:
            return []
        workspace_id = target_of(items[0]).workspace_id
        assert workspace_id is not None
        if not all(isinstance(item, Hashable) for item in items):
            return self._permitted(action, items, target_of, workspace_id)
        # The same caller listing the same workspace again, with nothing changed since (the
        # generation says so): the same decisions.
        key = ("permitted", _context_key(self.ctx), action, workspace_id, tuple(items))
        return list(
            self.store.remembered(
                key, lambda: tuple(self._permitted(action, items, target_of, workspace_id))
            )
        )

    def _permitted(
        self,
        action: Action,
        items: Sequence[T],
        target_of: Callable[[T], Target],
        workspace_id: int,
    ) -> list[T]:
        principal = self.ctx.principal
        if not isinstance(principal, UserPrincipal):
            return [item for item in items if self.can(action, target_of(item))]
        # The principal was read, active, by this unit of work's authentication.
        live = self.store.live_grants_in_workspace(
            principal.user_id, principal.is_site_admin, workspace_id
        )
        return [
            item
            for item in items
            if authorize(self.ctx, action, (target := target_of(item)), live(target))
        ]

    def can(self, action: Action, target: Target) -> bool:
        return bool(self.decide(action, target))

    def require(self, action: Action, target: Target, not_found: str = "Not found") -> None:
        decision = self.decide(action, target)
        if isinstance(decision, Denied):
            raise from_denial(decision, not_found)

    def require_site_admin(self) -> None:
        self.require(Action.SITE_ADMIN, SITE)

    def not_found(self, message: str) -> ServiceError:
        """A missing resource: 404, or 401 for an anonymous caller, as for a hidden one."""
        if self.ctx.is_anonymous:
            return Unauthenticated("Authentication required")
        return NotFound(message)

    @property
    def actor(self) -> str:
        principal = self.ctx.principal
        if isinstance(principal, UserPrincipal):
            return f"user:{principal.username}"
        if isinstance(principal, TokenPrincipal):
            return f"token:{principal.kind.value}:{principal.token_id}"
        return "anonymous"

    def audit(self, action: str, target: str = "", **details: Any) -> None:
        principal = self.ctx.user
        self.store.audit(
            action,
            actor=self.actor,
            actor_user_id=principal.user_id if principal else None,
            target=target,
            client_ip=self.client_ip,
            credential=self.ctx.credential.value,
            **details,
        )
