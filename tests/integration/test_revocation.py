"""The revocation API: whoever holds a leaked secret ends it, without a credential, on both
databases; the answer never says which secrets were live, and each revocation is audited
under the secret's owner."""

from __future__ import annotations

import json
import os

import pytest

from gitward.credentials import codec
from gitward.runtime import Runtime
from gitward.services.revocation import AUDIT_ACTION, revocable_prefixes
from gitward.web.app import create_app
from tests.integration.api_checks import server_error
from tests.integration.conftest import LinkCheckingClient, basic, bearer
from tests.integration.oauth_helpers import TOKEN, create_consumer, oauth_client, user_token
from tests.integration.web_helpers import sign_in

REVOKE = "/rest/revocation/1.0/tokens"
PATS = "/rest/access-tokens/1.0/users"


@pytest.fixture
def alice(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


def _pat(client, alice):
    r = client.put(f"{PATS}/alice", json={"name": "ci", "permissions": ["REPO_READ"]},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    return r.json()["token"], bearer(r.json()["token"]), "user:alice"


def _app_password(client, alice):
    r = client.post("/2.0/user/app-passwords", json={"label": "git", "scopes": ["repository"]},
                    headers=alice.auth)
    assert r.status_code == 201, r.text
    secret = r.json()["password"]
    return secret, basic("alice", secret), "user:alice"


def _resource_token(path, target):
    def issue(client, alice):
        r = client.post(path, json={"name": "bot", "scopes": ["repository"]}, headers=alice.auth)
        assert r.status_code == 201, r.text
        return r.json()["token"], bearer(r.json()["token"]), target

    return issue


def _oauth_access(client, alice):
    consumer = create_consumer(client, alice)
    token = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    return token["access_token"], bearer(token["access_token"]), "workspace:acme"


ISSUERS = {
    "personal access token": _pat,
    "app password": _app_password,
    "repository access token": _resource_token(
        "/2.0/repositories/acme/widget/access-tokens", "repository:acme/widget"
    ),
    "project access token": _resource_token(
        "/2.0/workspaces/acme/projects/PRJ/access-tokens", "project:acme/PRJ"
    ),
    "workspace access token": _resource_token(
        "/2.0/workspaces/acme/access-tokens", "workspace:acme"
    ),
    "oauth access token": _oauth_access,
}


def _works(client, headers) -> bool:
    r = client.get("/2.0/repositories/acme/widget", headers=headers)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def _revocations(runtime):
    with runtime.unit_of_work() as store:
        return [
            (e.actor, e.target, dict(e.details))
            for e in store.audit.events()
            if e.action == AUDIT_ACTION
        ]


def test_a_leaked_secret_of_every_kind_is_revoked_by_whoever_holds_it(client, runtime, alice):
    for number, (kind, issue) in enumerate(ISSUERS.items(), start=1):
        secret, headers, owner = issue(client, alice)
        assert _works(client, headers), kind
        r = client.post(REVOKE, json={"tokens": [secret]})  # no credential at all
        assert r.status_code == 200, r.text
        assert r.json() == {
            "received": 1, "message": "Every live Gitward secret among these is revoked."
        }
        assert not _works(client, headers), kind
        events = _revocations(runtime)
        assert len(events) == number, kind
        actor, target, details = events[-1]
        assert actor == "anonymous"
        assert target.startswith(owner), (kind, target)
        assert details["credential"] == "anonymous"
        assert secret not in json.dumps(events)  # never the secret itself
        # Revoking it again changes nothing and answers the same.
        again = client.post(REVOKE, json={"tokens": [secret]})
        assert (again.status_code, again.json()) == (r.status_code, r.json())
        assert len(_revocations(runtime)) == number, kind


def test_the_answer_never_says_which_were_live(client, runtime, alice):
    live, headers, _ = _pat(client, alice)
    dead = codec.generate("gwpat_")  # well formed, never issued
    answers = [
        client.post(REVOKE, json={"tokens": [token]})
        for token in (dead, "not a token", codec.generate("gwcsk_"), live)
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert not _works(client, headers)
    _many_at_once_and_a_credential_sent_along_is_ignored(client, runtime, alice)


def test_a_refresh_token_ends_its_whole_grant(client, runtime, alice):
    consumer = create_consumer(client, alice)
    _, token = user_token(client, consumer, alice)
    assert _works(client, bearer(token["access_token"]))
    r = client.post(REVOKE, json={"tokens": [token["refresh_token"]]})
    assert r.status_code == 200, r.text
    assert not _works(client, bearer(token["access_token"]))
    refreshed = client.post(TOKEN, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "client_id": consumer["key"], "client_secret": consumer["secret"],
    })
    assert refreshed.status_code == 400, refreshed.text
    [(_, target, details)] = _revocations(runtime)
    assert (target, details["kind"]) == ("user:alice", "oauth-refresh-token")


def test_a_leaked_session_cookie_is_ended_and_owners_see_revocations(
    client, runtime, world, alice
):
    assert sign_in(client, alice).status_code == 303
    cookie = client.cookies.get("gitward_session")
    assert codec.prefix_of(cookie) == "gwses_"
    assert client.get("/account/personal-access-tokens", follow_redirects=False).status_code == 200
    r = client.post(REVOKE, json={"tokens": [cookie]})
    assert r.status_code == 200
    page = client.get("/account/personal-access-tokens", follow_redirects=False)
    assert page.status_code in (302, 303), page.status_code  # back to the sign-in page
    _the_owner_sees_what_was_revoked_on_their_account_page(client, world, alice)


def _many_at_once_and_a_credential_sent_along_is_ignored(client, runtime, alice):
    first, first_headers, _ = _pat(client, alice)
    second, second_headers, _ = _app_password(client, alice)
    # A broken credential on the request would be a 401 anywhere else: here it is not read.
    r = client.post(REVOKE, json={"tokens": [first, first, " " + second + "\n", "junk"]},
                    headers=bearer(codec.generate("gwpat_")))
    assert r.status_code == 200, r.text
    assert r.json()["received"] == 4
    assert not _works(client, first_headers)
    assert not _works(client, second_headers)
    assert len(_revocations(runtime)) == 3  # and the one before


def test_bad_bodies_get_a_server_shaped_400(client):
    for body, message in (
        ({}, 'Send {"tokens": [...]}'),
        ({"tokens": "gwpat_x"}, 'Send {"tokens": [...]}'),
        ({"tokens": [1, 2]}, 'Send {"tokens": [...]}'),
        ({"tokens": []}, "The list of tokens is empty."),
        ({"tokens": ["x"] * 101}, "At most 100 tokens per request; 101 were sent."),
        ([], "The request body must be a JSON object"),
    ):
        server_error(client.post(REVOKE, json=body), 400, message)


def test_requests_are_limited_per_address(sqlite_settings):
    settings = sqlite_settings  # the counters, not the database, are the subject
    limited = Runtime.open(settings.with_overrides(revocation_limit=3))
    try:
        with LinkCheckingClient(limited, create_app(limited), raise_server_exceptions=False) as c:
            for _ in range(3):
                assert c.post(REVOKE, json={"tokens": ["x"]}).status_code == 200
            # Bad requests count too: the limit is on requests, whatever they hold.
            r = c.post(REVOKE, json={"tokens": ["x"]})
            server_error(r, 429, "Too many revocation requests from your address")
            assert 0 < int(r.headers["Retry-After"]) <= settings.revocation_window_seconds
            other = LinkCheckingClient(
                limited, create_app(limited), raise_server_exceptions=False,
                client=("198.51.100.7", 50000),
            )
            with other:
                assert other.post(REVOKE, json={"tokens": ["x"]}).status_code == 200
    finally:
        limited.close()


def test_every_kind_that_authenticates_can_be_revoked(runtime):
    """A new kind of secret must recognise its leaked secrets (LeakCheck), or this fails."""
    revocable = revocable_prefixes(runtime.credentials)
    assert runtime.credentials.prefixes <= revocable
    assert "gwort_" in revocable  # refresh tokens do not authenticate, but end a grant


def _the_owner_sees_what_was_revoked_on_their_account_page(client, world, alice):
    secret, _, _ = _pat(client, alice)
    bob = world.user("bob")
    bobs = client.put(f"{PATS}/bob", json={"name": "b", "permissions": ["REPO_READ"]},
                      headers=bob.auth).json()["token"]
    assert client.post(REVOKE, json={"tokens": [secret, bobs]}).status_code == 200
    assert sign_in(client, alice).status_code == 303
    page = client.get("/account/revoked-secrets")
    assert page.status_code == 200
    assert page.text.count('<tr id="revoked-') == 2  # hers (the session too), not bob's
    assert "Personal access token" in page.text and "Web session" in page.text
    assert secret not in page.text


REDIS_URL = os.environ.get("GITWARD_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="Redis tests need GITWARD_TEST_REDIS_URL "
                    "(e.g. redis://127.0.0.1:6379/15)")
def test_two_processes_share_the_limit_on_redis(sqlite_settings):
    import redis

    from gitward.credentials.throttle import RedisCounters

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(RedisCounters.PREFIX + "revoke:*"):
        client.delete(key)
    variant = sqlite_settings.with_overrides(redis_url=REDIS_URL, revocation_limit=2)
    first, second = Runtime.open(variant), Runtime.open(variant)
    try:
        with (LinkCheckingClient(first, create_app(first)) as a,
              LinkCheckingClient(second, create_app(second)) as b):
            assert a.post(REVOKE, json={"tokens": ["x"]}).status_code == 200
            assert b.post(REVOKE, json={"tokens": ["x"]}).status_code == 200
            server_error(a.post(REVOKE, json={"tokens": ["x"]}), 429)
            server_error(b.post(REVOKE, json={"tokens": ["x"]}), 429)
    finally:
        first.close()
        second.close()
        for key in client.scan_iter(RedisCounters.PREFIX + "revoke:*"):
            client.delete(key)
