"""Bitbucket Server JSON: users, personal access tokens, and Server paging."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request

from gitward.credentials.personal import permissions_of
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
        "links": {"self": [{"href": f"{base_url(request)}/users/{u.username}"}]},
    }


def token(request: Request, t: PersonalAccessToken, owner: User, secret: str | None = None) -> JSON:
    body: JSON = {
        "id": str(t.id),
        "name": t.name,
        "createdDate": millis(t.created_on),
        "permissions": permissions_of(t).names(),
        "user": user(request, owner),
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


def page(items: Sequence[T], paging: ServerPage, render: Callable[[T], JSON]) -> JSON:
    chunk = items[paging.start : paging.start + paging.limit]
    last = paging.start + len(chunk) >= len(items)
    body: JSON = {
        "size": len(chunk),
        "limit": paging.limit,
        "isLastPage": last,
        "start": paging.start,
        "values": [render(item) for item in chunk],
    }
    if not last:
        body["nextPageStart"] = paging.start + len(chunk)
    return body
