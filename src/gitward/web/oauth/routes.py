"""The Starlette adapter of the OAuth 2.0 server (services/oauth_server/, on authlib):
/site/oauth2/authorize, /site/oauth2/access_token, /site/oauth2/revoke,
/site/oauth2/introspect and /.well-known/oauth-authorization-server.

An endpoint reads and checks the url-encoded body on the event loop, builds an
`OAuthRequest`, and hands it to authlib's server in the thread pool, inside one unit of work;
the `OAuthAnswer` becomes the HTTP response. Every error is RFC 6749 JSON
`{"error", "error_description"}`, except on the authorize page, which answers a person: it
shows the form again, or redirects to the consumer with `error` (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response

from gitward.credentials.password import TWO_STEP_REQUIRED
from gitward.credentials.registry import AuthenticationFailed, AuthenticationThrottled, Presented
from gitward.credentials.session import COOKIE as SESSION_COOKIE
from gitward.domain.identity import CredentialKind
from gitward.runtime import Runtime
from gitward.services.caller import Caller
from gitward.services.errors import ServiceError
from gitward.services.oauth_server import (
    AuthorizationCodeGrant,
    OAuthAnswer,
    OAuthRequest,
    OAuthServer,
    metadata,
)
from gitward.services.oauth_server.protocol import error_text_allows
from gitward.services.oidc_trusts import EXCHANGE_GRANT
from gitward.storage.store import Store
from gitward.web.auth import record_failure
from gitward.web.errors import CHALLENGE
from gitward.web.hosts import base_url
from gitward.web.oauth.exchange import token_exchange
from gitward.web.oauth.page import authorize_page
from gitward.web.openapi import ANONYMOUS
from gitward.web.pipeline import Ingress, Pipeline, Rollback, pipeline_of
from gitward.web.ui import csrf
from gitward.web.ui.render import error_page

router = APIRouter(tags=["oauth"])
#: RFC 8414 metadata lives under /.well-known, a mount of the OAuth surface of its own.
well_known = APIRouter(tags=["oauth"])


def _form_body(fields: dict[str, str]) -> dict[str, Any]:
    """The OpenAPI description of a url-encoded body (the endpoints parse it themselves)."""
    properties = {name: {"type": "string", "description": text} for name, text in fields.items()}
    schema = {"type": "object", "properties": properties}
    return {
        "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}
    }


_CLIENT = {"client_id": "client authentication in the form (or HTTP Basic key:secret)",
           "client_secret": "client authentication in the form (or HTTP Basic key:secret)"}
_TOKEN_FORM = _form_body({
    "grant_type": "authorization_code | refresh_token | client_credentials | "
    "urn:bitbucket:oauth2:jwt | urn:ietf:params:oauth:grant-type:token-exchange",
    "code": "authorization_code: the code",
    "redirect_uri": "authorization_code: as sent to the authorize endpoint",
    "code_verifier": "authorization_code: the PKCE verifier",
    "refresh_token": "refresh_token: the refresh token",
    "scope": "optional: fewer scopes than granted",
    "subject_token": "token-exchange: the CI job's OIDC ID token",
    "subject_token_type": "token-exchange: urn:ietf:params:oauth:token-type:jwt",
    "resource": "token-exchange, optional: which trust's resource, when several accept the "
    "token",
    **_CLIENT,
})
_TOKEN_ONLY = _form_body({"token": "the token", "token_type_hint": "optional", **_CLIENT})
_DECISION = _form_body({"username": "account username", "password": "account password",
                        "otp": "when two-step verification is on",
                        "decision": "allow | deny"})

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FIELDS = 64
MAX_PARAMETER_LENGTH = 4096
#: Parameters that may be longer: a CI job's ID token (RFC 8693 subject_token).
LONG_PARAMETERS = {"subject_token": 16384}
FORM_TYPE = "application/x-www-form-urlencoded"
# Parameters whose values RFC 6749 makes printable ASCII and that authlib may quote in an error
# description (which may not hold '"' or '\'): other characters are refused up front.
_ASCII_PARAMETERS = ("response_type", "grant_type", "redirect_uri", "scope",
                     "code_challenge_method", "token_type_hint")
_FORM_ONLY = frozenset({"username", "password", "otp", "decision", csrf.FIELD})


class Refused(Exception):
    """A request refused before it reaches the OAuth server."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers.update(CHALLENGE)
        return JSONResponse(
            {"error": self.error, "error_description": self.description}, self.status, headers
        )


def parse_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Parameters, each at most once (RFC 6749 §3.1), without NUL characters."""
    if len(pairs) > MAX_FIELDS:
        raise Refused("invalid_request", "Too many parameters")
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise Refused("invalid_request", f"The parameter {name[:40]} is repeated")
        if "\x00" in name or "\x00" in value:
            raise Refused("invalid_request", "Parameters may not contain NUL characters")
        if len(value) > LONG_PARAMETERS.get(name, MAX_PARAMETER_LENGTH):
            raise Refused("invalid_request", f"The parameter {name[:40]} is too long")
        if name in _ASCII_PARAMETERS and not all(map(error_text_allows, value)):
            raise Refused("invalid_request", f"The parameter {name} has characters it may "
                          "not contain")
        params[name] = value
    return params


def _pairs(text: str) -> list[tuple[str, str]]:
    """The name-value pairs of a query string or form, at most MAX_FIELDS of them (parsing
    stops there rather than building a list of a million fields first)."""
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # the only ValueError parse_qsl raises here: too many fields
        raise Refused("invalid_request", "Too many parameters") from None


def _query(request: Request) -> dict[str, str]:
    return parse_params(_pairs(request.url.query))


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if content_type != FORM_TYPE:
        raise Refused("invalid_request", f"The request body must be {FORM_TYPE}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("invalid_request", "The request body is not UTF-8") from None
    return parse_params(_pairs(text))


def _check_authorization(headers: Headers) -> None:
    """Refuse an Authorization header the token endpoints cannot read: Basic key:secret (RFC
    6749 §2.3.1, both parts form-encoded) or, for the JWT grant, `JWT <assertion>`."""
    header = headers.get("authorization")
    if not header:
        return
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "jwt":
        return
    if scheme != "basic":
        raise Refused("invalid_client", f"Unsupported authorization scheme: {scheme[:20]}", 401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Refused("invalid_client", "Malformed Basic credentials", 401) from None
    key, sep, secret = decoded.partition(":")
    if not sep or "\x00" in unquote_plus(key) or "\x00" in unquote_plus(secret):
        raise Refused("invalid_client", "Malformed Basic credentials", 401)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _response(answer: OAuthAnswer) -> Response:
    headers = {k: v for k, v in answer.headers if k.lower() not in ("content-type", "location")}
    headers.update(NO_STORE)
    if answer.location is not None:
        return RedirectResponse(answer.location, answer.status, headers=headers)
    return JSONResponse(answer.body if answer.body is not None else {}, answer.status, headers)


def _serve(
    runtime: Runtime,
    issuer: str,
    oauth_request: OAuthRequest,
    endpoint: Callable[[OAuthServer, OAuthRequest], OAuthAnswer],
    caller: Caller,
) -> OAuthAnswer:
    """One endpoint call in the pipeline's unit of work: committed on success, and on an
    error that revoked something (a replayed code or refresh token); rolled back otherwise.
    The consumer authenticates to authlib, not to the pipeline: the caller is anonymous."""
    answer = endpoint(OAuthServer(caller.store, runtime.oauth, issuer), oauth_request)
    if answer.status >= 400 and not oauth_request.commit_on_error:
        raise Rollback(answer)
    return answer


async def _endpoint(
    request: Request,
    endpoint: Callable[[OAuthServer, OAuthRequest], OAuthAnswer],
    form: dict[str, str] | None = None,
) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        if form is None:
            form = await _form(request)
        _check_authorization(request.headers)
    except Refused as refused:
        return refused.response()
    oauth_request = OAuthRequest(request.method, str(request.url), request.headers, form,
                                 client_ip=_ip(request))
    issuer = base_url(request)
    # The Authorization header carries the consumer's own credentials (or a JWT): authlib
    # reads it, so the pipeline is not handed it.
    ingress = Ingress(client_ip=oauth_request.client_ip, write=True)
    try:
        answer = await pipeline_of(request).call(
            ingress, lambda caller: _serve(runtime, issuer, oauth_request, endpoint, caller)
        )
    except IntegrityError:
        # Two uses of the same single-use assertion racing: the second one loses at commit.
        answer = OAuthAnswer(400, {"error": "invalid_grant",
                                   "error_description": "This grant was already used"})
    if answer.status == 401:
        failure = AuthenticationFailed(
            str((answer.body or {}).get("error_description", "invalid_client")),
            audit_subject="oauth-client",
        )
        await pipeline_of(request).offload(
            lambda: record_failure(runtime, failure, oauth_request.client_ip)
        )
    return _response(answer)


# -- token endpoint, revocation, introspection, metadata ---------------------------------------


@router.post("/access_token", openapi_extra=_TOKEN_FORM)
async def access_token(request: Request) -> Response:
    """The token endpoint (RFC 6749 §3.2): authorization_code, refresh_token,
    client_credentials, urn:bitbucket:oauth2:jwt, and RFC 8693 token exchange of a CI job's
    OIDC ID token (docs/oidc-federation.md)."""
    try:
        form = await _form(request)
    except Refused as refused:
        return refused.response()
    if form.get("grant_type") == EXCHANGE_GRANT:
        return await token_exchange(request, form)
    return await _endpoint(request, OAuthServer.token, form)


@router.post("/revoke", openapi_extra=_TOKEN_ONLY)
async def revoke(request: Request) -> Response:
    """RFC 7009 token revocation, for the consumer's own tokens."""
    return await _endpoint(request, OAuthServer.revoke)


@router.post("/introspect", openapi_extra=_TOKEN_ONLY)
async def introspect(request: Request) -> Response:
    """RFC 7662 token introspection, for the consumer's own tokens."""
    return await _endpoint(request, OAuthServer.introspect)


@well_known.get("/oauth-authorization-server", openapi_extra={ANONYMOUS: True})
async def authorization_server_metadata(request: Request) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return metadata(base_url(request))


# -- authorize endpoint ------------------------------------------------------------------------


@dataclass(frozen=True)
class Browser:
    """What the authorize page knows of the browser: its CSRF token (web/ui/csrf.py), its
    session cookie, and whether the CSRF cookie must be set."""

    # Secrets (the CSRF token and cookie, the session cookie): out of any repr.
    token: str = field(repr=False)
    secret: str = field(repr=False)
    new: bool
    cookie: str | None = field(repr=False)

    @classmethod
    def of(cls, request: Request, key: bytes) -> Browser:
        secret, new = csrf.browser_secret(request)
        cookie = request.cookies.get(SESSION_COOKIE) or None
        return cls(csrf.token_for(key, secret, cookie), secret, new, cookie)

    def finish(self, request: Request, response: Response) -> Response:
        if self.new:
            response.set_cookie(csrf.COOKIE, self.secret, max_age=400 * 24 * 3600, path="/",
                                secure=request.url.scheme == "https", httponly=True,
                                samesite="lax")
        return response


def _signed_in(runtime: Runtime, caller: Caller) -> str | None:
    """The web session's user, if the page was reached signed in with a session fresh enough
    to create a credential (an authorization issues tokens): an older session is asked for
    the password again, as the pages ask before they create one."""
    user = caller.ctx.user
    if caller.ctx.credential is not CredentialKind.SESSION or user is None:
        return None
    return user.username if runtime.web_sessions.is_fresh(caller.store, caller.ctx) else None


def _page(
    runtime: Runtime,
    grant: AuthorizationCodeGrant,
    query: str,
    browser: Browser,
    caller: Caller,
    *,
    username: str = "",
    status: int = 200,
    message: str | None = None,
) -> Response:
    request = grant.request
    return authorize_page(request.client.consumer, request.scope, grant.redirect_uri, query,
                          username=username, status=status, message=message,
                          csrf=browser.token, signed_in_as=_signed_in(runtime, caller))


def _consent(
    runtime: Runtime, store: Store, issuer: str, oauth_request: OAuthRequest
) -> tuple[OAuthServer, AuthorizationCodeGrant | Response]:
    """The server and the validated authorization request, or the error answer."""
    server = OAuthServer(store, runtime.oauth, issuer)
    try:
        return server, server.consent(oauth_request)
    except OAuth2Error as error:
        return server, _response(server.authorization_error(oauth_request, error))


@router.get("/authorize")
async def authorize_form(request: Request) -> Response:
    """The sign-in and consent page for an authorization request."""
    runtime: Runtime = request.app.state.runtime
    try:
        params = _query(request)
    except Refused as refused:
        return refused.response()
    oauth_request = OAuthRequest("GET", str(request.url), request.headers, params)
    issuer, query = base_url(request), request.url.query
    browser = Browser.of(request, runtime.secret_key)

    def show(caller: Caller) -> Response:
        _, grant = _consent(runtime, caller.store, issuer, oauth_request)
        if isinstance(grant, Response):
            return grant
        return _page(runtime, grant, query, browser, caller)

    pipeline = pipeline_of(request)
    # Signed in to the pages: the session cookie says who, and only the decision is asked.
    try:
        response = await pipeline.call(Ingress(write=False, cookie=browser.cookie), show)
    except AuthenticationFailed:  # the session ended: sign in with the password instead
        response = await pipeline.call(Ingress(write=False), show)
    return browser.finish(request, response)


@router.post("/authorize", openapi_extra=_DECISION)
async def authorize_decision(request: Request) -> Response:
    """The user's answer: `decision=allow` (with username, password and, when two-step
    verification is on, otp) or `decision=deny`; a redirect to the consumer's callback."""
    runtime: Runtime = request.app.state.runtime
    try:
        query = _query(request)
        form = await _form(request)
    except Refused as refused:
        return refused.response()
    # NOTE: the form proves it came from our own page before the session cookie is looked at
    # (web/ui/csrf.py).
    # The OAuth parameters come in the query string (as the page posts them), or the form.
    params = {**{k: v for k, v in form.items() if k not in _FORM_ONLY}, **query}
    oauth_request = OAuthRequest("POST", str(request.url), request.headers, params, form,
                                 client_ip=_ip(request))
    issuer, query_text = base_url(request), urlencode(params)
    pipeline = pipeline_of(request)
    refusal = csrf.check(runtime.secret_key, request, form.get(csrf.FIELD))
    if refusal is not None:
        # An authorization request that is itself wrong still gets its RFC 6749 answer
        # (checked anonymously, without the session); any other is refused.
        def invalid(caller: Caller) -> Response | None:
            _, grant = _consent(runtime, caller.store, issuer, oauth_request)
            return grant if isinstance(grant, Response) else None

        answer = await pipeline.call(Ingress(write=False), invalid)
        return answer if answer is not None else error_page(403, refusal)
    browser = Browser.of(request, runtime.secret_key)
    # The page's own form carries the credential (or the browser's web session does): the
    # Authorization header is not read.
    ingress = Ingress(client_ip=oauth_request.client_ip, write=True, cookie=browser.cookie)
    try:
        return await pipeline.call(
            ingress,
            lambda caller: _decide(pipeline, issuer, oauth_request, query_text, browser, caller),
        )
    except AuthenticationThrottled as throttled:
        status, message = 429, throttled.message
    except AuthenticationFailed as failure:
        status, message = 401, failure.message
        if message == TWO_STEP_REQUIRED:
            message = ("Two-step verification is on for this account: enter the code from "
                       "your authenticator app (or a recovery code).")

    def again(caller: Caller) -> Response:
        """The form again, with the message, in a read-only unit of work of its own."""
        _, grant = _consent(runtime, caller.store, issuer, oauth_request)
        if isinstance(grant, Response):
            return grant
        return _page(runtime, grant, query_text, browser, caller,
                     username=form.get("username", "").strip(), status=status, message=message)

    return await pipeline.call(Ingress(write=False), again)


def _decide(
    pipeline: Pipeline,
    issuer: str,
    oauth_request: OAuthRequest,
    query: str,
    browser: Browser,
    caller: Caller,
) -> Response:
    form, ip = oauth_request.form, oauth_request.client_ip
    runtime = pipeline.runtime
    username = form.get("username", "").strip()
    server, grant = _consent(runtime, caller.store, issuer, oauth_request)
    if isinstance(grant, Response):
        return grant
    decision = form.get("decision")
    if decision == "deny":
        return _response(server.authorize(oauth_request, grant, None))
    if decision != "allow":
        return _page(runtime, grant, query, browser, caller, username=username, status=400,
                     message="Choose to grant access or to cancel.")
    password = form.get("password", "")
    if _signed_in(runtime, caller) is not None and not password:
        user = caller  # a fresh web session, already authenticated by the pipeline
    else:
        if not username or not password:
            return _page(runtime, grant, query, browser, caller, username=username, status=400,
                         message="Enter your username and password.")
        user = pipeline.sign_in(caller, Presented("basic", password, username, ip,
                                                  form.get("otp") or None))
    try:
        answer = server.authorize(oauth_request, grant, user)
    except ServiceError as error:
        return _page(runtime, grant, query, browser, caller, username=username, status=error.status,
                     message=error.message)
    return _response(answer)
