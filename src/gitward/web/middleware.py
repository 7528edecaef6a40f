"""ASGI middleware: request body limits, host checks, HEAD and trailing slashes for the REST
surfaces, and an access log without secrets (and without forged lines) for all of them.

Each surface application adds the middleware it needs (web/app.py), with its own error
shape: none of them looks at the path to guess which surface it serves."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gitward.web.errors import Surface, error_response
from gitward.web.hosts import HostPolicy

access_log = logging.getLogger("gitward.access")


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies above `limit` bytes (413) before or while they arrive (REST and OAuth;
    pushes have their own, much larger limit)."""

    def __init__(self, app: ASGIApp, surface: Surface, limit: int) -> None:
        self.app = app
        self.surface = surface
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        chunked = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(path, scope, receive, send)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # No body, or one whose declared length is within the limit (the HTTP server
            # holds the client to its Content-Length): nothing to count.
            await self.app(scope, receive, send)
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
            self.surface, 413, f"The request body is larger than the limit of {self.limit} bytes."
        )
        await response(scope, receive, send)


def printable(text: str) -> str:
    """`text` with every control character (CR and LF above all) and backslash escaped, so
    that a path cannot forge or break lines of the log."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(
        ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


class AccessLog:
    """One line per request: method, path (never the query string, which may hold a
    password on Bitbucket Server's admin API), status, duration. The path is the decoded
    one, so `%0D%0A` in it would end the line: it is logged escaped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
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
                printable(scope["method"]),
                printable(scope["path"]),
                status["code"],
                (time.perf_counter() - start) * 1000,
            )


class TrailingSlash:
    """Bitbucket accepts a trailing slash on every API path: strip it before routing (added
    by the REST surfaces only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/")
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class HeadAsGet:
    """HEAD on the REST API and the OAuth endpoints answers as GET would, without the body
    (RFC 9110 §9.3.2): `curl -I` and clients that probe a URL before fetching it work. The
    Git surface does without: its Starlette routes answer HEAD themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
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


class HostCheck:
    """Refuse (400, in the surface's shape) a Host header the site does not answer to, so
    that no link or OAuth issuer is ever built from a name an attacker chose."""

    def __init__(self, app: ASGIApp, surface: Surface, policy: HostPolicy) -> None:
        self.app = app
        self.surface = surface
        self.policy = policy
        # Host headers seen, and the answer: a handful in practice (bounded all the same).
        self._seen: dict[bytes | None, bool] = {}

    def _allows(self, header: bytes | None) -> bool:
        known = self._seen.get(header)
        if known is None:
            known = self.policy.allows(header.decode("latin-1") if header is not None else None)
            if len(self._seen) < 256:
                self._seen[header] = known
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.policy.base_url is None:
            host = None
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    host = value
                    break
            if not self._allows(host):
                response = error_response(
                    self.surface,
                    400,
                    "This server does not answer to that host name. Its administrator can "
                    "add it to GITWARD_ALLOWED_HOSTS, or set GITWARD_BASE_URL.",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
