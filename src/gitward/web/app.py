"""The ASGI application: routers, error shapes, middleware."""

from __future__ import annotations

from fastapi import FastAPI

from gitward.runtime import Runtime
from gitward.web import docs, errors
from gitward.web.cloud_api import access_tokens as resource_tokens
from gitward.web.cloud_api import account, oauth_consumers, repositories, users, workspaces
from gitward.web.git_http.routes import routes as git_routes
from gitward.web.middleware import AccessLog, BodyLimit, HeadAsGet, TrailingSlash
from gitward.web.oauth import routes as oauth_routes
from gitward.web.server_api import access_tokens, admin
from gitward.web.status import router as status_router


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Gitward",
        version="0.1.0",
        description="Self-hosted Git server with Bitbucket's access model.",
        docs_url=None,  # web/docs.py serves it, without a CDN
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    errors.install(app)
    for router in (
        status_router,
        users.router,
        account.router,
        workspaces.router,
        repositories.router,
        resource_tokens.router,
        oauth_consumers.router,
        oauth_routes.router,
        admin.router,
        access_tokens.router,
    ):
        app.include_router(router)
    docs.install(app)
    app.router.routes.extend(git_routes)
    app.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)
    app.add_middleware(TrailingSlash)
    app.add_middleware(HeadAsGet)
    app.add_middleware(AccessLog)
    return app

