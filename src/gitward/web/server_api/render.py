"""Bitbucket Server JSON: users, personal access tokens, and Server paging."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request

from gitward.credentials.personal import permissions_of
from gitward.domain import networks, refs
from gitward.services.credential_usage import Report
from gitward.storage.common import Page, Window
from gitward.storage.models import PersonalAccessToken, User
from gitward.web.deps import ServerPage
from gitward.web.hosts import base_url as base_url

T = TypeVar("T")
JSON = dict[str, Any]


def millis(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def user(request: Request, u: User) -> JSON:
    return {
        "name": u.username,
        "emailAddress": u.email,
        "id": u.id,
        "displayName": u.display_name,
        "active": u.is_active,
        "slug": u.username,
        "type": "NORMAL",
        "links": {"self": [{"href": f"{base_url(request)}/rest/api/1.0/users/{u.username}"}]},
    }


def token(request: Request, t: PersonalAccessToken, owner: User, secret: str | None = None) -> JSON:
    body: JSON = {
        "id": str(t.id),
        "name": t.name,
        "createdDate": millis(t.created_on),
        "permissions": permissions_of(t).names(),
        "user": user(request, owner),
        "allowedIps": networks.listed(t.allowed_ips),
        "refPatterns": refs.listed(t.ref_patterns),
        "fastForwardOnly": t.fast_forward_only,
    }
    if t.expiry_days is not None:
        body["expiryDays"] = t.expiry_days
        body["expiryDate"] = millis(t.expires_on)
    if t.last_authenticated is not None:
        body["lastAuthenticated"] = millis(t.last_authenticated)
        body["lastUsedIp"] = t.last_ip
    if t.rotated_on is not None:
        body["rotatedDate"] = millis(t.rotated_on)
    if secret is not None:
        body["token"] = secret
    return body


def window(paging: ServerPage) -> Window:
    """The rows a Server page asks for (Server pages carry no total)."""
    return Window(paging.start, paging.limit)


def page(listing: Page[T], paging: ServerPage, render: Callable[[T], JSON]) -> JSON:
    """A Server page of a listing read for `window(paging)`."""
    body: JSON = {
        "size": len(listing.items),
        "limit": paging.limit,
        "isLastPage": not listing.has_more,
        "start": paging.start,
        "values": [render(item) for item in listing.items],
    }
    if listing.has_more:
        body["nextPageStart"] = paging.start + len(listing.items)
    return body


def usage(report: Report) -> JSON:
    """A credential's usage report (an extension of Bitbucket Server's token APIs)."""
    return {
        "since": report.since.isoformat(),
        "actions": [
            {"action": u.action, "count": u.count, "lastUsedDate": millis(u.last_used_on)}
            for u in report.actions
        ],
        "granted": list(report.granted),
        "needed": list(report.needed),
        "unused": list(report.unused),
    }
