"""The OAuth 2.0 authorization server, on authlib's server core.

authlib (`authlib.oauth2`) carries the protocol: the authorization and token endpoints of RFC
6749, PKCE (RFC 7636), revocation (RFC 7009) and introspection (RFC 7662), client
authentication, error answers. This module plugs Gitward into it: consumers as authlib
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

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    UnsupportedGrantTypeError,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from sqlalchemy import delete, select, update

from gitward.credentials import codec
from gitward.credentials.oauth import (
    ACCESS_PREFIX,
    ACCESS_TOKEN_SECONDS,
    CODE_PREFIX,
    CODE_SECONDS,
    REFRESH_PREFIX,
    InvalidAssertion,
    OAuthTokens,
    assertion_issuer,
    valid_challenge,
    verifier_matches,
    verify_assertion,
)
from gitward.domain.permissions import Action, Scope, parse_scopes
from gitward.services.caller import Caller, account_target
from gitward.storage.models import (
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OAuthConsumer,
    OAuthJwtAssertion,
    OAuthRefreshToken,
    User,
    new_uuid,
)
from gitward.storage.store import Store


class _NoIssuedTokens(logging.Filter):
    """authlib's grants log every token they issue, in clear, at DEBUG ("Issue token %r to
    %r"). Secrets never reach a log, whatever the level: those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Issue token")


for _module in ("authorization_code", "client_credentials", "implicit", "refresh_token",
                "resource_owner_password_credentials"):
    logging.getLogger(f"authlib.oauth2.rfc6749.grants.{_module}").addFilter(_NoIssuedTokens())

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_CLIENT = "client_credentials"
GRANT_JWT = "urn:bitbucket:oauth2:jwt"
SUPPORTED_GRANTS = (GRANT_CODE, GRANT_REFRESH, GRANT_CLIENT, GRANT_JWT)
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

PUBLIC_CLIENT_CREDENTIALS = (
    'Cannot use client_credentials with a consumer marked as "public". '
    "Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead."
)


def safe_description(text: str) -> str:
    """`text` within the characters RFC 6749 allows in error_description (authlib refuses
    others): anything else, such as an echoed parameter, becomes "?"."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


def scope_text(scopes: frozenset[Scope] | set[Scope]) -> str:
    return " ".join(sorted(s.value for s in scopes))


def narrow_scopes(requested: str | None, allowed: frozenset[Scope]) -> frozenset[Scope]:
    """The scopes asked for (space or comma separated), which must lie within `allowed`;
    everything allowed when none is asked for."""
    if requested is None or not requested.strip():
        return allowed
    try:
        scopes = parse_scopes(requested)
    except ValueError as error:
        raise InvalidScopeError(safe_description(str(error)[:200])) from None
    beyond = scopes - allowed
    if beyond:
        raise InvalidScopeError(
            f"The scope(s) {scope_text(beyond)} exceed what may be granted here: "
            f"{scope_text(allowed) or 'none'}"
        )
    return scopes


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def same_loopback_callback(registered: str, given: str) -> bool:
    """True when both are the same http loopback callback, whatever the port of `given`."""
    try:
        want, got = urlsplit(registered), urlsplit(given)
        _ = got.port  # a malformed port raises here
    except ValueError:
        return False
    return (
        want.scheme == got.scheme == "http"
        and want.hostname in LOOPBACK_HOSTS
        and want.hostname == got.hostname
        and "@" not in want.netloc + got.netloc
        and (want.path, want.query, want.fragment) == (got.path, got.query, got.fragment)
    )


class PublicClientCredentials(InvalidGrantError):
    """Bitbucket's exact answer to client credentials from a public consumer. Its text quotes
    "public", which authlib refuses in a description given at construction (RFC 6749 limits
    error_description to characters without the quote); the contract (SPEC §5) wants it, so
    it is the class's description."""

    description = PUBLIC_CLIENT_CREDENTIALS


# -- the request and the answer ----------------------------------------------------------------


class _Payload(OAuth2Payload):
    def __init__(self, data: dict[str, str]) -> None:
        self._data = data
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in data.items():
            self._datalist[name].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class OAuthRequest(OAuth2Request):
    """One OAuth request as authlib's grants and endpoints read it.

    `params` are the OAuth parameters (the query of an authorization request, the form of a
    token request), `form` the url-encoded body; each parameter is there once (the adapter
    refuses repeats). `headers` must look names up case-insensitively (Starlette's do).

    authlib's constructor refuses any URI that is not https (or loopback). Gitward leaves the
    transport to the deployment (TLS ends at its proxy, and every other credential travels the
    same way, docs/oauth.md), so the attributes authlib's requests carry are set here instead;
    tests/unit/test_oauth_request.py keeps the two in step.
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        params: dict[str, str],
        form: dict[str, str] | None = None,
        *,
        client_ip: str | None = None,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.payload = _Payload(params)
        self.client: ConsumerClient | None = None
        self.auth_method: str | None = None
        self.user: User | None = None
        self.authorization_code: IssuedCode | None = None
        self.refresh_token: IssuedToken | None = None
        self.credential = None
        self._scope: str | None = None
        self._args = params
        self._form = form if form is not None else params
        self.client_ip = client_ip
        # Set when an error answer revoked something: the unit of work commits all the same.
        self.commit_on_error = False
        # The signed-in user granting access on the authorize page.
        self.caller: Caller | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class OAuthAnswer:
    """What an endpoint answers: status, JSON body (or none), headers."""

    status: int
    body: dict[str, Any] | None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"]
        self.headers.append(("Location", value))

    @property
    def error(self) -> str | None:
        return self.body.get("error") if self.body else None


# -- consumers, codes and tokens as authlib sees them ------------------------------------------


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


# -- grants ------------------------------------------------------------------------------------


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
        user = caller.require_user()
        caller.require(Action.CREDENTIAL_CREATE, account_target(user))
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
        row = server.store.session.scalar(
            select(OAuthAuthorizationCode).where(
                OAuthAuthorizationCode.code_hash == server.tokens.hash(code)
            )
        )
        if row is None or row.consumer_id != client.id:
            return None
        if row.used:
            server.revoke_family(row.family)
            server.store.audit(
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
        spent = _server(self).store.session.execute(
            update(OAuthAuthorizationCode)
            .where(
                OAuthAuthorizationCode.id == authorization_code.row.id,
                OAuthAuthorizationCode.used.is_(False),
            )
            .values(used=True)
            .execution_options(synchronize_session=False)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
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
        row = server.store.session.scalar(
            select(OAuthRefreshToken).where(
                OAuthRefreshToken.token_hash == server.tokens.hash(refresh_token)
            )
        )
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
        server.store.audit(
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
        spent = _server(self).store.session.execute(
            update(OAuthRefreshToken)
            .where(
                OAuthRefreshToken.id == row.id,
                OAuthRefreshToken.used_on.is_(None),
                OAuthRefreshToken.revoked.is_(False),
            )
            .values(used_on=_server(self).tokens.clock())
            .execution_options(synchronize_session=False)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
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
        session = server.store.session
        session.execute(delete(OAuthJwtAssertion).where(OAuthJwtAssertion.expires_on < now))
        seen = session.scalar(
            select(OAuthJwtAssertion.id).where(
                OAuthJwtAssertion.consumer_id == client.id, OAuthJwtAssertion.jti == claims.jti
            )
        )
        if seen is not None:
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


# -- revocation and introspection --------------------------------------------------------------


def _find_token(server: OAuthServer, value: str) -> IssuedToken | None:
    prefix = codec.prefix_of(value)
    model: type[OAuthAccessToken] | type[OAuthRefreshToken]
    if prefix == ACCESS_PREFIX:
        model = OAuthAccessToken
    elif prefix == REFRESH_PREFIX:
        model = OAuthRefreshToken
    else:
        return None
    row = server.store.session.scalar(
        select(model).where(model.token_hash == server.tokens.hash(value))
    )
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
            server.store.credentials_changed()
        else:
            server.revoke_family(row.family)
        server.store.audit(
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
            user = server.store.user_by_id(row.user_id)
            if user is None or not user.is_active:
                return {"active": False}
            body["username"] = user.username
            body["sub"] = "{" + user.uuid + "}"
        else:
            body["sub"] = "{" + client.consumer.uuid + "}"
        return body


# -- the server --------------------------------------------------------------------------------


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
        if not client_id or len(client_id) > 64 or "\x00" in client_id:
            return None
        consumer = self.store.session.scalar(
            select(OAuthConsumer).where(OAuthConsumer.key == client_id)
        )
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
        self.store.audit(
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
        self.store.session.execute(
            delete(OAuthAccessToken).where(OAuthAccessToken.family == family)
        )
        self.store.session.execute(
            update(OAuthRefreshToken)
            .where(OAuthRefreshToken.family == family)
            .values(revoked=True)
        )
        self.store.credentials_changed()

    def active_user(self, user_id: int) -> User:
        user = self.store.user_by_id(user_id)
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
        "grant_types_supported": list(SUPPORTED_GRANTS),
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": sorted(s.value for s in Scope),
    }

