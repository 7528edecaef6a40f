"""OAuth 2.0 consumers and their grants, driven with a real OAuth client (authlib), on both
databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitward.credentials import codec
from gitward.credentials.oauth import EXPIRED_MESSAGE
from gitward.storage.models import utcnow
from tests.integration.conftest import basic, bearer
from tests.integration.oauth_helpers import (
    AUTHORIZE,
    BASE,
    CALLBACK,
    INTROSPECT,
    REVOKE,
    TOKEN,
    assertion,
    authorize,
    create_consumer,
    form_csrf,
    location_params,
    new_verifier,
    oauth_client,
    user_token,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOKEN_KEYS = {"access_token", "token_type", "expires_in", "scopes", "scope", "refresh_token"}


@pytest.fixture
def setup(world):
    """alice owns acme (PRJ: widget) and globex (GLX: secret); bob may read widget."""
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.workspace(alice, "globex")
    world.project(alice, "globex", "GLX")
    world.repository(alice, "globex", "secret", "GLX")
    world.grant_repo(alice, "acme", "widget", "bob", "read")
    return alice, bob


# -- consumers ---------------------------------------------------------------------------------


def test_consumer_rest(client, setup):
    alice, bob = setup
    body = create_consumer(client, alice, description="builds", scopes=["repository:write"])
    assert codec.prefix_of(body["secret"]) == "gwcsk_"
    assert body["type"] == "oauth_consumer" and body["is_private"] is True
    assert body["scopes"] == ["repository:write"] and body["callback_url"] == CALLBACK
    listed = client.get("/2.0/workspaces/acme/oauth-consumers", headers=alice.auth).json()
    assert listed["size"] == 1 and listed["pagelen"] == 10
    assert "secret" not in listed["values"][0] and listed["values"][0]["key"] == body["key"]
    one = client.get(f"/2.0/workspaces/acme/oauth-consumers/{body['id']}", headers=alice.auth)
    assert one.status_code == 200 and "secret" not in one.json()
    # Not an owner: the consumers are not there for bob.
    r = client.get("/2.0/workspaces/acme/oauth-consumers", headers=bob.auth)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"scopes": ["repository", "nope"]}, "nope"),
        ({"scopes": []}, "scopes"),
        ({"scopes": "repository"}, "scopes"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"callback_url": "ftp://x.example/cb"}, "callback_url"),
        ({"callback_url": "https://x.example/cb#frag"}, "fragment"),
        ({"callback_url": "/relative"}, "callback_url"),
        ({"is_private": "yes"}, "is_private"),
        ({"description": ["x"]}, "description"),
    ],
)
def test_consumer_bad_input(client, setup, fields, needle):
    alice, _ = setup
    body = {"name": "app", "callback_url": CALLBACK, "is_private": True,
            "scopes": ["repository"], **fields}
    r = client.post("/2.0/workspaces/acme/oauth-consumers", json=body, headers=alice.auth)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_consumer_bad_ids_and_bodies(client, setup):
    alice, _ = setup
    for bad in ("abc", "99999", "1" * 40, "١"):
        r = client.delete(f"/2.0/workspaces/acme/oauth-consumers/{bad}", headers=alice.auth)
        assert r.status_code == 404, bad
    r = client.post("/2.0/workspaces/acme/oauth-consumers", content=b"{", headers={
        **alice.auth, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_only_interactive_credentials_manage_consumers(client, setup):
    alice, _ = setup
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "x", "permissions": ["PROJECT_ADMIN", "REPO_ADMIN"]},
                     headers=alice.auth).json()["token"]
    r = client.post("/2.0/workspaces/acme/oauth-consumers",
                    json={"name": "x", "scopes": ["repository"]}, headers=bearer(pat))
    assert r.status_code == 403
    consumer = create_consumer(client, alice, scopes=["repository:admin", "project:admin"])
    token = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    for method, path in (("GET", "/2.0/workspaces/acme/oauth-consumers"),
                         ("POST", "/2.0/workspaces/acme/access-tokens")):
        r = client.request(method, path, json={"name": "x", "scopes": ["repository"]},
                           headers=bearer(token["access_token"]))
        assert r.status_code == 403, r.text


def test_regenerate_secret(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    old = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    r = client.post(f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}/secret",
                    headers=alice.auth)
    assert r.status_code == 200
    fresh = r.json()["secret"]
    assert fresh != consumer["secret"] and codec.prefix_of(fresh) == "gwcsk_"
    r = client.post(TOKEN, data={"grant_type": "client_credentials"},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # What the old secret obtained by itself ends with it.
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(old["access_token"])).status_code == 401
    r = client.post(TOKEN, data={"grant_type": "client_credentials"},
                    auth=(consumer["key"], fresh))
    assert r.status_code == 200


def test_update_consumer(client, setup):
    alice, bob = setup
    consumer = create_consumer(client, alice, scopes=["repository", "account"])
    url = f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}"
    cc = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    _, user = user_token(client, consumer, alice)
    live = lambda t: client.get("/2.0/repositories/acme/widget",  # noqa: E731
                                headers=bearer(t["access_token"])).status_code == 200
    assert client.get("/2.0/user", headers=bearer(cc["access_token"])).json()[
        "display_name"] == "CI app"
    # Renaming, describing, adding a scope: nothing issued ends.
    r = client.put(url, json={"name": "Builds", "description": "CI",
                              "scopes": ["repository", "account", "pullrequest"]},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Builds" and body["description"] == "CI" and "secret" not in body
    assert body["scopes"] == ["account", "pullrequest", "repository"]
    assert body["callback_url"] == CALLBACK and body["is_private"] is True
    assert live(cc) and live(user)
    assert client.get("/2.0/user", headers=bearer(cc["access_token"])).json()[
        "display_name"] == "Builds"
    # Dropping a scope revokes everything the consumer was issued.
    r = client.put(url, json={"scopes": ["repository"]}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["scopes"] == ["repository"]
    assert not live(cc) and not live(user)
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": user["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Private to public: its client credentials tokens end, users' grants stay.
    cc = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    _, user = user_token(client, consumer, alice)
    r = client.put(url, json={"is_private": False}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["is_private"] is False
    assert not live(cc) and live(user)
    # A new callback voids codes not yet exchanged.
    verifier = new_verifier()
    code = _code(client, consumer, alice, verifier)
    r = client.put(url, json={"callback_url": "https://new.example/cb"}, headers=alice.auth)
    assert r.status_code == 200 and r.json()["callback_url"] == "https://new.example/cb"
    r = client.post(TOKEN, data={"grant_type": "authorization_code", "code": code,
                                 "code_verifier": verifier, "client_id": consumer["key"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Refusals: bad values, unknown fields, strangers, tokens.
    for bad, needle in (({"scopes": ["nope"]}, "nope"), ({"name": ""}, "name"),
                        ({"callback_url": "ftp://x/cb"}, "callback_url"),
                        ({"is_private": "no"}, "is_private"), ({"key": "mine"}, "key")):
        r = client.put(url, json=bad, headers=alice.auth)
        assert r.status_code == 400 and needle in r.json()["error"]["message"], bad
    assert client.put(url, json={"name": "x"}, headers=bob.auth).status_code == 404
    assert client.put(url, json={"name": "x"},
                      headers=bearer(user["access_token"])).status_code == 403
    assert client.get(url, headers=alice.auth).json()["name"] == "Builds"


# -- authorization code ------------------------------------------------------------------------


@pytest.mark.parametrize("public", [True, False], ids=["public", "private"])
def test_authorization_code_with_pkce(client, setup, public):
    alice, bob = setup
    consumer = create_consumer(client, alice, is_private=not public,
                               scopes=["repository:write", "account"])
    _, token = user_token(client, consumer, bob, public=public)
    assert set(token) - {"expires_at"} == TOKEN_KEYS
    assert token["token_type"] == "bearer" and token["expires_in"] == 7200
    assert token["scopes"] == "account repository:write"
    assert codec.prefix_of(token["access_token"]) == "gwoat_"
    assert codec.prefix_of(token["refresh_token"]) == "gwort_"
    for headers in (bearer(token["access_token"]), basic("x-token-auth", token["access_token"])):
        r = client.get("/2.0/repositories/acme/widget", headers=headers)
        assert r.status_code == 200, r.text
        me = client.get("/2.0/user", headers=headers).json()
        assert me["username"] == "bob"
    # Bound by bob's live level: he may only read widget, whatever the scopes say.
    r = client.delete("/2.0/repositories/acme/widget", headers=bearer(token["access_token"]))
    assert r.status_code == 403
    assert client.get("/2.0/repositories/globex/secret",
                      headers=bearer(token["access_token"])).status_code == 404
    # Basic with another username is refused.
    r = client.get("/2.0/user", headers=basic("bob", token["access_token"]))
    assert r.status_code == 401
    # A grant taken away takes effect on the next request.
    r = client.delete("/2.0/repositories/acme/widget/permissions-config/users/bob",
                      headers=alice.auth)
    assert r.status_code == 204
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(token["access_token"])).status_code == 404


def test_granted_scopes_bound_the_token(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, scopes=["repository", "account"])
    _, token = user_token(client, consumer, alice, scope="repository")
    assert token["scopes"] == "repository"
    h = bearer(token["access_token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    r = client.get("/2.0/user", headers=h)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == (
        "Your credentials lack one or more required privilege scopes: account")
    # No OAuth token creates credentials.
    r = client.put("/rest/access-tokens/1.0/users/alice",
                   json={"name": "x", "permissions": ["REPO_READ"]}, headers=h)
    assert r.status_code == 403, r.text


def test_state_and_deny(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc = oauth_client(client, consumer, code_challenge_method="S256")
    url, state = oc.create_authorization_url(AUTHORIZE, code_verifier=new_verifier())
    params = location_params(authorize(client, url, alice, decision="deny"))
    assert params["error"] == "access_denied" and params["state"] == state
    # RFC 9207: every authorization response names its issuer.
    assert params["iss"] == BASE
    params = location_params(authorize(client, url, alice))
    assert params["state"] == state and params["code"] and params["iss"] == BASE


def test_login_failures_show_the_form_again(client, setup, world):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc = oauth_client(client, consumer, code_challenge_method="S256")
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=new_verifier())
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": "wrong", "decision": "allow"})
    assert r.status_code == 401 and "<form" in r.text and "Invalid" in r.text
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "decision": "allow"})
    assert r.status_code == 400 and "<form" in r.text
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": alice.password,
                               "decision": "maybe"})
    assert r.status_code == 400
    # Tokens never sign in, not even on this page.
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "x", "permissions": ["REPO_ADMIN"]},
                     headers=alice.auth).json()["token"]
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": pat, "decision": "allow"},
                    follow_redirects=False)
    assert r.status_code == 403 and "location" not in r.headers
    # An OAuth access token does not sign in either (only a password signs in).
    _, token = user_token(client, consumer, alice)
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": token["access_token"],
                               "decision": "allow"}, follow_redirects=False)
    assert r.status_code in (401, 403) and "location" not in r.headers
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "x-token-auth", "password": token["access_token"],
                               "decision": "allow"}, follow_redirects=False)
    assert r.status_code in (401, 403) and "location" not in r.headers


def test_two_step_users_need_their_code(client, setup, runtime):
    import pyotp

    alice, _ = setup
    consumer = create_consumer(client, alice)
    now = [1_800_000_000]
    runtime.two_step.now = lambda: now[0]
    body = client.post("/2.0/user/two-step-verification", headers=alice.auth).json()
    totp = pyotp.TOTP(body["secret"])
    r = client.post("/2.0/user/two-step-verification/confirm", json={"code": totp.at(now[0])},
                    headers=alice.auth)
    assert r.status_code == 200
    oc = oauth_client(client, consumer, code_challenge_method="S256")
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=new_verifier())
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": alice.password,
                               "decision": "allow"})
    assert r.status_code == 401 and "two-step" in r.text.lower()
    r = client.post(url, data={"csrf_token": form_csrf(client, url), "username": "alice", "password": alice.password,
                               "otp": "000000", "decision": "allow"})
    assert r.status_code == 401
    now[0] += 30
    r = authorize(client, url, alice, otp=totp.at(now[0]))
    assert "code" in location_params(r)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "repository:admin"}, "invalid_scope"),
        ({"scope": "bogus"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
    ],
)
def test_authorize_errors_redirect(client, setup, params, error):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    query = {"client_id": consumer["key"], "response_type": "code", "state": "s1",
             "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
             "code_challenge_method": "S256", **params}
    r = client.get("/site/oauth2/authorize", params=query, follow_redirects=False)
    got = location_params(r)
    assert got["error"] == error and got["state"] == "s1" and got["iss"] == BASE
    assert r.headers["location"].startswith(CALLBACK)


def test_native_apps_listen_on_any_loopback_port(client, setup):
    """A public consumer registered with http://127.0.0.1/callback (a CLI or desktop app) may
    ask for any port of it; the code must be exchanged with the same URI."""
    alice, _ = setup
    consumer = create_consumer(client, alice, is_private=False,
                               callback_url="http://127.0.0.1/callback")
    verifier = new_verifier()
    given = "http://127.0.0.1:53123/callback"
    oc = oauth_client(client, consumer, public=True, redirect_uri=given,
                      code_challenge_method="S256")
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=verifier)
    r = authorize(client, url, alice)
    assert r.headers["location"].startswith(given + "?")
    code = location_params(r)["code"]
    r = client.post(TOKEN, data={"grant_type": "authorization_code", "code": code,
                                 "client_id": consumer["key"], "code_verifier": verifier,
                                 "redirect_uri": "http://127.0.0.1:53124/callback"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    token = oc.fetch_token(TOKEN, code=code, code_verifier=verifier)
    assert token["access_token"].startswith("gwoat_")
    for other in ("http://127.0.0.1:53123/elsewhere", "https://127.0.0.1:53123/callback",
                  "http://evil.example:53123/callback"):
        r = client.get("/site/oauth2/authorize", params={
            "client_id": consumer["key"], "response_type": "code", "redirect_uri": other,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256"}, follow_redirects=False)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", other


def test_public_consumers_need_pkce(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, is_private=False)
    r = client.get("/site/oauth2/authorize", params={
        "client_id": consumer["key"], "response_type": "code"}, follow_redirects=False)
    assert location_params(r)["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"redirect_uri": "https://evil.example/callback"}, "invalid_request"),
        ({"redirect_uri": CALLBACK + "/"}, "invalid_request"),
        ({"client_id": "nobody"}, "invalid_client"),
        ({"client_id": ""}, "invalid_client"),
        ({"client_id": "a\x00b"}, "invalid_request"),
        # Characters RFC 6749 does not allow in these (authlib would quote them in errors).
        ({"response_type": 'co"de'}, "invalid_request"),
        ({"response_type": "códe"}, "invalid_request"),
        ({"redirect_uri": 'https://app.example.com/"x'}, "invalid_request"),
        ({"scope": "repository\\"}, "invalid_request"),
        ({"code_challenge_method": "S2\u00e956"}, "invalid_request"),
    ],
)
def test_authorize_errors_not_redirected(client, setup, params, error):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    query = {"client_id": consumer["key"], "response_type": "code", **params}
    for method in ("GET", "POST"):
        r = client.request(method, "/site/oauth2/authorize", params=query,
                           follow_redirects=False)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == error and r.json()["error_description"]


def test_repeated_parameter_refused(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    r = client.get(f"/site/oauth2/authorize?client_id={consumer['key']}&client_id=x")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def _code(client, consumer, account, verifier, **kwargs):
    oc = oauth_client(client, consumer, code_challenge_method="S256", **kwargs)
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=verifier)
    return location_params(authorize(client, url, account))["code"]


def _exchange(client, consumer, code, verifier=None, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
            **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    return client.post(TOKEN, data=data, auth=(consumer["key"], consumer["secret"]))


def test_pkce_verifier_missing_or_wrong(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    verifier = new_verifier()
    code = _code(client, consumer, alice, verifier)
    r = _exchange(client, consumer, code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "code_verifier" in r.json()["error_description"]
    r = _exchange(client, consumer, code, new_verifier())
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "code_verifier" in r.json()["error_description"]
    r = _exchange(client, consumer, code, "short")
    assert r.status_code == 400 and r.json()["error"] in ("invalid_grant", "invalid_request")
    assert _exchange(client, consumer, code, verifier).status_code == 200


def test_wrong_redirect_uri_at_token(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    verifier = new_verifier()
    code = _code(client, consumer, alice, verifier)
    r = _exchange(client, consumer, code, verifier, redirect_uri="https://evil.example/cb")
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_replayed_code_revokes_what_it_issued(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    verifier = new_verifier()
    code = _code(client, consumer, alice, verifier)
    first = _exchange(client, consumer, code, verifier)
    assert first.status_code == 200
    h = bearer(first.json()["access_token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    again = _exchange(client, consumer, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 401
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": first.json()["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_expired_code(client, setup, runtime):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    verifier = new_verifier()
    code = _code(client, consumer, alice, verifier)
    runtime.oauth.clock = lambda: utcnow() + timedelta(minutes=11)
    r = _exchange(client, consumer, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert "expired" in r.json()["error_description"]


def test_code_of_another_consumer(client, setup):
    alice, _ = setup
    one = create_consumer(client, alice)
    other = create_consumer(client, alice)
    verifier = new_verifier()
    code = _code(client, one, alice, verifier)
    r = _exchange(client, other, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# -- client authentication ---------------------------------------------------------------------


def test_wrong_secret(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    wrong = codec.generate("gwcsk_")
    for kwargs in ({"auth": (consumer["key"], wrong)},
                   {"data": {"client_id": consumer["key"], "client_secret": wrong}},
                   {"auth": ("nobody", wrong)},
                   {"auth": ("a%00b", wrong)},
                   {"auth": (consumer["key"], "x%00")},
                   {"data": {}},
                   {"headers": {"Authorization": "Basic !!!"}},
                   {"headers": {"Authorization": "Bearer abc"}}):
        data = {"grant_type": "client_credentials", **kwargs.pop("data", {})}
        r = client.post(TOKEN, data=data, **kwargs)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "invalid_client" and "WWW-Authenticate" in r.headers
    # Private consumers always prove their secret, whatever the grant.
    r = client.post(TOKEN, data={"grant_type": "authorization_code", "code": "x",
                                 "client_id": consumer["key"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_form_client_authentication(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    r = client.post(TOKEN, data={"grant_type": "client_credentials",
                                 "client_id": consumer["key"],
                                 "client_secret": consumer["secret"]})
    assert r.status_code == 200 and "refresh_token" not in r.json()
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("grant", ["password", "implicit", "token", "bogus"])
def test_unsupported_grants(client, setup, grant):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    r = client.post(TOKEN, data={"grant_type": grant, "username": "alice",
                                 "password": alice.password},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": {}}, 400),
        ({"content": b'{"grant_type": "client_credentials"}',
          "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"grant_type=\xff", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}, 400),
        ({"content": b"grant_type=client_credentials&grant_type=password", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}, 400),
        ({"data": {"grant_type": "client_credentials\x00"}}, 400),
    ],
)
def test_token_endpoint_bad_requests(client, setup, kwargs, status):
    r = client.post(TOKEN, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"] == "invalid_request" and r.json()["error_description"]


# -- refresh tokens ----------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc, first = user_token(client, consumer, alice)
    second = oc.refresh_token(TOKEN, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scopes"] == "repository"
    h2 = bearer(second["access_token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h2).status_code == 200
    # The used refresh token again: someone copied it. Everything of this grant ends.
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": first["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert client.get("/2.0/repositories/acme/widget", headers=h2).status_code == 401
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(first["access_token"])).status_code == 401
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": second["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_refresh_scope_narrowing(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, scopes=["repository", "account"])
    _, first = user_token(client, consumer, alice)
    auth = (consumer["key"], consumer["secret"])
    r = client.post(TOKEN, data={"grant_type": "refresh_token", "scope": "repository:admin",
                                 "refresh_token": first["refresh_token"]}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = client.post(TOKEN, data={"grant_type": "refresh_token", "scope": "account",
                                 "refresh_token": first["refresh_token"]}, auth=auth)
    assert r.status_code == 200 and r.json()["scopes"] == "account"


def test_refresh_token_of_another_consumer(client, setup):
    alice, _ = setup
    one = create_consumer(client, alice)
    other = create_consumer(client, alice)
    _, token = user_token(client, one, alice)
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": token["refresh_token"]},
                    auth=(other["key"], other["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# -- client credentials ------------------------------------------------------------------------


def test_client_credentials(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, scopes=["repository"])
    token = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    assert token["scopes"] == "repository" and token["expires_in"] == 7200
    assert "refresh_token" not in token
    h = bearer(token["access_token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    assert client.get("/2.0/repositories/acme/widget",
                      headers=basic("x-token-auth", token["access_token"])).status_code == 200
    # Only inside the consumer's workspace.
    assert client.get("/2.0/repositories/globex/secret", headers=h).status_code == 404
    me = client.get("/2.0/user", headers=h).json()
    assert me["type"] == "app_user" and me["kind"] == "oauth_client"
    assert me["display_name"] == "CI app"
    r = client.delete("/2.0/repositories/acme/widget", headers=h)
    assert r.status_code == 403
    assert "repository:delete" in r.json()["error"]["message"]


def test_public_consumer_cannot_use_client_credentials(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, is_private=False)
    r = client.post(TOKEN, data={"grant_type": "client_credentials"},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400
    assert r.json() == {
        "error_description": 'Cannot use client_credentials with a consumer marked as '
        '"public". Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt '
        "instead.",
        "error": "invalid_grant",
    }


def test_scope_beyond_the_consumer(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, scopes=["repository"])
    for scope in ("repository:write", "repository account", "unknown"):
        r = client.post(TOKEN, data={"grant_type": "client_credentials", "scope": scope},
                        auth=(consumer["key"], consumer["secret"]))
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", scope


def test_deleted_consumer(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    cc = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    _, user = user_token(client, consumer, alice)
    for token in (cc, user):
        assert client.get("/2.0/repositories/acme/widget",
                          headers=bearer(token["access_token"])).status_code == 200
    r = client.delete(f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}",
                      headers=alice.auth)
    assert r.status_code == 204
    for token in (cc, user):
        assert client.get("/2.0/repositories/acme/widget",
                          headers=bearer(token["access_token"])).status_code == 401
    r = client.post(TOKEN, data={"grant_type": "client_credentials"},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": user["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 401


def test_expired_access_token(client, setup, runtime):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    _, token = user_token(client, consumer, alice)
    h = bearer(token["access_token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    runtime.oauth.clock = lambda: utcnow() + timedelta(seconds=7201)
    r = client.get("/2.0/repositories/acme/widget", headers=h)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == EXPIRED_MESSAGE
    assert EXPIRED_MESSAGE == (
        "Access token expired. Use your refresh token to obtain a new access token.")
    r = client.get("/acme/widget.git/info/refs?service=git-upload-pack",
                   headers=basic("x-token-auth", token["access_token"]))
    assert r.status_code == 401 and EXPIRED_MESSAGE in r.text


# -- JWT grant ---------------------------------------------------------------------------------


def _jwt(client, token, **data):
    return client.post(TOKEN, data={"grant_type": "urn:bitbucket:oauth2:jwt", **data},
                       headers={"Authorization": f"JWT {token}".encode()})


def test_jwt_grant(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice, is_private=False,
                               scopes=["repository", "pullrequest"])
    signed = assertion(consumer)
    r = _jwt(client, signed)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scopes"] == "pullrequest repository" and "refresh_token" not in body
    h = bearer(body["access_token"])
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 200
    assert client.get("/2.0/repositories/globex/secret", headers=h).status_code == 404
    # Single use.
    r = _jwt(client, signed)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Narrowing.
    r = _jwt(client, assertion(consumer), scope="repository")
    assert r.status_code == 200 and r.json()["scopes"] == "repository"
    r = _jwt(client, assertion(consumer), scope="repository:write")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "case", ["wrong secret", "too long", "expired", "no jti", "no iat", "unknown issuer",
             "NUL issuer", "NUL jti", "non-ASCII", "garbage", "missing header"],
)
def test_jwt_grant_refusals(client, setup, case):
    import time

    alice, _ = setup
    consumer = create_consumer(client, alice)
    now = int(time.time())
    token = {
        "wrong secret": lambda: assertion(consumer, secret=codec.generate("gwcsk_")),
        "too long": lambda: assertion(consumer, exp=now + 3600),
        "expired": lambda: assertion(consumer, iat=now - 600, exp=now - 300),
        "no jti": lambda: assertion(consumer, jti=None),
        "no iat": lambda: assertion(consumer, iat=None),
        "unknown issuer": lambda: assertion(consumer, iss="nobody"),
        "NUL issuer": lambda: assertion(consumer, iss="a\x00b"),
        "NUL jti": lambda: assertion(consumer, jti="a\x00b"),
        "non-ASCII": lambda: "é.é.é",
        "garbage": lambda: "not.a.jwt",
        "missing header": lambda: None,
    }[case]()
    if token is None:
        r = client.post(TOKEN, data={"grant_type": "urn:bitbucket:oauth2:jwt"})
    else:
        r = _jwt(client, token)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"


# -- revocation, introspection, metadata -------------------------------------------------------


def test_revoke_access_and_refresh_tokens(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc, token = user_token(client, consumer, alice)
    h = bearer(token["access_token"])
    r = oc.revoke_token(REVOKE, token=token["access_token"], token_type_hint="access_token")
    assert r.status_code == 200
    assert client.get("/2.0/repositories/acme/widget", headers=h).status_code == 401
    r = oc.revoke_token(REVOKE, token=token["refresh_token"])
    assert r.status_code == 200
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": token["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Unknown tokens are not an error (RFC 7009 §2.2); others' tokens are not revoked.
    assert oc.revoke_token(REVOKE, token="whatever").status_code == 200
    other = create_consumer(client, alice)
    _, theirs = user_token(client, other, alice)
    r = oc.revoke_token(REVOKE, token=theirs["access_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(theirs["access_token"])).status_code == 200
    r = client.post(REVOKE, data={"token": theirs["access_token"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_revoking_a_refresh_token_ends_its_access_tokens(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc, token = user_token(client, consumer, alice)
    oc.revoke_token(REVOKE, token=token["refresh_token"], token_type_hint="refresh_token")
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(token["access_token"])).status_code == 401


def test_introspect(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc, token = user_token(client, consumer, alice)
    r = oc.introspect_token(INTROSPECT, token=token["access_token"])
    body = r.json()
    assert body["active"] is True and body["client_id"] == consumer["key"]
    assert body["scope"] == "repository" and body["username"] == "alice"
    assert body["token_type"] == "bearer" and body["exp"] - body["iat"] == 7200
    refresh = oc.introspect_token(INTROSPECT, token=token["refresh_token"]).json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    cc = oauth_client(client, consumer).fetch_token(TOKEN, grant_type="client_credentials")
    body = oc.introspect_token(INTROSPECT, token=cc["access_token"]).json()
    assert body["active"] is True and "username" not in body
    # Another consumer learns nothing about it.
    other = create_consumer(client, alice)
    assert oauth_client(client, other).introspect_token(
        INTROSPECT, token=token["access_token"]).json() == {"active": False}
    oc.revoke_token(REVOKE, token=token["access_token"])
    assert oc.introspect_token(INTROSPECT, token=token["access_token"]).json() == {
        "active": False}
    assert oc.introspect_token(INTROSPECT, token="nonsense").json() == {"active": False}
    r = client.post(INTROSPECT, data={"token": cc["access_token"]},
                    auth=(consumer["key"], "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_metadata(client):
    r = client.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    body = r.json()
    assert body["issuer"] == "http://testserver"
    assert body["token_endpoint"] == TOKEN and body["authorization_endpoint"] == AUTHORIZE
    assert body["revocation_endpoint"] == REVOKE
    assert body["introspection_endpoint"] == INTROSPECT
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["response_types_supported"] == ["code"]
    assert "client_credentials" in body["grant_types_supported"]
    assert "password" not in body["grant_types_supported"]


def test_metadata_is_valid_rfc8414(client):
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    body = client.get("/.well-known/oauth-authorization-server").json()
    # authlib's checker wants https URLs (the test server is http); all else is checked.
    body = {k: v.replace("http://", "https://") if isinstance(v, str) else v
            for k, v in body.items()}
    AuthorizationServerMetadata(body).validate()


# -- parameters authlib would echo -------------------------------------------------------------


@pytest.mark.parametrize("data", [{"grant_type": 'pass"word'}, {"grant_type": "clïent"},
                                  {"grant_type": "client_credentials", "scope": 'a"b'},
                                  {"grant_type": "client_credentials", "scope": "x" * 5000}])
def test_token_parameters_outside_ascii_refused(client, setup, data):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    r = client.post(TOKEN, data=data, auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_unknown_scope_is_described(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    r = client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "repo#sitory"},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    assert "repo#sitory" in r.json()["error_description"]


def test_basic_and_form_authentication_together_refused(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    r = client.post(TOKEN, data={"grant_type": "client_credentials",
                                 "client_secret": consumer["secret"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


# -- races settled by the database -------------------------------------------------------------


def test_refresh_token_spent_meanwhile_revokes_the_family(client, setup, monkeypatch):
    """Two requests with the same refresh token: the one that finds it spent by the other
    between reading and spending it ends the whole grant (a copied token)."""
    from sqlalchemy import update

    from gitward.services import oauth_server
    from gitward.storage.models import OAuthRefreshToken

    alice, _ = setup
    consumer = create_consumer(client, alice)
    _, first = user_token(client, consumer, alice)
    original = oauth_server.RefreshTokenGrant.authenticate_user

    def spent_by_another_request(self, refresh_token):
        self.server.store.open().execute(
            update(OAuthRefreshToken).where(OAuthRefreshToken.id == refresh_token.row.id)
            .values(used_on=utcnow()).execution_options(synchronize_session=False))
        return original(self, refresh_token)

    monkeypatch.setattr(oauth_server.RefreshTokenGrant, "authenticate_user",
                        spent_by_another_request)
    r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                 "refresh_token": first["refresh_token"]},
                    auth=(consumer["key"], consumer["secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "already used" in r.json()["error_description"]
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(first["access_token"])).status_code == 401


def test_code_spent_meanwhile_issues_nothing(client, setup, monkeypatch):
    from sqlalchemy import update

    from gitward.services import oauth_server
    from gitward.storage.models import OAuthAccessToken, OAuthAuthorizationCode

    alice, _ = setup
    consumer = create_consumer(client, alice)
    verifier = new_verifier()
    code = _code(client, consumer, alice, verifier)
    original = oauth_server.AuthorizationCodeGrant.authenticate_user

    def spent_by_another_request(self, authorization_code):
        self.server.store.open().execute(
            update(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.id == authorization_code.row.id)
            .values(used=True).execution_options(synchronize_session=False))
        return original(self, authorization_code)

    monkeypatch.setattr(oauth_server.AuthorizationCodeGrant, "authenticate_user",
                        spent_by_another_request)
    r = _exchange(client, consumer, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    runtime = client.app.state.runtime
    with runtime.unit_of_work() as store:
        from sqlalchemy import func, select

        assert store.open().scalar(select(func.count()).select_from(OAuthAccessToken)) == 0


def test_introspection_tells_when_a_token_was_last_used(client, setup):
    alice, _ = setup
    consumer = create_consumer(client, alice)
    oc, token = user_token(client, consumer, alice)
    body = oc.introspect_token(INTROSPECT, token=token["access_token"]).json()
    assert "last_used" not in body
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(token["access_token"])).status_code == 200
    body = oc.introspect_token(INTROSPECT, token=token["access_token"]).json()
    assert body["active"] is True and body["iat"] <= body["last_used"] <= body["exp"]


def test_jwt_grant_with_authlibs_client(client, setup):
    """authlib's client, as an integration would use it: no client authentication of its
    own, the assertion in `Authorization: JWT`, the token used through the client."""
    alice, _ = setup
    consumer = create_consumer(client, alice, is_private=False, scopes=["repository"])
    oc = oauth_client(client, consumer, public=True)
    token = oc.fetch_token(TOKEN, grant_type="urn:bitbucket:oauth2:jwt",
                           headers={"Authorization": f"JWT {assertion(consumer)}"})
    assert token["scopes"] == "repository" and token["token_type"] == "bearer"
    assert "refresh_token" not in token
    r = oc.get(f"{BASE}/2.0/repositories/acme/widget")
    assert r.status_code == 200, r.text


# -- the user's side: authorizations ----------------------------------------------------------


def test_users_see_and_revoke_what_they_authorized(client, setup):
    alice, bob = setup
    one = create_consumer(client, alice, name="Deploys", scopes=["repository", "account"])
    other = create_consumer(client, alice, name="Chat", scopes=["repository"])
    mine = "/2.0/user/oauth-authorizations"
    assert client.get(mine, headers=bob.auth).json()["values"] == []
    _, first = user_token(client, one, bob)
    _, again = user_token(client, one, bob, scope="repository")
    _, chat = user_token(client, other, bob)
    _, alices = user_token(client, one, alice)
    cc = oauth_client(client, one).fetch_token(TOKEN, grant_type="client_credentials")
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(first["access_token"])).status_code == 200
    listed = client.get(mine, headers=bob.auth).json()
    assert listed["size"] == 2 and [v["consumer"]["name"] for v in listed["values"]] == [
        "Chat", "Deploys"]
    deploys = listed["values"][1]
    assert deploys["type"] == "oauth_authorization"
    assert deploys["scopes"] == ["account", "repository"]
    assert deploys["consumer"]["key"] == one["key"]
    assert deploys["consumer"]["workspace"]["slug"] == "acme"
    assert deploys["last_used_on"] and deploys["created_on"]
    assert "secret" not in str(deploys)
    # Bob takes back what he gave Deploys: both of his grants end, nothing else does.
    r = client.delete(f"{mine}/{one['key']}", headers=bob.auth)
    assert r.status_code == 204
    for token in (first, again):
        assert client.get("/2.0/repositories/acme/widget",
                          headers=bearer(token["access_token"])).status_code == 401
        r = client.post(TOKEN, data={"grant_type": "refresh_token",
                                     "refresh_token": token["refresh_token"]},
                        auth=(one["key"], one["secret"]))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for token in (chat, alices, cc):
        assert client.get("/2.0/repositories/acme/widget",
                          headers=bearer(token["access_token"])).status_code == 200
    assert [v["consumer"]["name"] for v in client.get(mine, headers=bob.auth).json()[
        "values"]] == ["Chat"]
    # By uuid too; then nothing is left to revoke.
    uuid = client.get(mine, headers=bob.auth).json()["values"][0]["consumer"]["uuid"]
    assert client.delete(f"{mine}/{uuid}", headers=bob.auth).status_code == 204
    assert client.delete(f"{mine}/{other['key']}", headers=bob.auth).status_code == 404
    assert client.delete(f"{mine}/nothing", headers=bob.auth).status_code == 404
    # Only in person: no token manages authorizations, not even an OAuth one.
    assert client.get(mine, headers=bearer(alices["access_token"])).status_code == 403
    r = client.delete(f"{mine}/{one['key']}", headers=bearer(alices["access_token"]))
    assert r.status_code == 403
    assert client.get(mine).status_code == 401


def test_oauth_actions_are_audited_without_secrets(client, setup, runtime):
    """Every create, modify, revoke and failed authentication is in the audit log."""
    from sqlalchemy import select

    from gitward.storage.models import AuditEvent

    alice, bob = setup
    consumer = create_consumer(client, alice)
    url = f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}"
    auth = (consumer["key"], consumer["secret"])
    verifier = new_verifier()
    code = _code(client, consumer, bob, verifier)
    token = _exchange(client, consumer, code, verifier).json()
    assert _exchange(client, consumer, code, verifier).status_code == 400  # replayed
    _, second = user_token(client, consumer, bob)
    client.post(TOKEN, data={"grant_type": "refresh_token",
                             "refresh_token": second["refresh_token"]}, auth=auth)
    client.post(TOKEN, data={"grant_type": "refresh_token",
                             "refresh_token": second["refresh_token"]}, auth=auth)  # reused
    _, third = user_token(client, consumer, bob)
    assert client.post(REVOKE, data={"token": third["access_token"]}, auth=auth).status_code == 200
    _, fourth = user_token(client, consumer, bob)
    assert client.delete(f"/2.0/user/oauth-authorizations/{consumer['key']}",
                         headers=bob.auth).status_code == 204
    assert client.post(TOKEN, data={"grant_type": "client_credentials"},
                       auth=(consumer["key"], "wrong")).status_code == 401
    assert client.put(url, json={"name": "Renamed"}, headers=alice.auth).status_code == 200
    fresh = client.post(url + "/secret", headers=alice.auth).json()["secret"]
    assert client.delete(url, headers=alice.auth).status_code == 204
    with runtime.unit_of_work() as store:
        events = store.open().scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        actions = [e.action for e in events]
        logged = " ".join(f"{e.actor} {e.target} {e.details}" for e in events)
    for action in ("oauth-consumer.create", "oauth.authorize", "oauth.token", "oauth.code-replay",
                   "oauth.refresh-reuse", "oauth.revoke", "oauth.authorization-revoke",
                   "auth.failed", "oauth-consumer.update", "oauth-consumer.secret",
                   "oauth-consumer.delete"):
        assert action in actions, action
    for secret in (consumer["secret"], fresh, code, token["access_token"],
                   token["refresh_token"], second["refresh_token"], third["access_token"],
                   fourth["access_token"]):
        assert secret not in logged


# -- fuzzing: bad input is a clear error, never a 500 ------------------------------------------

_NAMES = st.sampled_from(["grant_type", "code", "redirect_uri", "code_verifier",
                          "refresh_token", "scope", "client_id", "client_secret", "token",
                          "token_type_hint", "response_type", "state", "code_challenge",
                          "code_challenge_method", "username", "password", "otp", "decision"])
_VALUES = st.one_of(
    st.sampled_from(["authorization_code", "refresh_token", "client_credentials",
                     "urn:bitbucket:oauth2:jwt", "password", "code", "token", "S256", "plain",
                     "repository", "repository:write", "allow", "deny", CALLBACK, "",
                     "gwoat_", "gwort_", "gwocd_" + "a" * 38]),
    st.text(max_size=60),
)
_FORMS = st.dictionaries(_NAMES, _VALUES, max_size=8)
_AUTH = st.one_of(
    st.none(),
    st.sampled_from(["Basic", "Basic !!", "JWT", "JWT a.b.c", "Bearer x", "Basic Og=="]),
    st.text(max_size=30).map(lambda t: "Basic " + t),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from([TOKEN, REVOKE, INTROSPECT]), form=_FORMS, header=_AUTH,
       with_client=st.booleans())
def test_fuzzed_token_endpoints_never_500(client, fuzz_consumer, path, form, header,
                                          with_client):
    if with_client:
        form = {**form, "client_id": fuzz_consumer["key"]}
    headers = {}
    if header is not None:
        headers["Authorization"] = header.encode("utf-8").replace(b"\r", b"").replace(b"\n", b"")
    r = client.post(path, data=form, headers=headers)
    assert r.status_code < 500, (path, form, header, r.text)
    if r.status_code >= 400:
        body = r.json()
        assert body["error"] and isinstance(body.get("error_description", ""), str)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_FORMS, form=_FORMS, method=st.sampled_from(["GET", "POST"]),
       with_client=st.booleans())
def test_fuzzed_authorize_never_500(client, fuzz_consumer, query, form, method, with_client):
    if with_client:
        query = {**query, "client_id": fuzz_consumer["key"]}
    kwargs = {"data": form} if method == "POST" else {}
    r = client.request(method, "/site/oauth2/authorize", params=query, follow_redirects=False,
                       **kwargs)
    assert r.status_code < 500, (query, form, r.text)
    if r.status_code == 302:
        assert r.headers["location"].startswith(CALLBACK)
    elif r.headers["content-type"].startswith("application/json"):
        assert r.status_code >= 400 and r.json()["error"]
    else:
        assert r.headers["content-type"].startswith("text/html") and "<form" in r.text


@pytest.fixture
def fuzz_consumer(client, setup):
    alice, _ = setup
    return create_consumer(client, alice, is_private=False, scopes=["repository"])


# -- every worker and node ---------------------------------------------------------------------


def test_oauth_revocation_reaches_every_worker(settings, client, setup):
    """A second runtime on the same database stands for another worker process or node: its
    cache has seen the token, and refuses it on the request after each way of ending it."""
    from gitward.runtime import Runtime
    from gitward.web.app import create_app
    from tests.asgi_client import AppClient

    alice, _ = setup
    second = Runtime.open(settings)
    widget = "/2.0/repositories/acme/widget"
    try:
        with AppClient(create_app(second)) as b:
            for change in ("revoke", "refresh reuse", "code replay", "new secret",
                           "scope dropped", "consumer deleted", "user takes it back"):
                consumer = create_consumer(client, alice, scopes=["repository", "account"])
                auth = (consumer["key"], consumer["secret"])
                verifier = new_verifier()
                code = _code(client, consumer, alice, verifier)
                first = _exchange(client, consumer, code, verifier).json()
                cc = client.post(TOKEN, data={"grant_type": "client_credentials"},
                                 auth=auth).json()
                token = cc if change == "new secret" else first
                h = bearer(token["access_token"])
                assert b.get(widget, headers=h).status_code == 200
                assert b.get(widget, headers=h).status_code == 200  # from b's cache
                url = f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}"
                if change == "revoke":
                    r = client.post(REVOKE, data={"token": first["access_token"]}, auth=auth)
                elif change == "refresh reuse":
                    data = {"grant_type": "refresh_token",
                            "refresh_token": first["refresh_token"]}
                    assert client.post(TOKEN, data=data, auth=auth).status_code == 200
                    r = client.post(TOKEN, data=data, auth=auth)
                    assert r.status_code == 400
                elif change == "code replay":
                    r = _exchange(client, consumer, code, verifier)
                    assert r.status_code == 400
                elif change == "new secret":
                    r = client.post(url + "/secret", headers=alice.auth)
                elif change == "scope dropped":
                    r = client.put(url, json={"scopes": ["repository"]}, headers=alice.auth)
                elif change == "user takes it back":
                    r = client.delete(f"/2.0/user/oauth-authorizations/{consumer['key']}",
                                      headers=alice.auth)
                else:
                    r = client.delete(url, headers=alice.auth)
                assert r.status_code < 500, r.text
                assert b.get(widget, headers=h).status_code == 401, change
    finally:
        second.close()
