"""The caller of a use case: its unit of work, its AuthContext, and the one access check."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from gitward.credentials.usage import UsageLedger
from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.domain.identity import AuthContext, CredentialKind, TokenPrincipal, UserPrincipal
from gitward.domain.permissions import (
    PROJECT_GRANTS,
    REPOSITORY_GRANTS,
    Action,
    Level,
    ResourceKind,
    WorkspaceRole,
)
from gitward.domain.policy import (
    ALLOWED,
    PASSWORD_CHANGE_REQUIRED,
    SITE,
    Decision,
    Denied,
    LiveGrants,
    Target,
    address_refusal,
    authorize,
)
from gitward.services.errors import (
    Forbidden,
    NotFound,
    ServiceError,
    Unauthenticated,
    from_denial,
)
from gitward.storage.common import EMPTY, Page, Window
from gitward.storage.models import Project, Repository, User, Workspace, utcnow
from gitward.storage.repos import Standing
from gitward.storage.store import Store
from gitward.storage.views import RepositoryView, WorkspaceView

T = TypeVar("T")

_PROJECT_GRANT_NAMES: tuple[str | None, ...] = (None, *PROJECT_GRANTS)
_REPOSITORY_GRANT_NAMES: tuple[str | None, ...] = (None, *REPOSITORY_GRANTS)
_BOTH = (True, False)
#: The live grants of an active user with no grants at all, by whether it is a site admin.
_NO_GRANTS = {admin: LiveGrants(is_site_admin=admin) for admin in _BOTH}
_WORKSPACE_ROLE_NAMES: tuple[str | None, ...] = (None, *(role.value for role in WorkspaceRole))


class RepositoryRole(StrEnum):
    """`role` on Cloud repository listings."""

    MEMBER = "member"
    CONTRIBUTOR = "contributor"
    ADMIN = "admin"
    OWNER = "owner"


_ROLE_ACTIONS = {
    RepositoryRole.MEMBER: Action.REPO_READ,
    RepositoryRole.CONTRIBUTOR: Action.REPO_WRITE,
    RepositoryRole.ADMIN: Action.REPO_ADMIN,
}


def _with_grants(base: LiveGrants, cls: Standing) -> LiveGrants:
    """The live grants of a user of standing `base` on an item of class `cls`."""
    return replace(
        base,
        project_grant=PROJECT_GRANTS[cls.project_grant] if cls.project_grant else Level.NONE,
        repository_grant=(
            REPOSITORY_GRANTS[cls.repository_grant] if cls.repository_grant else Level.NONE
        ),
    )


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


def listing_is_empty(
    page: Page[Any], window: Window, probe: Callable[[Window], Page[Any]]
) -> bool:
    """Is the whole listing empty (not just this window of it)?"""
    if page.items:
        return False
    if page.total is not None or window.offset == 0:
        return not page.total
    return not probe(Window(0, 1)).items


#: How many days of usage are kept (the usage report covers 90).
USAGE_KEPT_DAYS = 90

#: The credentials whose use is noted for the usage report: every kind but the interactive.
NOTED_KINDS = frozenset(kind.value for kind in CredentialKind if not kind.interactive)


def _write_usage(ledger: UsageLedger) -> Callable[[Store], None]:
    """A deferred write of every use pending in `ledger`, put back if the write fails."""

    def write(later: Store) -> None:
        uses = ledger.drain()
        try:
            later.usage.add(uses)
            if ledger.prune_due():
                later.usage.prune(utcnow().date() - timedelta(days=USAGE_KEPT_DAYS))
            later.open().flush()
        except BaseException:
            ledger.restore(uses)
            raise

    return write


@dataclass
class Caller:
    """Who is calling a use case, over which unit of work. Every access check goes through here."""

    store: Store
    ctx: AuthContext
    client_ip: str | None = None
    # Where links in what the call renders for later (webhook bodies) start: the request's
    # base URL; None outside a request (a recovery at start), when the site's base URL or
    # none is used.
    base_url: str | None = None
    # The actions this request's credential was allowed (noted once each: `_note_use`).
    _used: set[Action] | None = field(default=None, init=False, repr=False)

    @property
    def user(self) -> User | None:
        """The principal's account row, loaded once per request."""
        principal = self.ctx.user
        if principal is None:
            return None
        cached: User | None = getattr(self, "_user", None)
        if cached is None:
            cached = self.store.accounts.user_by_id(principal.user_id)
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
            return self.store.repos.live_grants_of(
                principal.user_id, principal.is_site_admin, target
            )
        # Tokens acting as themselves are checked for life when they authenticate.
        return LiveGrants()

    def decide(self, action: Action, target: Target) -> Decision:
        principal = self.ctx.principal
        # Grants only ever raise a user's level (authorize is monotonic in them), so what an
        # active user may do on a public resource with no grants at all it may do whatever its
        # grants are: no need to read them. The principal was read, active, by this request's
        # authentication. Denials still read the grants, for the right answer (403 or 404)
        # and message.
        if (
            target.is_public
            and isinstance(principal, UserPrincipal)
            and authorize(self.ctx, action, target, _NO_GRANTS[principal.is_site_admin])
        ):
            credential_id = self.ctx.credential_id
            if credential_id is not None:
                self._note_use(action, credential_id)
            return ALLOWED
        decision = authorize(self.ctx, action, target, self.live(target))
        if isinstance(decision, Denied):
            if decision.address:
                raise self._refused_address(decision)
        else:
            credential_id = self.ctx.credential_id
            if credential_id is not None:
                self._note_use(action, credential_id)
        return decision

    def _note_use(self, action: Action, credential_id: int) -> None:
        """Note that the request's credential was used for `action` (once per request and
        action; only non-interactive credentials: credentials/usage.py)."""
        used = self._used
        if used is None:
            self._used = {action}
        elif action in used:
            return
        else:
            used.add(action)
        kind = self.ctx.credential._value_  # the enum's `.value` is a Python property
        ledger = self.store.ledger
        if (
            ledger is not None and kind in NOTED_KINDS
            and ledger.note((kind, credential_id, action._value_))
        ):
            self.store.defer(_write_usage(ledger))

    def _refused_address(self, denied: Denied) -> ServiceError:
        """The 403 for a request from outside the credential's address allow-list, audited
        after the unit of work (in a transaction of its own: a read-only unit writes
        nothing, and the refusal must stay recorded whatever the unit does)."""
        ctx = self.ctx
        principal = ctx.user
        details: dict[str, Any] = {
            "actor": self.actor,
            "actor_user_id": principal.user_id if principal else None,
            "target": f"{ctx.credential.value}:{ctx.credential_id}",
            "client_ip": self.client_ip,
            "credential": ctx.credential.value,
            "reason": denied.reason,
        }

        def record(later: Store) -> None:
            later.audit.record("auth.address-refused", **details)

        self.store.defer(record)
        return Forbidden(denied.reason)

    # -- listings: decided by authorize, paged in SQL --------------------------------------
    #
    # What the policy decides about one item of a listing depends on the item only through
    # its standing class: private or public, the caller's grant on its project and on itself,
    # and, for a credential confined to a project or repository, whether it is that one. So
    # a listing asks authorize once per class (a few dozen pure calls, no SQL), confines the
    # query to the credential's reach, and lets SQL pick, count and page the rows of the
    # allowed classes. tests/integration/test_listing_decisions.py holds every listed item to
    # the decision authorize gives it alone.

    def _base_live(self, workspace_id: int) -> tuple[int | None, LiveGrants]:
        """The calling user's id (None for tokens and anonymous callers) and live grants in
        the workspace before any project or repository grant. A user principal was read,
        active, by this unit of work's authentication."""
        principal = self.ctx.principal
        if not isinstance(principal, UserPrincipal):
            return None, LiveGrants()
        workspace = Target(ResourceKind.WORKSPACE, workspace_id=workspace_id)
        return principal.user_id, self.store.repos.live_grants_of(
            principal.user_id, principal.is_site_admin, workspace
        )

    def _remembered(self, what: str, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """The same caller listing the same window again with nothing changed since (the
        generation says so) gets the same page: the same view objects, whose JSON is cached."""
        self._refuse_temporary_password()
        credential_id = self.ctx.credential_id
        if credential_id is not None:
            for part in key:
                if isinstance(part, Action):
                    self._note_use(part, credential_id)
                    break
        return self.store.remembered((what, self.ctx.key, *key), compute)

    def _refuse_temporary_password(self) -> None:
        """A listing is decided per class by authorize, which would just leave everything
        out for a temporary password (gate 0) or a request from outside the credential's
        address allow-list (gate 2): answer their 403 instead of an empty page."""
        if self.ctx.must_change_password:
            raise Forbidden(PASSWORD_CHANGE_REQUIRED)
        refusal = address_refusal(self.ctx) if self.ctx.bound.networks is not None else None
        if refusal is not None:
            raise self._refused_address(refusal)

    def permitted_repositories(
        self,
        action: Action,
        workspace: Workspace | WorkspaceView,
        window: Window,
        criteria: Criteria = NO_CRITERIA,
        role: RepositoryRole | None = None,
    ) -> Page[RepositoryView]:
        """The workspace's repositories the caller may `action`, by slug (or `criteria`'s
        sort), matching `criteria`'s query and, with a `role`, held by the caller in that
        role (see `_in_role`); one window of them."""
        return self._remembered(
            "repositories",
            (action, workspace.id, window, criteria, role),
            lambda: self._permitted_repositories(action, workspace.id, window, criteria, role),
        )

    def _in_role(
        self, role: RepositoryRole, target: Target, live: LiveGrants
    ) -> bool:
        """Does the caller hold a repository of this class in `role`? Its own access (this
        credential, as bounded), not counting what it may do only because the repository
        is public: `member` reads it, `contributor` writes to it, `admin` administers it,
        `owner` owns its workspace."""
        if role is RepositoryRole.OWNER:
            return live.workspace_role is WorkspaceRole.OWNER
        private = replace(target, is_public=False)
        return bool(authorize(self.ctx, _ROLE_ACTIONS[role], private, live))

    def _permitted_repositories(
        self,
        action: Action,
        workspace_id: int,
        window: Window,
        criteria: Criteria,
        role: RepositoryRole | None,
    ) -> Page[RepositoryView]:
        user_id, base = self._base_live(workspace_id)
        reach = self.ctx.bound.reach
        project_id = reach.project_id if reach else None
        repository_id = reach.repository_id if reach else None
        grants_on = (
            [(p, r) for p in _PROJECT_GRANT_NAMES for r in _REPOSITORY_GRANT_NAMES]
            if user_id is not None
            else [(None, None)]
        )
        classes = [
            Standing(private, project, repo) for project, repo in grants_on for private in _BOTH
        ]

        def allowed(cls: Standing) -> bool:
            target = Target(
                ResourceKind.REPOSITORY,
                workspace_id=workspace_id,
                project_id=project_id,
                repository_id=repository_id,
                is_public=not cls.is_private,
            )
            live = _with_grants(base, cls)
            if not authorize(self.ctx, action, target, live):
                return False
            return role is None or self._in_role(role, target, live)

        chosen = [cls for cls in classes if allowed(cls)]
        if not chosen:
            return EMPTY
        return self.store.repos.repositories_in(
            workspace_id,
            window,
            user_id=user_id,
            classes=None if len(chosen) == len(classes) else chosen,
            project_id=project_id,
            repository_id=repository_id,
            criteria=criteria,
        )

    def permitted_repositories_anywhere(
        self,
        action: Action,
        window: Window,
        criteria: Criteria = NO_CRITERIA,
        role: RepositoryRole | None = None,
    ) -> Page[RepositoryView]:
        """Repositories of every workspace that the caller may `action`: without a `role`,
        the public ones (as Bitbucket's `GET /2.0/repositories`); with one, those it holds
        in that role (`_in_role`). By workspace and slug, or `criteria`'s sort."""
        return self._remembered(
            "repositories-anywhere",
            (action, window, criteria, role),
            lambda: self._permitted_anywhere(action, window, criteria, role),
        )

    def _permitted_anywhere(
        self,
        action: Action,
        window: Window,
        criteria: Criteria,
        role: RepositoryRole | None,
    ) -> Page[RepositoryView]:
        principal = self.ctx.principal
        user = principal if isinstance(principal, UserPrincipal) else None
        reach = self.ctx.bound.reach
        workspace_id = reach.workspace_id if reach else None
        project_id = reach.project_id if reach else None
        repository_id = reach.repository_id if reach else None
        base = LiveGrants(is_site_admin=user.is_site_admin if user else False)
        if role is None:
            classes = [Standing(False)]
        elif user is None:
            classes = [Standing(private) for private in _BOTH]
        else:
            classes = [
                Standing(private, project, repo, ws_role)
                for ws_role in _WORKSPACE_ROLE_NAMES
                for project in _PROJECT_GRANT_NAMES
                for repo in _REPOSITORY_GRANT_NAMES
                for private in _BOTH
            ]

        def allowed(cls: Standing) -> bool:
            target = Target(
                ResourceKind.REPOSITORY,
                workspace_id=workspace_id,
                project_id=project_id,
                repository_id=repository_id,
                is_public=not cls.is_private,
            )
            live = replace(
                _with_grants(base, cls),
                workspace_role=WorkspaceRole(cls.workspace_role) if cls.workspace_role else None,
            )
            if not authorize(self.ctx, action, target, live):
                return False
            return role is None or self._in_role(role, target, live)

        chosen = [cls for cls in classes if allowed(cls)]
        if not chosen:
            return EMPTY
        return self.store.repos.repositories_anywhere(
            window,
            # Without a role only publicity matters: no grants to join.
            user_id=user.user_id if user and role is not None else None,
            classes=chosen,
            workspace_id=workspace_id,
            project_id=project_id,
            repository_id=repository_id,
            criteria=criteria,
        )

    def permitted_projects(
        self,
        action: Action,
        workspace: Workspace,
        window: Window,
        *,
        oldest_first: bool = False,
        criteria: Criteria = NO_CRITERIA,
    ) -> Page[Project]:
        """The workspace's projects the caller may `action`, by key (or oldest first).
        (ORM rows, not views: the page is not kept across units of work.)"""
        self._refuse_temporary_password()
        user_id, base = self._base_live(workspace.id)
        reach = self.ctx.bound.reach
        project_id = reach.project_id if reach else None
        names = _PROJECT_GRANT_NAMES if user_id is not None else (None,)
        classes = [Standing(private, project) for project in names for private in _BOTH]

        def allowed(cls: Standing) -> bool:
            target = Target(
                ResourceKind.PROJECT,
                workspace_id=workspace.id,
                project_id=project_id,
                is_public=not cls.is_private,
            )
            return bool(authorize(self.ctx, action, target, _with_grants(base, cls)))

        chosen = [cls for cls in classes if allowed(cls)]
        if not chosen:
            return EMPTY
        return self.store.repos.projects_in(
            workspace.id,
            window,
            user_id=user_id,
            classes=None if len(chosen) == len(classes) else chosen,
            project_id=project_id,
            order_by_id=oldest_first,
            criteria=criteria,
        )

    # -- site-wide listings (Bitbucket Server names projects by key alone) ------------------
    #
    # As above, with the caller's role in each item's workspace as one more part of its
    # standing class: the policy is asked once per (role, privacy, grants) class.

    def _site_classes(
        self, kind: ResourceKind, action: Action, *, repository_grants: bool
    ) -> tuple[int | None, tuple[Standing, ...] | None]:
        """The calling user's id, and the standing classes whose items the caller may
        `action` (None: all of them; empty: none): decided once per context, as the other
        listings' classes (a temporary password is refused here, as there)."""
        return self._remembered(
            "site-classes",
            (kind, action, repository_grants),
            lambda: self._decide_site_classes(kind, action, repository_grants),
        )

    def _decide_site_classes(
        self, kind: ResourceKind, action: Action, repository_grants: bool
    ) -> tuple[int | None, tuple[Standing, ...] | None]:
        principal = self.ctx.principal
        user_id = principal.user_id if isinstance(principal, UserPrincipal) else None
        admin = isinstance(principal, UserPrincipal) and principal.is_site_admin
        reach = self.ctx.bound.reach
        roles = _WORKSPACE_ROLE_NAMES if user_id is not None else (None,)
        projects = _PROJECT_GRANT_NAMES if user_id is not None else (None,)
        repos = (
            _REPOSITORY_GRANT_NAMES if user_id is not None and repository_grants else (None,)
        )
        classes = [
            Standing(private, project, repo, role)
            for role in roles for project in projects for repo in repos for private in _BOTH
        ]

        def allowed(cls: Standing) -> bool:
            target = Target(
                kind,
                workspace_id=reach.workspace_id if reach else None,
                project_id=reach.project_id if reach else None,
                repository_id=(
                    reach.repository_id if reach and kind is ResourceKind.REPOSITORY else None
                ),
                is_public=not cls.is_private,
            )
            live = _with_grants(
                LiveGrants(
                    workspace_role=WorkspaceRole(cls.workspace_role)
                    if cls.workspace_role else None,
                    is_site_admin=admin,
                ),
                cls,
            )
            return bool(authorize(self.ctx, action, target, live))

        chosen = tuple(cls for cls in classes if allowed(cls))
        return user_id, None if len(chosen) == len(classes) else chosen

    def permitted_site_projects(
        self, action: Action, window: Window, *, name: str | None = None
    ) -> Page[Project]:
        """The site's projects the caller may `action`, by key, one window of them."""
        user_id, classes = self._site_classes(
            ResourceKind.PROJECT, action, repository_grants=False
        )
        if classes == ():
            return EMPTY
        reach = self.ctx.bound.reach
        return self.store.repos.projects_on_site(
            window,
            user_id=user_id,
            classes=classes,
            workspace_id=reach.workspace_id if reach else None,
            project_id=reach.project_id if reach else None,
            name=name,
        )

    def permitted_site_repositories(
        self,
        action: Action,
        window: Window,
        *,
        name: str | None = None,
        project_name: str | None = None,
        is_private: bool | None = None,
        project_id: int | None = None,
    ) -> Page[RepositoryView]:
        """The site's repositories the caller may `action` (in one project, if given), by
        project key and slug."""
        user_id, classes = self._site_classes(
            ResourceKind.REPOSITORY, action, repository_grants=True
        )
        reach = self.ctx.bound.reach
        if reach is not None and reach.project_id is not None:
            if project_id not in (None, reach.project_id):
                return EMPTY
            project_id = reach.project_id
        if classes == ():
            return EMPTY
        return self.store.repos.repositories_on_site(
            window,
            user_id=user_id,
            classes=classes,
            workspace_id=reach.workspace_id if reach else None,
            project_id=project_id,
            repository_id=reach.repository_id if reach else None,
            name=name,
            project_name=project_name,
            is_private=is_private,
        )

    def permitted_memberships(
        self,
        action: Action,
        window: Window,
        criteria: Criteria = NO_CRITERIA,
        role: WorkspaceRole | None = None,
    ) -> Page[tuple[Workspace, str]]:
        """The workspaces the calling user belongs to and may `action` (with the role `role`,
        when one is asked for), with the role, matching `criteria`."""
        principal = self.ctx.principal
        if not isinstance(principal, UserPrincipal):
            return EMPTY
        self._refuse_temporary_password()
        reach = self.ctx.bound.reach
        workspace_id = reach.workspace_id if reach else None

        def allowed(role: WorkspaceRole) -> bool:
            live = LiveGrants(workspace_role=role, is_site_admin=principal.is_site_admin)
            target = Target(ResourceKind.WORKSPACE, workspace_id=workspace_id)
            return bool(authorize(self.ctx, action, target, live))

        roles = [
            held.value
            for held in WorkspaceRole
            if (role is None or held is role) and allowed(held)
        ]
        if not roles:
            return EMPTY
        return self.store.repos.workspaces_of_user(
            principal.user_id,
            window,
            roles=None if len(roles) == len(WorkspaceRole) else roles,
            workspace_id=workspace_id,
            criteria=criteria,
        )

    def can(self, action: Action, target: Target) -> bool:
        return bool(self.decide(action, target))

    def require(self, action: Action, target: Target, not_found: str = "Not found") -> None:
        decision = self.decide(action, target)
        if isinstance(decision, Denied):
            raise from_denial(decision, not_found)

    def require_site_admin(self) -> None:
        self.require(Action.SITE_ADMIN, SITE)

    def not_found(self, message: str) -> ServiceError:
        """A missing resource: 404, or 401 for an anonymous caller, as for a hidden one; a
        request from outside its credential's address allow-list gets the 403 it gets for
        what exists, so that it learns nothing of what does."""
        refusal = address_refusal(self.ctx) if self.ctx.bound.networks is not None else None
        if refusal is not None:
            return self._refused_address(refusal)
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
        self.store.audit.record(
            action,
            actor=self.actor,
            actor_user_id=principal.user_id if principal else None,
            target=target,
            client_ip=self.client_ip,
            credential=self.ctx.credential.value,
            **details,
        )
