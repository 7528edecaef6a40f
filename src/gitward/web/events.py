"""The envelope of webhook bodies, in Bitbucket Cloud's and Server's shapes.

Rendered with `hosts.linking(caller.base_url)` wherever the event happens (a REST request or
a push's post-receive), so the members' renderers take a request as every renderer does.

Cloud: `{"actor": user, "repository": repository, …members}`. Server: `{"eventKey", "date"
(ISO 8601 with offset), "actor": user, …members}`. The members are the event's own
(`push`, `pullrequest`, `approval`, `comment` on Cloud; `repository`, `changes`,
`pullRequest`, `participant`, `comment` on Server).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import quote

from starlette.requests import Request

from gitward.domain.identity import TokenPrincipal
from gitward.gitstore.reader import Commit
from gitward.services import events as events_service
from gitward.services.caller import Caller
from gitward.services.events import Event, RefChange
from gitward.storage.models import BuildStatus, Repository, utcnow
from gitward.storage.views import RepositoryView
from gitward.web.cloud_api import content as cloud_content
from gitward.web.cloud_api import render as cloud_render
from gitward.web.cloud_api.build_statuses import status_json
from gitward.web.hosts import linking
from gitward.web.server_api import render as server_render
from gitward.web.server_api import resources as server_resources

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
    repository: Repository | RepositoryView,
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


# -- the events services produce (services/events.Renderer) ---------------------------------

_BRANCHES = "refs/heads/"
_TAGS = "refs/tags/"


def _short_name(ref: str) -> tuple[str, str]:
    """(Cloud type, name) of a branch or tag ref."""
    if ref.startswith(_TAGS):
        return "tag", ref[len(_TAGS):]
    return "branch", ref[len(_BRANCHES):] if ref.startswith(_BRANCHES) else ref


def _cloud_commit(base: str, repository: Repository | RepositoryView, c: Commit) -> JSON:
    return cloud_content.commit_json(base, cast(RepositoryView, repository), c)


def _cloud_ref(
    base: str, repository: Repository | RepositoryView, ref: str, commit: Commit | None,
    commit_id: str,
) -> JSON:
    kind, name = _short_name(ref)
    api = f"{base}/2.0/repositories/{repository.workspace.slug}/{repository.slug}"
    html = f"{base}/{repository.workspace.slug}/{repository.slug}"
    path = quote(name, safe="/")
    target = (
        _cloud_commit(base, repository, commit) if commit is not None
        else {"type": "commit", "hash": commit_id}
    )
    return {
        "type": kind,
        "name": name,
        "target": target,
        "links": {
            "self": cloud_render.link(
                f"{api}/refs/{'branches' if kind == 'branch' else 'tags'}/{path}"
            ),
            "commits": cloud_render.link(f"{api}/commits/{path}"),
            "html": cloud_render.link(f"{html}/src/{path}"),
        },
    }


def _cloud_change(base: str, repository: Repository, change: RefChange) -> JSON:
    api = f"{base}/2.0/repositories/{repository.workspace.slug}/{repository.slug}"
    links: JSON = {}
    if not change.created and not change.closed:
        links["diff"] = cloud_render.link(f"{api}/diff/{change.new}..{change.old}")
        links["commits"] = cloud_render.link(
            f"{api}/commits?include={change.new}&exclude={change.old}"
        )
    elif not change.closed:
        links["commits"] = cloud_render.link(f"{api}/commits?include={change.new}")
    return {
        "old": None if change.created else _cloud_ref(
            base, repository, change.ref, change.old_commit, change.old
        ),
        "new": None if change.closed else _cloud_ref(
            base, repository, change.ref, change.new_commit, change.new
        ),
        "created": change.created,
        "closed": change.closed,
        "forced": change.forced,
        "truncated": change.truncated,
        "commits": [_cloud_commit(base, repository, c) for c in change.commits],
        "links": links,
    }


def _server_change(change: RefChange) -> JSON:
    kind, name = _short_name(change.ref)
    return {
        "ref": {"id": change.ref, "displayId": name, "type": kind.upper()},
        "refId": change.ref,
        "fromHash": change.old,
        "toHash": change.new,
        "type": "ADD" if change.created else "DELETE" if change.closed else "UPDATE",
    }


class WebRenderer:
    """Bitbucket's bodies of a push and of a build status (services/events.Renderer)."""

    def push(
        self, caller: Caller, repository: Repository, changes: Sequence[RefChange]
    ) -> Event:
        base = (caller.base_url or "").rstrip("/")
        req = linking(caller.base_url or "")
        return event(
            caller, repository, "repo:push", "repo:refs_changed",
            {"push": {"changes": [_cloud_change(base, repository, c) for c in changes]}},
            {
                "repository": server_resources.repository(req, repository),
                "changes": [_server_change(c) for c in changes],
            },
        )

    def commit_status(
        self, caller: Caller, repository: Repository | RepositoryView, status: BuildStatus,
        created: bool,
    ) -> Event:
        base = (caller.base_url or "").rstrip("/")
        body = status_json(base, cast(RepositoryView, repository), status)
        api = f"{base}/2.0/repositories/{repository.workspace.slug}/{repository.slug}"
        body["commit"] = {
            "type": "commit",
            "hash": status.commit,
            "links": {"self": cloud_render.link(f"{api}/commit/{status.commit}")},
        }
        key = "repo:commit_status_created" if created else "repo:commit_status_updated"
        return event(caller, repository, key, None, {"commit_status": body}, {})


events_service.install(WebRenderer())
