"""In-process API fixtures: a Runtime on the test database and a TestClient over the app."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.services.users import create_user
from gitward.web.app import create_app

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

    def __init__(self, runtime: Runtime, client: TestClient) -> None:
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


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(runtime: Runtime, client: TestClient) -> World:
    return World(runtime, client)
