"""Who is asking, and with what: principals, credential kinds and the AuthContext.

Every way in (REST, Git over HTTP, OAuth, web) turns its credential into an AuthContext;
the policy decides from it alone plus the live grants loaded for the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gitward.domain.permissions import Level, ResourceKind, Scope


class CredentialKind(StrEnum):
    ANONYMOUS = "anonymous"
    PASSWORD = "password"
    SESSION = "session"
    PERSONAL_ACCESS_TOKEN = "personal_access_token"
    APP_PASSWORD = "app_password"
    REPOSITORY_ACCESS_TOKEN = "repository_access_token"
    PROJECT_ACCESS_TOKEN = "project_access_token"
    WORKSPACE_ACCESS_TOKEN = "workspace_access_token"
    OAUTH_USER = "oauth_user"
    OAUTH_CLIENT = "oauth_client"

    @property
    def interactive(self) -> bool:
        return self in (CredentialKind.PASSWORD, CredentialKind.SESSION)


@dataclass(frozen=True)
class UserPrincipal:
    """A person (or a service account) with an account."""

    user_id: int
    username: str
    is_site_admin: bool = False


@dataclass(frozen=True)
class TokenPrincipal:
    """A credential that acts as itself: resource access tokens, OAuth client credentials."""

    token_id: int
    name: str
    kind: CredentialKind
    uuid: str = ""


@dataclass(frozen=True)
class AnonymousPrincipal:
    pass


Principal = UserPrincipal | TokenPrincipal | AnonymousPrincipal
ANONYMOUS = AnonymousPrincipal()


@dataclass(frozen=True)
class Reach:
    """The resource a credential is confined to. None fields are not constrained below it."""

    workspace_id: int
    project_id: int | None = None
    repository_id: int | None = None


@dataclass(frozen=True)
class Bound:
    """What the credential itself permits, whatever its principal could do.

    `pat`: PAT permission levels per resource kind (None when the credential is not a PAT).
    `scopes`: the closure of granted scopes (None when the credential is not scoped).
    `reach`: the resource the credential is confined to (None: anywhere its principal reaches).
    """

    pat: dict[ResourceKind, Level] | None = None
    scopes: frozenset[Scope] | None = None
    reach: Reach | None = None


UNBOUNDED = Bound()


@dataclass(frozen=True)
class AuthContext:
    principal: Principal
    credential: CredentialKind
    bound: Bound = field(default=UNBOUNDED)
    credential_id: int | None = None

    @property
    def user(self) -> UserPrincipal | None:
        return self.principal if isinstance(self.principal, UserPrincipal) else None

    @property
    def is_anonymous(self) -> bool:
        return isinstance(self.principal, AnonymousPrincipal)


ANONYMOUS_CONTEXT = AuthContext(ANONYMOUS, CredentialKind.ANONYMOUS)
