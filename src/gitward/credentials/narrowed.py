"""Narrowed tokens (`gwnar_`) on the server: a token derived offline from a personal or
resource access token, honoured as its parent's live bound with its restrictions on top.

The format and the signature chain are credentials/narrowing.py; the rules are
docs/narrowed-tokens.md. Here: find the parent by the public narrowing key the token names
(the chain verifies from it), refuse what was revoked, and answer the parent's context with
the restrictions added to its bound (`Bound.narrowed_to`): the policy judges the rest, as for
every credential. What authentication found is cached under the keyed hash of the narrowed
token, at the generation it was read at (every revocation, and every change to the access rows
that resolve its repositories, bumps it), as for the other kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from gitward.credentials import codec, narrowing
from gitward.credentials.cache import CredentialCache
from gitward.credentials.narrowing import NarrowingError
from gitward.credentials.personal import (
    PersonalAccessTokens,
    cached_token,
    check_basic_username,
)
from gitward.credentials.registry import (
    AuthenticationFailed,
    Leak,
    Presented,
    presentation_check,
)
from gitward.credentials.resource import (
    SPEC_OF_PREFIX,
    ResourceAccessTokens,
    context_of,
    resource_label,
)
from gitward.domain.identity import AuthContext, CredentialKind
from gitward.storage.models import PersonalAccessToken, ResourceAccessToken, utcnow
from gitward.storage.store import Store

PREFIX = narrowing.PREFIX
_AUDIT = "token:narrowed"


@dataclass(frozen=True)
class _Parent:
    """The live token a narrowed token was narrowed from, as authentication found it."""

    prefix: str
    id: int
    name: str
    expires_on: datetime | None
    #: The parent's answer; None while its owner cannot sign in.
    context: AuthContext | None
    #: A personal token's owner (matched against a Basic username), else None.
    username: str | None
    owner: str
    owner_user_id: int | None


@dataclass(frozen=True)
class CachedNarrowed:
    """What the next request with a narrowed token needs; never a secret."""

    parent: _Parent
    #: min(the parent's expiry, every narrowing's).
    expires_on: datetime | None
    #: The parent's context with the restrictions on its bound; None as the parent's.
    context: AuthContext | None
    revocation_key: str


class NarrowedTokens:
    """The `gwnar_` kind in the credential registry."""

    prefix = PREFIX

    def __init__(
        self,
        secret_key: bytes,
        personal: PersonalAccessTokens,
        resources: ResourceAccessTokens,
        cache: CredentialCache[CachedNarrowed],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._keyed_hash = codec.KeyedHash(secret_key)
        self._personal = personal
        self._resources = resources
        self.cache = cache
        self.clock = clock
        self._presentation = {
            CredentialKind.PERSONAL_ACCESS_TOKEN: presentation_check(
                CredentialKind.PERSONAL_ACCESS_TOKEN
            ),
            **{spec.credential: presentation_check(spec.credential)
               for spec in SPEC_OF_PREFIX.values()},
        }

    def well_formed(self, secret: str) -> bool:
        return narrowing.is_well_formed(secret)

    # -- authentication ----------------------------------------------------------------------

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        generation = store.credentials.generation()
        key = self._keyed_hash(presented.secret)
        entry = self.cache.get(key)
        token = entry[1] if entry is not None and entry[0] == generation else None
        if token is None:
            if entry is not None:
                self.cache.forget(key)
            token = self._read(store, presented.secret)
            self.cache.put(key, generation, token)
        parent = token.parent
        if token.expires_on is not None and self.clock() >= token.expires_on:
            raise AuthenticationFailed("This narrowed token has expired",
                                       audit_subject=f"{_AUDIT}:{parent.prefix}{parent.id}")
        if token.context is None:
            raise AuthenticationFailed("The owner of this token cannot sign in",
                                       audit_subject=f"{_AUDIT}:{parent.prefix}{parent.id}")
        # Presented as its parent may be (a personal token's with its owner's username).
        self._presentation[token.context.credential](presented)
        if parent.username is not None:
            check_basic_username(presented, parent.id, parent.username)
            self._personal.note_use(store, PersonalAccessToken, parent.id, presented.client_ip,
                                    column="last_authenticated")
        else:
            self._resources.note_use(store, ResourceAccessToken, parent.id, presented.client_ip)
        return token.context

    def _read(self, store: Store, secret: str) -> CachedNarrowed:
        """Verify the chain, find its live parent, apply the restrictions (a cache miss)."""
        try:
            narrowed = narrowing.parse(secret)
        except NarrowingError:
            raise AuthenticationFailed("Invalid token", audit_subject="malformed-token") from None
        if not narrowed.verify():
            raise AuthenticationFailed("Invalid narrowed token",
                                       audit_subject=f"{_AUDIT}:forged")
        parent = self._parent(store, narrowed)
        if parent is None:
            raise AuthenticationFailed(
                "The token this one was narrowed from is revoked or unknown",
                audit_subject=f"{_AUDIT}:unknown",
            )
        if store.credentials.narrowed_revoked(narrowed.chain_keys()):
            raise AuthenticationFailed(
                "This narrowed token was revoked",
                audit_subject=f"{_AUDIT}:{parent.prefix}{parent.id}",
            )
        restrictions = narrowed.restrictions()
        expires = parent.expires_on
        if restrictions.expires is not None and (expires is None or restrictions.expires < expires):
            expires = restrictions.expires
        context = None
        if parent.context is not None:

            def resolve(name: str) -> int | None:
                workspace, slug = name.split("/", 1)
                view = store.repos.repository_view(workspace, slug)
                return view.id if view is not None else None

            bound = narrowing.bound_of(parent.context.bound, restrictions, resolve)
            context = replace(parent.context, bound=bound)
        return CachedNarrowed(parent, expires, context, narrowed.last_key)

    def _parent(self, store: Store, narrowed: narrowing.Narrowed) -> _Parent | None:
        key = narrowed.parent_key_hex
        if narrowed.parent_prefix == "gwpat_":
            row = store.credentials.pat_by_narrowing_key(key)
            if row is None:
                return None
            token = cached_token(row)
            return _Parent(
                "gwpat_", row.id, "", row.expires_on, token.context, row.username,
                f"user:{row.username}", row.user_id,
            )
        spec = SPEC_OF_PREFIX[narrowed.parent_prefix]
        resource = store.credentials.resource_token_by_narrowing_key(key)
        if resource is None or resource.kind != spec.resource.value:
            return None
        return _Parent(
            spec.prefix, resource.id, resource.name, resource.expires_on,
            context_of(resource, spec), None, resource_label(store, resource), None,
        )

    # -- leaks (push protection, the revocation API) ---------------------------------------

    def leaked(self, store: Store, secret: str) -> Leak | None:
        """The narrowed token if it is live now: well formed, its chain verified, its parent
        live, not revoked, not expired. Not a use of it."""
        try:
            token = self._read(store, secret)
        except AuthenticationFailed:
            return None
        if token.expires_on is not None and self.clock() >= token.expires_on:
            return None
        parent = token.parent
        name = parent.name
        if parent.prefix == "gwpat_":
            row = store.credentials.pat_by_id(parent.id)
            name = row.name if row is not None else ""
        return Leak(
            PREFIX, "narrowed token", parent.id, name, owner=parent.owner,
            owner_user_id=parent.owner_user_id, revocation_key=token.revocation_key,
            parent_prefix=parent.prefix,
        )

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        """Revoke the narrowed token alone (and every token narrowed from it): its parent and
        the parent's other narrowed tokens live on (docs/narrowed-tokens.md)."""
        if leak.revocation_key is None:
            return
        personal = leak.parent_prefix == "gwpat_"
        store.credentials.revoke_narrowed(
            leak.revocation_key,
            personal_token_id=leak.credential_id if personal else None,
            resource_token_id=None if personal else leak.credential_id,
        )

