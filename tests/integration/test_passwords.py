"""Account passwords over REST and the command line: changing one's own, an administrator's
reset to a temporary password, the refusal of `password` in a user-details update, lifting a
guessing lock, and turning two-step verification off with one code.

Request bodies are Bitbucket Server's: `PasswordUpdate` {password, passwordConfirm,
oldPassword} for `PUT /rest/api/1.0/users/credentials`, `AdminPasswordUpdate` {name,
password, passwordConfirm} for `PUT /rest/api/1.0/admin/users/credentials` and the
`name` query parameter of `DELETE /rest/api/1.0/admin/users/captcha` ("Clear CAPTCHA for
user"), as Bitbucket Server's REST API reference lists them (and the clients generated from
its OpenAPI description, e.g. the Go client's PermissionManagementApi).
"""

from __future__ import annotations

import io

import pyotp
import pytest

from gitward import cli
from gitward.services import passwords
from tests.integration.api_checks import cloud_error, server_error
from tests.integration.conftest import PASSWORD, basic, bearer

NEW = "a brand new passphrase"
CHANGE = "/rest/api/1.0/users/credentials"
ADMIN_SET = "/rest/api/1.0/admin/users/credentials"
UNLOCK = "/rest/api/1.0/admin/users/captcha"


@pytest.fixture
def setup(world):
    admin = world.user("root", site_admin=True)
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return admin, alice


def change(client, account, new, *, old=PASSWORD, confirm=None, headers=None):
    body = {"oldPassword": old, "password": new, "passwordConfirm": new if confirm is None else confirm}
    return client.put(CHANGE, json=body, headers=headers or account.auth)


def user_row(runtime, username):
    with runtime.unit_of_work() as store:
        user = store.accounts.user_by_username(username)
        assert user is not None
        return user.must_change_password, user.password_epoch


# -- changing one's own password ----------------------------------------------------------


def test_change_password(client, runtime, setup):
    _, alice = setup
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "ci", "permissions": ["REPO_READ"]},
                     headers=alice.auth).json()["token"]
    _, epoch = user_row(runtime, "alice")
    r = change(client, alice, NEW)
    assert r.status_code == 204, r.text
    assert client.get("/2.0/user", headers=alice.auth).status_code == 401
    assert client.get("/2.0/user", headers=basic("alice", NEW)).status_code == 200
    # Web sessions end with the password (the epoch they signed in under is gone) ...
    assert user_row(runtime, "alice") == (False, epoch + 1)
    # ... tokens do not, as Bitbucket keeps personal access tokens.
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(pat)).status_code == 200
    with runtime.unit_of_work() as store:
        events = [(e.action, e.target) for e in store.audit.events()]
    assert ("user.password.change", "user:alice") in events


@pytest.mark.parametrize(
    ("new", "old", "confirm", "message"),
    [
        ("short1", PASSWORD, None, "at least 12 characters"),
        ("xx-Alice-in-wonderland", PASSWORD, None, "must not contain the username"),
        ("ALICE", PASSWORD, None, "at least 12"),
        ("1qaz2wsx3edc", PASSWORD, None, "most common passwords"),
        ("Q1W2E3R4T5Y6", PASSWORD, None, "most common passwords"),
        (NEW, "not my password", None, "current password is not right"),
        (NEW, PASSWORD, "something else entirely", "do not match"),
        (PASSWORD, PASSWORD, None, "must differ"),
        (12345678901234, PASSWORD, 12345678901234, "password is required"),
        (NEW, None, None, "current password is required"),
    ],
)
def test_change_password_refusals(client, setup, new, old, confirm, message):
    _, alice = setup
    r = change(client, alice, new, old=old, confirm=confirm)
    server_error(r, 400, message)
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200


def test_missing_confirmation_is_a_400(client, setup):
    _, alice = setup
    r = client.put(CHANGE, json={"oldPassword": PASSWORD, "password": NEW}, headers=alice.auth)
    server_error(r, 400, "passwordConfirm")


def test_only_in_person(client, setup):
    _, alice = setup
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "ci", "permissions": ["REPO_ADMIN"]},
                     headers=alice.auth).json()["token"]
    app = client.post("/2.0/user/app-passwords",
                      json={"label": "x", "scopes": ["account", "account:write"]},
                      headers=alice.auth).json()["password"]
    for headers in (bearer(pat), basic("alice", pat), basic("alice", app)):
        r = change(client, alice, NEW, headers=headers)
        server_error(r, 403, "change the account password")
    assert client.put(CHANGE, json={}).status_code == 401
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200


def test_wrong_current_password_counts_against_guessing(client, runtime, setup):
    _, alice = setup
    # Each change with a wrong oldPassword is one wrong guess; the sign-in itself is right
    # and gives its place back.
    for _ in range(runtime.settings.auth_failure_limit):
        server_error(change(client, alice, NEW, old="guess"), 400)
    r = change(client, alice, NEW, old="guess")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


# -- the administrator's reset --------------------------------------------------------------


def test_admin_reset_gives_a_temporary_password(client, runtime, setup):
    admin, alice = setup
    temporary = "temporary passphrase 1"
    r = client.put(ADMIN_SET, json={"name": "alice", "password": temporary,
                                    "passwordConfirm": temporary}, headers=admin.auth)
    assert r.status_code == 204, r.text
    assert user_row(runtime, "alice")[0] is True
    assert client.get("/2.0/user", headers=alice.auth).status_code == 401
    own = basic("alice", temporary)
    # The temporary password does nothing else: REST, listings, public or not, and Git.
    for path in ("/2.0/user", "/2.0/repositories/acme/widget", "/2.0/repositories/acme",
                 "/2.0/user/workspaces", "/rest/access-tokens/1.0/users/alice",
                 "/2.0/repositories", "/rest/api/1.0/projects", "/rest/api/1.0/repos"):
        r = client.get(path, headers=own)
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "must be changed" in r.text, path
    # What the user could not see anyway stays a 404.
    cloud_error(client.get("/2.0/repositories/acme/nothing-here", headers=own), 404)
    r = client.get("/acme/widget.git/info/refs?service=git-upload-pack", headers=own)
    assert r.status_code == 403 and "must be changed" in r.text
    assert r.headers["content-type"].startswith("text/plain")
    # Changing it is the one thing it may do; then it is an ordinary password.
    r = change(client, alice, NEW, old=temporary, headers=own)
    assert r.status_code == 204, r.text
    assert user_row(runtime, "alice")[0] is False
    assert client.get("/2.0/repositories/acme/widget", headers=basic("alice", NEW)).status_code == 200
    assert client.get("/2.0/user", headers=own).status_code == 401


def test_admin_reset_rules(client, runtime, setup, world):
    admin, alice = setup
    bob = world.user("bob")
    body = {"name": "alice", "password": "temporary passphrase 1",
            "passwordConfirm": "temporary passphrase 1"}
    server_error(client.put(ADMIN_SET, json=body, headers=bob.auth), 403, "site administrator")
    server_error(client.put(ADMIN_SET, json={**body, "name": "nobody"}, headers=admin.auth), 404)
    server_error(client.put(ADMIN_SET, json={**body, "passwordConfirm": "other"},
                            headers=admin.auth), 400, "do not match")
    server_error(client.put(ADMIN_SET, json={**body, "password": "alice-alice-alice",
                                             "passwordConfirm": "alice-alice-alice"},
                            headers=admin.auth), 400, "username")
    server_error(client.put(ADMIN_SET, json={"name": "alice"}, headers=admin.auth), 400,
                 "password")
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    # An administrator setting their own password chose it: not temporary.
    own = {"name": "root", "password": NEW, "passwordConfirm": NEW}
    assert client.put(ADMIN_SET, json=own, headers=admin.auth).status_code == 204
    assert user_row(runtime, "root")[0] is False
    assert client.get("/2.0/user", headers=basic("root", NEW)).status_code == 200


def test_service_reset_generates_a_password_once(runtime, setup):
    from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
    from gitward.services.caller import Caller

    admin, _ = setup
    with runtime.unit_of_work() as store:
        caller = Caller(store, AuthContext(UserPrincipal(admin.id, "root", True),
                                           CredentialKind.PASSWORD))
        reset = passwords.reset_password(caller, runtime.account_passwords, "alice")
    assert reset.temporary and reset.generated and len(reset.generated) >= 20
    assert passwords.password_problem(reset.generated, "alice", 12) is None
    assert user_row(runtime, "alice")[0] is True


def test_user_details_update_refuses_password(client, setup):
    admin, alice = setup
    r = client.put("/rest/api/1.0/admin/users",
                   json={"name": "alice", "password": "sneaky new password"},
                   headers=admin.auth)
    server_error(r, 400, "PUT /rest/api/1.0/admin/users/credentials")
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    r = client.put("/rest/api/1.0/admin/users", json={"name": "alice", "displayName": "Al"},
                   headers=admin.auth)
    assert r.status_code == 200 and r.json()["displayName"] == "Al"


# -- unlock ------------------------------------------------------------------------------


def test_admin_unlock(client, runtime, setup, world):
    admin, alice = setup
    bob = world.user("bob")
    for _ in range(runtime.settings.auth_failure_limit):
        assert client.get("/2.0/user", headers=basic("alice", "wrong")).status_code == 401
    assert client.get("/2.0/user", headers=alice.auth).status_code == 429
    server_error(client.delete(UNLOCK, params={"name": "alice"}, headers=bob.auth), 403)
    server_error(client.delete(UNLOCK, headers=admin.auth), 400, "name")
    server_error(client.delete(UNLOCK, params={"name": "nobody"}, headers=admin.auth), 404)
    r = client.delete(UNLOCK, params={"name": "alice"}, headers=admin.auth)
    assert r.status_code == 204, r.text
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200


def test_lock_state_for_pages(runtime, setup):
    from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
    from gitward.services.caller import Caller

    admin, _ = setup
    guard = runtime.password_guard
    for _ in range(3):
        reservation = guard.reserve("alice", "10.1.1.1")
        assert not hasattr(reservation, "retry_after")
    with runtime.unit_of_work() as store:
        caller = Caller(store, AuthContext(UserPrincipal(admin.id, "root", True),
                                           CredentialKind.PASSWORD))
        state = passwords.lock_state(caller, guard, "alice")
        assert state.failures == 3 and state.locked_for is None
        before = passwords.unlock(caller, guard, "alice")
        assert before.failures == 3
        assert passwords.lock_state(caller, guard, "alice").failures == 0


# -- two-step off with one code -------------------------------------------------------------


@pytest.fixture
def two_step_on(client, runtime, setup):
    _, alice = setup
    now = [1_800_000_000]
    runtime.two_step.now = lambda: now[0]
    body = client.post("/2.0/user/two-step-verification", headers=alice.auth).json()
    totp = pyotp.TOTP(body["secret"])
    r = client.post("/2.0/user/two-step-verification/confirm", json={"code": totp.at(now[0])},
                    headers=alice.auth)
    assert r.status_code == 200
    now[0] += 30
    return alice, totp, now


@pytest.mark.parametrize("in_body", [False, True])
def test_two_step_off_with_the_code_it_signed_in_with(client, two_step_on, in_body):
    alice, totp, now = two_step_on
    code = totp.at(now[0])
    r = client.request("DELETE", "/2.0/user/two-step-verification",
                       json={"code": code} if in_body else None,
                       headers={**alice.auth, "X-Gitward-OTP": code})
    assert r.status_code == 204, r.text
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200


def test_two_step_off_refuses_a_wrong_second_code(client, two_step_on):
    alice, totp, now = two_step_on
    r = client.request("DELETE", "/2.0/user/two-step-verification", json={"code": "000000"},
                       headers={**alice.auth, "X-Gitward-OTP": totp.at(now[0])})
    cloud_error(r, 403, "two-step verification code")
    assert client.get("/2.0/user", headers=alice.auth).status_code == 401


# -- the command line ---------------------------------------------------------------------


def test_cli_set_password_and_unlock(runtime, settings, setup, monkeypatch, capsys):
    monkeypatch.setenv("GITWARD_DATABASE_URL", settings.database_url or "")
    data = ["--data", str(settings.data_dir)]
    for _ in range(runtime.settings.auth_failure_limit):
        runtime.password_guard.reserve("root", "10.9.9.9")
    monkeypatch.setattr("sys.stdin", io.StringIO("admin passphrase from the console\n"))
    assert cli.main(["admin", "set-password", "root", "--password-stdin", *data]) == 0
    out = capsys.readouterr().out
    assert "admin passphrase from the console" not in out
    with runtime.unit_of_work() as store:
        user = store.accounts.user_by_username("root")
        assert user is not None and not user.must_change_password
        assert runtime.passwords.verify(user.password_hash, "admin passphrase from the console")
    # The lock went with it.
    assert runtime.password_guard.state("root").failures == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("password\n"))
    assert cli.main(["admin", "set-password", "root", "--password-stdin", *data]) == 2
    assert "12 characters" in capsys.readouterr().err
    assert cli.main(["admin", "set-password", "nobody", *data]) == 2
    for _ in range(3):
        runtime.password_guard.reserve("root", "10.9.9.9")
    assert cli.main(["admin", "unlock", "root", *data]) == 0
    assert "3 failed attempts" in capsys.readouterr().out
    assert runtime.password_guard.state("root").failures == 0
    assert cli.main(["admin", "unlock", "nobody", *data]) == 2
