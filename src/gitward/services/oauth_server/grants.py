"""The grants, as authlib grant classes: authorization code (with PKCE S256), refresh token
(rotation, reuse revokes the family), client credentials, and Bitbucket's JWT grant."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge

from gitward.credentials import codec
from gitward.credentials.oauth import (
    CODE_PREFIX,
    CODE_SECONDS,
    REFRESH_PREFIX,
    InvalidAssertion,
    assertion_issuer,
    valid_challenge,
    verifier_matches,
    verify_assertion,
)
from gitward.domain.permissions import Action, parse_scopes
from gitward.services.oauth_server.clients import ConsumerClient, IssuedCode, IssuedToken
from gitward.services.oauth_server.protocol import (
    CLIENT_AUTH_METHODS,
    GRANT_JWT,
    PublicClientCredentials,
    narrow_scopes,
    scope_text,
)
from gitward.services.oauth_server.request import OAuthRequest
from gitward.storage.models import (
    OAuthAuthorizationCode,
    OAuthJwtAssertion,
    OAuthRefreshToken,
    User,
    new_uuid,
)

if TYPE_CHECKING:
    from gitward.services.oauth_server.server import OAuthServer


def _server(grant: Any) -> OAuthServer:
    server: OAuthServer = grant.server
    return server


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only (RFC 9700 §2.1.1), required for public consumers."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if challenge is None:
            if not grant.request.client.consumer.is_private:
                raise InvalidRequestError(
                    "PKCE is required for public consumers: send code_challenge with "
                    "code_challenge_method=S256"
                )
            return
        if method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        if not valid_challenge(challenge):
            raise InvalidRequestError("code_challenge must be 43 base64url characters")

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        verifier = grant.request.form.get("code_verifier")
        code: IssuedCode = grant.request.authorization_code
        # Compared in constant time first; authlib's checks follow for the rest.
        if (
            code.code_challenge is not None
            and verifier
            and not verifier_matches(verifier, code.code_challenge)
        ):
            raise InvalidGrantError("code_verifier does not match the code_challenge")
        super().validate_code_verifier(grant, result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def generate_authorization_code(self) -> str:
        return codec.generate(CODE_PREFIX)

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        """The signed-in user allowed the consumer. Granting is creating a credential for
        oneself, so it is Action.CREDENTIAL_CREATE on the user's own account: interactive
        only, decided by the policy like everything else."""
        server, caller = _server(self), request.caller
        assert caller is not None and request.client is not None
        user = caller.require_own_account(Action.CREDENTIAL_CREATE)
        data = request.payload.data
        challenge = data.get("code_challenge")
        now = server.tokens.clock()
        server.store.add(
            OAuthAuthorizationCode(
                code_hash=server.tokens.hash(code),
                consumer_id=request.client.id,
                user_id=user.id,
                redirect_uri=request.payload.redirect_uri,
                scopes=request.scope,
                code_challenge=challenge,
                code_challenge_method="S256" if challenge else None,
                family=new_uuid(),
                created_on=now,
                expires_on=now + timedelta(seconds=CODE_SECONDS),
            )
        )
        caller.audit(
            "oauth.authorize",
            target=f"oauth-consumer:{request.client.id}",
            consumer_key=request.client.consumer.key,
            scopes=request.scope.split(),
        )

    def query_authorization_code(self, code: str, client: ConsumerClient) -> IssuedCode | None:
        server = _server(self)
        if codec.prefix_of(code) != CODE_PREFIX:
            return None
        row = server.store.oauth.code_by_hash(server.tokens.hash(code))
        if row is None or row.consumer_id != client.id:
            return None
        if row.used:
            server.revoke_family(row.family)
            server.store.audit.record(
                "oauth.code-replay",
                actor=f"oauth-consumer:{client.id}",
                target=f"oauth-consumer:{client.id}",
                code_id=row.id,
            )
            self.request.commit_on_error = True
            raise InvalidGrantError(
                "This authorization code was already used; the tokens issued for it are revoked"
            )
        if server.tokens.clock() >= row.expires_on:
            raise InvalidGrantError("The authorization code has expired")
        given = self.request.payload.redirect_uri
        if row.redirect_uri is None and given is not None and not client.check_redirect_uri(
            given
        ):
            raise InvalidGrantError("redirect_uri does not match the consumer's callback")
        return IssuedCode(row)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Spend the code; of two exchanges racing, only one may win."""
        if not _server(self).store.oauth.spend_code(authorization_code.row.id):
            raise InvalidGrantError("This authorization code was already used")

    def authenticate_user(self, authorization_code: IssuedCode) -> User:
        return _server(self).active_user(authorization_code.row.user_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotation on every use; a spent refresh token presented again revokes its family."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        server = _server(self)
        client: ConsumerClient = self.request.client
        if codec.prefix_of(refresh_token) != REFRESH_PREFIX:
            return None
        row = server.store.oauth.refresh_token_by_hash(server.tokens.hash(refresh_token))
        if row is None or row.consumer_id != client.id or row.revoked:
            return None
        if row.used_on is not None:
            self._reused(row)
        return IssuedToken(row, server.tokens.clock())

    def _reused(self, row: OAuthRefreshToken) -> None:
        # Rotation means a refresh token is used once: a second use means it was copied.
        server = _server(self)
        server.store.flush()
        server.revoke_family(row.family)
        server.store.audit.record(
            "oauth.refresh-reuse",
            actor=f"oauth-consumer:{row.consumer_id}",
            actor_user_id=row.user_id,
            target=f"oauth-consumer:{row.consumer_id}",
            refresh_token_id=row.id,
        )
        self.request.commit_on_error = True
        raise InvalidGrantError(
            "This refresh token was already used; every token of this grant is revoked"
        )

    def _validate_token_scope(self, token: IssuedToken) -> None:
        narrow_scopes(self.request.payload.scope, parse_scopes(token.get_scope()))

    def issue_token(self, user: User, refresh_token: IssuedToken) -> dict[str, Any]:
        scopes = narrow_scopes(self.request.payload.scope, parse_scopes(refresh_token.get_scope()))
        token: dict[str, Any] = self.generate_token(
            user=user, scope=scope_text(scopes), include_refresh_token=True
        )
        return token

    def authenticate_user(self, refresh_token: IssuedToken) -> User:
        return _server(self).active_user(refresh_token.row.user_id)

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        row = refresh_token.row
        assert isinstance(row, OAuthRefreshToken)
        server = _server(self)
        if not server.store.oauth.spend_refresh_token(row.id, server.tokens.clock()):
            self._reused(row)  # another request used it meanwhile


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Private consumers only; the token acts as the consumer inside its workspace."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        client: ConsumerClient = self.authenticate_token_endpoint_client()
        if not client.consumer.is_private:
            raise PublicClientCredentials()
        self.request.client = client
        self.request.scope = client.get_allowed_scope(self.request.payload.scope)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class JwtBearerGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """Bitbucket's urn:bitbucket:oauth2:jwt: `Authorization: JWT <jwt>`, an HS256 JWT signed
    with the consumer secret (`iss` = key, `iat`, `exp` at most 5 minutes ahead, single-use
    `jti`); `scope` may narrow. Acts as the consumer, like client credentials."""

    GRANT_TYPE = GRANT_JWT

    def validate_token_request(self) -> None:
        server = _server(self)
        scheme, _, assertion = (self.request.headers.get("authorization") or "").partition(" ")
        assertion = assertion.strip()
        if scheme.lower() != "jwt" or not assertion:
            raise InvalidClientError(
                "Send the JWT in the header Authorization: JWT <token>", status_code=401
            )
        try:
            issuer = assertion_issuer(assertion)
        except InvalidAssertion as error:
            raise InvalidClientError(str(error), status_code=401) from None
        client = server.query_client(issuer)
        secret = (
            server.tokens.consumer_secret(client.consumer.secret_sealed) if client else None
        )
        if client is None or secret is None:
            raise InvalidClientError("The JWT issuer is not a known consumer", status_code=401)
        now = server.tokens.clock()
        try:
            claims = verify_assertion(assertion, secret, now)
        except InvalidAssertion as error:
            raise InvalidClientError(str(error), status_code=401) from None
        if server.store.oauth.jwt_seen(client.id, claims.jti, now):
            raise InvalidGrantError("This JWT assertion (jti) was already used")
        self.request.client = client
        self.request.scope = client.get_allowed_scope(self.request.payload.scope)
        # The unique (consumer, jti) constraint settles a race between two uses at commit.
        server.store.add(
            OAuthJwtAssertion(consumer_id=client.id, jti=claims.jti, expires_on=claims.expires_on)
        )

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
