"""App passwords (`gwapp_`): a user's scoped password for Git and scripts.

Presented only as Basic `username:app-password`; bounded on every request by min(scopes, the
user's live levels). They keep working when two-step verification is on, and never create
credentials or sign in to an interactive session (the policy refuses both to scoped kinds).
"""

from __future__ import annotations

from dataclasses import dataclass

from gitward.credentials.registry import AuthenticationFailed, Presented, presentation_check
from gitward.credentials.stored import StoredSecretKind
from gitward.domain.identity import AuthContext, Bound, CredentialKind, UserPrincipal
from gitward.domain.permissions import Scope, implied_scopes, parse_scopes
from gitward.storage.models import AppPassword
from gitward.storage.store import Store, UserStanding

PREFIX = "gwapp_"


_CHECK_PRESENTATION = presentation_check(CredentialKind.APP_PASSWORD)


@dataclass(frozen=True)
class CachedAppPassword:
    id: int
    user_id: int
    scopes: frozenset[Scope]


class AppPasswords(StoredSecretKind[CachedAppPassword]):
    prefix = PREFIX

    def new_secret(self) -> tuple[str, str]:
        return self.issue(PREFIX)

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        _CHECK_PRESENTATION(presented)
        token_hash = self.hash(presented.secret)
        standing: list[UserStanding | None] = []

        def current_generation(app: CachedAppPassword) -> int:
            user, generation = store.accounts.user_standing(app.user_id)
            standing.append(user)
            return generation

        found = self.cached(token_hash, current_generation)
        if found is None:
            hit = store.credentials.app_password_by_hash(token_hash)
            if hit is None:
                raise AuthenticationFailed(
                    "Invalid or revoked app password", audit_subject="app-password:unknown"
                )
            found = CachedAppPassword(hit[0], hit[1], implied_scopes(parse_scopes(hit[2])))
            self.remember(token_hash, int(hit[3]), found)
            standing.append(store.accounts.user_standing(found.user_id)[0])
        user = standing[-1]
        subject = f"app-password:{found.id}"
        if user is None or not user.is_active:
            raise AuthenticationFailed("The owner of this app password cannot sign in",
                                       audit_subject=subject)
        if (presented.username or "").lower() != user.username:
            raise AuthenticationFailed("This app password belongs to another user",
                                       audit_subject=subject)
        self.note_use(store, AppPassword, found.id, presented.client_ip)
        return AuthContext(
            UserPrincipal(user.id, user.username, user.is_site_admin),
            CredentialKind.APP_PASSWORD,
            Bound(scopes=found.scopes),
            credential_id=found.id,
        )
