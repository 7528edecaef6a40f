"""Address allow-lists: every token kind and app passwords take a list of networks, and a
request from outside them is a 403 naming the restriction, audited, on REST and Git alike.
The address is the socket peer, or behind a trusted proxy the right-most untrusted
X-Forwarded-For entry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gitward.credentials.registry import Presented
from gitward.runtime import Runtime
from gitward.storage.models import AuditEvent
from gitward.web.app import create_app
from tests.asgi_client import AppClient
from tests.integration.api_checks import cloud_error, server_error
from tests.integration.conftest import Account, basic, bearer

INSIDE = "198.51.100.7"
OUTSIDE = "203.0.113.9"
LIST = ["198.51.100.0/24", "2001:db8::/32"]
REPO = "/2.0/repositories/acme/widget"
FETCH = "/acme/widget.git/info/refs?service=git-upload-pack"


def ahead() -> str:
    return (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ok(r, status: int = 201) -> dict:
    assert r.status_code == status, r.text
    body: dict = r.json()
    return body


# Each kind: (a credential with `allowed` as its allow-list) -> the headers presenting it.
Maker = Callable[[AppClient, Account, list[str] | None], dict[str, str]]


def _pat(client, alice, allowed):
    body = {"name": "ci", "permissions": ["REPO_READ"], "allowedIps": allowed}
    return bearer(_ok(client.put("/rest/access-tokens/1.0/users/alice", json=body,
                                 headers=alice.auth), 200)["token"])


def _app_password(client, alice, allowed):
    body = {"label": "ci", "scopes": ["repository"], "allowed_ips": allowed}
    return basic("alice", _ok(client.post("/2.0/user/app-passwords", json=body,
                                          headers=alice.auth))["password"])


def _api_token(client, alice, allowed):
    body = {"name": "ci", "scopes": ["read:repository:bitbucket"], "expires_on": ahead(),
            "allowed_ips": allowed}
    return basic("alice@example.com", _ok(client.post("/2.0/user/api-tokens", json=body,
                                                      headers=alice.auth))["token"])


def _cloud_token(path):
    def make(client, alice, allowed):
        body = {"name": "ci", "scopes": ["repository"], "allowed_ips": allowed}
        return bearer(_ok(client.post(path, json=body, headers=alice.auth))["token"])
    return make


def _server_token(path):
    def make(client, alice, allowed):
        body = {"name": "ci", "permissions": ["REPO_READ"], "allowedIps": allowed}
        return bearer(_ok(client.put(path, json=body, headers=alice.auth), 200)["token"])
    return make


KINDS: dict[str, Maker] = {
    "personal": _pat,
    "app-password": _app_password,
    "api-token": _api_token,
    "repository": _cloud_token(f"{REPO}/access-tokens"),
    "project": _cloud_token("/2.0/workspaces/acme/projects/PRJ/access-tokens"),
    "workspace": _cloud_token("/2.0/workspaces/acme/access-tokens"),
    "server-project": _server_token("/rest/access-tokens/1.0/projects/PRJ"),
    "server-repository": _server_token("/rest/access-tokens/1.0/projects/PRJ/repos/widget"),
}


@pytest.fixture
def setup(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


@pytest.fixture
def peer(runtime: Runtime) -> Iterator[Callable[[str], AppClient]]:
    """Clients whose socket peer is the address given."""
    opened: list[AppClient] = []

    def at(address: str) -> AppClient:
        client = AppClient(create_app(runtime), client=(address, 40000),
                            raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield at
    for client in opened:
        client.__exit__(None, None, None)


def refusals(runtime: Runtime) -> list[AuditEvent]:
    with runtime.unit_of_work() as store:
        events = store.open().scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.address-refused")
        ).all()
        store.open().expunge_all()
    return list(events)


@pytest.mark.parametrize("kind", list(KINDS))
def test_outside_the_list_is_403_naming_it_and_audited(client, runtime, setup, peer, kind):
    # Without a list, any address will do (an unreadable one too).
    unlisted = KINDS[kind](client, setup, None)
    assert peer(OUTSIDE).get(REPO, headers=unlisted).status_code == 200
    assert peer("not-an-address").get(REPO, headers=unlisted).status_code == 200
    headers = KINDS[kind](client, setup, LIST)
    inside, outside, v6 = peer(INSIDE), peer(OUTSIDE), peer("2001:db8::5")
    assert inside.get(REPO, headers=headers).status_code == 200
    assert v6.get(REPO, headers=headers).status_code == 200
    r = outside.get(REPO, headers=headers)
    cloud_error(r, 403, "IP address allow-list")
    assert OUTSIDE in r.json()["error"]["message"]
    # The same on Git, in Git's plain text (before any git process starts).
    assert inside.get(FETCH, headers=headers).status_code == 200
    r = outside.get(FETCH, headers=headers)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/plain")
    assert "allow-list" in r.text
    # The same whatever the target: a repository that does not exist tells nothing more.
    cloud_error(outside.get("/2.0/repositories/acme/nothing", headers=headers), 403,
                "allow-list")
    events = refusals(runtime)
    assert len(events) == 3
    assert {e.client_ip for e in events} == {OUTSIDE}
    assert all("allow-list" in e.details["reason"] for e in events)


@pytest.mark.parametrize("kind", ["personal", "api-token", "workspace"])
def test_a_listing_from_outside_is_refused_not_empty(client, setup, peer, kind):
    headers = KINDS[kind](client, setup, LIST)
    assert peer(INSIDE).get("/2.0/repositories/acme", headers=headers).json()["size"] == 1
    cloud_error(peer(OUTSIDE).get("/2.0/repositories/acme", headers=headers), 403, "allow-list")
    r = peer(OUTSIDE).get("/rest/api/1.0/repos", headers=headers)
    server_error(r, 403, "allow-list")


def test_an_unknown_peer_is_outside_every_list(client, setup, peer):
    headers = _pat(client, setup, ["0.0.0.0/0", "::/0"])
    assert peer(OUTSIDE).get(REPO, headers=headers).status_code == 200
    cloud_error(peer("not-an-address").get(REPO, headers=headers), 403, "unknown address")


def test_lists_are_normalised_and_shown(client, setup):
    alice = setup
    body = {"label": "ci", "scopes": ["repository"],
            "allowed_ips": ["198.51.100.7/24", "10.1.2.3", "2001:DB8::1/32"]}
    created = _ok(client.post("/2.0/user/app-passwords", json=body, headers=alice.auth))
    assert created["allowed_ips"] == ["198.51.100.0/24", "10.1.2.3/32", "2001:db8::/32"]
    listed = client.get("/2.0/user/app-passwords", headers=alice.auth).json()["values"]
    assert listed[0]["allowed_ips"] == created["allowed_ips"]
    pat = _ok(client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth, json={
        "name": "ci", "permissions": ["REPO_READ"], "allowedIps": ["198.51.100.0/24"]}), 200)
    assert pat["allowedIps"] == ["198.51.100.0/24"]
    assert _ok(client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth, json={
        "name": "ci", "permissions": ["REPO_READ"]}), 200)["allowedIps"] == []


BAD_LISTS = [["10.0.0.0/33"], ["example.com"], ["10.0.0.0/8", 7], "10.0.0.0/8",
             {"cidr": "10.0.0.0/8"}, ["10.0.0.0/8"] * 101 + ["::1/200"]]


def test_a_bad_list_is_a_400_in_each_surfaces_shape(client, setup):
    for bad in BAD_LISTS:
        _refused_everywhere(client, setup, bad)


def _refused_everywhere(client, alice, bad) -> None:
    body = {"name": "ci", "scopes": ["repository"], "allowed_ips": bad}
    cloud_error(client.post("/2.0/user/app-passwords", json={**body, "label": "ci"},
                            headers=alice.auth), 400, "allowed_ips")
    cloud_error(client.post(f"{REPO}/access-tokens", json=body, headers=alice.auth), 400,
                "allowed_ips")
    api = {"name": "ci", "scopes": ["read:repository:bitbucket"], "expires_on": ahead(),
           "allowed_ips": bad}
    cloud_error(client.post("/2.0/user/api-tokens", json=api, headers=alice.auth), 400,
                "allowed_ips")
    server = {"name": "ci", "permissions": ["REPO_READ"], "allowedIps": bad}
    server_error(client.put("/rest/access-tokens/1.0/users/alice", json=server,
                            headers=alice.auth), 400, "allowedIps")
    server_error(client.put("/rest/access-tokens/1.0/projects/PRJ", json=server,
                            headers=alice.auth), 400, "allowedIps")
    # Nothing was created.
    assert client.get("/2.0/user/app-passwords", headers=alice.auth).json()["size"] == 0


def test_changing_the_list_counts_from_the_next_request(client, setup, peer):
    alice = setup
    created = _ok(client.put("/rest/access-tokens/1.0/users/alice", headers=alice.auth, json={
        "name": "ci", "permissions": ["REPO_READ"], "allowedIps": LIST}), 200)
    headers, outside = bearer(created["token"]), peer(OUTSIDE)
    cloud_error(outside.get(REPO, headers=headers), 403, "allow-list")
    url = f"/rest/access-tokens/1.0/users/alice/{created['id']}"
    r = client.post(url, json={"allowedIps": []}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["allowedIps"] == []
    assert outside.get(REPO, headers=headers).status_code == 200
    r = client.post(url, json={"allowedIps": [f"{INSIDE}/32"]}, headers=alice.auth)
    assert r.json()["allowedIps"] == [f"{INSIDE}/32"]
    cloud_error(outside.get(REPO, headers=headers), 403, "allow-list")
    server_error(client.post(url, json={"allowedIps": ["nope"]}, headers=alice.auth), 400,
                 "nope")
    # A project token's list, through Server's API.
    token = _ok(client.put("/rest/access-tokens/1.0/projects/PRJ", headers=alice.auth, json={
        "name": "ci", "permissions": ["REPO_READ"], "allowedIps": LIST}), 200)
    project_headers = bearer(token["token"])
    cloud_error(outside.get(REPO, headers=project_headers), 403, "allow-list")
    r = client.post(f"/rest/access-tokens/1.0/projects/PRJ/{token['id']}",
                    json={"allowedIps": [f"{OUTSIDE}/32"]}, headers=alice.auth)
    assert r.status_code == 200, r.text
    assert outside.get(REPO, headers=project_headers).status_code == 200


@pytest.fixture
def proxied(settings, setup, client) -> Iterator[tuple[dict[str, str], Callable[..., int]]]:
    """A second runtime on the same database behind trusted proxies in 10.0.0.0/8."""
    headers = _api_token(client, setup, LIST)
    behind = Runtime.open(replace(settings, trusted_proxies=("10.0.0.0/8",)))
    clients: list[AppClient] = []

    def status(peer_address: str, forwarded_for: str | None) -> int:
        c = AppClient(create_app(behind), client=(peer_address, 40000),
                       raise_server_exceptions=False)
        clients.append(c)
        extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        return c.get(REPO, headers={**headers, **extra}).status_code

    yield headers, status
    behind.close()


def test_behind_a_trusted_proxy_the_forwarded_address_counts(proxied):
    _, status = proxied
    assert status("10.0.0.2", INSIDE) == 200
    assert status("10.0.0.2", OUTSIDE) == 403
    # The right-most entry that is not a trusted proxy: what the client wrote further left
    # proves nothing.
    assert status("10.0.0.2", f"{INSIDE}, {OUTSIDE}") == 403
    assert status("10.0.0.2", f"{OUTSIDE}, {INSIDE}, 10.0.0.9") == 200
    # From anyone else the header is ignored: the peer itself is judged.
    assert status(OUTSIDE, INSIDE) == 403
    assert status(INSIDE, OUTSIDE) == 200


def test_a_credential_without_a_list_shares_its_cached_context(runtime, client, setup):
    """The hot path: a credential without a list answers its cached AuthContext itself (no
    per-request copy); one with a list the context of this request's address."""
    plain = _pat(client, setup, None)["Authorization"].split()[1]
    listed = _pat(client, setup, LIST)["Authorization"].split()[1]
    with runtime.unit_of_work(write=False) as store:
        first = runtime.credentials.authenticate(store, Presented("bearer", plain, None, INSIDE))
        again = runtime.credentials.authenticate(store, Presented("bearer", plain, None, OUTSIDE))
        assert first is again and first.client_address is None
        mine = runtime.credentials.authenticate(store, Presented("bearer", listed, None, INSIDE))
        assert str(mine.client_address) == INSIDE and mine.bound.networks is not None
        # One context per address, kept with the credential's: made once, not per request.
        same = runtime.credentials.authenticate(store, Presented("bearer", listed, None, INSIDE))
        elsewhere = runtime.credentials.authenticate(
            store, Presented("bearer", listed, None, OUTSIDE))
        assert same is mine and elsewhere is not mine
        assert mine.inside_allow_list and not elsewhere.inside_allow_list
