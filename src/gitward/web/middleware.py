"""ASGI middleware: request body limits for the REST API, and an access log without secrets."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gitward.web.errors import api_family, error_response

access_log = logging.getLogger("gitward.access")


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse REST bodies above `limit` bytes (413) before or while they arrive.

    Git paths are left alone: pushes have their own, much larger limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or api_family(scope["path"]) == "git":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(path, scope, receive, send)
                    return
        received = 0
        started = False
        exceeded = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                # The app may have turned BodyTooLarge into its own error response
                # (FastAPI answers any failure while reading a body with a 400): drop it.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counted_receive, tracking_send)
        if exceeded and not started:
            await self._refuse(path, scope, receive, send)

    async def _refuse(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            path, 413, f"The request body is larger than the limit of {self.limit} bytes."
        )
        await response(scope, receive, send)


class AccessLog:
    """One line per request: method, path (never the query string, which may hold a
    password on Bitbucket Server's admin API), status, duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 0}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s" %s %.1fms',
                client[0],
                scope["method"],
                scope["path"],
                status["code"],
                (time.perf_counter() - start) * 1000,
            )


class TrailingSlash:
    """Bitbucket accepts a trailing slash on every API path: strip it before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and len(path) > 1
            and path.endswith("/")
            and path.startswith(("/2.0/", "/rest/"))
        ):
            scope = dict(scope)
            scope["path"] = path.rstrip("/")
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class HeadAsGet:
    """HEAD on the REST API and the OAuth endpoints answers as GET would, without the body
    (RFC 9110 §9.3.2): `curl -I` and clients that probe a URL before fetching it work. Git
    paths are left alone: their Starlette routes answer HEAD themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or api_family(scope["path"]) == "git"
        ):
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        scope["method"] = "GET"

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, without_body)
