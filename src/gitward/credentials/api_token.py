"""API tokens (`gwapi_`): Bitbucket Cloud's replacement of app passwords.

A user's token with Atlassian-named scopes (none implies another), a mandatory expiry and,
like every user credential, bounded on every request by min(its scopes, the user's live
levels). Presented as Basic `email:token` or `username:token`, and by Git as
`x-bitbucket-api-token-auth:token`; never as a bearer token or under `x-token-auth`.
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
from gitward.domain.identity import (
    API_TOKEN_USERNAME,
    AuthContext,
    Bound,
    CredentialKind,
    UserPrincipal,
)
from gitward.domain.networks import networks_of
from gitward.domain.permissions import ApiScope
from gitward.storage.models import ApiToken
from gitward.storage.store import Store

PREFIX = "gwapi_"

_CHECK_PRESENTATION = presentation_check(CredentialKind.API_TOKEN)


@dataclass(frozen=True)
class CachedApiToken:
    """What the next request with an API token needs, as authentication last found it."""

    id: int
    expires_on: datetime
    #: The names the owner may present it under (username and email, lower case).
    names: frozenset[str]
    #: The answer, built once; None while the owner cannot sign in.
    context: AuthContext | None


class ApiTokens(StoredSecretKind[CachedApiToken]):
    """The `gwapi_` kind in the credential registry."""

    prefix = PREFIX

    def new_secret(self) -> tuple[str, str]:
        return self.issue(PREFIX)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        _CHECK_PRESENTATION(presented)
        generation = store.credentials.generation()
        token_hash, token = self.look_up(presented.secret, generation)
        if token is None:
            row = store.credentials.api_token_by_hash(token_hash)
            if row is None:
                raise AuthenticationFailed(
                    "Invalid or revoked API token", audit_subject="api-token:unknown"
                )
            token_id, scopes, expires_on, allowed_ips, user_id, username, email, active, admin = (
                row
            )
            context = (
                AuthContext(
                    UserPrincipal(user_id, username, bool(admin)),
                    CredentialKind.API_TOKEN,
                    Bound(
                        api_scopes=frozenset(ApiScope(name) for name in scopes.split()),
                        networks=networks_of(allowed_ips),
                    ),
                    credential_id=token_id,
                )
                if active
                else None
            )
            names = frozenset(name.lower() for name in (username, email) if name)
            token = CachedApiToken(token_id, expires_on, names, context)
            self.remember(token_hash, generation, token)
        subject = f"api-token:{token.id}"
        if self.clock() >= token.expires_on:
            raise AuthenticationFailed("This API token has expired", audit_subject=subject)
        if token.context is None:
            raise AuthenticationFailed(
                "The owner of this API token cannot sign in", audit_subject=subject
            )
        username = (presented.username or "").lower()
        if username != API_TOKEN_USERNAME and username not in token.names:
            raise AuthenticationFailed(
                "This API token belongs to another user: present it with its owner's email "
                "or username",
                audit_subject=subject,
            )
        self.note_use(store, ApiToken, token.id, presented.client_ip)
        return token.context

    # -- leaks (push protection, the revocation API) ------------------------------------------

    def leaked(self, store: Store, secret: str) -> Leak | None:
        row = store.credentials.api_token_by_hash(self.hash(secret))
        if row is None or self.clock() >= row[2]:
            return None
        token_id, user_id, username = row[0], row[4], row[5]
        token = store.credentials.api_token_of(user_id, token_id)
        return Leak(PREFIX, "API token", token_id, token.name if token else "",
                    owner=f"user:{username}", owner_user_id=user_id)

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        if leak.owner_user_id is None:
            return
        token = store.credentials.api_token_of(leak.owner_user_id, leak.credential_id)
        if token is not None:
            store.delete(token)
            store.flush()
