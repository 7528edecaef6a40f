"""In-process API fixtures: a Runtime on the test database and a AppClient over the app."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.services.users import create_user
from gitward.web.app import create_app
from tests.asgi_client import AppClient

PASSWORD = "correct horse battery staple"


def basic(username: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Account:
    username: str
    password: str
    id: int

    @property
    def auth(self) -> dict[str, str]:
        return basic(self.username, self.password)


class World:
    """Builds users, workspaces, projects and repositories through the public API."""

    def __init__(self, runtime: Runtime, client: AppClient) -> None:
        self.runtime = runtime
        self.client = client

    def user(self, username: str, *, site_admin: bool = False) -> Account:
        with self.runtime.unit_of_work() as store:
            user = create_user(
                store,
                self.runtime.passwords,
                username=username,
                email=f"{username}@example.com",
                password=PASSWORD,
                is_site_admin=site_admin,
            )
            return Account(user.username, PASSWORD, user.id)

    def workspace(self, owner: Account, slug: str) -> dict[str, Any]:
        r = self.client.post("/2.0/workspaces", json={"slug": slug, "name": slug}, headers=owner.auth)
        assert r.status_code == 201, r.text
        return r.json()

    def project(self, owner: Account, workspace: str, key: str, **extra: Any) -> dict[str, Any]:
        r = self.client.post(
            f"/2.0/workspaces/{workspace}/projects",
            json={"key": key, "name": key.title(), **extra},
            headers=owner.auth,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def repository(
        self, owner: Account, workspace: str, slug: str, project: str, *, private: bool = True
    ) -> dict[str, Any]:
        r = self.client.post(
            f"/2.0/repositories/{workspace}/{slug}",
            json={"scm": "git", "project": {"key": project}, "is_private": private},
            headers=owner.auth,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def grant_repo(self, admin: Account, workspace: str, slug: str, user: str, permission: str) -> None:
        r = self.client.put(
            f"/2.0/repositories/{workspace}/{slug}/permissions-config/users/{user}",
            json={"permission": permission},
            headers=admin.auth,
        )
        assert r.status_code in (200, 201), r.text

    def grant_project(self, admin: Account, workspace: str, key: str, user: str, permission: str) -> None:
        r = self.client.put(
            f"/2.0/workspaces/{workspace}/projects/{key}/permissions-config/users/{user}",
            json={"permission": permission},
            headers=admin.auth,
        )
        assert r.status_code in (200, 201), r.text


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings)
    yield rt
    rt.close()


#: Links that are not for a REST client to GET, and why. Everything else a Cloud answer
#: links to must answer a GET with the same credential (tests/integration/links.py).
LINKS_NOT_FOR_GET = {
    "clone": "Git remotes, for the git client: tests/e2e clone and push through them",
    # A pull request's actions, linked as Bitbucket Cloud links them: POST (and DELETE)
    # only, exercised by tests/integration/test_pull_requests_cloud.py.
    "approve": "a pull request's action (POST/DELETE)",
    "request-changes": "a pull request's action (POST/DELETE)",
    "decline": "a pull request's action (POST)",
    "merge": "a pull request's action (POST)",
}


class LinkCheckingClient(AppClient):
    """A AppClient that follows every `links.*.href` of every successful Cloud JSON answer,
    at once and with the same credential, and fails the request when one does not answer
    (404, 405 or 5xx): every link Gitward hands out must answer. Links are followed once
    per test and credential; answers to the followed links are not followed again."""

    def __init__(self, runtime: Runtime, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runtime = runtime
        self.followed: set[tuple[str, str | None]] = set()
        self._following = False
        self._admin: str | None = None
        #: Off for tests that count what one request does (statements, rows).
        self.follow_links = True

    def admin_auth(self) -> str:
        """A site administrator's Basic header, made the first time a link needs one."""
        if self._admin is None:
            with self.runtime.unit_of_work() as store:
                create_user(store, self.runtime.passwords, username="link-walker",
                            email="link-walker@example.com", password=PASSWORD,
                            is_site_admin=True)
            self._admin = basic("link-walker", PASSWORD)["Authorization"]
        return self._admin

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        if not self.follow_links or self._following:
            return response
        if not str(url).startswith(("/2.0", "http://testserver/2.0")):
            return response
        if not (200 <= response.status_code < 300) or not response.content:
            return response
        if not response.headers.get("content-type", "").startswith("application/json"):
            return response
        headers = kwargs.get("headers") or {}
        auth = headers.get("Authorization") if isinstance(headers, dict) else None
        from tests.integration.links import broken_links

        self._following = True
        try:
            broken = broken_links(
                self, response.json(), auth, self.followed, LINKS_NOT_FOR_GET, self.admin_auth
            )
        finally:
            self._following = False
        assert not broken, f"links handed out by {method} {url} do not answer: {broken}"
        return response


@pytest.fixture
def client(runtime: Runtime) -> Iterator[AppClient]:
    with LinkCheckingClient(runtime, create_app(runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(runtime: Runtime, client: AppClient) -> World:
    return World(runtime, client)
