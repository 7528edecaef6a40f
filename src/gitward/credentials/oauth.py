"""OAuth 2.0 credentials: access tokens (`gwoat_`), refresh tokens (`gwort_`), authorization
codes, consumer secrets (`gwcsk_`), PKCE and JWT assertions.

An access token of a user grant acts as that user (a UserPrincipal) bounded by the granted
scopes, so every request takes min(scopes, the user's live levels). An access token of the
client credentials or JWT grant acts as the consumer itself (a TokenPrincipal), inside the
consumer's workspace, bounded by the consumer's scopes. Codes and tokens are stored as keyed
hashes; consumer secrets are sealed, because HS256 assertions are verified with them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from gitward.credentials import codec
from gitward.credentials.registry import (
    AuthenticationFailed,
    Leak,
    Presented,
    presentation_check,
)
from gitward.credentials.sealing import Sealer, SealError
from gitward.credentials.stored import StoredSecretKind
from gitward.domain.identity import (
    AuthContext,
    Bound,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.permissions import implied_scopes, parse_scopes
from gitward.storage.models import OAuthAccessToken
from gitward.storage.store import Store

ACCESS_PREFIX = "gwoat_"
REFRESH_PREFIX = "gwort_"
SECRET_PREFIX = "gwcsk_"
CODE_PREFIX = "gwocd_"

ACCESS_TOKEN_SECONDS = 7200
CODE_SECONDS = 600
#: A JWT assertion may not be valid for longer than this (its `exp` at most this far ahead).
JWT_MAX_LIFETIME_SECONDS = 300

EXPIRED_MESSAGE = "Access token expired. Use your refresh token to obtain a new access token."

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


#: Both OAuth kinds are presented alike; which one it is shows only once it is read.
_CHECK_PRESENTATION = presentation_check(CredentialKind.OAUTH_USER)


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


def verifier_matches(verifier: str, challenge: str) -> bool:
    if not _VERIFIER.match(verifier):
        return False
    return codec.constant_time_equal(s256(verifier), challenge)


class InvalidAssertion(ValueError):
    pass


@dataclass(frozen=True)
class Assertion:
    issuer: str
    jti: str
    expires_on: datetime


def assertion_issuer(assertion: str) -> str:
    """The `iss` of a JWT before its signature is checked (to find whose secret checks it)."""
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        raise InvalidAssertion("The JWT assertion cannot be read") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer or len(issuer) > 255 or "\x00" in issuer:
        raise InvalidAssertion("The JWT assertion has no valid issuer (iss)")
    return issuer


def verify_assertion(assertion: str, secret: str, now: datetime) -> Assertion:
    """Check an HS256 assertion signed with the consumer secret; InvalidAssertion says why."""
    try:
        token = jwt.decode(assertion, OctKey.import_key(secret), algorithms=["HS256"])
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidAssertion("The JWT assertion's signature does not verify") from None
    claims: dict[str, Any] = dict(token.claims)
    stamp = now.timestamp()
    issued, expires, jti = claims.get("iat"), claims.get("exp"), claims.get("jti")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise InvalidAssertion("The JWT assertion needs a numeric iat")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise InvalidAssertion("The JWT assertion needs a numeric exp")
    if not isinstance(jti, str) or not jti or len(jti) > 255 or "\x00" in jti:
        raise InvalidAssertion("The JWT assertion needs a jti (at most 255 characters)")
    if expires <= stamp:
        raise InvalidAssertion("The JWT assertion has expired")
    if expires > stamp + JWT_MAX_LIFETIME_SECONDS + 1:
        raise InvalidAssertion(
            f"The JWT assertion's exp may be at most {JWT_MAX_LIFETIME_SECONDS} seconds ahead"
        )
    if issued > stamp + 60:
        raise InvalidAssertion("The JWT assertion was issued in the future (iat)")
    return Assertion(str(claims["iss"]), jti, now + timedelta(seconds=expires - stamp))


@dataclass(frozen=True)
class CachedOAuthToken:
    """What the next request with an access token needs, as authentication last found it."""

    id: int
    expires_on: datetime
    #: The answer, built once; None while the user who granted it cannot sign in.
    context: AuthContext | None


class OAuthTokens(StoredSecretKind[CachedOAuthToken]):
    """The `gwoat_` kind in the credential registry, and the issuing of OAuth secrets."""

    prefix = ACCESS_PREFIX

    def __init__(self, secret_key: bytes, *args: Any, **kwargs: Any) -> None:
        super().__init__(secret_key, *args, **kwargs)
        self._sealer = Sealer(secret_key, "oauth-consumer-secret")

    # -- consumer secrets ----------------------------------------------------------------------

    def new_consumer_secret(self) -> tuple[str, str]:
        """A fresh consumer secret and its sealed form (what the database keeps)."""
        secret = codec.generate(SECRET_PREFIX)
        return secret, self._sealer.seal(secret)

    def consumer_secret(self, sealed: str) -> str | None:
        try:
            return self._sealer.unseal(sealed)
        except SealError:
            return None

    def secret_matches(self, sealed: str, presented: str) -> bool:
        secret = self.consumer_secret(sealed)
        return secret is not None and codec.constant_time_equal(secret, presented)

    # -- authenticating access tokens ------------------------------------------------------------

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        _CHECK_PRESENTATION(presented)
        generation = store.credentials.generation()
        token_hash, token = self.look_up(presented.secret, generation)
        if token is None:
            hit = store.oauth.access_token_for_auth(token_hash)
            if hit is None:
                raise AuthenticationFailed(
                    "Invalid or revoked OAuth access token", audit_subject="token:oauth:unknown"
                )
            row, consumer = hit
            scopes = implied_scopes(parse_scopes(row.scopes))
            context: AuthContext | None
            if row.user_id is None:
                context = AuthContext(
                    TokenPrincipal(
                        consumer.id, consumer.name, CredentialKind.OAUTH_CLIENT, consumer.uuid
                    ),
                    CredentialKind.OAUTH_CLIENT,
                    Bound(scopes=scopes, reach=Reach(consumer.workspace_id)),
                    credential_id=row.id,
                )
            else:
                user, _ = store.accounts.user_standing(row.user_id)
                context = (
                    AuthContext(
                        UserPrincipal(user.id, user.username, user.is_site_admin),
                        CredentialKind.OAUTH_USER,
                        Bound(scopes=scopes),
                        credential_id=row.id,
                    )
                    if user is not None and user.is_active
                    else None
                )
            token = CachedOAuthToken(row.id, row.expires_on, context)
            self.remember(token_hash, generation, token)
        subject = f"token:oauth:{token.id}"
        if self.clock() >= token.expires_on:
            raise AuthenticationFailed(EXPIRED_MESSAGE, audit_subject=subject)
        if token.context is None:
            raise AuthenticationFailed(
                "The user who granted this token cannot sign in", audit_subject=subject
            )
        self.note_use(store, OAuthAccessToken, token.id, presented.client_ip)
        return token.context

    # -- leaks (push protection) -----------------------------------------------------------

    def leaked(self, store: Store, secret: str) -> Leak | None:
        hit = store.oauth.access_token_for_auth(self.hash(secret))
        if hit is None or self.clock() >= hit[0].expires_on:
            return None
        row, consumer = hit
        if row.user_id is not None:
            user = store.accounts.user_by_id(row.user_id)
            owner = f"user:{user.username if user else row.user_id}"
        else:
            workspace = store.repos.workspace_by_id(consumer.workspace_id)
            owner = f"workspace:{workspace.slug if workspace else consumer.workspace_id}"
        return Leak(
            ACCESS_PREFIX, "OAuth access token", row.id, consumer.name,
            owner=owner, owner_user_id=row.user_id,
        )

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        row = store.oauth.access_token_by_id(leak.credential_id)
        if row is not None:
            store.delete(row)
            store.flush()
