"""The ASGI application: one mounted application per surface, each with its own error shape
and middleware, behind an access log and the trusted-proxy check.

    /status, /openapi.json, /docs     the root application
    /2.0/…                            Cloud REST            (Cloud error JSON)
    /rest/…                           Server REST           (Server error JSON)
    /site/oauth2/…, /.well-known/…    OAuth 2.0             (RFC 6749 error JSON)
    everything else                   Git smart HTTP        (text/plain, shown by git)

A path unknown to a surface gets that surface's own 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import Mount, Route

from gitward.runtime import Runtime
from gitward.web import docs, errors
from gitward.web.cloud_api import access_tokens as resource_tokens
from gitward.web.cloud_api import account, oauth_consumers, repositories, users, workspaces
from gitward.web.errors import Surface
from gitward.web.git_http.routes import routes as git_routes
from gitward.web.hooks.server import HookServer
from gitward.web.hooks.server import lifespan as hook_callbacks
from gitward.web.hosts import ClientAddress, HostPolicy, parse_networks
from gitward.web.middleware import AccessLog, BodyLimit, HeadAsGet, HostCheck, TrailingSlash
from gitward.web.oauth import routes as oauth_routes
from gitward.web.pipeline import Pipeline
from gitward.web.server_api import access_tokens, admin
from gitward.web.status import router as status_router

TITLE = "Gitward"
VERSION = "0.1.0"


def _surface_app(
    runtime: Runtime,
    pipeline: Pipeline,
    surface: Surface,
    routers: list[APIRouter],
    *,
    rest: bool = True,
) -> FastAPI:
    app = FastAPI(
        title=TITLE, version=VERSION, openapi_url=None, docs_url=None, redoc_url=None,
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.state.pipeline = pipeline
    errors.install(app, surface)
    for router in routers:
        app.include_router(router)
    app.add_middleware(BodyLimit, surface=surface, limit=runtime.settings.max_body_bytes)
    if rest:
        app.add_middleware(TrailingSlash)
    app.add_middleware(HeadAsGet)
    app.add_middleware(HostCheck, surface=surface, policy=HostPolicy.of(runtime.settings))
    return app


def _git_app(runtime: Runtime, pipeline: Pipeline) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.runtime = runtime
    app.state.pipeline = pipeline
    errors.install(app, Surface.GIT)
    app.router.routes.extend(git_routes)
    return app


def create_app(runtime: Runtime) -> FastAPI:
    pipeline = Pipeline(runtime)
    cloud = _surface_app(
        runtime,
        pipeline,
        Surface.CLOUD,
        [
            users.router,
            account.router,
            workspaces.router,
            repositories.router,
            resource_tokens.router,
            oauth_consumers.router,
        ],
    )
    server = _surface_app(
        runtime, pipeline, Surface.SERVER, [admin.router, access_tokens.router]
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
        lifespan=hook_callbacks,
    )
    app.state.runtime = runtime
    app.state.pipeline = pipeline
    errors.install(app, Surface.CLOUD)
    app.include_router(status_router)
    docs.install(app)
    for prefix, sub in mounts:
        # The prefix alone belongs to the surface too (its 404, not Git's).
        app.router.routes.append(Route(prefix, sub, include_in_schema=False))
        app.router.routes.append(Mount(prefix, app=sub))
    git = _git_app(runtime, pipeline)
    app.router.routes.append(Mount("", app=git))
    # One listener for the git hooks, started with the application (web/hooks/).
    app.state.hook_server = git.state.hook_server = HookServer(pipeline)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _merged_openapi(app, mounts)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(AccessLog)
    app.add_middleware(ClientAddress, proxies=parse_networks(runtime.settings.trusted_proxies))
    return app


def _merged_openapi(root: FastAPI, mounts: list[tuple[str, FastAPI]]) -> dict[str, Any]:
    """One description of every surface: each mounted application's paths under its prefix."""
    schema = FastAPI.openapi(root)
    paths: dict[str, Any] = dict(schema.get("paths", {}))
    components: dict[str, Any] = schema.setdefault("components", {})
    for prefix, sub in mounts:
        part = sub.openapi()
        for path, item in part.get("paths", {}).items():
            paths[prefix + path] = item
        for kind, entries in part.get("components", {}).items():
            components.setdefault(kind, {}).update(entries)
    schema["paths"] = dict(sorted(paths.items()))
    if not components:
        schema.pop("components")
    return schema
