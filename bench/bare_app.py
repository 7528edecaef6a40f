"""The bare endpoint `bench/rest.py` compares Gitward with: Starlette returning fixed bytes.

    python bench/bare_app.py BODIES.json PORT

BODIES.json maps a URL path to the body and content type Gitward answered for it
(`{"/2.0/repositories/w/r": {"body": "<base64>", "content_type": "application/json"}}`), so
the bare app sends byte-identical JSON. It runs under uvicorn with the settings `gitward serve`
uses (see `gitward.cli.cmd_serve`), so the difference measured is Gitward's request pipeline.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _route(path: str, body: bytes, content_type: str) -> Route:
    async def answer(_request: Request) -> Response:
        return Response(body, media_type=content_type)

    return Route(path, answer)


def build(bodies: dict[str, dict[str, str]]) -> Starlette:
    routes = [_route(path, base64.b64decode(spec["body"]), spec["content_type"])
              for path, spec in bodies.items()]
    routes.append(_route("/status", b'{"state":"RUNNING"}', "application/json"))
    return Starlette(routes=routes)


def main() -> None:
    bodies = json.loads(Path(sys.argv[1]).read_text())
    uvicorn.run(build(bodies), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                access_log=False, server_header=False, timeout_keep_alive=30)


if __name__ == "__main__":
    main()
