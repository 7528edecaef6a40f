"""Consumers, codes and tokens as authlib sees them (its client, code and token mixins)."""

from __future__ import annotations

from datetime import datetime

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    TokenMixin,
)

from gitward.credentials.oauth import (
    OAuthTokens,
)
from gitward.domain.permissions import Scope, parse_scopes
from gitward.services.oauth_server.protocol import (
    SUPPORTED_GRANTS,
    narrow_scopes,
    same_loopback_callback,
    scope_text,
)
from gitward.storage.models import (
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OAuthConsumer,
    OAuthRefreshToken,
)


class ConsumerClient(ClientMixin):
    """An OAuth consumer as an authlib client."""

    def __init__(self, consumer: OAuthConsumer, tokens: OAuthTokens) -> None:
        self.consumer = consumer
        self._tokens = tokens

    @property
    def id(self) -> int:
        return self.consumer.id

    @property
    def allowed(self) -> frozenset[Scope]:
        return parse_scopes(self.consumer.scopes)

    def get_client_id(self) -> str:
        return self.consumer.key

    def get_default_redirect_uri(self) -> str | None:
        return self.consumer.callback_url

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope_text(narrow_scopes(scope, self.allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact match (RFC 9700 §2.1), but for the port of a loopback callback: native apps
        # listen on whatever port is free (RFC 8252 §7.3, RFC 9700 §4.1.3).
        registered = self.consumer.callback_url
        if registered is None:
            return False
        return redirect_uri == registered or same_loopback_callback(registered, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return self._tokens.secret_matches(self.consumer.secret_sealed, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A private consumer is a confidential client and always proves its secret; a public
        # one may also be a public client that presents only its client_id.
        return method != "none" or not self.consumer.is_private

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in SUPPORTED_GRANTS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"


class IssuedCode(AuthorizationCodeMixin):
    def __init__(self, row: OAuthAuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scopes


class IssuedToken(TokenMixin):
    """An access or a refresh token found by its secret."""

    def __init__(
        self, row: OAuthAccessToken | OAuthRefreshToken, now: datetime
    ) -> None:
        self.row = row
        self.now = now

    @property
    def kind(self) -> str:
        return "access_token" if isinstance(self.row, OAuthAccessToken) else "refresh_token"

    def check_client(self, client: ConsumerClient) -> bool:
        return self.row.consumer_id == client.id

    def get_scope(self) -> str:
        return self.row.scopes

    def get_expires_in(self) -> int:
        if isinstance(self.row, OAuthAccessToken):
            return max(0, int((self.row.expires_on - self.now).total_seconds()))
        return 0

    def is_expired(self) -> bool:
        return isinstance(self.row, OAuthAccessToken) and self.now >= self.row.expires_on

    def is_revoked(self) -> bool:
        if isinstance(self.row, OAuthRefreshToken):
            return self.row.revoked or self.row.used_on is not None
        return False
