"""App passwords (`gwapp_`): a user's scoped password for Git and scripts.

Presented only as Basic `username:app-password`; bounded on every request by min(scopes, the
user's live levels). They keep working when two-step verification is on, and never create
credentials or sign in to an interactive session (the policy refuses both to scoped kinds).
"""

from __future__ import annotations

from dataclasses import dataclass

from gitward.credentials.registry import (
    AuthenticationFailed,
    Leak,
    Presented,
    presentation_check,
)
from gitward.credentials.stored import StoredSecretKind
from gitward.domain.identity import AuthContext, Bound, CredentialKind, UserPrincipal
from gitward.domain.networks import networks_of
from gitward.domain.permissions import implied_scopes, parse_scopes
from gitward.storage.models import AppPassword
from gitward.storage.store import Store

PREFIX = "gwapp_"


_CHECK_PRESENTATION = presentation_check(CredentialKind.APP_PASSWORD)


@dataclass(frozen=True)
class CachedAppPassword:
    """What the next request with an app password needs, as authentication last found it."""

    id: int
    #: The owner's username (None: the owner is gone), to match the Basic username against.
    username: str | None
    #: The answer, built once; None while the owner cannot sign in.
    context: AuthContext | None


class AppPasswords(StoredSecretKind[CachedAppPassword]):
    prefix = PREFIX

    def new_secret(self) -> tuple[str, str]:
        return self.issue(PREFIX)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        _CHECK_PRESENTATION(presented)
        generation = store.credentials.generation()
        token_hash, found = self.look_up(presented.secret, generation)
        if found is None:
            hit = store.credentials.app_password_by_hash(token_hash)
            if hit is None:
                raise AuthenticationFailed(
                    "Invalid or revoked app password", audit_subject="app-password:unknown"
                )
            app_id, user_id, scopes, allowed_ips = hit
            user, _ = store.accounts.user_standing(user_id)
            context = (
                AuthContext(
                    UserPrincipal(user.id, user.username, user.is_site_admin),
                    CredentialKind.APP_PASSWORD,
                    Bound(
                        scopes=implied_scopes(parse_scopes(scopes)),
                        networks=networks_of(allowed_ips),
                    ),
                    credential_id=app_id,
                )
                if user is not None and user.is_active
                else None
            )
            found = CachedAppPassword(app_id, user.username if user else None, context)
            self.remember(token_hash, generation, found)
        subject = f"app-password:{found.id}"
        if found.context is None:
            raise AuthenticationFailed("The owner of this app password cannot sign in",
                                       audit_subject=subject)
        if (presented.username or "").lower() != found.username:
            raise AuthenticationFailed("This app password belongs to another user",
                                       audit_subject=subject)
        self.note_use(store, AppPassword, found.id, presented.client_ip)
        return found.context

    # -- leaks (push protection) -----------------------------------------------------------

    def leaked(self, store: Store, secret: str) -> Leak | None:
        hit = store.credentials.app_password_by_hash(self.hash(secret))
        if hit is None:
            return None
        app_id, user_id, _, _ = hit
        user = store.accounts.user_by_id(user_id)
        row = store.credentials.app_password_of(user_id, app_id)
        return Leak(
            PREFIX, "app password", app_id, row.label if row else "",
            owner=f"user:{user.username if user else user_id}", owner_user_id=user_id,
        )

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        if leak.owner_user_id is None:
            return
        row = store.credentials.app_password_of(leak.owner_user_id, leak.credential_id)
        if row is not None:
            store.delete(row)
            store.flush()
