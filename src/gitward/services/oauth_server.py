"""The OAuth 2.0 authorization server: the authorize decision, the token endpoint's grants,
revocation (RFC 7009) and introspection (RFC 7662), following RFC 6749 as narrowed by RFC 9700.

Decisions (docs/oauth.md): the authorization code grant only (no implicit, no password grant);
PKCE with S256 only, required for public consumers; exact redirect URI match; codes are single
use and short lived, and a replayed code revokes every token issued from it; refresh tokens
rotate on every use, and a used one presented again revokes its whole family.

Functions raise OAuthError; an error whose `commit` is set has revoked something, so the web
adapter commits the unit of work before it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    new_uuid,
)
from gitward.storage.store import Store

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_CLIENT = "client_credentials"
GRANT_JWT = "urn:bitbucket:oauth2:jwt"
SUPPORTED_GRANTS = (GRANT_CODE, GRANT_REFRESH, GRANT_CLIENT, GRANT_JWT)

PUBLIC_CLIENT_CREDENTIALS = (
    'Cannot use client_credentials with a consumer marked as "public". '
    "Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead."
)
MAX_PARAMETER_LENGTH = 4096


class OAuthError(Exception):
    """An RFC 6749 error: `error` code, description, HTTP status."""

    def __init__(
        self, error: str, description: str, status: int = 400, *, commit: bool = False
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.commit = commit


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def scope_text(scopes: frozenset[Scope] | set[Scope]) -> str:
    return " ".join(sorted(s.value for s in scopes))


def _scopes_of(text: str) -> frozenset[Scope]:
    return parse_scopes(text)


def narrow_scopes(requested: str | None, allowed: frozenset[Scope]) -> frozenset[Scope]:
    """The scopes asked for (space or comma separated), which must lie within `allowed`;
    everything allowed when none is asked for."""
    if requested is None or not requested.strip():
        return allowed
    try:
        scopes = parse_scopes(requested)
    except ValueError as error:
        raise OAuthError("invalid_scope", str(error)) from None
    beyond = scopes - allowed
    if beyond:
        raise OAuthError(
            "invalid_scope",
            f"The scope(s) {scope_text(beyond)} exceed what this consumer may be granted: "
            f"{scope_text(allowed)}",
        )
    return scopes


# -- client authentication ---------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    consumer: OAuthConsumer
    # True when the consumer proved its secret; public consumers may present only their key.
    authenticated: bool


def authenticate_client(
    store: Store,
    oauth: OAuthTokens,
    form: dict[str, str],
    basic: tuple[str, str] | None,
) -> Client:
    """The consumer making the request: Basic key:secret, or client_id (+ client_secret)."""
    if basic is not None:
        if "client_secret" in form or form.get("client_id", basic[0]) != basic[0]:
            raise OAuthError(
                "invalid_request", "Use one way of client authentication, not Basic and form"
            )
        key, secret = basic
    else:
        key, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not key:
        raise _invalid_client("Client authentication failed: no client_id")
    consumer = store.session.scalar(select(OAuthConsumer).where(OAuthConsumer.key == key))
    if consumer is None:
        raise _invalid_client("Client authentication failed: unknown consumer")
    if secret:
        if not oauth.secret_matches(consumer.secret_sealed, secret):
            raise _invalid_client("Client authentication failed: wrong consumer secret")
        return Client(consumer, True)
    return Client(consumer, False)


def _confidential(client: Client) -> None:
    """A private consumer always proves its secret; a public one may be a public client."""
    if client.consumer.is_private and not client.authenticated:
        raise _invalid_client("Client authentication failed: this consumer needs its secret")


# -- the authorization endpoint ----------------------------------------------------------------


@dataclass(frozen=True)
class AuthorizationRequest:
    consumer: OAuthConsumer
    redirect_uri: str  # where to send the answer
    redirect_uri_given: str | None  # as the request sent it, checked again at the token step
    scopes: frozenset[Scope]
    state: str | None
    code_challenge: str | None


class NoRedirect(OAuthError):
    """An error that must not be sent to the redirect URI (unknown client, wrong URI)."""


def with_query(uri: str, params: dict[str, str]) -> str:
    """The URI with `params` added to its query (keeping what it had)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def validate_authorization(store: Store, params: dict[str, str]) -> AuthorizationRequest:
    """Check an authorization request; NoRedirect or OAuthError (to redirect) if bad."""
    for name, value in params.items():
        if len(value) > MAX_PARAMETER_LENGTH:
            raise NoRedirect("invalid_request", f"The parameter {name[:40]} is too long")
    key = params.get("client_id", "")
    if not key:
        raise NoRedirect("invalid_request", "client_id is required")
    consumer = store.session.scalar(select(OAuthConsumer).where(OAuthConsumer.key == key))
    if consumer is None:
        raise NoRedirect("invalid_client", "No OAuth consumer has this client_id", 400)
    if not consumer.callback_url:
        raise NoRedirect(
            "invalid_request", "This consumer has no callback URL: its owner must set one"
        )
    given = params.get("redirect_uri")
    if given is not None and given != consumer.callback_url:
        raise NoRedirect(
            "invalid_request", "redirect_uri does not match the consumer's callback URL"
        )
    redirect = consumer.callback_url
    state = params.get("state")

    def fail(error: str, description: str) -> OAuthError:
        return RedirectError(error, description, redirect, state)

    response_type = params.get("response_type")
    if response_type != "code":
        raise fail(
            "unsupported_response_type",
            "Only response_type=code is supported (no implicit grant)",
        )
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is not None:
        if method != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256")
        if not valid_challenge(challenge):
            raise fail("invalid_request", "code_challenge must be 43 base64url characters")
    elif method is not None:
        raise fail("invalid_request", "code_challenge_method without code_challenge")
    elif not consumer.is_private:
        raise fail(
            "invalid_request",
            "PKCE is required for public consumers: send code_challenge with "
            "code_challenge_method=S256",
        )
    try:
        scopes = narrow_scopes(params.get("scope"), _scopes_of(consumer.scopes))
    except OAuthError as error:
        raise fail(error.error, error.description) from None
    return AuthorizationRequest(consumer, redirect, given, scopes, state, challenge)


class RedirectError(OAuthError):
    """An error answered by redirecting to the consumer's callback (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: str, description: str, redirect: str, state: str | None) -> None:
        super().__init__(error, description, 302)
        params = {"error": error, "error_description": description}
        if state is not None:
            params["state"] = state
        self.location = with_query(redirect, params)


def denied_location(request: AuthorizationRequest) -> str:
    params = {"error": "access_denied", "error_description": "The user denied access"}
    if request.state is not None:
        params["state"] = request.state
    return with_query(request.redirect_uri, params)


def grant_code(caller: Caller, oauth: OAuthTokens, request: AuthorizationRequest) -> str:
    """The user (signed in with a password) allows the consumer: a code, and where to send it.

    Granting is creating a credential for oneself, so it is Action.CREDENTIAL_CREATE on the
    user's own account: interactive only, decided by the policy like everything else.
    """
    user = caller.require_user()
    caller.require(Action.CREDENTIAL_CREATE, account_target(user))
    code = codec.generate(CODE_PREFIX)
    now = oauth.clock()
    caller.store.add(
        OAuthAuthorizationCode(
            code_hash=oauth.hash(code),
            consumer_id=request.consumer.id,
            user_id=user.id,
            redirect_uri=request.redirect_uri_given,
            scopes=scope_text(request.scopes),
            code_challenge=request.code_challenge,
            code_challenge_method="S256" if request.code_challenge else None,
            family=new_uuid(),
            created_on=now,
            expires_on=now + timedelta(seconds=CODE_SECONDS),
        )
    )
    caller.audit(
        "oauth.authorize",
        target=f"oauth-consumer:{request.consumer.id}",
        consumer_key=request.consumer.key,
        scopes=scope_text(request.scopes).split(),
    )
    params = {"code": code}
    if request.state is not None:
        params["state"] = request.state
    return with_query(request.redirect_uri, params)


# -- the token endpoint ------------------------------------------------------------------------


def _issue(
    store: Store,
    oauth: OAuthTokens,
    consumer: OAuthConsumer,
    user_id: int | None,
    scopes: frozenset[Scope],
    grant: str,
    family: str | None,
) -> dict[str, Any]:
    now = oauth.clock()
    access = codec.generate(ACCESS_PREFIX)
    text = scope_text(scopes)
    store.add(
        OAuthAccessToken(
            token_hash=oauth.hash(access),
            consumer_id=consumer.id,
            user_id=user_id,
            scopes=text,
            grant_type=grant,
            family=family,
            created_on=now,
            expires_on=now + timedelta(seconds=ACCESS_TOKEN_SECONDS),
        )
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scopes": text,
        "scope": text,
    }
    if user_id is not None and family is not None:
        refresh = codec.generate(REFRESH_PREFIX)
        store.add(
            OAuthRefreshToken(
                token_hash=oauth.hash(refresh),
                consumer_id=consumer.id,
                user_id=user_id,
                scopes=text,
                family=family,
                created_on=now,
            )
        )
        body["refresh_token"] = refresh
    store.flush()
    store.audit(
        "oauth.token",
        actor=f"oauth-consumer:{consumer.id}",
        actor_user_id=user_id,
        target=f"oauth-consumer:{consumer.id}",
        grant_type=grant,
        scopes=text.split(),
    )
    return body


def revoke_family(store: Store, family: str) -> None:
    """End every access and refresh token descended from one grant."""
    store.session.execute(delete(OAuthAccessToken).where(OAuthAccessToken.family == family))
    store.session.execute(
        update(OAuthRefreshToken).where(OAuthRefreshToken.family == family).values(revoked=True)
    )
    store.credentials_changed()


def _user_can_sign_in(store: Store, user_id: int) -> bool:
    user = store.user_by_id(user_id)
    return user is not None and user.is_active


def exchange_code(
    store: Store, oauth: OAuthTokens, client: Client, form: dict[str, str]
) -> dict[str, Any]:
    _confidential(client)
    code = form.get("code", "")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    row = store.session.scalar(
        select(OAuthAuthorizationCode).where(OAuthAuthorizationCode.code_hash == oauth.hash(code))
    )
    if row is None or row.consumer_id != client.consumer.id:
        raise OAuthError("invalid_grant", "Invalid authorization code")
    if row.used:
        revoke_family(store, row.family)
        store.audit(
            "oauth.code-replay",
            actor=f"oauth-consumer:{client.consumer.id}",
            target=f"oauth-consumer:{client.consumer.id}",
            code_id=row.id,
        )
        raise OAuthError(
            "invalid_grant",
            "This authorization code was already used; the tokens issued for it are revoked",
            commit=True,
        )
    if oauth.clock() >= row.expires_on:
        raise OAuthError("invalid_grant", "The authorization code has expired")
    expected = row.redirect_uri
    given = form.get("redirect_uri")
    if expected is not None and given != expected:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if expected is None and given is not None and given != client.consumer.callback_url:
        raise OAuthError("invalid_grant", "redirect_uri does not match the consumer's callback")
    verifier = form.get("code_verifier")
    if row.code_challenge is not None:
        if not verifier:
            raise OAuthError("invalid_grant", "code_verifier is required (PKCE)")
        if not verifier_matches(verifier, row.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    elif verifier is not None:
        raise OAuthError("invalid_grant", "No code_challenge was sent for this code")
    spent = store.session.execute(
        update(OAuthAuthorizationCode)
        .where(OAuthAuthorizationCode.id == row.id, OAuthAuthorizationCode.used.is_(False))
        .values(used=True)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise OAuthError("invalid_grant", "This authorization code was already used")
    if not _user_can_sign_in(store, row.user_id):
        raise OAuthError("invalid_grant", "The user who granted access cannot sign in")
    return _issue(
        store, oauth, client.consumer, row.user_id, _scopes_of(row.scopes), GRANT_CODE, row.family
    )


def refresh(
    store: Store, oauth: OAuthTokens, client: Client, form: dict[str, str]
) -> dict[str, Any]:
    _confidential(client)
    presented = form.get("refresh_token", "")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    row = None
    if codec.prefix_of(presented) == REFRESH_PREFIX:
        row = store.session.scalar(
            select(OAuthRefreshToken).where(
                OAuthRefreshToken.token_hash == oauth.hash(presented)
            )
        )
    if row is None or row.consumer_id != client.consumer.id or row.revoked:
        raise OAuthError("invalid_grant", "Invalid or revoked refresh token")
    spent = store.session.execute(
        update(OAuthRefreshToken)
        .where(
            OAuthRefreshToken.id == row.id,
            OAuthRefreshToken.used_on.is_(None),
            OAuthRefreshToken.revoked.is_(False),
        )
        .values(used_on=oauth.clock())
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        # Rotation means a refresh token is used once: a second use means it was copied.
        revoke_family(store, row.family)
        store.audit(
            "oauth.refresh-reuse",
            actor=f"oauth-consumer:{client.consumer.id}",
            actor_user_id=row.user_id,
            target=f"oauth-consumer:{client.consumer.id}",
            refresh_token_id=row.id,
        )
        raise OAuthError(
            "invalid_grant",
            "This refresh token was already used; every token of this grant is revoked",
            commit=True,
        )
    scopes = narrow_scopes(form.get("scope"), _scopes_of(row.scopes))
    if not _user_can_sign_in(store, row.user_id):
        raise OAuthError("invalid_grant", "The user who granted access cannot sign in")
    return _issue(store, oauth, client.consumer, row.user_id, scopes, GRANT_REFRESH, row.family)


def client_credentials(
    store: Store, oauth: OAuthTokens, client: Client, form: dict[str, str]
) -> dict[str, Any]:
    if not client.consumer.is_private:
        raise OAuthError("invalid_grant", PUBLIC_CLIENT_CREDENTIALS)
    if not client.authenticated:
        raise _invalid_client("Client authentication failed: the consumer secret is required")
    scopes = narrow_scopes(form.get("scope"), _scopes_of(client.consumer.scopes))
    return _issue(store, oauth, client.consumer, None, scopes, GRANT_CLIENT, None)


def jwt_bearer(
    store: Store, oauth: OAuthTokens, assertion: str | None, form: dict[str, str]
) -> dict[str, Any]:
    """Bitbucket's urn:bitbucket:oauth2:jwt: an HS256 JWT signed with the consumer secret."""
    if not assertion:
        raise _invalid_client("Send the JWT in the header Authorization: JWT <token>")
    try:
        issuer = assertion_issuer(assertion)
    except InvalidAssertion as error:
        raise _invalid_client(str(error)) from None
    consumer = store.session.scalar(select(OAuthConsumer).where(OAuthConsumer.key == issuer))
    secret = oauth.consumer_secret(consumer.secret_sealed) if consumer is not None else None
    if consumer is None or secret is None:
        raise _invalid_client("The JWT issuer is not a known consumer")
    now = oauth.clock()
    try:
        claims = verify_assertion(assertion, secret, now)
    except InvalidAssertion as error:
        raise _invalid_client(str(error)) from None
    store.session.execute(
        delete(OAuthJwtAssertion).where(OAuthJwtAssertion.expires_on < now)
    )
    seen = store.session.scalar(
        select(OAuthJwtAssertion.id).where(
            OAuthJwtAssertion.consumer_id == consumer.id, OAuthJwtAssertion.jti == claims.jti
        )
    )
    if seen is not None:
        raise OAuthError("invalid_grant", "This JWT assertion (jti) was already used")
    scopes = narrow_scopes(form.get("scope"), _scopes_of(consumer.scopes))
    # The unique (consumer, jti) constraint settles a race between two uses at commit.
    store.add(OAuthJwtAssertion(consumer_id=consumer.id, jti=claims.jti,
                                expires_on=claims.expires_on))
    return _issue(store, oauth, consumer, None, scopes, GRANT_JWT, None)


def token(
    store: Store,
    oauth: OAuthTokens,
    form: dict[str, str],
    basic: tuple[str, str] | None,
    assertion: str | None,
) -> dict[str, Any]:
    """The token endpoint: one grant, chosen by grant_type."""
    grant = form.get("grant_type")
    if not grant:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant not in SUPPORTED_GRANTS:
        raise OAuthError(
            "unsupported_grant_type",
            f"Unsupported grant_type {grant[:60]}: use one of {', '.join(SUPPORTED_GRANTS)}",
        )
    if grant == GRANT_JWT:
        return jwt_bearer(store, oauth, assertion, form)
    client = authenticate_client(store, oauth, form, basic)
    if grant == GRANT_CODE:
        return exchange_code(store, oauth, client, form)
    if grant == GRANT_REFRESH:
        return refresh(store, oauth, client, form)
    return client_credentials(store, oauth, client, form)


# -- revocation and introspection --------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    kind: str  # access_token | refresh_token
    access: OAuthAccessToken | None = None
    refresh: OAuthRefreshToken | None = None


def _find(store: Store, oauth: OAuthTokens, value: str) -> Found | None:
    prefix = codec.prefix_of(value)
    if prefix == ACCESS_PREFIX:
        access = store.session.scalar(
            select(OAuthAccessToken).where(OAuthAccessToken.token_hash == oauth.hash(value))
        )
        return Found("access_token", access=access) if access is not None else None
    if prefix == REFRESH_PREFIX:
        refresh_row = store.session.scalar(
            select(OAuthRefreshToken).where(OAuthRefreshToken.token_hash == oauth.hash(value))
        )
        return Found("refresh_token", refresh=refresh_row) if refresh_row is not None else None
    return None


def _consumer_of(found: Found) -> int:
    row = found.access if found.access is not None else found.refresh
    assert row is not None
    return row.consumer_id


def revoke(store: Store, oauth: OAuthTokens, client: Client, form: dict[str, str]) -> None:
    """RFC 7009: revoke one of the consumer's tokens (a refresh token ends its whole grant).
    An unknown token is not an error (§2.2)."""
    _confidential(client)
    value = form.get("token", "")
    if not value:
        raise OAuthError("invalid_request", "token is required")
    found = _find(store, oauth, value)
    if found is None:
        return
    if _consumer_of(found) != client.consumer.id:
        raise OAuthError("unauthorized_client", "This token was not issued to this consumer")
    if found.access is not None:
        store.delete(found.access)
        store.credentials_changed()
    elif found.refresh is not None:
        revoke_family(store, found.refresh.family)
    store.audit(
        "oauth.revoke",
        actor=f"oauth-consumer:{client.consumer.id}",
        target=f"oauth-consumer:{client.consumer.id}",
        token_type=found.kind,
    )


def introspect(
    store: Store, oauth: OAuthTokens, client: Client, form: dict[str, str], issuer: str
) -> dict[str, Any]:
    """RFC 7662: what one of the consumer's own tokens is; inactive for anything else."""
    _confidential(client)
    value = form.get("token", "")
    if not value:
        raise OAuthError("invalid_request", "token is required")
    found = _find(store, oauth, value)
    if found is None or _consumer_of(found) != client.consumer.id:
        return {"active": False}
    now = oauth.clock()
    if found.access is not None:
        row: OAuthAccessToken | OAuthRefreshToken = found.access
        if now >= found.access.expires_on:
            return {"active": False}
        expires: datetime | None = found.access.expires_on
    else:
        assert found.refresh is not None
        row = found.refresh
        if found.refresh.revoked or found.refresh.used_on is not None:
            return {"active": False}
        expires = None
    body: dict[str, Any] = {
        "active": True,
        "scope": row.scopes,
        "client_id": client.consumer.key,
        "token_type": "bearer" if found.kind == "access_token" else "refresh_token",
        "iat": int(row.created_on.timestamp()),
        "iss": issuer,
    }
    if expires is not None:
        body["exp"] = int(expires.timestamp())
    if row.user_id is not None:
        user = store.user_by_id(row.user_id)
        if user is None or not user.is_active:
            return {"active": False}
        body["username"] = user.username
        body["sub"] = "{" + user.uuid + "}"
    else:
        body["sub"] = "{" + client.consumer.uuid + "}"
    return body


def metadata(base: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/site/oauth2/authorize",
        "token_endpoint": f"{base}/site/oauth2/access_token",
        "revocation_endpoint": f"{base}/site/oauth2/revoke",
        "introspection_endpoint": f"{base}/site/oauth2/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(SUPPORTED_GRANTS),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                       "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": sorted(s.value for s in Scope),
    }
