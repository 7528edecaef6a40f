"""Repository, project and workspace access tokens (`gwrep_`, `gwprj_`, `gwwsp_`).

A resource token acts as itself (a TokenPrincipal), never as its creator: it keeps working when
the creator loses access or is deleted, it reaches only inside its resource, and its scopes
bound what it does there. Deleting the resource deletes the token (foreign keys cascade).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gitward.credentials.registry import (
    AuthenticationFailed,
    Leak,
    Presented,
    presentation_check,
)
from gitward.credentials.stored import StoredSecretKind
from gitward.domain.identity import AuthContext, Bound, CredentialKind, Reach, TokenPrincipal
from gitward.domain.networks import networks_of
from gitward.domain.permissions import (
    PROJECT_TOKEN_SCOPES,
    REPOSITORY_TOKEN_SCOPES,
    WORKSPACE_TOKEN_SCOPES,
    ResourceKind,
    Scope,
    implied_scopes,
    parse_scope_list,
    parse_scopes,
)
from gitward.domain.refs import patterns_of
from gitward.storage.models import ResourceAccessToken
from gitward.storage.store import Store


@dataclass(frozen=True)
class ResourceKindSpec:
    resource: ResourceKind  # repository | project | workspace
    prefix: str
    credential: CredentialKind
    allowed_scopes: frozenset[Scope]


SPECS: dict[ResourceKind, ResourceKindSpec] = {
    spec.resource: spec
    for spec in (
        ResourceKindSpec(
            ResourceKind.REPOSITORY,
            "gwrep_",
            CredentialKind.REPOSITORY_ACCESS_TOKEN,
            REPOSITORY_TOKEN_SCOPES,
        ),
        ResourceKindSpec(
            ResourceKind.PROJECT, "gwprj_", CredentialKind.PROJECT_ACCESS_TOKEN,
            PROJECT_TOKEN_SCOPES,
        ),
        ResourceKindSpec(
            ResourceKind.WORKSPACE,
            "gwwsp_",
            CredentialKind.WORKSPACE_ACCESS_TOKEN,
            WORKSPACE_TOKEN_SCOPES,
        ),
    )
}


class InvalidScopes(ValueError):
    pass


def parse_token_scopes(kind: ResourceKind, value: object) -> frozenset[Scope]:
    """Validate the scopes asked for a token of `kind`; InvalidScopes names the problem."""
    try:
        scopes = parse_scope_list(value)
    except ValueError as error:
        raise InvalidScopes(str(error)) from None
    refused = sorted(s.value for s in scopes - SPECS[kind].allowed_scopes)
    if refused:
        raise InvalidScopes(
            f"A {kind.value} access token cannot have the scope(s): {', '.join(refused)}"
        )
    return scopes


@dataclass(frozen=True)
class CachedResourceToken:
    """What the next request with a token needs, as authentication last found it."""

    id: int
    expires_on: datetime | None
    #: The answer, built once.
    context: AuthContext


def context_of(row: ResourceAccessToken, spec: ResourceKindSpec) -> AuthContext:
    """The answer for a token row (and what its narrowed tokens start from)."""
    return AuthContext(
        TokenPrincipal(row.id, row.name, spec.credential, row.uuid),
        spec.credential,
        Bound(
            scopes=implied_scopes(parse_scopes(row.scopes)),
            reach=Reach(row.workspace_id, row.project_id, row.repository_id),
            networks=networks_of(row.allowed_ips),
            ref_patterns=patterns_of(row.ref_patterns),
            fast_forward_only=bool(row.fast_forward_only),
        ),
        credential_id=row.id,
    )


SPEC_OF_PREFIX: dict[str, ResourceKindSpec] = {spec.prefix: spec for spec in SPECS.values()}


class _KindAuthenticator:
    """The registry entry for one prefix; the work is shared by ResourceAccessTokens."""

    def __init__(self, owner: ResourceAccessTokens, spec: ResourceKindSpec) -> None:
        self.prefix = spec.prefix
        self._owner = owner
        self._spec = spec
        self._check_presentation = presentation_check(spec.credential)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        self._check_presentation(presented)
        return self._owner.authenticate(store, presented, self._spec)

    def leaked(self, store: Store, secret: str) -> Leak | None:
        return self._owner.leaked(store, secret, self._spec)

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        self._owner.revoke_leaked(store, leak)


class ResourceAccessTokens(StoredSecretKind[CachedResourceToken]):
    def kinds(self) -> list[_KindAuthenticator]:
        return [_KindAuthenticator(self, spec) for spec in SPECS.values()]

    def new_secret(self, kind: ResourceKind) -> tuple[str, str]:
        return self.issue(SPECS[kind].prefix)

    def authenticate(
        self, store: Store, presented: Presented, spec: ResourceKindSpec
    ) -> AuthContext:
        generation = store.credentials.generation()
        token_hash, token = self.look_up(presented.secret, generation)
        if token is None:
            row = store.credentials.resource_token_by_hash(token_hash)
            if row is None or row.kind != spec.resource.value:
                raise AuthenticationFailed(
                    "Invalid or revoked access token",
                    audit_subject=f"token:{spec.resource.value}:unknown",
                )
            token = CachedResourceToken(row.id, row.expires_on, context_of(row, spec))
            self.remember(token_hash, generation, token)
        now = self.clock()
        if token.expires_on is not None and now >= token.expires_on:
            raise AuthenticationFailed(
                "This access token has expired",
                audit_subject=f"token:{spec.resource.value}:{token.id}",
            )
        self.note_use(store, ResourceAccessToken, token.id, presented.client_ip)
        return token.context

    # -- leaks (push protection) -----------------------------------------------------------

    def leaked(self, store: Store, secret: str, spec: ResourceKindSpec) -> Leak | None:
        row = store.credentials.resource_token_by_hash(self.hash(secret))
        if row is None or row.kind != spec.resource.value:
            return None
        if row.expires_on is not None and self.clock() >= row.expires_on:
            return None
        return Leak(
            spec.prefix, f"{spec.resource.value} access token", row.id, row.name,
            owner=resource_label(store, row),
        )

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        row = store.credentials.resource_token_by_id(leak.credential_id)
        if row is not None:
            store.delete(row)
            store.flush()


def resource_label(store: Store, row: ResourceAccessToken) -> str:
    """The audit target of the resource a token belongs to (as its own events name it)."""
    if row.repository_id is not None:
        repo = store.repos.repository_by_id(row.repository_id)
        if repo is not None:
            return f"repository:{repo.workspace.slug}/{repo.slug}"
    if row.project_id is not None:
        project = store.repos.project_by_id(row.project_id)
        if project is not None:
            return f"project:{project.workspace.slug}/{project.key}"
    workspace = store.repos.workspace_by_id(row.workspace_id)
    return f"workspace:{workspace.slug if workspace else row.workspace_id}"
