"""Who is asking, and with what: principals, credential kinds and the AuthContext.

Every way in (REST, Git over HTTP, OAuth, web) turns its credential into an AuthContext;
the policy decides from it alone plus the live grants loaded for the target.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum

from gitward.domain.networks import IPAddress, IPNetwork, allows, intersection, parse_address
from gitward.domain.permissions import (
    ApiScope,
    Level,
    ResourceKind,
    Scope,
    repository_level_from_project,
)

#: Contexts per address kept with a credential's context (`AuthContext.from_address`).
_ADDRESSES_KEPT = 64


class CredentialKind(StrEnum):
    ANONYMOUS = "anonymous"
    PASSWORD = "password"
    SESSION = "session"
    PERSONAL_ACCESS_TOKEN = "personal_access_token"
    APP_PASSWORD = "app_password"
    API_TOKEN = "api_token"
    REPOSITORY_ACCESS_TOKEN = "repository_access_token"
    PROJECT_ACCESS_TOKEN = "project_access_token"
    WORKSPACE_ACCESS_TOKEN = "workspace_access_token"
    OAUTH_USER = "oauth_user"
    OAUTH_CLIENT = "oauth_client"

    @property
    def interactive(self) -> bool:
        return CREDENTIAL_KINDS[self].interactive

    @property
    def facts(self) -> KindFacts:
        return CREDENTIAL_KINDS[self]


class BoundBy(Enum):
    """What, besides its principal's standing, limits what a kind of credential may do."""

    #: Only the principal's live standing (account passwords, web sessions).
    NOTHING = "nothing"
    #: Bitbucket Server PAT permission levels: only actions that name a PAT permission.
    PAT_PERMISSIONS = "pat_permissions"
    #: OAuth-style scopes: only actions that name a scope (or need none).
    SCOPES = "scopes"
    #: Atlassian's API token scopes: only actions that one of them names (API_SCOPE_FOR).
    API_SCOPES = "api_scopes"
    #: No credential at all: only what is public.
    PUBLIC = "public"

    # Members are singletons compared by identity: hash them so too, in C (Enum's own
    # __hash__ is Python code, run on every policy table look-up).
    __hash__ = object.__hash__


class Presentation(Enum):
    """A way a secret may arrive on a request."""

    #: HTTP Basic with the account's own username.
    BASIC_OWN_USERNAME = "basic_own_username"
    #: HTTP Basic with the username `x-token-auth` (credentials that are not a person's).
    BASIC_TOKEN_USERNAME = "basic_token_username"
    #: HTTP Basic with the username `x-bitbucket-api-token-auth` (API tokens, as Git sends
    #: them to Bitbucket Cloud).
    BASIC_API_TOKEN_USERNAME = "basic_api_token_username"
    BEARER = "bearer"
    #: The web session cookie.
    COOKIE = "cookie"

    __hash__ = object.__hash__  # as BoundBy's
    NONE = "none"


@dataclass(frozen=True)
class KindFacts:
    """Everything that differs between kinds of credential, as data the policy reads.

    `name`: how messages name the kind (plural, as in "App passwords cannot be used to …").
    `bound_by`: what bounds it besides its principal (see BoundBy).
    `interactive`: a person signing in themself; only these create credentials.
    `presented`: the ways its secret may be sent; `presentation_hint` says them when one is
    sent otherwise.
    """

    name: str
    bound_by: BoundBy
    interactive: bool
    presented: frozenset[Presentation]
    presentation_hint: str = ""


#: The Basic username under which resource and OAuth tokens are presented (as Bitbucket).
TOKEN_USERNAME = "x-token-auth"
#: The Basic username under which Git presents an API token (as Bitbucket Cloud).
API_TOKEN_USERNAME = "x-bitbucket-api-token-auth"

_TOKEN_HINT = "Present {} as the username " + TOKEN_USERNAME + " or as a bearer token"
_AS_TOKEN = frozenset({Presentation.BASIC_TOKEN_USERNAME, Presentation.BEARER})

#: One row per kind. Adding a kind means adding its row here (and its authenticator under
#: credentials/); the policy itself never names a kind.
CREDENTIAL_KINDS: dict[CredentialKind, KindFacts] = {
    CredentialKind.ANONYMOUS: KindFacts(
        "Anonymous requests", BoundBy.PUBLIC, False, frozenset({Presentation.NONE})
    ),
    CredentialKind.PASSWORD: KindFacts(
        "Account passwords",
        BoundBy.NOTHING,
        True,
        frozenset({Presentation.BASIC_OWN_USERNAME}),
        "Account passwords are used as Basic username:password",
    ),
    CredentialKind.SESSION: KindFacts(
        "Web sessions", BoundBy.NOTHING, True, frozenset({Presentation.COOKIE})
    ),
    CredentialKind.PERSONAL_ACCESS_TOKEN: KindFacts(
        "Personal access tokens",
        BoundBy.PAT_PERMISSIONS,
        False,
        frozenset(
            {Presentation.BASIC_OWN_USERNAME, Presentation.BASIC_TOKEN_USERNAME,
             Presentation.BEARER}
        ),
        "Present personal access tokens with your username, as the username "
        + TOKEN_USERNAME + ", or as a bearer token",
    ),
    CredentialKind.APP_PASSWORD: KindFacts(
        "App passwords",
        BoundBy.SCOPES,
        False,
        frozenset({Presentation.BASIC_OWN_USERNAME}),
        "App passwords are used as Basic username:app-password",
    ),
    CredentialKind.API_TOKEN: KindFacts(
        "API tokens",
        BoundBy.API_SCOPES,
        False,
        frozenset({Presentation.BASIC_OWN_USERNAME, Presentation.BASIC_API_TOKEN_USERNAME}),
        "Present API tokens as Basic email:token or username:token (Git also takes the "
        "username " + API_TOKEN_USERNAME + ")",
    ),
    CredentialKind.REPOSITORY_ACCESS_TOKEN: KindFacts(
        "Repository access tokens", BoundBy.SCOPES, False, _AS_TOKEN,
        _TOKEN_HINT.format("access tokens"),
    ),
    CredentialKind.PROJECT_ACCESS_TOKEN: KindFacts(
        "Project access tokens", BoundBy.SCOPES, False, _AS_TOKEN,
        _TOKEN_HINT.format("access tokens"),
    ),
    CredentialKind.WORKSPACE_ACCESS_TOKEN: KindFacts(
        "Workspace access tokens", BoundBy.SCOPES, False, _AS_TOKEN,
        _TOKEN_HINT.format("access tokens"),
    ),
    CredentialKind.OAUTH_USER: KindFacts(
        "OAuth access tokens", BoundBy.SCOPES, False, _AS_TOKEN,
        _TOKEN_HINT.format("OAuth access tokens"),
    ),
    CredentialKind.OAUTH_CLIENT: KindFacts(
        "OAuth access tokens", BoundBy.SCOPES, False, _AS_TOKEN,
        _TOKEN_HINT.format("OAuth access tokens"),
    ),
}


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
    `api_scopes`: an API token's scopes, exactly as granted (None: not an API token).
    `networks`: the addresses the credential may be used from (None: any).
    `ref_patterns`: the refs it may update, as globs (None: every ref; domain/refs.py).
    `fast_forward_only`: it may create refs and move them forward, nothing else.
    `repositories`: the only repositories it reaches, by id (None: no such restriction); a
    credential with one reaches no project, workspace or site either (a narrowed token).
    `read_only`: only actions that read (`READ_ACTIONS`; a narrowed token).
    `narrowed`: a narrowed token (docs/narrowed-tokens.md): it never acts on a credential,
    not even its parent (rotating the parent would hand out the unrestricted secret).
    """

    pat: dict[ResourceKind, Level] | None = None
    scopes: frozenset[Scope] | None = None
    reach: Reach | None = None
    api_scopes: frozenset[ApiScope] | None = None
    networks: tuple[IPNetwork, ...] | None = None
    ref_patterns: tuple[str, ...] | None = None
    fast_forward_only: bool = False
    repositories: frozenset[int] | None = None
    read_only: bool = False
    narrowed: bool = False
    #: `pat` as the policy judges it: a project permission reaches the project's repositories
    #: as well, so the repository level is the higher of the two. Worked out once, with the
    #: bound (which a credential's cached context holds), not on every decision.
    pat_held: dict[ResourceKind, Level] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.pat is not None:
            held = dict(self.pat)
            held[ResourceKind.REPOSITORY] = max(
                self.pat.get(ResourceKind.REPOSITORY, Level.NONE),
                repository_level_from_project(self.pat.get(ResourceKind.PROJECT, Level.NONE)),
            )
            object.__setattr__(self, "pat_held", held)

    @property
    def restricts_refs(self) -> bool:
        """Does the bound limit which refs it may update, or how?"""
        return self.ref_patterns is not None or self.fast_forward_only
    def narrowed_to(
        self,
        repositories: frozenset[int] | None = None,
        read_only: bool = False,
        allow_lists: tuple[tuple[IPNetwork, ...], ...] = (),
    ) -> Bound:
        """This bound with a narrowed token's restrictions on top: each one only takes away
        (the repositories and every allow-list are intersected with what holds already)."""
        kept = self.repositories
        if repositories is not None:
            kept = repositories if kept is None else kept & repositories
        networks = self.networks
        for allow_list in allow_lists:
            networks = intersection(networks, allow_list)
        return replace(
            self, repositories=kept, read_only=self.read_only or read_only,
            networks=networks, narrowed=True,
        )


UNBOUNDED = Bound()


@dataclass(frozen=True)
class AuthContext:
    principal: Principal
    credential: CredentialKind
    bound: Bound = field(default=UNBOUNDED)
    credential_id: int | None = None
    #: Signed in with a temporary password a site administrator set: the policy allows
    #: nothing but changing it (`ActionRule.before_password_change`).
    must_change_password: bool = False
    #: This request proved a current two-step code (its own authentication spent it), so
    #: an action that asks for one again takes this as the confirmation.
    two_step_verified: bool = False
    #: Where this request comes from, set only for a credential with an address allow-list
    #: (`Bound.networks`): every other context is shared by the requests of its credential.
    client_address: IPAddress | None = None

    @property
    def user(self) -> UserPrincipal | None:
        return self.principal if isinstance(self.principal, UserPrincipal) else None

    @property
    def is_anonymous(self) -> bool:
        return isinstance(self.principal, AnonymousPrincipal)

    @functools.cached_property
    def key(self) -> Hashable:
        """The context as a dictionary key (its bound holds a dict), built once: a
        credential's context is cached with its look-up (credentials/stored.py)."""
        bound = self.bound
        pat = (
            tuple(sorted(bound.pat.items(), key=lambda item: item[0].value))
            if bound.pat is not None
            else None
        )
        return (self.principal, self.credential, self.credential_id, pat, bound.scopes,
                bound.reach, bound.api_scopes, bound.networks, bound.ref_patterns,
                bound.fast_forward_only, bound.repositories, bound.read_only, bound.narrowed,
                self.must_change_password,
                self.two_step_verified, self.client_address)

    def from_address(self, client_ip: str | None) -> AuthContext:
        """This context for one request from `client_ip` (an unreadable or missing address
        is outside every allow-list): made once per address and kept with this context
        (which its credential's cache holds), so that the requests of a credential with an
        allow-list share one context per address, as the others share theirs."""
        known = self._by_address.get(client_ip)
        if known is None:
            if len(self._by_address) >= _ADDRESSES_KEPT:
                self._by_address.clear()
            known = replace(self, client_address=parse_address(client_ip))
            self._by_address[client_ip] = known
        return known

    @functools.cached_property
    def _by_address(self) -> dict[str | None, AuthContext]:
        return {}

    @functools.cached_property
    def inside_allow_list(self) -> bool:
        """Is this request's address inside the credential's allow-list (True without a
        list)? Worked out once per context: the policy asks on every decision."""
        networks = self.bound.networks
        return networks is None or allows(networks, self.client_address)


ANONYMOUS_CONTEXT = AuthContext(ANONYMOUS, CredentialKind.ANONYMOUS)
