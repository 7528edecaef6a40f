"""The envelope of webhook bodies, in Bitbucket Cloud's and Server's shapes.

Rendered with `hosts.linking(caller.base_url)` wherever the event happens (a REST request or
a push's post-receive), so the members' renderers take a request as every renderer does.

Cloud: `{"actor": user, "repository": repository, …members}`. Server: `{"eventKey", "date"
(ISO 8601 with offset), "actor": user, …members}`. The members are the event's own
(`push`, `pullrequest`, `approval`, `comment` on Cloud; `repository`, `changes`,
`pullRequest`, `participant`, `comment` on Server).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gitward.domain.identity import TokenPrincipal
from gitward.services.caller import Caller
from gitward.services.events import Event
from gitward.storage.models import Repository, utcnow
from gitward.web.cloud_api import render as cloud_render
from gitward.web.hosts import linking
from gitward.web.server_api import render as server_render

JSON = dict[str, Any]


def _cloud_actor(request: Request, caller: Caller) -> JSON | None:
    user = caller.user
    if user is not None:
        return cloud_render.user(request, user)
    principal = caller.ctx.principal
    if isinstance(principal, TokenPrincipal):
        return cloud_render.app_user(request, principal)
    return None


def _server_actor(request: Request, caller: Caller) -> JSON | None:
    user = caller.user
    return server_render.user(request, user) if user is not None else None


def event(
    caller: Caller,
    repository: Repository,
    cloud_key: str | None,
    server_key: str | None,
    cloud: JSON,
    server: JSON,
) -> Event:
    """An Event with both envelopes around the event's own members, linking where the
    caller's request did (`Caller.base_url`)."""
    req = linking(caller.base_url or "")
    cloud_body: JSON = {
        "actor": _cloud_actor(req, caller),
        "repository": cloud_render.repository(req, repository),
        **cloud,
    }
    server_body: JSON = {
        "eventKey": server_key,
        "date": utcnow().isoformat(timespec="seconds"),
        "actor": _server_actor(req, caller),
        **server,
    }
    return Event(cloud_key, server_key, cloud_body, server_body)
