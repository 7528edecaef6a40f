"""The browsable API description at /docs: Swagger UI served from this server, never a CDN.

FastAPI's own /docs page loads Swagger UI from a CDN (and its favicon from FastAPI's site), so
it is blank on a machine without internet access. The same page is built here with FastAPI's
`get_swagger_ui_html`, pointing at Swagger UI's files as shipped in the `fastapi-offline`
package (pinned in pyproject.toml), which this server serves under /static/docs/.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
STATIC_URL = "/static/docs"


def _assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Serve /docs and its assets (the app must be created with docs_url=None)."""
    app.mount(STATIC_URL, StaticFiles(directory=_assets()), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} – API",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            # Swagger UI's default shows a badge fetched from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
