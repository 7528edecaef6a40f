"""ASGI middleware: request body limits, host checks, HEAD and trailing slashes for the REST
surfaces, and an access log without secrets (and without forged lines) for all of them.

Each surface application adds the middleware it needs (web/app.py), with its own error
shape: none of them looks at the path to guess which surface it serves."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gitward.web.errors import Surface, error_response
from gitward.web.hosts import HostPolicy
from gitward.web.metrics import SURFACE_KEY, RequestCounts

access_log = logging.getLogger("gitward.access")


class BodyTooLarge(Exception):
    pass


#: The answer to a request with several `Authorization` headers, on every surface.
TWO_AUTHORIZATIONS = "Send one Authorization header: this request has more than one."


class SurfaceGate:
    """What every REST and OAuth request goes through before routing, in one layer (one scan
    of the headers, one copy of the scope at most):

    - a Host the site does not answer to is a 400, so that no link or OAuth issuer is ever
      built from a name an attacker chose (web/hosts.py);
    - more than one `Authorization` header is a 400: which one would count is exactly what
      a proxy and the server could disagree on (Git paths check the same: git_http/);
    - a body above `limit` bytes is a 413, before it arrives when its length is declared,
      and as it arrives when it is chunked (pushes have their own, larger limit);
    - HEAD answers as GET would, without the body (RFC 9110 §9.3.2), so that `curl -I` and
      clients that probe a URL work;
    - a trailing slash is stripped before routing (`strip_slash`: Bitbucket accepts one on
      every REST path);
    - `alias` may name the path a request's path stands for (Bitbucket Server's
      `/rest/api/latest/…` is `/rest/api/1.0/…`), given and giving the path below the
      surface's mount.
    """

    def __init__(
        self,
        app: ASGIApp,
        surface: Surface,
        policy: HostPolicy,
        limit: int,
        *,
        strip_slash: bool,
        alias: Callable[[str], str | None] | None = None,
    ) -> None:
        self.app = app
        self.surface = surface
        self.policy = policy
        self.limit = limit
        self.strip_slash = strip_slash
        self.alias = alias

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = length = None
        chunked = False
        authorizations = 0
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorizations += 1
            elif name == b"host":
                host = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if not self.policy.allows(host.decode("latin-1") if host is not None else None):
            await self._refuse(
                400,
                "This server does not answer to that host name. Its administrator can add it "
                "to GITWARD_ALLOWED_HOSTS, or set GITWARD_BASE_URL.",
                scope, receive, send,
            )
            return
        if authorizations > 1:
            await self._refuse(400, TWO_AUTHORIZATIONS, scope, receive, send)
            return
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse_body(scope, receive, send)
            return
        path: str = scope["path"]
        head = scope["method"] == "HEAD"
        slash = self.strip_slash and len(path) > 1 and path.endswith("/")
        aliased = None
        alias = self.alias
        root: str = scope.get("root_path", "")
        if alias is not None:
            below = alias(path[len(root):] if path.startswith(root) else path)
            if below is not None:
                aliased = root + below
        if head or slash or aliased is not None:
            scope = dict(scope)
            if aliased is not None:
                scope["path"] = path = aliased
                raw = scope.get("raw_path")
                if raw is not None and alias is not None:  # its escapes kept
                    text = raw.decode("latin-1")
                    rooted = text.startswith(root)
                    changed = alias(text[len(root):] if rooted else text)
                    if changed is not None:
                        scope["raw_path"] = ((root if rooted else "") + changed).encode(
                            "latin-1"
                        )
            if slash:
                scope["path"] = path.rstrip("/")
                scope["raw_path"] = scope["path"].encode()
            if head:
                scope["method"] = "GET"
                send = without_body(send)
        if chunked:
            await self._counted(scope, receive, send)
        else:
            # No body, or one whose declared length is within the limit (the HTTP server
            # holds the client to its Content-Length): nothing to count.
            await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            await self._refuse_body(scope, receive, send)

    async def _refuse_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._refuse(
            413, f"The request body is larger than the limit of {self.limit} bytes.",
            scope, receive, send,
        )

    async def _refuse(
        self, status: int, message: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await error_response(self.surface, status, message)(scope, receive, send)


def without_body(send: Send) -> Send:
    """`send` for a HEAD answered as GET: the headers as they are, no body."""

    async def headless(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return headless


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
    one, so `%0D%0A` in it would end the line: it is logged escaped.

    The same watch over the answer feeds the metrics (web/metrics.py): the request is
    counted under the surface the dispatcher names in the scope (`SURFACE_KEY`); one that it
    names none of (/metrics itself) is not counted. One wrapper for both, as each costs a
    request an extra coroutine per message."""

    def __init__(self, app: ASGIApp, counts: RequestCounts | None = None) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        logged = access_log.isEnabledFor(logging.INFO)
        counts = self.counts
        if scope["type"] != "http" or not (logged or counts):
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            elapsed = perf_counter() - start
            surface = scope.get(SURFACE_KEY)
            if counts is not None and surface is not None:
                counts.request(surface, status, elapsed)
                if surface == "git":
                    counts.git(scope["path"], scope["method"], status)
            if logged:
                client = scope.get("client") or ("-", 0)
                access_log.info(
                    '%s "%s %s" %s %.1fms',
                    client[0],
                    printable(scope["method"]),
                    printable(scope["path"]),
                    status,
                    elapsed * 1000,
                )
