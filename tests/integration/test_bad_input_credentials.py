"""Inputs of the credential, two-step and OAuth surfaces that once were 500s: each is a 4xx in
the surface's error shape. Every test runs on SQLite and on PostgreSQL (NUL is what PostgreSQL
cannot store; a lone surrogate is what no database encoding can)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

import httpx
import pyotp
import pytest

from tests.integration.api_checks import cloud_error, server_error
from tests.integration.oauth_helpers import AUTHORIZE, CALLBACK, create_consumer, form_csrf

T0 = 1_800_000_000
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: Digits of other scripts: str.isdigit() says yes, TOTP (and compare_digest) say no.
SCRIPT_DIGITS = ["²²²²²²", "١٢٣٤٥٦", "１２３４５６", "߀߁߂߃߄߅"]
#: In JSON, lone surrogates too (a form or a header cannot carry them).
FOREIGN_DIGITS = [*SCRIPT_DIGITS, "\ud800\ud800\ud800"]
UNSTORABLE = ["\ud800", "a\udfffb", "nul\u0000here", "\u0000"]


@pytest.fixture
def alice(world, runtime):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    runtime.two_step.now = lambda: T0
    return alice


def raw_json(client, method, url, auth, body):
    """`body` as JSON text with its strings escaped, so that lone surrogates travel as
    `\\ud800` (as a client's JSON encoder sends them), not as bytes UTF-8 cannot hold."""
    return client.request(method, url, content=json.dumps(body).encode(),
                          headers={**auth, **JSON})


def oauth_error(r, status=400):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "error_description"}, body
    assert isinstance(body["error"], str) and body["error"]
    return body


# -- OAuth forms with too many fields ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/site/oauth2/access_token", "/site/oauth2/revoke",
                                  "/site/oauth2/introspect", "/site/oauth2/authorize"])
@pytest.mark.parametrize("count", [65, 1000])
def test_oauth_forms_with_too_many_fields(client, alice, path, count):
    form = urlencode([(f"f{i}", "x") for i in range(count)])
    body = oauth_error(client.post(path, content=form, headers=FORM))
    assert body["error"] == "invalid_request"
    assert "parameters" in body["error_description"].lower()


def test_oauth_form_of_64_fields_is_read(client, alice):
    """The limit is 64: a form at the limit reaches the OAuth server (which then says what is
    wrong with it)."""
    form = urlencode([("grant_type", "client_credentials")]
                     + [(f"f{i}", "x") for i in range(63)])
    body = oauth_error(client.post("/site/oauth2/access_token", content=form, headers=FORM),
                       401)
    assert body["error"] == "invalid_client"


# -- two-step codes in other scripts' digits ---------------------------------------------------


def _begin(client, alice):
    r = client.post("/2.0/user/two-step-verification", headers=alice.auth)
    assert r.status_code == 200, r.text
    return pyotp.TOTP(r.json()["secret"])


def _enable(client, alice):
    totp = _begin(client, alice)
    r = client.post("/2.0/user/two-step-verification/confirm", json={"code": totp.at(T0)},
                    headers=alice.auth)
    assert r.status_code == 200, r.text
    return totp


@pytest.mark.parametrize("code", FOREIGN_DIGITS)
def test_confirm_with_foreign_digits(client, alice, code):
    _begin(client, alice)
    r = raw_json(client, "POST", "/2.0/user/two-step-verification/confirm", alice.auth,
                 {"code": code})
    cloud_error(r, 400)
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200  # still off


def _raw_header_get(client, url, headers: dict[str, bytes]) -> httpx.Response:
    """A GET whose header bytes reach the app unchanged, through httpx's own ASGI transport
    (so that the bytes are not those of any one client's encoding)."""
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(url, headers=headers)
    return asyncio.run(go())


@pytest.mark.parametrize("code", ["²²²²²²", "¹²³¹²³"])
def test_otp_header_with_foreign_digits(client, alice, code):
    """Header values are Latin-1: superscript digits are the digits that can travel there."""
    _enable(client, alice)
    auth = {k: v.encode() for k, v in alice.auth.items()}
    r = _raw_header_get(client, "/2.0/user", {**auth, "X-Gitward-OTP": code.encode("latin-1")})
    cloud_error(r, 401)
    # The same digits as UTF-8 bytes, read as Latin-1 text: no digits at all, still a 401.
    r = _raw_header_get(client, "/2.0/user", {**auth, "X-Gitward-OTP": code.encode()})
    cloud_error(r, 401)


@pytest.mark.parametrize("code", FOREIGN_DIGITS)
def test_disabling_with_foreign_digits(client, alice, code):
    totp = _enable(client, alice)
    auth = {**alice.auth, "X-Gitward-OTP": totp.at(T0 + 30)}
    r = raw_json(client, "DELETE", "/2.0/user/two-step-verification", auth, {"code": code})
    cloud_error(r, 403)


@pytest.mark.parametrize("code", SCRIPT_DIGITS)
def test_authorize_page_otp_with_foreign_digits(client, alice, code):
    consumer = create_consumer(client, alice, name="App")
    _enable(client, alice)
    query = urlencode({"client_id": consumer["key"], "response_type": "code",
                       "redirect_uri": CALLBACK})
    url = f"{AUTHORIZE}?{query}"
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": alice.password, "otp": code,
                               "decision": "allow"}, follow_redirects=False)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "<form" in r.text


# -- unstorable text in credential names, labels and descriptions ------------------------------


@pytest.mark.parametrize("text", UNSTORABLE)
def test_personal_token_names(client, alice, text):
    url = "/rest/access-tokens/1.0/users/alice"
    r = raw_json(client, "PUT", url, alice.auth, {"name": text, "permissions": ["REPO_READ"]})
    server_error(r, 400)
    created = client.put(url, json={"name": "ok", "permissions": ["REPO_READ"]},
                         headers=alice.auth)
    assert created.status_code == 200, created.text
    token_id = created.json()["id"]
    server_error(raw_json(client, "POST", f"{url}/{token_id}", alice.auth, {"name": text}), 400)
    assert client.get(f"{url}/{token_id}", headers=alice.auth).json()["name"] == "ok"


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("url", ["/2.0/repositories/acme/widget/access-tokens",
                                 "/2.0/workspaces/acme/projects/PRJ/access-tokens",
                                 "/2.0/workspaces/acme/access-tokens"])
def test_resource_token_names(client, alice, url, text):
    r = raw_json(client, "POST", url, alice.auth, {"name": text, "scopes": ["repository"]})
    cloud_error(r, 400)


@pytest.mark.parametrize("text", UNSTORABLE)
def test_app_password_labels(client, alice, text):
    r = raw_json(client, "POST", "/2.0/user/app-passwords", alice.auth,
                 {"label": text, "scopes": ["repository"]})
    cloud_error(r, 400)


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["name", "description"])
def test_oauth_consumer_names_and_descriptions(client, alice, field, text):
    url = "/2.0/workspaces/acme/oauth-consumers"
    body = {"name": "App", "callback_url": CALLBACK, "scopes": ["repository"], field: text}
    cloud_error(raw_json(client, "POST", url, alice.auth, body), 400)
    consumer = create_consumer(client, alice, name="App")
    r = raw_json(client, "PUT", f"{url}/{consumer['id']}", alice.auth, {field: text})
    cloud_error(r, 400)


def test_consumer_descriptions_keep_newlines(client, alice):
    consumer = create_consumer(client, alice, name="App", description="line 1\n\tline 2")
    assert consumer["description"] == "line 1\n\tline 2"


@pytest.mark.parametrize("name", ["ma\u0000in", "\u0000", "\ud800"])
def test_unstorable_main_branch(client, alice, name):
    r = raw_json(client, "PUT", "/2.0/repositories/acme/widget", alice.auth,
                 {"mainbranch": {"name": name}})
    cloud_error(r, 400, "mainbranch")


# -- dates and durations beyond what a datetime holds ------------------------------------------


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:59:59+01:00",
                                    "9999-12-31T23:59:59-01:00", "9999-12-31T23:30:00-00:45"])
def test_resource_token_expiry_out_of_range(client, alice, moment):
    r = client.post("/2.0/workspaces/acme/access-tokens",
                    json={"name": "t", "scopes": ["repository"], "expires_on": moment},
                    headers=alice.auth)
    cloud_error(r, 400, "expires_on")


@pytest.mark.parametrize("days", [3_000_000, 2_932_897, 10**18, 10**30])
def test_personal_token_expiry_days_out_of_range(client, alice, days):
    r = client.put("/rest/access-tokens/1.0/users/alice",
                   json={"name": "t", "permissions": ["REPO_READ"], "expiryDays": days},
                   headers=alice.auth)
    server_error(r, 400, "expiryDays")


def test_personal_token_expiry_days_at_the_limit(client, alice):
    r = client.put("/rest/access-tokens/1.0/users/alice",
                   json={"name": "t", "permissions": ["REPO_READ"], "expiryDays": 36500},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    assert r.json()["expiryDays"] == 36500


@pytest.mark.parametrize("body", [
    {"email": "\ud800@example.com"},
    {"email": "bo\u0000b@example.com"},
    {"displayName": "\ud800"},
    {"displayName": "Bo\u0000b"},
    {"name": "b\ud800b", "email": "x@example.com"},
])
def test_admin_user_update_refuses_unstorable_text(client, world, alice, body):
    root = world.user("root", site_admin=True)
    server_error(raw_json(client, "PUT", "/rest/api/1.0/admin/users", root.auth,
                          {"name": "alice", **body}), 400)


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/2.0/workspaces/acme/oauth-consumers",
     {"name": "A", "callback_url": "https://app.example.com/\ud800", "scopes": ["repository"]}),
    ("POST", "/2.0/workspaces/acme/oauth-consumers",
     {"name": "A", "callback_url": CALLBACK, "scopes": ["\ud800"]}),
    ("POST", "/2.0/workspaces/acme/access-tokens", {"name": "A", "scopes": ["repo\ud800"]}),
    ("POST", "/2.0/workspaces/acme/access-tokens",
     {"name": "A", "scopes": ["repository"], "expires_on": "\ud800"}),
    ("POST", "/2.0/user/app-passwords", {"label": "A", "scopes": ["\ud800"]}),
    ("PUT", "/rest/access-tokens/1.0/users/alice", {"name": "A", "permissions": ["\ud800"]}),
    ("PUT", "/2.0/repositories/acme/widget/permissions-config/users/bob",
     {"permission": "\ud800"}),
    ("PUT", "/2.0/workspaces/acme/members/bob", {"role": "\ud800"}),
])
def test_messages_quoting_a_lone_surrogate(client, world, alice, method, url, body):
    """An error message that quotes the value back shows U+FFFD in its place: a response body
    must be UTF-8, which a lone surrogate has no form in."""
    world.user("bob")
    r = raw_json(client, method, url, alice.auth, body)
    assert r.status_code == 400, r.text
    assert "\ud800" not in r.text
    if url.startswith("/rest/"):
        server_error(r, 400)
    else:
        cloud_error(r, 400)
