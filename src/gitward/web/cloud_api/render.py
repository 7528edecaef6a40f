"""Bitbucket Cloud JSON for our models: `type`, `links.self.href` (absolute), pages."""

from __future__ import annotations

import functools
import html
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from fastapi import Request, Response

from gitward.domain.identity import TokenPrincipal
from gitward.services.credential_usage import Report
from gitward.storage.common import Page, Window
from gitward.storage.models import Project, Repository, User, Workspace
from gitward.storage.views import ProjectView, RepositoryView, WorkspaceView
from gitward.web.deps import CloudPage
from gitward.web.hosts import base_url as base_url

T = TypeVar("T")
JSON = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def braced(uuid: str) -> str:
    return "{" + uuid + "}"


def link(href: str) -> JSON:
    return {"href": href}


def user(request: Request, u: User, *, with_email: bool = False) -> JSON:
    base = base_url(request)
    body: JSON = {
        "type": "user",
        "uuid": braced(u.uuid),
        "account_id": u.account_id,
        "username": u.username,
        "nickname": u.username,
        "display_name": u.display_name,
        "created_on": iso(u.created_on),
        "account_status": "active" if u.is_active else "inactive",
        "links": {
            "self": link(f"{base}/2.0/users/{braced(u.uuid)}"),
            "html": link(f"{base}/users/{u.username}"),
            "avatar": link(f"{base}/2.0/users/{braced(u.uuid)}/avatar"),
        },
    }
    if with_email:
        body["email"] = u.email
    return body


def avatar_svg(name: str, uuid: str) -> bytes:
    """A 64×64 SVG: `name`'s first letter on a colour taken from `uuid`."""
    initial = html.escape((name.strip()[:1] or "?").upper())
    hue = int(uuid.replace("-", "")[:6] or "0", 16) % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<rect width="64" height="64" rx="32" fill="hsl({hue},45%,45%)"/>'
        '<text x="32" y="42" font-family="sans-serif" font-size="30" fill="#fff" '
        f'text-anchor="middle">{initial}</text></svg>'
    ).encode()


def app_user(request: Request, principal: TokenPrincipal) -> JSON:
    """A credential acting as itself: a resource access token, an OAuth client."""
    return {
        "type": "app_user",
        "kind": principal.kind.value,
        "display_name": principal.name,
        "uuid": braced(principal.uuid),
        "account_id": principal.uuid.replace("-", ""),
        "links": {"self": link(f"{base_url(request)}/2.0/user")},
    }


def workspace(request: Request, w: Workspace) -> JSON:
    base = base_url(request)
    return {
        "type": "workspace",
        "uuid": braced(w.uuid),
        "slug": w.slug,
        "name": w.name,
        "is_private": True,
        "created_on": iso(w.created_on),
        "links": {
            "self": link(f"{base}/2.0/workspaces/{w.slug}"),
            "html": link(f"{base}/{w.slug}"),
            "repositories": link(f"{base}/2.0/repositories/{w.slug}"),
            "projects": link(f"{base}/2.0/workspaces/{w.slug}/projects"),
            "members": link(f"{base}/2.0/workspaces/{w.slug}/members"),
        },
    }


def workspace_ref(request: Request, w: Workspace | WorkspaceView) -> JSON:
    return _workspace_ref(base_url(request), w)


def _workspace_ref(base: str, w: Workspace | WorkspaceView) -> JSON:
    return {
        "type": "workspace",
        "uuid": braced(w.uuid),
        "slug": w.slug,
        "name": w.name,
        "links": {"self": link(f"{base}/2.0/workspaces/{w.slug}")},
    }


def project(request: Request, p: Project) -> JSON:
    base = base_url(request)
    self_href = f"{base}/2.0/workspaces/{p.workspace.slug}/projects/{p.key}"
    return {
        "type": "project",
        "uuid": braced(p.uuid),
        "key": p.key,
        "name": p.name,
        "description": p.description,
        "is_private": p.is_private,
        "created_on": iso(p.created_on),
        "updated_on": iso(p.updated_on),
        "workspace": workspace_ref(request, p.workspace),
        "links": {
            "self": link(self_href),
            "html": link(f"{base}/{p.workspace.slug}/workspace/projects/{p.key}"),
            "repositories": link(
                f"{base}/2.0/repositories/{p.workspace.slug}?q=project.key%3D%22{p.key}%22"
            ),
        },
    }


def project_ref(request: Request, p: Project | ProjectView) -> JSON:
    return _project_ref(base_url(request), p)


def _project_ref(base: str, p: Project | ProjectView) -> JSON:
    return {
        "type": "project",
        "uuid": braced(p.uuid),
        "key": p.key,
        "name": p.name,
        "links": {"self": link(f"{base}/2.0/workspaces/{p.workspace.slug}/projects/{p.key}")},
    }


def repository(request: Request, r: Repository | RepositoryView) -> JSON:
    """A repository as Cloud JSON. A view is immutable, so its JSON is rendered once per base
    URL and shared: callers must not change what they get."""
    if isinstance(r, RepositoryView):
        return _repository_view_json(r, base_url(request))
    return _repository_json(r, base_url(request))


@functools.lru_cache(maxsize=4096)
def _repository_view_json(r: RepositoryView, base: str) -> JSON:
    return _repository_json(r, base)


def _repository_json(r: Repository | RepositoryView, base: str) -> JSON:
    full = f"{r.workspace.slug}/{r.slug}"
    api = f"{base}/2.0/repositories/{full}"
    return {
        "type": "repository",
        "uuid": braced(r.uuid),
        "full_name": full,
        "name": r.name,
        "slug": r.slug,
        "description": r.description,
        "scm": "git",
        "is_private": r.is_private,
        "fork_policy": "no_public_forks" if r.is_private else "allow_forks",
        "has_issues": False,
        "has_wiki": False,
        "language": "",
        # Recorded when a push lands (services/pushes.py): a listing reads no disk.
        "size": r.size,
        "created_on": iso(r.created_on),
        "updated_on": iso(r.updated_on),
        "mainbranch": {"type": "branch", "name": r.mainbranch} if r.mainbranch else None,
        "owner": _owner(base, r.workspace),
        "workspace": _workspace_ref(base, r.workspace),
        "project": _project_ref(base, r.project),
        "links": {
            "self": link(api),
            "html": link(f"{base}/{full}"),
            "branches": link(f"{api}/refs/branches"),
            "tags": link(f"{api}/refs/tags"),
            "commits": link(f"{api}/commits"),
            "source": link(f"{api}/src"),
            "clone": [{"name": "https", "href": f"{base}/{full}.git"}],
        },
    }


def _owner(base: str, w: Workspace | WorkspaceView) -> JSON:
    ref = _workspace_ref(base, w)
    return {
        "type": "team",
        "uuid": ref["uuid"],
        "username": w.slug,
        "display_name": w.name,
        "links": ref["links"],
    }


def window(paging: CloudPage) -> Window:
    """The rows a Cloud page asks for; Cloud pages carry the total (`size`)."""
    return Window((paging.page - 1) * paging.pagelen, paging.pagelen, count=True)


class _EncodedPages:
    """Encoded pages of listings that come from the read cache (storage/generation.py): while
    nothing changes, the same `Page` object comes back for the same caller and window, and
    its JSON is encoded once per base URL, path and query instead of on every request. The
    entry holds the page itself, so that its identity cannot be reused by another."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: OrderedDict[tuple[int, str, str, bytes], tuple[object, bytes]] = (
            OrderedDict()
        )
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str, str, bytes], listing: object) -> bytes | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] is listing else None

    def put(self, key: tuple[int, str, str, bytes], listing: object, body: bytes) -> None:
        with self._lock:
            self._entries[key] = (listing, body)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)


_ENCODED = _EncodedPages()


def encoded_page(
    request: Request,
    listing: Page[T],
    paging: CloudPage,
    render: Callable[[T], JSON],
) -> Response:
    """`page`, encoded: from the cache of encoded pages when `listing` is one it has seen."""
    key = (id(listing), base_url(request), request.url.path, request.scope["query_string"])
    body = _ENCODED.get(key, listing)
    if body is None:
        body = orjson.dumps(page(request, listing, paging, render))
        _ENCODED.put(key, listing, body)
    return Response(body, media_type="application/json")


def page(
    request: Request,
    listing: Page[T],
    paging: CloudPage,
    render: Callable[[T], JSON],
) -> JSON:
    """A Cloud page of a listing read for `window(paging)`: `pagelen`, `size`, `page`,
    `values`, `next`, `previous`."""
    body: JSON = {
        "pagelen": paging.pagelen,
        "size": listing.total,
        "page": paging.page,
        "values": [render(item) for item in listing.items],
    }
    if listing.has_more:
        query = dict(request.query_params)
        query.update(page=str(paging.page + 1), pagelen=str(paging.pagelen))
        body["next"] = f"{base_url(request)}{request.url.path}?{urlencode(query)}"
    if paging.page > 1:
        query = dict(request.query_params)
        query.update(page=str(paging.page - 1), pagelen=str(paging.pagelen))
        body["previous"] = f"{base_url(request)}{request.url.path}?{urlencode(query)}"
    return body


def usage(report: Report) -> JSON:
    """A credential's usage report (an extension of Bitbucket Cloud's token APIs)."""
    return {
        "type": "credential_usage",
        "since": report.since.isoformat(),
        "actions": [
            {"action": u.action, "count": u.count, "last_used_on": iso(u.last_used_on)}
            for u in report.actions
        ],
        "granted": list(report.granted),
        "needed": list(report.needed),
        "unused": list(report.unused),
    }
