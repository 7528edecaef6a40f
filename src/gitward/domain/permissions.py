"""Levels, actions, scopes and their implications, as tables.

Everything here is data: the policy reads these tables and never grows an if-chain per action.
docs/access-model.md describes the same tables in prose.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum


class Level(IntEnum):
    """Ordered access levels. `CREATE_REPO` exists only on projects."""

    NONE = 0
    READ = 1
    WRITE = 2
    CREATE_REPO = 3
    ADMIN = 4


#: Grant names as the REST API spells them.
PROJECT_GRANTS: dict[str, Level] = {
    "read": Level.READ,
    "write": Level.WRITE,
    "create-repo": Level.CREATE_REPO,
    "admin": Level.ADMIN,
}
REPOSITORY_GRANTS: dict[str, Level] = {
    "read": Level.READ,
    "write": Level.WRITE,
    "admin": Level.ADMIN,
}
GRANT_NAMES: dict[Level, str] = {level: name for name, level in PROJECT_GRANTS.items()}


def repository_level_from_project(level: Level) -> Level:
    """A project grant seen from one of its repositories.

    `create-repo` is about the project; on its repositories it acts as `write`.
    """
    return Level.WRITE if level == Level.CREATE_REPO else level


class WorkspaceRole(StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class ResourceKind(Enum):
    REPOSITORY = "repository"
    PROJECT = "project"
    WORKSPACE = "workspace"
    ACCOUNT = "account"
    SITE = "site"

    # Members are singletons compared by identity: hash them so too, in C (Enum's own
    # __hash__ is Python code, run on every policy table look-up).
    __hash__ = object.__hash__


class PatPermission(StrEnum):
    """Bitbucket Server personal access token permissions."""

    REPO_READ = "REPO_READ"
    REPO_WRITE = "REPO_WRITE"
    REPO_ADMIN = "REPO_ADMIN"
    PROJECT_READ = "PROJECT_READ"
    PROJECT_WRITE = "PROJECT_WRITE"
    PROJECT_ADMIN = "PROJECT_ADMIN"


PAT_PERMISSION_LEVELS: dict[PatPermission, tuple[ResourceKind, Level]] = {
    PatPermission.REPO_READ: (ResourceKind.REPOSITORY, Level.READ),
    PatPermission.REPO_WRITE: (ResourceKind.REPOSITORY, Level.WRITE),
    PatPermission.REPO_ADMIN: (ResourceKind.REPOSITORY, Level.ADMIN),
    PatPermission.PROJECT_READ: (ResourceKind.PROJECT, Level.READ),
    PatPermission.PROJECT_WRITE: (ResourceKind.PROJECT, Level.WRITE),
    PatPermission.PROJECT_ADMIN: (ResourceKind.PROJECT, Level.ADMIN),
}


class Action(StrEnum):
    REPO_READ = "repository:read"
    REPO_WRITE = "repository:write"
    BUILD_STATUS_READ = "build-status:read"
    BUILD_STATUS_WRITE = "build-status:write"
    BUILD_STATUS_OVERWRITE = "build-status:overwrite"
    PULLREQUEST_READ = "pullrequest:read"
    PULLREQUEST_WRITE = "pullrequest:write"
    WEBHOOK_MANAGE = "webhook:manage"
    PROJECT_WEBHOOK_MANAGE = "project:webhook:manage"
    WORKSPACE_WEBHOOK_MANAGE = "workspace:webhook:manage"
    REPO_ADMIN = "repository:admin"
    REPO_DELETE = "repository:delete"
    PROJECT_READ = "project:read"
    PROJECT_CREATE_REPO = "project:create-repo"
    PROJECT_ADMIN = "project:admin"
    PROJECT_CREATE = "workspace:create-project"
    ACCOUNT_READ = "account:read"
    EMAIL_READ = "email:read"
    CREDENTIAL_CREATE = "credential:create"
    CREDENTIAL_MANAGE = "credential:manage"
    CREDENTIAL_ROTATE = "credential:rotate"
    REPO_CREDENTIALS = "repository:credentials"
    PROJECT_CREDENTIALS = "project:credentials"
    WORKSPACE_CREDENTIALS = "workspace:credentials"
    WORKSPACE_CREATE = "workspace:create"
    WORKSPACE_READ = "workspace:read"
    WORKSPACE_ADMIN = "workspace:admin"
    SITE_ADMIN = "site:admin"
    PASSWORD_CHANGE = "account:password"
    REPO_GRANT_ADMIN = "repository:grant-admin"
    PROJECT_GRANT_ADMIN = "project:grant-admin"
    WORKSPACE_GRANT_OWNER = "workspace:grant-owner"


class Scope(StrEnum):
    """Bitbucket Cloud scopes that Gitward understands."""

    REPOSITORY = "repository"
    REPOSITORY_WRITE = "repository:write"
    REPOSITORY_ADMIN = "repository:admin"
    REPOSITORY_DELETE = "repository:delete"
    PULLREQUEST = "pullrequest"
    PULLREQUEST_WRITE = "pullrequest:write"
    WEBHOOK = "webhook"
    PROJECT = "project"
    PROJECT_ADMIN = "project:admin"
    ACCOUNT = "account"
    ACCOUNT_WRITE = "account:write"
    EMAIL = "email"


#: The scope implications, as Bitbucket Cloud has them (direct edges; `implied_scopes` closes
#: them).
SCOPE_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.REPOSITORY: frozenset(),
    Scope.REPOSITORY_WRITE: frozenset({Scope.REPOSITORY}),
    Scope.REPOSITORY_ADMIN: frozenset(),
    Scope.REPOSITORY_DELETE: frozenset(),
    Scope.PULLREQUEST: frozenset({Scope.REPOSITORY}),
    Scope.PULLREQUEST_WRITE: frozenset({Scope.PULLREQUEST, Scope.REPOSITORY_WRITE}),
    Scope.WEBHOOK: frozenset(),
    # Every repository lives in a project, so `project` reaches all of them.
    Scope.PROJECT: frozenset({Scope.REPOSITORY}),
    Scope.PROJECT_ADMIN: frozenset({Scope.PROJECT}),
    Scope.ACCOUNT: frozenset(),
    Scope.ACCOUNT_WRITE: frozenset({Scope.ACCOUNT}),
    Scope.EMAIL: frozenset(),
}


def implied_scopes(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """The closure of `scopes` under SCOPE_IMPLIES."""
    seen: set[Scope] = set()
    stack = list(scopes)
    while stack:
        scope = stack.pop()
        if scope in seen:
            continue
        seen.add(scope)
        stack.extend(SCOPE_IMPLIES[scope])
    return frozenset(seen)


class UnknownScope(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown or unsupported scope: {name}")
        self.name = name


#: Scopes each kind of resource access token may hold (issue: repository tokens take only
#: repository, pull request and webhook scopes; project and workspace tokens add project ones).
REPOSITORY_TOKEN_SCOPES: frozenset[Scope] = frozenset(
    {
        Scope.REPOSITORY,
        Scope.REPOSITORY_WRITE,
        Scope.REPOSITORY_ADMIN,
        Scope.REPOSITORY_DELETE,
        Scope.PULLREQUEST,
        Scope.PULLREQUEST_WRITE,
        Scope.WEBHOOK,
    }
)
PROJECT_TOKEN_SCOPES: frozenset[Scope] = REPOSITORY_TOKEN_SCOPES | {
    Scope.PROJECT,
    Scope.PROJECT_ADMIN,
}
WORKSPACE_TOKEN_SCOPES: frozenset[Scope] = PROJECT_TOKEN_SCOPES


class InvalidScopeList(ValueError):
    def __init__(
        self,
        message: str = 'scopes must be a non-empty list of scope names, e.g. ["repository"]',
    ) -> None:
        super().__init__(message)


def parse_scope_list(value: object) -> frozenset[Scope]:
    """Scopes as a REST body gives them: a non-empty JSON list of known names."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidScopeList
    return parse_scopes(value)


def parse_scopes(names: list[str] | str) -> frozenset[Scope]:
    """Scope names (a list, or a space/comma separated string) to Scopes; unknown names raise."""
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    result: set[Scope] = set()
    for name in names:
        try:
            result.add(Scope(name))
        except ValueError:
            raise UnknownScope(name) from None
    return frozenset(result)


class ApiScope(StrEnum):
    """The scopes of API tokens (`gwapi_`), named as Atlassian names them."""

    READ_REPOSITORY = "read:repository:bitbucket"
    WRITE_REPOSITORY = "write:repository:bitbucket"
    ADMIN_REPOSITORY = "admin:repository:bitbucket"
    DELETE_REPOSITORY = "delete:repository:bitbucket"
    READ_PULLREQUEST = "read:pullrequest:bitbucket"
    WRITE_PULLREQUEST = "write:pullrequest:bitbucket"
    READ_PROJECT = "read:project:bitbucket"
    ADMIN_PROJECT = "admin:project:bitbucket"
    READ_WORKSPACE = "read:workspace:bitbucket"
    ADMIN_WORKSPACE = "admin:workspace:bitbucket"
    READ_USER = "read:user:bitbucket"
    WRITE_USER = "write:user:bitbucket"
    READ_WEBHOOK = "read:webhook:bitbucket"
    WRITE_WEBHOOK = "write:webhook:bitbucket"
    DELETE_WEBHOOK = "delete:webhook:bitbucket"


#: What each API token scope lets a token do, as Gitward's actions. NOTE: unlike the scopes
#: above, none implies another (as Atlassian has them): `write:repository:bitbucket` alone
#: does not read, so a token that pushes and fetches holds both. Every action is named by at
#: most one scope (`API_SCOPE_FOR`), which is the scope a refusal names. Some scopes reach
#: nothing in Gitward, on purpose: no token administers a workspace (`admin:workspace`) or
#: changes an account (`write:user`), and managing webhooks is one action, which needs
#: `write:webhook` (`read:webhook` and `delete:webhook` are accepted, for tokens made for
#: Bitbucket Cloud, and grant nothing more).
API_TOKEN_SCOPES: dict[ApiScope, frozenset[Action]] = {
    # Build statuses are read and written with read access, as on Bitbucket Cloud.
    ApiScope.READ_REPOSITORY: frozenset(
        {Action.REPO_READ, Action.BUILD_STATUS_READ, Action.BUILD_STATUS_WRITE}
    ),
    ApiScope.WRITE_REPOSITORY: frozenset({Action.REPO_WRITE}),
    ApiScope.ADMIN_REPOSITORY: frozenset(
        {Action.REPO_ADMIN, Action.PROJECT_CREATE_REPO, Action.BUILD_STATUS_OVERWRITE}
    ),
    ApiScope.DELETE_REPOSITORY: frozenset({Action.REPO_DELETE}),
    ApiScope.READ_PULLREQUEST: frozenset({Action.PULLREQUEST_READ}),
    ApiScope.WRITE_PULLREQUEST: frozenset({Action.PULLREQUEST_WRITE}),
    ApiScope.READ_PROJECT: frozenset({Action.PROJECT_READ}),
    ApiScope.ADMIN_PROJECT: frozenset({Action.PROJECT_ADMIN}),
    ApiScope.READ_WORKSPACE: frozenset({Action.WORKSPACE_READ}),
    ApiScope.ADMIN_WORKSPACE: frozenset(),
    ApiScope.READ_USER: frozenset({Action.ACCOUNT_READ, Action.EMAIL_READ}),
    ApiScope.WRITE_USER: frozenset(),
    ApiScope.READ_WEBHOOK: frozenset(),
    ApiScope.WRITE_WEBHOOK: frozenset(
        {Action.WEBHOOK_MANAGE, Action.PROJECT_WEBHOOK_MANAGE, Action.WORKSPACE_WEBHOOK_MANAGE}
    ),
    ApiScope.DELETE_WEBHOOK: frozenset(),
}

#: The API token scope each action needs (actions missing here: never by an API token).
API_SCOPE_FOR: dict[Action, ApiScope] = {
    action: scope for scope, actions in API_TOKEN_SCOPES.items() for action in actions
}
if len(API_SCOPE_FOR) != sum(len(actions) for actions in API_TOKEN_SCOPES.values()):
    raise AssertionError("an action is named by two API token scopes")


def parse_api_scopes(value: object) -> frozenset[ApiScope]:
    """API token scopes as a REST body gives them: a non-empty list of known names."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidScopeList(
            'scopes must be a non-empty list of scope names, e.g. ["read:repository:bitbucket"]'
        )
    result: set[ApiScope] = set()
    for name in value:
        try:
            result.add(ApiScope(name))
        except ValueError:
            raise UnknownScope(name[:80]) from None
    return frozenset(result)


@dataclass(frozen=True)
class ActionRule:
    """What an action needs, per kind of credential.

    `level`: the principal's live level needed on the resource (for a workspace: READ means
    member, ADMIN means owner; for the site: ADMIN means site admin).
    `pat`: the PAT permission level needed on the resource kind; None means never by PAT,
    `Level.NONE` means any PAT.
    `scope`: the scope needed by scoped credentials; None means never by a scoped credential.
    `interactive_only`: only an account password or web session may do this.
    """

    resource: ResourceKind
    level: Level
    pat: Level | None
    scope: Scope | None
    interactive_only: bool = False
    # Scoped credentials need no particular scope, only to reach the resource
    # (a workspace token may read its own workspace, for instance).
    scope_free: bool = False
    # A non-interactive credential may do this only to itself (a token rotating itself).
    self_only: bool = False
    # Never for an anonymous caller, whatever a public resource lets anyone read.
    signed_in: bool = False
    # Allowed to a caller signed in with a temporary password, which must be changed first
    # (only changing it is).
    before_password_change: bool = False


R, P, W, A, S = (
    ResourceKind.REPOSITORY,
    ResourceKind.PROJECT,
    ResourceKind.WORKSPACE,
    ResourceKind.ACCOUNT,
    ResourceKind.SITE,
)

#: What each action needs: the user level, the PAT permission and the scope.
ACTIONS: dict[Action, ActionRule] = {
    Action.REPO_READ: ActionRule(R, Level.READ, Level.READ, Scope.REPOSITORY),
    Action.REPO_WRITE: ActionRule(R, Level.WRITE, Level.WRITE, Scope.REPOSITORY_WRITE),
    # Build statuses (docs/access-model.md, Build statuses): as Bitbucket, reporting one needs
    # only read access (Cloud: the `repository` scope; Server: REPO_READ), but a signed-in
    # caller; replacing a status someone else reported needs repository admin, as Bitbucket
    # Cloud has it since 2021.
    Action.BUILD_STATUS_READ: ActionRule(R, Level.READ, Level.READ, Scope.REPOSITORY),
    Action.BUILD_STATUS_WRITE: ActionRule(
        R, Level.READ, Level.READ, Scope.REPOSITORY, signed_in=True
    ),
    Action.BUILD_STATUS_OVERWRITE: ActionRule(
        R, Level.ADMIN, Level.ADMIN, Scope.REPOSITORY_ADMIN, signed_in=True
    ),
    Action.PULLREQUEST_READ: ActionRule(R, Level.READ, Level.READ, Scope.PULLREQUEST),
    Action.PULLREQUEST_WRITE: ActionRule(R, Level.WRITE, Level.WRITE, Scope.PULLREQUEST_WRITE),
    Action.WEBHOOK_MANAGE: ActionRule(R, Level.ADMIN, Level.ADMIN, Scope.WEBHOOK),
    # Hooks on a project (Bitbucket Server: PROJECT_ADMIN) or on a workspace (Bitbucket
    # Cloud: its owners), docs/webhooks.md. A project's hooks see every repository of it:
    # a scoped credential needs project:admin, as a PAT needs PROJECT_ADMIN (`webhook` alone
    # is repository administration, which a project token with REPO_ADMIN holds).
    Action.PROJECT_WEBHOOK_MANAGE: ActionRule(
        P, Level.ADMIN, Level.ADMIN, Scope.PROJECT_ADMIN
    ),
    Action.WORKSPACE_WEBHOOK_MANAGE: ActionRule(W, Level.ADMIN, None, Scope.WEBHOOK),
    Action.REPO_ADMIN: ActionRule(R, Level.ADMIN, Level.ADMIN, Scope.REPOSITORY_ADMIN),
    Action.REPO_DELETE: ActionRule(R, Level.ADMIN, Level.ADMIN, Scope.REPOSITORY_DELETE),
    Action.PROJECT_READ: ActionRule(P, Level.READ, Level.READ, Scope.PROJECT),
    Action.PROJECT_CREATE_REPO: ActionRule(
        P, Level.CREATE_REPO, Level.ADMIN, Scope.REPOSITORY_ADMIN
    ),
    Action.PROJECT_ADMIN: ActionRule(P, Level.ADMIN, Level.ADMIN, Scope.PROJECT_ADMIN),
    # Creating a project is workspace administration in Gitward (see docs/access-model.md).
    Action.PROJECT_CREATE: ActionRule(W, Level.ADMIN, None, None),
    Action.ACCOUNT_READ: ActionRule(A, Level.READ, Level.NONE, Scope.ACCOUNT),
    Action.EMAIL_READ: ActionRule(A, Level.READ, Level.NONE, Scope.EMAIL),
    # On an account, the user themself holds ADMIN and a site administrator WRITE: both may
    # list, modify and revoke its credentials; only the user creates or rotates them, so
    # that nobody else ever sees one of their secrets.
    Action.CREDENTIAL_CREATE: ActionRule(A, Level.ADMIN, None, None, interactive_only=True),
    Action.CREDENTIAL_MANAGE: ActionRule(A, Level.WRITE, None, None, interactive_only=True),
    Action.CREDENTIAL_ROTATE: ActionRule(A, Level.ADMIN, Level.NONE, None, self_only=True),
    # Resource access tokens are managed by the resource's admins, in person only
    # (no credential other than an interactive login creates or manages a credential).
    Action.REPO_CREDENTIALS: ActionRule(R, Level.ADMIN, None, None, interactive_only=True),
    Action.PROJECT_CREDENTIALS: ActionRule(P, Level.ADMIN, None, None, interactive_only=True),
    Action.WORKSPACE_CREDENTIALS: ActionRule(W, Level.ADMIN, None, None, interactive_only=True),
    # Any account may found a workspace, but only in person: no token creates one.
    Action.WORKSPACE_CREATE: ActionRule(A, Level.ADMIN, None, None),
    Action.WORKSPACE_READ: ActionRule(W, Level.READ, Level.NONE, None, scope_free=True),
    Action.WORKSPACE_ADMIN: ActionRule(W, Level.ADMIN, None, None),
    Action.SITE_ADMIN: ActionRule(S, Level.ADMIN, None, None),
    # Only the user, in person, changes their password (a site administrator resets it with
    # SITE_ADMIN instead); the one thing a temporary password is good for.
    Action.PASSWORD_CHANGE: ActionRule(
        A, Level.ADMIN, None, None, interactive_only=True, before_password_change=True
    ),
    # NOTE: granting admin (or workspace ownership) hands a person lasting power: they can
    # mint their own tokens, which outlive the credential that granted it. A leaked token
    # with `repository:admin` or `project:admin` (or REPO_ADMIN / PROJECT_ADMIN) may manage
    # read and write grants, but only an account password or web session grants admin.
    Action.REPO_GRANT_ADMIN: ActionRule(R, Level.ADMIN, None, None, interactive_only=True),
    Action.PROJECT_GRANT_ADMIN: ActionRule(P, Level.ADMIN, None, None, interactive_only=True),
    Action.WORKSPACE_GRANT_OWNER: ActionRule(W, Level.ADMIN, None, None, interactive_only=True),
}

#: The actions that only read: all a read-only narrowed token may do (docs/narrowed-tokens.md).
#: Reporting a build status writes (even though it needs only read access); managing
#: webhooks (reading them included) is administration.
READ_ACTIONS: frozenset[Action] = frozenset({
    Action.REPO_READ,
    Action.BUILD_STATUS_READ,
    Action.PULLREQUEST_READ,
    Action.PROJECT_READ,
    Action.ACCOUNT_READ,
    Action.EMAIL_READ,
    Action.WORKSPACE_READ,
})

#: The action that granting each level needs, per kind of resource (GRANTS_NEED) and per
#: workspace role (ROLES_NEED): the services look the action up here, never decide it.
GRANTS_NEED: dict[ResourceKind, dict[Level, Action]] = {
    ResourceKind.REPOSITORY: {
        Level.READ: Action.REPO_ADMIN,
        Level.WRITE: Action.REPO_ADMIN,
        Level.ADMIN: Action.REPO_GRANT_ADMIN,
    },
    ResourceKind.PROJECT: {
        Level.READ: Action.PROJECT_ADMIN,
        Level.WRITE: Action.PROJECT_ADMIN,
        Level.CREATE_REPO: Action.PROJECT_ADMIN,
        Level.ADMIN: Action.PROJECT_GRANT_ADMIN,
    },
}
ROLES_NEED: dict[WorkspaceRole, Action] = {
    WorkspaceRole.MEMBER: Action.WORKSPACE_ADMIN,
    WorkspaceRole.OWNER: Action.WORKSPACE_GRANT_OWNER,
}

#: For each resource kind, the action that decides whether the caller may see it at all:
#: a denial on a resource the caller cannot see is a 404, never a 403.
VISIBILITY_ACTION: dict[ResourceKind, Action] = {
    ResourceKind.REPOSITORY: Action.REPO_READ,
    ResourceKind.PROJECT: Action.PROJECT_READ,
    ResourceKind.WORKSPACE: Action.WORKSPACE_READ,
    ResourceKind.ACCOUNT: Action.ACCOUNT_READ,
    ResourceKind.SITE: Action.SITE_ADMIN,
}
