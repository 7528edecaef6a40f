"""What every request of the Bitbucket Server surface (`/rest`) shares: `latest` as the
current version of each REST module, and `X-AUSERNAME` on authenticated answers.

Both are done once, for the whole surface (web/app.py hands them to the surface's gate and
to the pipeline), never per handler.
"""

from __future__ import annotations

import re

from gitward.domain.identity import CredentialKind, TokenPrincipal, UserPrincipal
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


#: The kinds of token that act as themselves and have a Server name (`bot_name`).
_BOT_KINDS = {
    CredentialKind.REPOSITORY_ACCESS_TOKEN: "repository",
    CredentialKind.PROJECT_ACCESS_TOKEN: "project",
    CredentialKind.WORKSPACE_ACCESS_TOKEN: "workspace",
}


def bot_name(kind: str, token_id: int) -> str:
    """The name of the user a resource access token acts as, in Server's JSON: Bitbucket
    Server makes a service user for each of its HTTP access tokens."""
    return f"{kind}-token-{token_id}"


def caller_headers(caller: Caller) -> dict[str, str]:
    """`X-AUSERNAME` on every answer to a request with a credential, as Bitbucket Server
    sends it (its clients read their own name from it): the user's name, or a resource
    access token's service-user name. None for anonymous requests and OAuth clients."""
    principal = caller.ctx.principal
    if isinstance(principal, UserPrincipal):
        return {"X-AUSERNAME": principal.username}
    if isinstance(principal, TokenPrincipal) and principal.kind in _BOT_KINDS:
        return {"X-AUSERNAME": bot_name(_BOT_KINDS[principal.kind], principal.token_id)}
    return {}
