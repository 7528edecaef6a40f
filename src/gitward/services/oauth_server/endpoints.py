"""Revocation (RFC 7009) and introspection (RFC 7662) of a consumer's own tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from gitward.credentials import codec
from gitward.credentials.oauth import (
    ACCESS_PREFIX,
    REFRESH_PREFIX,
)
from gitward.services.oauth_server.clients import ConsumerClient, IssuedToken
from gitward.services.oauth_server.protocol import CLIENT_AUTH_METHODS
from gitward.services.oauth_server.request import OAuthRequest
from gitward.storage.models import (
    OAuthAccessToken,
    OAuthRefreshToken,
)

if TYPE_CHECKING:
    from gitward.services.oauth_server.server import OAuthServer


def _find_token(server: OAuthServer, value: str) -> IssuedToken | None:
    prefix = codec.prefix_of(value)
    row: OAuthAccessToken | OAuthRefreshToken | None
    if prefix == ACCESS_PREFIX:
        row = server.store.oauth.access_token_by_hash(server.tokens.hash(value))
    elif prefix == REFRESH_PREFIX:
        row = server.store.oauth.refresh_token_by_hash(server.tokens.hash(value))
    else:
        return None
    return IssuedToken(row, server.tokens.clock()) if row is not None else None


class Revocation(RevocationEndpoint):
    """RFC 7009 for the consumer's own tokens; a refresh token ends its whole grant. An
    unknown token is not an error (§2.2); another consumer's is `invalid_grant`."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return _find_token(self.server, token_string)

    def revoke_token(self, token: IssuedToken, request: OAuthRequest) -> None:
        server: OAuthServer = self.server
        row = token.row
        if isinstance(row, OAuthAccessToken):
            server.store.delete(row)
            server.store.credentials.changed()
        else:
            server.revoke_family(row.family)
        server.store.audit.record(
            "oauth.revoke",
            actor=f"oauth-consumer:{row.consumer_id}",
            target=f"oauth-consumer:{row.consumer_id}",
            token_type=token.kind,
        )


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for the consumer's own tokens; anything else is inactive."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return _find_token(self.server, token_string)

    def check_permission(
        self, token: IssuedToken, client: ConsumerClient, request: OAuthRequest
    ) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        server: OAuthServer = self.server
        row = token.row
        assert server.current is not None and server.current.client is not None
        client = server.current.client
        body: dict[str, Any] = {
            "active": True,
            "scope": row.scopes,
            "client_id": client.get_client_id(),
            "token_type": "bearer" if token.kind == "access_token" else "refresh_token",
            "iat": int(row.created_on.timestamp()),
            "iss": server.issuer,
        }
        if isinstance(row, OAuthAccessToken):
            body["exp"] = int(row.expires_on.timestamp())
            if row.last_used_on is not None:
                body["last_used"] = int(row.last_used_on.timestamp())
        if row.user_id is not None:
            user = server.store.accounts.user_by_id(row.user_id)
            if user is None or not user.is_active:
                return {"active": False}
            body["username"] = user.username
            body["sub"] = "{" + user.uuid + "}"
        else:
            body["sub"] = "{" + client.consumer.uuid + "}"
        return body
