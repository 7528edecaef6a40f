"""Shapes of the Bitbucket Server REST API that the Server tests check field by field, and a
world built through that API.

Where each shape comes from:
- projects, repositories, users and pages: Bitbucket Server 8 REST documentation examples
  (`GET /rest/api/1.0/projects/{projectKey}`, `…/repos/{repositorySlug}`, `/users/{userSlug}`);
  the fields read by Renovate's `lib/modules/platform/bitbucket-server` (`links.clone[]` with
  `name: "http"`, `project.key`, `public`, `forkable`), by Jenkins' Bitbucket Branch Source
  plugin's Server client (`slug`, `project.key`, `scmId`, `public`, `links.clone`, paging
  `isLastPage`/`nextPageStart`), and by atlassian-python-api's `atlassian/bitbucket/__init__.py`
  (`project_users` reads `values[].user` and `values[].permission`).
- HTTP access tokens: Bitbucket Server's access-tokens REST documentation (`id`, `name`,
  `createdDate`, `permissions`, `expiryDays`, `token` once, `user`).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api_checks import BASE

API = "/rest/api/1.0"

PROJECT_FIELDS = {"key", "id", "name", "public", "type", "links"}
REPOSITORY_FIELDS = {
    "slug", "id", "name", "hierarchyId", "scmId", "state", "statusMessage", "forkable",
    "project", "public", "archived", "links",
}
USER_FIELDS = {"name", "emailAddress", "id", "displayName", "active", "slug", "type", "links"}


def server_page(body: dict[str, Any], *, size: int, start: int = 0, limit: int = 25,
                last: bool = True) -> list[dict[str, Any]]:
    """A Server page: size, limit, isLastPage, start, values, nextPageStart unless last."""
    expected = {"size", "limit", "isLastPage", "start", "values"}
    assert set(body) == (expected if last else expected | {"nextPageStart"}), body
    assert body["size"] == size == len(body["values"]), body
    assert body["limit"] == limit and body["start"] == start, body
    assert body["isLastPage"] is last, body
    if not last:
        assert body["nextPageStart"] == start + size, body
    return list(body["values"])


def project_shape(body: dict[str, Any], key: str, name: str, *, public: bool = False,
                  description: str | None = None) -> None:
    fields = PROJECT_FIELDS | ({"description"} if description else set())
    assert set(body) == fields, body
    assert body["key"] == key and body["name"] == name, body
    assert isinstance(body["id"], int)
    assert body["public"] is public
    assert body["type"] == "NORMAL"
    assert body.get("description") == description
    assert body["links"] == {"self": [{"href": f"{BASE}{API}/projects/{key}"}]}


def repository_shape(body: dict[str, Any], key: str, slug: str, name: str, *,
                     public: bool = False) -> None:
    assert set(body) - {"description"} == REPOSITORY_FIELDS, body
    assert body["slug"] == slug and body["name"] == name, body
    assert isinstance(body["id"], int)
    assert isinstance(body["hierarchyId"], str) and len(body["hierarchyId"]) == 20
    assert body["scmId"] == "git"
    assert body["state"] == "AVAILABLE" and body["statusMessage"] == "Available"
    assert body["forkable"] is True and body["archived"] is False
    assert body["public"] is public
    assert body["project"]["key"] == key
    assert body["project"]["type"] == "NORMAL"
    assert body["project"]["links"] == {"self": [{"href": f"{BASE}{API}/projects/{key}"}]}
    # Flux requires /scm/{KEY}/{slug}.git; Renovate picks the clone link named "http".
    assert body["links"] == {
        "clone": [{"href": f"{BASE}/scm/{key}/{slug}.git", "name": "http"}],
        "self": [{"href": f"{BASE}{API}/projects/{key}/repos/{slug}"}],
    }


def user_shape(body: dict[str, Any], username: str) -> None:
    assert set(body) == USER_FIELDS, body
    assert body["name"] == body["slug"] == username
    assert body["emailAddress"] == f"{username}@example.com"
    assert isinstance(body["id"], int)
    assert body["displayName"] == username
    assert body["active"] is True and body["type"] == "NORMAL"
    assert body["links"] == {"self": [{"href": f"{BASE}{API}/users/{username}"}]}


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json() if r.content else None
