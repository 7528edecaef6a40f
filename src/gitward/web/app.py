"""The ASGI application: one mounted application per surface, each with its own error shape
and middleware, behind an access log and the trusted-proxy check.

    /status, /openapi.json, /docs     the root application
    /2.0/…                            Cloud REST            (Cloud error JSON)
    /rest/…                           Server REST           (Server error JSON)
    /site/oauth2/…, /.well-known/…    OAuth 2.0             (RFC 6749 error JSON)
    Git smart-HTTP paths (is_git_path) Git                  (text/plain, shown by git)
    everything else                   the pages (web/ui/)   (HTML)

A path unknown to a surface gets that surface's own 404.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Receive, Scope, Send

from gitward.runtime import Runtime
from gitward.web import background, docs, errors, metrics
from gitward.web import events as _events  # noqa: F401  (installs the event renderer)
from gitward.web.cloud_api import access_tokens as resource_tokens
from gitward.web.cloud_api import (
    account,
    content,
    oauth_consumers,
    oidc_trusts,
    repositories,
    users,
    workspaces,
)
from gitward.web.cloud_api import audit as cloud_audit
from gitward.web.cloud_api import build_statuses as cloud_build_statuses
from gitward.web.cloud_api import pull_requests as cloud_pull_requests
from gitward.web.cloud_api import webhooks as cloud_webhooks
from gitward.web.cloud_api.fields import PartialResponse
from gitward.web.errors import Surface
from gitward.web.git_http.routes import routes as git_routes
from gitward.web.hooks.server import HookServer
from gitward.web.hosts import ClientAddress, HostPolicy, IPNetwork, parse_networks
from gitward.web.metrics import SURFACE_KEY
from gitward.web.middleware import AccessLog, SurfaceGate, without_body
from gitward.web.oauth import routes as oauth_routes
from gitward.web.openapi import document_errors
from gitward.web.pipeline import CallerHeaders, Pipeline
from gitward.web.server_api import access_tokens, admin, properties, users_credentials
from gitward.web.server_api import audit as server_audit
from gitward.web.server_api import build_statuses as server_build_statuses
from gitward.web.server_api import content as server_content
from gitward.web.server_api import projects as server_projects
from gitward.web.server_api import pull_requests as server_pull_requests
from gitward.web.server_api import repositories as server_repositories
from gitward.web.server_api import resource_tokens as server_resource_tokens
from gitward.web.server_api import revocation as server_revocation
from gitward.web.server_api import surface as server_surface
from gitward.web.server_api import users as server_users
from gitward.web.server_api import webhooks as server_webhooks
from gitward.web.status import router as status_router
from gitward.web.ui.app import routes as page_routes

TITLE = "Gitward"
#: FastAPI's OpenTelemetry hooks, off: nothing here configures a provider, and asking for one
#: on every request was a few per cent of it.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
VERSION = "0.1.0"


def _surface_app(
    runtime: Runtime,
    pipeline: Pipeline,
    surface: Surface,
    routers: list[APIRouter],
    *,
    rest: bool = True,
    alias: Callable[[str], str | None] | None = None,
    caller_headers: CallerHeaders | None = None,
) -> FastAPI:
    app = FastAPI(
        title=TITLE, version=VERSION, openapi_url=None, docs_url=None, redoc_url=None,
        redirect_slashes=False, telemetry=NO_TELEMETRY,
    )
    app.state.runtime = runtime
    app.state.pipeline = pipeline
    app.state.caller_headers = caller_headers
    app.state.surface = surface
    errors.install(app, surface)
    for router in routers:
        # The routes themselves, not the router: FastAPI matches an included router by
        # trying its routes through a layer of its own, which was a fifth of a request.
        app.router.routes.extend(router.routes)
    if surface is Surface.CLOUD:
        # Bitbucket's `fields` (partial responses), on every Cloud JSON answer.
        app.add_middleware(PartialResponse)
    app.add_middleware(
        SurfaceGate,
        surface=surface,
        policy=HostPolicy.of(runtime.settings),
        limit=runtime.settings.max_body_bytes,
        strip_slash=rest,
        alias=alias,
    )
    return app


def _git_app(runtime: Runtime, pipeline: Pipeline) -> FastAPI:
    app = FastAPI(
        openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False,
        telemetry=NO_TELEMETRY,
    )
    app.state.runtime = runtime
    app.state.pipeline = pipeline
    errors.install(app, Surface.GIT)
    app.router.routes.extend(git_routes)
    return app


def _pages_app(runtime: Runtime, pipeline: Pipeline) -> FastAPI:
    pages = APIRouter()
    pages.routes.extend(page_routes())
    return _surface_app(runtime, pipeline, Surface.WEB, [pages], rest=False)


def create_app(runtime: Runtime) -> Surfaces:
    pipeline = Pipeline(runtime)
    cloud = _surface_app(
        runtime,
        pipeline,
        Surface.CLOUD,
        [
            # Repositories first: theirs are the most asked-for paths, and routes are
            # matched in order (no path of one router matches another's).
            repositories.router,
            content.router,
            cloud_build_statuses.router,
            cloud_webhooks.router,
            cloud_pull_requests.router,
            cloud_pull_requests.users_router,
            users.router,
            account.router,
            workspaces.router,
            resource_tokens.router,
            oauth_consumers.router,
            oidc_trusts.router,
            cloud_audit.router,
        ],
    )
    server = _surface_app(
        runtime,
        pipeline,
        Surface.SERVER,
        [
            properties.router,
            server_projects.router,
            server_repositories.router,
            server_content.router,
            server_build_statuses.router,
            server_webhooks.router,
            server_pull_requests.router,
            server_users.router,
            admin.router,
            users_credentials.router,
            access_tokens.router,
            server_resource_tokens.router,
            server_revocation.router,
            server_audit.router,
        ],
        alias=server_surface.alias,
        caller_headers=server_surface.caller_headers,
    )
    oauth = _surface_app(
        runtime, pipeline, Surface.OAUTH, [oauth_routes.router], rest=False
    )
    well_known = _surface_app(
        runtime, pipeline, Surface.OAUTH, [oauth_routes.well_known], rest=False
    )
    mounts = [("/2.0", cloud), ("/rest", server), ("/site/oauth2", oauth),
              ("/.well-known", well_known)]

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Self-hosted Git server with Bitbucket's access model.",
        docs_url=None,  # web/docs.py serves it, without a CDN
        redoc_url=None,
        redirect_slashes=False,
        lifespan=background.lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.runtime = runtime
    app.state.pipeline = pipeline
    errors.install(app, Surface.CLOUD)
    app.include_router(status_router)
    docs.install(app)
    git = _git_app(runtime, pipeline)
    # One listener for the git hooks, started with the application (web/hooks/).
    app.state.hook_server = git.state.hook_server = HookServer(pipeline)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _merged_openapi(app, mounts)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return Surfaces(
        app, mounts, git, _pages_app(runtime, pipeline),
        proxies=parse_networks(runtime.settings.trusted_proxies),
        metrics_from=parse_networks(runtime.settings.metrics_from),
    )


#: The last path segments of Git's smart HTTP protocol, after `/{workspace}/{repo}`.
GIT_ENDINGS = ("/info/refs", "/git-upload-pack", "/git-receive-pack")
#: The repository pages under which a path names a file or a commit (web/ui/repository.py).
PAGE_SECTIONS = frozenset({"src", "commits"})


def is_git_path(path: str) -> bool:
    """Does `path` belong to Git rather than to the pages? Git's smart-HTTP endpoints (with
    or without `.git`), anything under a `{workspace}/{repo}.git/` clone path (git's own
    probes, such as the dumb protocol's `HEAD`, get Git's text/plain answer), and Bitbucket
    Server's `/scm/…` clone paths. A clone URL itself (`/{workspace}/{repo}.git`) typed into
    a browser is a page: it leads to the repository."""
    if path.startswith("/scm/"):
        return True
    if path.endswith(GIT_ENDINGS):
        # Except a file of that name shown by a page (`/{ws}/{repo}/src/main/info/refs`): any
        # other path ending so, path tricks included, gets Git's plain-text answer.
        parts = path.split("/", 4)
        return not (
            len(parts) == 5 and parts[3] in PAGE_SECTIONS and parts[2][-4:].lower() != ".git"
        )
    first = path.find("/", 1)
    if first == -1:
        return False
    second = path.find("/", first + 1)
    return second != -1 and path[first:second][-4:].lower() == ".git"


#: What the root application answers itself; everything else goes to a surface.
ROOT_PATHS = frozenset({"/status", "/openapi.json", docs.DOCS_URL})
ROOT_PREFIXES = (docs.STATIC_URL + "/",)


class Surfaces:
    """The server's ASGI application: routes each request to its surface by its first path
    segments, as a `Mount` would (the surface sees its prefix as its root path), with one
    dictionary look-up — the root application's own router and middleware stack run only for
    the few paths it answers itself (`ROOT_PATHS`) and for the lifespan. In front of all of
    them: the client address (trusted proxies only) and the access log."""

    def __init__(
        self,
        root: FastAPI,
        mounts: list[tuple[str, FastAPI]],
        git: ASGIApp,
        pages: ASGIApp,
        *,
        proxies: tuple[IPNetwork, ...],
        metrics_from: tuple[IPNetwork, ...] = (),
    ) -> None:
        self.root = root
        self.state = root.state
        self.git = git
        self.pages = pages
        self.by_prefix: dict[str, ASGIApp] = dict(mounts)
        self.surface_names: dict[str, str] = {
            prefix: _SURFACE_NAMES[prefix] for prefix, _ in mounts
        }
        self.metrics_from = metrics_from
        self.counts = metrics.RequestCounts()
        self._entry: ASGIApp = ClientAddress(AccessLog(self._dispatch, self.counts), proxies)

    def openapi(self) -> dict[str, Any]:
        """The merged description of every surface (served at /openapi.json)."""
        return self.root.openapi()

    def surface_of(self, path: str) -> tuple[str, ASGIApp] | None:
        """The mount prefix and application of `path` (its first one or two segments), or
        None for the root's own paths, Git and the pages."""
        end = path.find("/", 1)
        first = path if end == -1 else path[:end]
        app = self.by_prefix.get(first)
        if app is not None:
            return first, app
        if end != -1:
            second = path.find("/", end + 1)
            prefix = path if second == -1 else path[:second]
            app = self.by_prefix.get(prefix)
            if app is not None:
                return prefix, app
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.root(scope, receive, send)
            return
        await self._entry(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Each branch names the request's surface for the metrics (AccessLog counts it).
        path: str = scope["path"]
        if path in ROOT_PATHS or path.startswith(ROOT_PREFIXES):
            scope[SURFACE_KEY] = "root"
            if scope["method"] == "HEAD":  # `curl -I /status`, load balancers' probes
                scope = {**scope, "method": "GET"}
                send = without_body(send)
            await self.root(scope, receive, send)
            return
        found = self.surface_of(path)
        if found is None:
            if is_git_path(path):
                scope[SURFACE_KEY] = "git"
                await self.git(scope, receive, send)
            elif path == metrics.PATH:  # not counted itself
                client = scope.get("client")
                if metrics.allowed(client[0] if client else None, self.metrics_from):
                    await metrics.serve(scope, receive, send, self.counts)
                else:
                    await metrics.refuse(scope, receive, send)
            else:
                scope[SURFACE_KEY] = "web"
                await self.pages(scope, receive, send)
            return
        prefix, app = found
        scope[SURFACE_KEY] = self.surface_names[prefix]
        scope = dict(scope)
        scope["root_path"] = scope.get("root_path", "") + prefix
        await app(scope, receive, send)


#: The metrics' name of each mounted surface.
_SURFACE_NAMES = {
    "/2.0": "cloud", "/rest": "server", "/site/oauth2": "oauth", "/.well-known": "oauth",
}


def _merged_openapi(root: FastAPI, mounts: list[tuple[str, FastAPI]]) -> dict[str, Any]:
    """One description of every surface: each mounted application's paths under its prefix."""
    schema = FastAPI.openapi(root)
    paths: dict[str, Any] = dict(schema.get("paths", {}))
    components: dict[str, Any] = schema.setdefault("components", {})
    for prefix, sub in mounts:
        part = copy.deepcopy(sub.openapi())
        document_errors(part, sub.state.surface)
        for path, item in part.get("paths", {}).items():
            paths[prefix + path] = item
        for kind, entries in part.get("components", {}).items():
            components.setdefault(kind, {}).update(entries)
    schema["paths"] = dict(sorted(paths.items()))
    if not components:
        schema.pop("components")
    return schema
