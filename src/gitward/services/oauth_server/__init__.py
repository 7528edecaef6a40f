"""The OAuth 2.0 authorization server, on authlib's server core.

authlib (`authlib.oauth2`) carries the protocol: the authorization and token endpoints of RFC
6749, PKCE (RFC 7636), revocation (RFC 7009) and introspection (RFC 7662), client
authentication, error answers. This package plugs Gitward into it: consumers as authlib
clients, codes and tokens stored as keyed hashes, Bitbucket's JWT grant, and the decisions
that narrow RFC 6749 as RFC 9700 asks (docs/oauth.md):

- the authorization code grant only (no implicit, no password grant);
- PKCE with S256 only, required for public consumers; exact redirect URI match;
- codes are single use and short lived, and a replayed code revokes every token issued from
  it; refresh tokens rotate on every use, and a used one presented again revokes its whole
  family.

`OAuthServer` lives for one unit of work (it holds the store). It is framework neutral: it
takes an `OAuthRequest` the web adapter built from parsed parameters and answers an
`OAuthAnswer` the adapter turns into an HTTP response (web/oauth/routes.py). When an error
answer has revoked something (`OAuthRequest.commit_on_error`), the adapter still commits.
"""

from gitward.services.oauth_server.clients import ConsumerClient, IssuedCode, IssuedToken
from gitward.services.oauth_server.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    JwtBearerGrant,
    RefreshTokenGrant,
)
from gitward.services.oauth_server.protocol import (
    PUBLIC_CLIENT_CREDENTIALS,
    SUPPORTED_GRANTS,
    narrow_scopes,
    safe_description,
    same_loopback_callback,
    scope_text,
)
from gitward.services.oauth_server.request import OAuthAnswer, OAuthRequest
from gitward.services.oauth_server.server import OAuthServer, metadata

__all__ = [
    "PUBLIC_CLIENT_CREDENTIALS",
    "SUPPORTED_GRANTS",
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "ConsumerClient",
    "IssuedCode",
    "IssuedToken",
    "JwtBearerGrant",
    "OAuthAnswer",
    "OAuthRequest",
    "OAuthServer",
    "RefreshTokenGrant",
    "metadata",
    "narrow_scopes",
    "safe_description",
    "same_loopback_callback",
    "scope_text",
]
