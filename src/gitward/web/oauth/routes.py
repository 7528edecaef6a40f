"""/site/oauth2/authorize, /site/oauth2/access_token, /site/oauth2/revoke,
/site/oauth2/introspect and /.well-known/oauth-authorization-server.

The endpoints read the (url-encoded) body on the event loop, then run the grant logic, which
is synchronous and talks to the database, in the thread pool. Every error is RFC 6749 JSON
`{"error", "error_description"}`, except on the authorize page, which answers a person: it
shows the form again, or redirects to the consumer with `error` (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from fastapi import APIRouter, Request
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from gitward.credentials.password import TWO_STEP_REQUIRED
from gitward.credentials.registry import AuthenticationFailed, AuthenticationThrottled, Presented
from gitward.runtime import Runtime
from gitward.services import oauth_server as server
from gitward.services.caller import Caller
from gitward.services.errors import ServiceError
from gitward.services.oauth_server import NoRedirect, OAuthError, RedirectError
from gitward.storage.store import Store
from gitward.web.auth import record_failure
from gitward.web.cloud_api.render import base_url
from gitward.web.errors import CHALLENGE
from gitward.web.oauth.page import authorize_page

router = APIRouter(tags=["oauth"])


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
    "urn:bitbucket:oauth2:jwt",
    "code": "authorization_code: the code",
    "redirect_uri": "authorization_code: as sent to the authorize endpoint",
    "code_verifier": "authorization_code: the PKCE verifier",
    "refresh_token": "refresh_token: the refresh token",
    "scope": "optional: fewer scopes than granted",
    **_CLIENT,
})
_TOKEN_ONLY = _form_body({"token": "the token", "token_type_hint": "optional", **_CLIENT})
_DECISION = _form_body({"username": "account username", "password": "account password",
                        "otp": "when two-step verification is on",
                        "decision": "allow | deny"})

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FIELDS = 64
FORM_TYPE = "application/x-www-form-urlencoded"


def oauth_error(error: OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers.update(CHALLENGE)
    return JSONResponse(
        {"error": error.error, "error_description": error.description}, error.status, headers
    )


def parse_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Parameters, each at most once (RFC 6749 §3.1), without NUL characters."""
    if len(pairs) > MAX_FIELDS:
        raise OAuthError("invalid_request", "Too many parameters")
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise OAuthError("invalid_request", f"The parameter {name[:40]} is repeated")
        if "\x00" in name or "\x00" in value:
            raise OAuthError("invalid_request", "Parameters may not contain NUL characters")
        params[name] = value
    return params


def _query(request: Request) -> dict[str, str]:
    return parse_params(parse_qsl(request.url.query, keep_blank_values=True))


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if content_type != FORM_TYPE:
        raise OAuthError("invalid_request", f"The request body must be {FORM_TYPE}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The request body is not UTF-8") from None
    return parse_params(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))


def _client_header(request: Request) -> tuple[tuple[str, str] | None, str | None]:
    """(Basic key and secret, JWT assertion) from the Authorization header."""
    header = request.headers.get("authorization")
    if not header:
        return None, None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "jwt":
        return None, value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise OAuthError("invalid_client", "Malformed Basic credentials", 401) from None
        key, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials", 401)
        # RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
        key, secret = unquote_plus(key), unquote_plus(secret)
        if "\x00" in key or "\x00" in secret:
            raise OAuthError("invalid_client", "Malformed Basic credentials", 401)
        return (key, secret), None
    raise OAuthError(
        "invalid_client", f"Unsupported authorization scheme: {scheme[:20]}", 401
    )


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _in_unit_of_work(
    runtime: Runtime, ip: str | None, work: Callable[[Store], dict[str, Any] | None]
) -> Response:
    """Run `work` in one transaction; an OAuthError that revoked something still commits."""
    result: dict[str, Any] | None = None
    failure: OAuthError | None = None
    try:
        with runtime.unit_of_work() as store:
            try:
                result = work(store)
            except OAuthError as error:
                if not error.commit:
                    raise
                failure = error
    except OAuthError as error:
        failure = error
    except IntegrityError:
        # Two uses of the same single-use assertion racing: the second one loses at commit.
        failure = OAuthError("invalid_grant", "This grant was already used")
    if failure is not None:
        if failure.status == 401:
            record_failure(runtime, AuthenticationFailed(failure.description,
                                                         audit_subject="oauth-client"), ip)
        return oauth_error(failure)
    return JSONResponse(result if result is not None else {}, 200, NO_STORE)


# -- token endpoint ----------------------------------------------------------------------------


@router.post("/site/oauth2/access_token", openapi_extra=_TOKEN_FORM)
async def access_token(request: Request) -> Response:
    """The token endpoint (RFC 6749 §3.2): authorization_code, refresh_token,
    client_credentials and urn:bitbucket:oauth2:jwt."""
    runtime: Runtime = request.app.state.runtime
    try:
        form = await _form(request)
        basic, assertion = _client_header(request)
    except OAuthError as error:
        return oauth_error(error)

    def work(store: Store) -> dict[str, Any]:
        return server.token(store, runtime.oauth, form, basic, assertion)

    return await run_in_threadpool(_in_unit_of_work, runtime, _ip(request), work)


@router.post("/site/oauth2/revoke", openapi_extra=_TOKEN_ONLY)
async def revoke(request: Request) -> Response:
    """RFC 7009 token revocation, for the consumer's own tokens."""
    runtime: Runtime = request.app.state.runtime
    try:
        form = await _form(request)
        basic, _ = _client_header(request)
    except OAuthError as error:
        return oauth_error(error)

    def work(store: Store) -> None:
        client = server.authenticate_client(store, runtime.oauth, form, basic)
        server.revoke(store, runtime.oauth, client, form)

    response = await run_in_threadpool(_in_unit_of_work, runtime, _ip(request), work)
    if response.status_code == 200:
        return Response(status_code=200, headers=NO_STORE)
    return response


@router.post("/site/oauth2/introspect", openapi_extra=_TOKEN_ONLY)
async def introspect(request: Request) -> Response:
    """RFC 7662 token introspection, for the consumer's own tokens."""
    runtime: Runtime = request.app.state.runtime
    issuer = base_url(request)
    try:
        form = await _form(request)
        basic, _ = _client_header(request)
    except OAuthError as error:
        return oauth_error(error)

    def work(store: Store) -> dict[str, Any]:
        client = server.authenticate_client(store, runtime.oauth, form, basic)
        return server.introspect(store, runtime.oauth, client, form, issuer)

    return await run_in_threadpool(_in_unit_of_work, runtime, _ip(request), work)


@router.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata(request: Request) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return server.metadata(base_url(request))


# -- authorize endpoint ------------------------------------------------------------------------


def _authorization_answer(error: OAuthError) -> Response:
    if isinstance(error, RedirectError):
        return RedirectResponse(error.location, 302, headers=NO_STORE)
    return oauth_error(error)


@router.get("/site/oauth2/authorize")
def authorize_form(request: Request) -> Response:
    """The sign-in and consent page for an authorization request."""
    runtime: Runtime = request.app.state.runtime
    try:
        params = _query(request)
        with runtime.unit_of_work() as store:
            auth_request = server.validate_authorization(store, params)
            return authorize_page(auth_request, request.url.query)
    except OAuthError as error:
        return _authorization_answer(error)


@router.post("/site/oauth2/authorize", openapi_extra=_DECISION)
async def authorize_decision(request: Request) -> Response:
    """The user's answer: `decision=allow` (with username, password and, when two-step
    verification is on, otp) or `decision=deny`; a redirect to the consumer's callback."""
    runtime: Runtime = request.app.state.runtime
    try:
        query = _query(request)
        form = await _form(request)
    except OAuthError as error:
        return oauth_error(error)
    # The OAuth parameters come in the query string (as the page posts them), or the form.
    params = {**{k: v for k, v in form.items() if k not in _FORM_ONLY}, **query}
    return await run_in_threadpool(
        _decide, runtime, params, form, urlencode(params), _ip(request)
    )


_FORM_ONLY = frozenset({"username", "password", "otp", "decision"})


def _decide(
    runtime: Runtime, params: dict[str, str], form: dict[str, str], query: str, ip: str | None
) -> Response:
    failure: AuthenticationFailed | None = None
    try:
        with runtime.unit_of_work() as store:
            auth_request = server.validate_authorization(store, params)
            decision = form.get("decision")
            if decision == "deny":
                return RedirectResponse(
                    server.denied_location(auth_request), 302, headers=NO_STORE
                )
            username = form.get("username", "").strip()
            page_query = query
            if decision != "allow":
                return authorize_page(auth_request, page_query, username=username, status=400,
                                      message="Choose to grant access or to cancel.")
            password = form.get("password", "")
            if not username or not password:
                return authorize_page(auth_request, page_query, username=username, status=400,
                                      message="Enter your username and password.")
            presented = Presented("basic", password, username, ip, form.get("otp") or None)
            try:
                ctx = runtime.credentials.authenticate(store, presented)
            except AuthenticationFailed as error:
                failure = error
                raise
            caller = Caller(store, ctx, ip)
            try:
                location = server.grant_code(caller, runtime.oauth, auth_request)
            except ServiceError as error:
                return authorize_page(auth_request, page_query, username=username,
                                      status=error.status, message=error.message)
            return RedirectResponse(location, 302, headers=NO_STORE)
    except NoRedirect as error:
        return oauth_error(error)
    except OAuthError as error:
        return _authorization_answer(error)
    except AuthenticationThrottled as throttled:
        return _page_after(runtime, params, query, form, 429, throttled.message)
    except AuthenticationFailed:
        assert failure is not None
        record_failure(runtime, failure, ip)  # after the rollback: see web/auth.py
        message = failure.message
        if message == TWO_STEP_REQUIRED:
            message = ("Two-step verification is on for this account: enter the code from "
                       "your authenticator app (or a recovery code).")
        return _page_after(runtime, params, query, form, 401, message)


def _page_after(
    runtime: Runtime,
    params: dict[str, str],
    query: str,
    form: dict[str, str],
    status: int,
    message: str,
) -> Response:
    """The form again, with a message (its own read-only unit of work)."""
    try:
        with runtime.unit_of_work() as store:
            auth_request = server.validate_authorization(store, params)
            return authorize_page(auth_request, query, username=form.get("username", ""),
                                  status=status, message=message)
    except OAuthError as error:
        return _authorization_answer(error)
