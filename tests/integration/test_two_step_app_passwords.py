"""Two-step verification, app passwords and guessing protection through the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from gitward.credentials import codec
from tests.integration.conftest import PASSWORD, basic, bearer

T0 = 1_800_000_000


@pytest.fixture
def setup(world, runtime):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    now = [T0]
    runtime.two_step.now = lambda: now[0]
    return alice, now


def enable(client, alice, now):
    r = client.post("/2.0/user/two-step-verification", headers=alice.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["recovery_codes"]) == 10 and body["otpauth_uri"].startswith("otpauth://")
    totp = pyotp.TOTP(body["secret"])
    r = client.post("/2.0/user/two-step-verification/confirm", json={"code": totp.at(now[0])},
                    headers=alice.auth)
    assert r.status_code == 200 and r.json() == {"enabled": True}
    return totp, body["recovery_codes"]


def with_otp(account, code):
    return {**account.auth, "X-Gitward-OTP": code}


def test_password_alone_is_refused_once_on(client, setup):
    alice, now = setup
    enable(client, alice, now)
    r = client.get("/2.0/user", headers=alice.auth)
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert "app password" in message and "access token" in message
    assert "WWW-Authenticate" in r.headers


def test_password_with_code_works_once(client, setup):
    alice, now = setup
    totp, _ = enable(client, alice, now)
    now[0] += 30
    code = totp.at(now[0])
    r = client.put("/rest/access-tokens/1.0/users/alice",
                   json={"name": "ci", "permissions": ["REPO_READ"]}, headers=with_otp(alice, code))
    assert r.status_code == 200
    # The same code again is a replay.
    r = client.get("/2.0/user", headers=with_otp(alice, code))
    assert r.status_code == 401 and "already used" in r.json()["error"]["message"]
    assert client.get("/2.0/user", headers=with_otp(alice, "000000")).status_code == 401


def test_tokens_and_app_passwords_keep_working_without_codes(client, setup):
    alice, now = setup
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "ci", "permissions": ["REPO_READ"]},
                     headers=alice.auth).json()["token"]
    app = client.post("/2.0/user/app-passwords", json={"label": "git", "scopes": ["repository"]},
                      headers=alice.auth).json()["password"]
    enable(client, alice, now)
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(pat)).status_code == 200
    r = client.get("/2.0/repositories/acme/widget", headers=basic("alice", app))
    assert r.status_code == 200


def test_recovery_code_and_turning_off(client, setup):
    alice, now = setup
    totp, recovery = enable(client, alice, now)
    assert client.get("/2.0/user", headers=with_otp(alice, recovery[0])).status_code == 200
    assert client.get("/2.0/user", headers=with_otp(alice, recovery[0])).status_code == 401
    # Turning off needs a current code (here in the body), on top of the password and its code.
    now[0] += 30
    headers = with_otp(alice, totp.at(now[0]))
    r = client.request("DELETE", "/2.0/user/two-step-verification", json={"code": "123456"},
                       headers=headers)
    assert r.status_code in (401, 403)
    now[0] += 30
    headers = with_otp(alice, recovery[1])
    r = client.request("DELETE", "/2.0/user/two-step-verification",
                       json={"code": totp.at(now[0])}, headers=headers)
    assert r.status_code == 204
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200


def test_enrolment_needs_an_interactive_credential(client, setup):
    alice, _ = setup
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "ci", "permissions": ["REPO_ADMIN"]},
                     headers=alice.auth).json()["token"]
    assert client.post("/2.0/user/two-step-verification", headers=bearer(pat)).status_code == 403
    r = client.post("/2.0/user/two-step-verification/confirm", json={"code": "123456"},
                    headers=alice.auth)
    assert r.status_code == 400


def test_app_password_lifecycle(client, setup):
    alice, _ = setup
    r = client.post("/2.0/user/app-passwords",
                    json={"label": "laptop", "scopes": ["repository:write", "account"]},
                    headers=alice.auth)
    assert r.status_code == 201
    created = r.json()
    assert codec.prefix_of(created["password"]) == "gwapp_"
    assert created["scopes"] == ["account", "repository:write"]
    listed = client.get("/2.0/user/app-passwords", headers=alice.auth).json()
    assert listed["size"] == 1 and "password" not in listed["values"][0]
    h = basic("alice", created["password"])
    assert client.get("/2.0/user", headers=h).json()["username"] == "alice"
    used = client.get("/2.0/user/app-passwords", headers=alice.auth).json()["values"][0]
    assert used["last_used_on"] and used["last_used_ip"] == "testclient"
    assert client.get("/2.0/user", headers=bearer(created["password"])).status_code == 401
    assert client.get("/2.0/user", headers=basic("bob", created["password"])).status_code == 401
    r = client.delete(f"/2.0/user/app-passwords/{created['id']}", headers=alice.auth)
    assert r.status_code == 204
    assert client.get("/2.0/user", headers=h).status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scopes": ["repository"]}, "label is required"),
        ({"label": "x", "scopes": []}, "non-empty list"),
        ({"label": "x", "scopes": ["nope"]}, "Unknown or unsupported scope: nope"),
        ({"label": "x" * 300, "scopes": ["repository"]}, "at most 255"),
    ],
)
def test_app_password_validation(client, setup, body, message):
    alice, _ = setup
    r = client.post("/2.0/user/app-passwords", json=body, headers=alice.auth)
    assert r.status_code == 400 and message in r.json()["error"]["message"]


def test_app_password_bounds(client, world, setup):
    alice, _ = setup
    bob = world.user("bob")
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    app = client.post("/2.0/user/app-passwords", json={"label": "ro", "scopes": ["repository"]},
                      headers=bob.auth).json()["password"]
    h = basic("bob", app)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    # Scope bound: reading the account needs `account`.
    r = client.get("/2.0/user", headers=h)
    assert r.status_code == 403 and "scopes: account" in r.json()["error"]["message"]
    # Live level bound: a repository:admin app password of a writer cannot administer.
    admin_app = client.post("/2.0/user/app-passwords",
                            json={"label": "adm", "scopes": ["repository:admin", "repository"]},
                            headers=bob.auth).json()["password"]
    r = client.put("/2.0/repositories/acme/widget", json={"description": "x"},
                   headers=basic("bob", admin_app))
    assert r.status_code == 403
    client.delete("/2.0/repositories/acme/widget/permissions-config/users/bob", headers=alice.auth)
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 404
    # Never creates credentials.
    r = client.post("/2.0/user/app-passwords", json={"label": "x", "scopes": ["repository"]},
                    headers=h)
    assert r.status_code == 403
    r = client.put("/rest/access-tokens/1.0/users/bob",
                   json={"name": "x", "permissions": ["REPO_READ"]}, headers=h)
    assert r.status_code == 403


def test_guessing_is_slowed_down_but_tokens_work(client, runtime, setup):
    alice, _ = setup
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "ci", "permissions": ["REPO_READ"]},
                     headers=alice.auth).json()["token"]
    app = client.post("/2.0/user/app-passwords", json={"label": "git", "scopes": ["repository"]},
                      headers=alice.auth).json()["password"]
    limit = runtime.settings.auth_failure_limit
    for _ in range(limit):
        assert client.get("/2.0/user", headers=basic("alice", "wrong-password")).status_code == 401
    r = client.get("/2.0/user", headers=basic("alice", "wrong-password"))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # Even the right password waits for the window...
    assert client.get("/2.0/user", headers=alice.auth).status_code == 429
    # ...also on Git paths, with a text answer.
    r = client.get("/acme/widget.git/info/refs?service=git-upload-pack", headers=alice.auth)
    assert r.status_code == 429 and r.headers["content-type"].startswith("text/plain")
    # Tokens and app passwords of the same user are not locked out.
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(pat)).status_code == 200
    assert client.get("/2.0/repositories/acme/widget",
                      headers=basic("alice", app)).status_code == 200
    # After the window the right password works again.
    counters = runtime.password_guard.counters
    if hasattr(counters, "clock"):
        later = datetime.now(UTC) + timedelta(seconds=runtime.settings.auth_failure_window_seconds + 1)
        counters.clock = lambda: later
        assert client.get("/2.0/user", headers=alice.auth).status_code == 200


def test_guessing_limit_per_address_spans_accounts(client, runtime, world, setup):
    # One address trying passwords on many accounts meets the address ceiling.
    limit = runtime.settings.auth_failure_address_limit
    for i in range(limit):
        client.get("/2.0/user", headers=basic(f"nobody{i}", "wrong-password"))
    carol = world.user("carol")
    r = client.get("/2.0/user", headers=basic("carol", PASSWORD))
    assert r.status_code == 429
    assert carol


def test_git_takes_no_two_step_code(client, setup):
    """git sends its credential on every request of a fetch or push and a code is good
    once: with two-step verification on, Git takes app passwords and tokens, never the
    account password, even with a fresh code (which stays unspent)."""
    alice, now = setup
    totp, _ = enable(client, alice, now)
    now[0] += 30
    code = totp.at(now[0])
    r = client.get("/acme/widget.git/info/refs?service=git-upload-pack",
                   headers=with_otp(alice, code))
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")
    assert client.get("/2.0/user", headers=with_otp(alice, code)).status_code == 200
