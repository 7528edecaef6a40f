"""The API tokens page (/account/api-tokens): list, create, revoke, through the same service
and checks as the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import basic
from tests.integration.web_helpers import new_secret, page_csrf, post, sign_in

PAGE = "/account/api-tokens"


@pytest.fixture
def alice(world, client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "P")
    world.repository(alice, "acme", "widget", "P")
    assert sign_in(client, alice).status_code == 303
    return alice


def test_create_list_and_revoke(client, alice):
    page = client.get(PAGE)
    assert page.status_code == 200 and "You have no API tokens yet" in page.text
    assert 'id="new-scope-read-repository-bitbucket"' in page.text
    assert 'value="365"' in page.text and "never" not in page.text.split("new-expiry", 1)[1]
    r = post(client, PAGE, {"name": "deploy", "scope": ["read:repository:bitbucket",
                                                         "read:user:bitbucket"],
                            "expiry": "90", "allowed_ips": "0.0.0.0/0,\n::/0"})
    assert r.status_code == 200, r.text
    secret = new_secret(r.text)
    assert secret.startswith("gwapi_")
    assert "deploy" in r.text and "read:user:bitbucket" in r.text and "0.0.0.0/0" in r.text
    expires = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
    listed = client.get("/2.0/user/api-tokens", headers=alice.auth).json()["values"]
    assert listed[0]["expires_on"].startswith(expires)
    assert listed[0]["allowed_ips"] == ["0.0.0.0/0", "::/0"]
    # The secret is not on the page again.
    assert secret not in client.get(PAGE).text
    # The AppClient's peer is no address, outside even 0.0.0.0/0: the list is honoured.
    r = client.get("/2.0/repositories/acme/widget", headers=basic("alice@example.com", secret))
    assert r.status_code == 403 and "allow-list" in r.text
    r = post(client, f"{PAGE}/{listed[0]['id']}/revoke", page=PAGE)
    assert r.status_code == 303
    assert "You have no API tokens yet" in client.get(r.headers["location"]).text
    r = client.get("/2.0/repositories/acme/widget", headers=basic("alice@example.com", secret))
    assert r.status_code == 401


BAD_FORMS = [
    ({"name": "x", "scope": "read:repository:bitbucket", "expiry": "400"}, "Choose when"),
    ({"name": "x", "scope": "read:repository:bitbucket", "expiry": ""}, "Choose when"),
    ({"name": "x", "expiry": "30"}, "non-empty list"),
    ({"name": "x", "scope": "read:repository:bitbucket", "expiry": "30",
      "allowed_ips": "10.0.0.0/8 not-a-network"}, "not-a-network"),
]


def test_bad_forms_say_why_and_create_nothing(client, alice):
    for form, message in BAD_FORMS:
        r = post(client, PAGE, form)
        assert r.status_code == 400 and message in r.text, (form, r.status_code)
    assert client.get("/2.0/user/api-tokens", headers=alice.auth).json()["size"] == 0


def test_an_api_token_cannot_sign_in(client, world, alice):
    secret = client.post("/2.0/user/api-tokens", headers=alice.auth, json={
        "name": "x", "scopes": ["read:user:bitbucket"],
        "expires_on": (datetime.now(UTC) + timedelta(days=1)).isoformat()}).json()["token"]
    token = page_csrf(client, "/login")
    for username in ("alice", "alice@example.com"):
        r = client.post("/login", data={"username": username, "password": secret,
                                        "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 401
        assert "gitward_session=" not in r.headers.get("set-cookie", "")
