"""Error responses in the shape of each surface, never an HTML page or a trace.

Each surface (Cloud REST, Server REST, OAuth, Git, the pages) is its own mounted application that
installs the handlers of its own shape (`install`): nothing guesses the shape from a path.
"""

from __future__ import annotations

import logging
import subprocess
from enum import Enum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match

from gitward.credentials.registry import AuthenticationFailed, AuthenticationThrottled
from gitward.gitstore.store import UnsafePath
from gitward.services.errors import Conflict, ServiceError, TooManyRequests

log = logging.getLogger(__name__)

CHALLENGE = {"WWW-Authenticate": 'Basic realm="Gitward"'}


class Surface(Enum):
    """A way in, with its own error shape."""

    CLOUD = "cloud"  # /2.0: {"type": "error", "error": {"message", "detail"?}}
    SERVER = "server"  # /rest: {"errors": [{"context", "message", "exceptionName"}]}
    OAUTH = "oauth"  # /site/oauth2: RFC 6749 {"error", "error_description"}
    GIT = "git"  # smart HTTP and the hooks: text/plain, which git shows to its user
    WEB = "web"  # the pages: an HTML page (web/ui/)


_SERVER_EXCEPTIONS = {
    400: "com.atlassian.bitbucket.validation.ArgumentValidationException",
    401: "com.atlassian.bitbucket.auth.AuthorisationException",
    403: "com.atlassian.bitbucket.AuthorisationException",
    404: "com.atlassian.bitbucket.NoSuchEntityException",
    405: "com.atlassian.bitbucket.MethodNotAllowedException",
    409: "com.atlassian.bitbucket.DuplicateEntityException",
    413: "com.atlassian.bitbucket.RequestTooLargeException",
    415: "com.atlassian.bitbucket.UnsupportedMediaTypeException",
    429: "com.atlassian.bitbucket.RateLimitedException",
    500: "com.atlassian.bitbucket.ServiceException",
}
_OAUTH_ERRORS = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    404: "invalid_request",
    429: "slow_down",
    500: "server_error",
}


def error_response(
    surface: Surface,
    status: int,
    message: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    exception_name: str | None = None,
) -> Response:
    """The error in `surface`'s shape (on Server, `exception_name` instead of the status's
    usual one: a stale pull request's, for instance); a 401 always carries the Basic
    challenge (but on the pages, where it would make the browser ask for a password of its
    own)."""
    all_headers = dict(headers or {})
    if surface is Surface.WEB:
        from gitward.web.ui.render import error_page  # the pages' templates, loaded on use

        return error_page(status, message if not detail else f"{message} {detail}", all_headers)
    if status == 401:
        all_headers.update(CHALLENGE)
    if surface is Surface.CLOUD:
        error: dict[str, Any] = {"message": message}
        if detail:
            error["detail"] = detail
        return JSONResponse({"type": "error", "error": error}, status, all_headers)
    if surface is Surface.SERVER:
        body = {
            "errors": [
                {
                    "context": None,
                    "message": message if not detail else f"{message} {detail}",
                    "exceptionName": exception_name
                    or _SERVER_EXCEPTIONS.get(status, _SERVER_EXCEPTIONS[500]),
                }
            ]
        }
        return JSONResponse(body, status, all_headers)
    if surface is Surface.OAUTH:
        return JSONResponse(
            {"error": _OAUTH_ERRORS.get(status, "invalid_request"), "error_description": message},
            status,
            all_headers,
        )
    text = message if message.endswith("\n") else message + "\n"
    return PlainTextResponse(text, status, all_headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    problems = []
    for err in exc.errors():
        location = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        kind = err.get("type", "")
        if kind == "json_invalid":
            return "Malformed JSON in the request body", str(err.get("msg", ""))
        if kind.endswith("_type") and not location:
            return "The request body must be a JSON object", str(err.get("msg", ""))
        problems.append(f"{location or 'body'}: {err.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(problems), "; ".join(problems)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this application answers on the request's path.

    Each method of a path is a route of its own (one endpoint each), and the router's 405
    names only the methods of the first route whose path matched: the `Allow` header would
    leave out the others."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if not isinstance(route, BaseRoute):
            continue
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def database_unavailable(exc: OperationalError) -> bool:
    """A lock that outlasted the busy timeout, or a lost connection (not a broken schema)."""
    text = str(exc.orig).lower()
    return exc.connection_invalidated or "locked" in text or "busy" in text


def install(app: FastAPI, surface: Surface) -> None:
    """Answer every error raised in `app` in `surface`'s shape."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        status = exc.status
        if isinstance(exc, Conflict) and surface is Surface.CLOUD:
            status = 400  # Bitbucket Cloud answers duplicates with 400
        headers = dict(exc.headers)
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        return error_response(surface, status, exc.message, exc.detail, headers,
                              getattr(exc, "exception_name", None))

    @app.exception_handler(AuthenticationThrottled)
    async def _throttled(request: Request, exc: AuthenticationThrottled) -> Response:
        return error_response(
            surface, 429, exc.message, headers={"Retry-After": str(exc.retry_after)}
        )

    @app.exception_handler(AuthenticationFailed)
    async def _auth_failed(request: Request, exc: AuthenticationFailed) -> Response:
        return error_response(surface, 401, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        message, detail = _validation_message(exc)
        return error_response(surface, 400, message, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such resource: {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
            allowed = allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return error_response(surface, exc.status_code, message, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # Two requests creating the same thing at once: the database's unique constraint
        # decides, and the loser gets the answer a duplicate gets (400 on Cloud, 409 on Server).
        log.info("constraint violation on %s: %s", request.url.path, exc.orig)
        status = 400 if surface is Surface.CLOUD else 409
        return error_response(
            surface, status, "That conflicts with something that already exists."
        )

    @app.exception_handler(UnsafePath)
    async def _unsafe_path(request: Request, exc: UnsafePath) -> Response:
        # A repository row whose directory is not a plain directory inside the store (for
        # example a planted symlink): never followed, answered as a missing repository.
        log.error("refusing repository storage on %s: %s", request.url.path, exc)
        return error_response(surface, 404, "Repository not found")

    @app.exception_handler(subprocess.CalledProcessError)
    async def _git_failed(request: Request, exc: subprocess.CalledProcessError) -> Response:
        log.error("git failed on %s: %s", request.url.path, exc.stderr)
        return error_response(
            surface, 503, "The repository's storage could not be read; try again later."
        )

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, exc: OperationalError) -> Response:
        if not database_unavailable(exc):
            return await _unexpected(request, exc)
        # The database stayed locked past its busy timeout, or the connection to it was
        # lost: the request changed nothing, and may simply be tried again.
        log.warning("database unavailable on %s: %s", request.url.path, exc.orig)
        return error_response(
            surface, 503, "The database is busy; try again shortly.",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(surface, 500, "Internal server error")

