"""Bitbucket Server JSON of projects, repositories, user permissions and HTTP access tokens.

Shapes as Bitbucket Server 8's REST API answers them (its documentation's examples, and the
fields atlassian-python-api, Jenkins' Bitbucket Branch Source plugin and Renovate read).
`links.self` points at the REST resource itself, which Gitward serves (Server points at its
web pages, which Gitward does not have).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request

from gitward.domain import networks, refs
from gitward.domain.permissions import ResourceKind, parse_scopes
from gitward.domain.server_permissions import permission_of, permissions_held
from gitward.storage.models import (
    Project,
    ProjectGrant,
    Repository,
    RepositoryGrant,
    ResourceAccessToken,
)
from gitward.storage.views import ProjectView, RepositoryView
from gitward.web.hosts import base_url
from gitward.web.server_api import render
from gitward.web.server_api.surface import bot_name

JSON = dict[str, Any]
API = "/rest/api/1.0"


def _self(href: str) -> JSON:
    return {"self": [{"href": href}]}


def project(
    request: Request, p: Project | ProjectView, *, is_private: bool | None = None,
    description: str | None = None,
) -> JSON:
    """A project. A view (inside a repository) lacks privacy and description: pass them."""
    private = p.is_private if isinstance(p, Project) else bool(is_private)
    body: JSON = {
        "key": p.key,
        "id": p.id,
        "name": p.name,
    }
    text = p.description if isinstance(p, Project) else description
    if text:
        body["description"] = text
    body["public"] = not private
    body["type"] = "NORMAL"
    body["links"] = _self(f"{base_url(request)}{API}/projects/{p.key}")
    return body


def repository(request: Request, r: Repository | RepositoryView) -> JSON:
    base = base_url(request)
    key = r.project.key
    if isinstance(r, Repository):
        owner: JSON = project(request, r.project)
    else:
        owner = {
            "key": key,
            "id": r.project.id,
            "name": r.project.name,
            "type": "NORMAL",
            "links": _self(f"{base}{API}/projects/{key}"),
        }
    body: JSON = {
        "slug": r.slug,
        "id": r.id,
        "name": r.name,
    }
    if r.description:
        body["description"] = r.description
    body.update(
        {
            "hierarchyId": r.uuid.replace("-", "")[:20],
            "scmId": "git",
            "state": "AVAILABLE",
            "statusMessage": "Available",
            "forkable": True,
            "project": owner,
            "public": not r.is_private,
            "archived": False,
            "links": {
                "clone": [{"href": f"{base}/scm/{key}/{r.slug}.git", "name": "http"}],
                "self": [{"href": f"{base}{API}/projects/{key}/repos/{r.slug}"}],
            },
        }
    )
    return body


def user_permission(request: Request, grant: ProjectGrant | RepositoryGrant) -> JSON:
    kind = ResourceKind.PROJECT if isinstance(grant, ProjectGrant) else ResourceKind.REPOSITORY
    return {
        "user": render.user(request, grant.user),
        "permission": permission_of(kind, grant.permission),
    }


def _millis(moment: datetime | None) -> int | None:
    return render.millis(moment)


def access_token(
    request: Request, t: ResourceAccessToken, secret: str | None = None
) -> JSON:
    """A project's or repository's HTTP access token, as Server shows one: its permissions
    are its scopes read through the table of domain/server_permissions.py."""
    body: JSON = {
        "id": str(t.id),
        "name": t.name,
        "createdDate": _millis(t.created_on),
        "permissions": permissions_held(parse_scopes(t.scopes)),
        # The token acts as itself: Server shows the bot user it makes for one.
        "user": {
            "name": bot_name(t.kind, t.id),
            "displayName": t.name,
            "slug": bot_name(t.kind, t.id),
            "type": "SERVICE",
            "active": True,
        },
        "createdBy": t.created_by_name,
        "allowedIps": networks.listed(t.allowed_ips),
        "refPatterns": refs.listed(t.ref_patterns),
        "fastForwardOnly": t.fast_forward_only,
    }
    if t.expires_on is not None:
        body["expiryDate"] = _millis(t.expires_on)
        body["expiryDays"] = max(1, round((t.expires_on - t.created_on).total_seconds() / 86400))
    if t.last_used_on is not None:
        body["lastAuthenticated"] = _millis(t.last_used_on)
        body["lastUsedIp"] = t.last_ip
    if secret is not None:
        body["token"] = secret
    return body
