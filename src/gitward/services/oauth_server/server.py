"""authlib's authorization server over one unit of work, and the RFC 8414 metadata."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter

from gitward.credentials import codec
from gitward.credentials.oauth import (
    ACCESS_PREFIX,
    ACCESS_TOKEN_SECONDS,
    REFRESH_PREFIX,
    OAuthTokens,
)
from gitward.domain.permissions import Scope, parse_scopes
from gitward.services.caller import Caller
from gitward.services.oauth_server.clients import ConsumerClient
from gitward.services.oauth_server.endpoints import Introspection, Revocation
from gitward.services.oauth_server.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    JwtBearerGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from gitward.services.oauth_server.protocol import SUPPORTED_GRANTS, safe_description, scope_text
from gitward.services.oauth_server.request import OAuthAnswer, OAuthRequest
from gitward.services.oidc_trusts import EXCHANGE_GRANT
from gitward.storage.models import (
    OAuthAccessToken,
    OAuthRefreshToken,
    User,
)
from gitward.storage.store import Store


class _Issuer(IssuerParameter):
    """RFC 9207: authorization responses, errors included, name the issuer (`iss`), so that a
    client talking to several servers can tell whose answer it got (RFC 9700 §4.4 mix-up)."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer



class OAuthServer(AuthorizationServer):
    """authlib's authorization server over one unit of work."""

    def __init__(self, store: Store, tokens: OAuthTokens, issuer: str) -> None:
        super().__init__(scopes_supported=[s.value for s in Scope])
        self.store = store
        self.tokens = tokens
        self.issuer = issuer
        self.current: OAuthRequest | None = None
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(JwtBearerGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_token_generator("default", self._generate)
        self.register_extension(_Issuer(issuer))

    # -- what authlib asks of a framework integration

    def create_oauth2_request(self, request: OAuthRequest) -> OAuthRequest:
        self.current = request
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> OAuthAnswer:
        return OAuthAnswer(status, body if isinstance(body, dict) else None, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signals; Gitward audits in the methods above instead."""

    def query_client(self, client_id: str) -> ConsumerClient | None:
        if not client_id or len(client_id) > 64:
            return None
        consumer = self.store.oauth.consumer_by_key(client_id)
        return ConsumerClient(consumer, self.tokens) if consumer is not None else None

    def validate_requested_scope(self, scope: str | None) -> None:
        if scope:
            try:
                parse_scopes(scope)
            except ValueError as error:
                raise InvalidScopeError(safe_description(str(error)[:200])) from None

    def authenticate_client(self, request: OAuthRequest, methods: list[str],
                            endpoint: str = "token") -> ConsumerClient:
        if request.headers.get("authorization", "").lower().startswith("basic ") and (
            "client_secret" in request.form
        ):
            raise InvalidRequestError("Use one way of client authentication, not Basic and form")
        client: ConsumerClient = super().authenticate_client(request, methods, endpoint)
        return client

    # -- tokens

    def _generate(
        self,
        grant_type: str,
        client: ConsumerClient,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        text = scope_text(parse_scopes(scope)) if scope else ""
        token: dict[str, Any] = {
            "access_token": codec.generate(ACCESS_PREFIX),
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "scopes": text,  # Bitbucket's field
            "scope": text,  # RFC 6749's
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = codec.generate(REFRESH_PREFIX)
        return token

    def save_token(self, token: dict[str, Any], request: OAuthRequest) -> None:
        """Keep keyed hashes of what was issued; a user grant's tokens share a family."""
        client = request.client
        assert client is not None
        user_id = request.user.id if request.user is not None else None
        family: str | None = None
        if request.authorization_code is not None:
            family = request.authorization_code.row.family
        elif request.refresh_token is not None:
            family = request.refresh_token.row.family
        grant = request.payload.grant_type
        now = self.tokens.clock()
        self.store.add(
            OAuthAccessToken(
                token_hash=self.tokens.hash(token["access_token"]),
                consumer_id=client.id,
                user_id=user_id,
                scopes=token["scope"],
                grant_type=grant,
                family=family,
                created_on=now,
                expires_on=now + timedelta(seconds=ACCESS_TOKEN_SECONDS),
            )
        )
        if "refresh_token" in token:
            assert user_id is not None and family is not None
            self.store.add(
                OAuthRefreshToken(
                    token_hash=self.tokens.hash(token["refresh_token"]),
                    consumer_id=client.id,
                    user_id=user_id,
                    scopes=token["scope"],
                    family=family,
                    created_on=now,
                )
            )
        self.store.flush()
        self.store.audit.record(
            "oauth.token",
            actor=f"oauth-consumer:{client.id}",
            actor_user_id=user_id,
            target=f"oauth-consumer:{client.id}",
            client_ip=request.client_ip,
            grant_type=grant,
            scopes=token["scope"].split(),
        )

    def revoke_family(self, family: str) -> None:
        """End every access and refresh token descended from one authorization."""
        self.store.oauth.revoke_family(family)
        self.store.credentials.changed()

    def active_user(self, user_id: int | None) -> User:
        """The granting user, if they may still sign in (a grant without one has none)."""
        user = self.store.accounts.user_by_id(user_id) if user_id is not None else None
        if user is None or not user.is_active:
            raise InvalidGrantError("The user who granted access cannot sign in")
        return user

    # -- the endpoints, as the web adapter calls them

    def token(self, request: OAuthRequest) -> OAuthAnswer:
        grant_type = request.payload.grant_type
        if not grant_type:
            return self._error(request, InvalidRequestError("grant_type is required"))
        if grant_type not in SUPPORTED_GRANTS:
            error = UnsupportedGrantTypeError(grant_type)
            error.description = safe_description(
                f"Unsupported grant_type {grant_type[:60]}: use one of "
                f"{', '.join(SUPPORTED_GRANTS)}"
            )
            return self._error(request, error)
        answer: OAuthAnswer = self.create_token_response(request)
        return answer

    def _error(self, request: OAuthRequest, error: Exception) -> OAuthAnswer:
        answer: OAuthAnswer = self.handle_error_response(request, error)
        return answer

    def revoke(self, request: OAuthRequest) -> OAuthAnswer:
        answer: OAuthAnswer = self.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME,
                                                           request)
        return answer

    def introspect(self, request: OAuthRequest) -> OAuthAnswer:
        answer: OAuthAnswer = self.create_endpoint_response(
            IntrospectionEndpoint.ENDPOINT_NAME, request
        )
        return answer

    def consent(self, request: OAuthRequest) -> AuthorizationCodeGrant:
        """The grant of a valid authorization request; OAuth2Error if it is not one (with a
        redirect URI when the answer may go back to the consumer)."""
        grant: AuthorizationCodeGrant = self.get_consent_grant(request)
        return grant

    def authorization_error(self, request: OAuthRequest, error: Exception) -> OAuthAnswer:
        """The answer to an invalid authorization request: a redirect to the consumer (with
        `iss`, like every authorization response) or, when that is unsafe, a JSON error."""
        answer: OAuthAnswer = self.handle_error_response(request, error)
        self.execute_hook("after_create_authorization_response", answer)
        return answer

    def authorize(
        self, request: OAuthRequest, grant: AuthorizationCodeGrant, caller: Caller | None
    ) -> OAuthAnswer:
        """The user's answer: a code (caller given, signed in) or access_denied (None)."""
        request.caller = caller
        user = caller.require_user() if caller is not None else None
        answer: OAuthAnswer = self.create_authorization_response(request, user, grant)
        return answer


def metadata(base: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    methods = ["client_secret_basic", "client_secret_post", "none"]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/site/oauth2/authorize",
        "token_endpoint": f"{base}/site/oauth2/access_token",
        "revocation_endpoint": f"{base}/site/oauth2/revoke",
        "introspection_endpoint": f"{base}/site/oauth2/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        # RFC 8693 token exchange of CI jobs' ID tokens (services/oidc_trusts.py).
        "grant_types_supported": [*SUPPORTED_GRANTS, EXCHANGE_GRANT],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": sorted(s.value for s in Scope),
    }
