"""What every request of the Bitbucket Server surface (`/rest`) shares: `latest` as the
current version of each REST module, and `X-AUSERNAME` on authenticated answers.

Both are done once, for the whole surface (web/app.py hands them to the surface's gate and
to the pipeline), never per handler.
"""

from __future__ import annotations

import re

from gitward.services.caller import Caller

#: The one version each REST module of Gitward serves.
VERSION = "1.0"

#: `/{module}/latest/…` (or just `/{module}/latest`): `api`, `access-tokens`, `branch-utils`,
#: `build-status`, … — Bitbucket Server answers `latest` as the module's current version.
_LATEST = re.compile(r"^/([a-z][a-z0-9-]*)/latest(?=/|$)")


def alias(path: str) -> str | None:
    """The path that `path` (below `/rest`) stands for, when it names `latest`; else None."""
    if "/latest" not in path:
        return None
    match = _LATEST.match(path)
    if match is None:
        return None
    return f"/{match.group(1)}/{VERSION}{path[match.end():]}"


def caller_headers(caller: Caller) -> dict[str, str]:
    """`X-AUSERNAME: <username>` when a user is signed in, as Bitbucket Server sends it (its
    clients read their own name from it). Tokens acting as themselves have no username."""
    principal = caller.ctx.user
    if principal is None:
        return {}
    return {"X-AUSERNAME": principal.username}
