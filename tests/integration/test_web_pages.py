"""The pages in process (AppClient): sessions, CSRF, sign-in rules, the surfaces' split, and
that the pages act through the same services and checks as the API. On SQLite and PostgreSQL.

Browser behaviour (JavaScript-free forms, cross-site posts from another origin, screenshots,
accessibility) is tested in Chromium by tests/e2e/test_web_browser.py.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from gitward.storage.models import utcnow
from gitward.web.app import create_app, is_git_path
from tests.asgi_client import AppClient
from tests.integration.conftest import basic, bearer
from tests.integration.web_helpers import new_secret, page_csrf, post, sign_in


@pytest.fixture
def acme(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "P")
    world.repository(alice, "acme", "widget", "P")
    world.repository(alice, "acme", "open", "P", private=False)
    return alice


def _browser(runtime, **kwargs) -> AppClient:
    return AppClient(create_app(runtime), raise_server_exceptions=False, **kwargs)


def _session_cookie(response) -> str:
    header = response.headers.get("set-cookie", "")
    assert header.startswith("gitward_session=gwses_"), header
    return header


# -- the surfaces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "git"),
    [
        ("/acme/widget.git/info/refs", True),
        ("/acme/widget/info/refs", True),
        ("/acme/widget.git/git-upload-pack", True),
        ("/acme/widget/git-receive-pack", True),
        ("/acme/widget.git/HEAD", True),
        ("/scm/P/widget.git/info/refs", True),
        ("/scm/P/widget", True),
        ("/acme/widget.git", False),
        ("/acme/widget", False),
        ("/acme", False),
        ("/", False),
        ("/account/personal-access-tokens", False),
        ("/acme/widget/settings/access-tokens", False),
        # files named like git's endpoints, deeper in a repository, are pages
        ("/acme/widget/src/main/info/refs", False),
        ("/acme/widget/commits/info/refs", False),
        ("/acme/widget/src/main/git-upload-pack", False),
        # ... but path tricks on Git's endpoints stay Git's (plain text, never a page)
        ("/acme/../other/widget.git/info/refs", True),
        ("/acme/widget.git/git-upload-pack/../git-receive-pack", True),
        ("/acme/widget.git/src/main/info/refs", True),
        ("/../acme/widget.git/info/refs", True),
    ],
)
def test_git_paths_go_to_git_and_the_rest_to_the_pages(path, git):
    assert is_git_path(path) is git


def test_pages_are_html_and_git_stays_plain_text(client, acme):
    r = client.get("/acme/widget/info/refs", params={"service": "git-upload-pack"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/plain")
    assert r.headers["www-authenticate"] == 'Basic realm="Gitward"'
    r = client.get("/acme/widget.git/info/refs", params={"service": "git-upload-pack"},
                   headers=acme.auth)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    r = client.get("/no/such/page/here")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "www-authenticate" not in r.headers and "Traceback" not in r.text
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and r.headers["x-frame-options"] == "DENY"
    assert "<script>" not in r.text and "style=" not in r.text
    r = client.get("/acme/widget.git", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/acme/widget"
    assert client.get("/static/ui/gitward.css").status_code == 200


def test_anonymous_dashboard_shows_only_public_repositories(client, acme):
    r = client.get("/")
    assert "/acme/open" in r.text and "/acme/widget" not in r.text
    r = client.get("/acme/widget", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/acme/widget")
    r = client.get("/account/personal-access-tokens", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account/personal-access-tokens"


# -- signing in --------------------------------------------------------------------------------


def test_sign_in_sets_a_safe_cookie_and_the_pages_use_it(client, acme):
    r = sign_in(client, acme, next_path="/acme")
    assert r.status_code == 303 and r.headers["location"] == "/acme"
    cookie = _session_cookie(r)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain http here
    r = client.get("/")
    assert "Sign out" in r.text and "/acme/widget" in r.text


def test_the_cookie_is_secure_over_https(runtime, world):
    alice = world.user("carol")
    with _browser(runtime, base_url="https://testserver") as browser:
        r = sign_in(browser, alice)
        assert r.status_code == 303
        assert "Secure" in _session_cookie(r)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil",
                                    "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1"])
def test_next_is_only_a_path_of_this_site(client, acme, target):
    r = sign_in(client, acme, next_path=target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_wrong_password_shows_the_form_and_is_audited(client, acme, runtime):
    token = page_csrf(client, "/login")
    r = client.post("/login", data={"username": "alice", "password": "nope",
                                    "csrf_token": token})
    assert r.status_code == 401 and "<form" in r.text and "Invalid" in r.text
    assert "gitward_session=" not in r.headers.get("set-cookie", "")
    with runtime.unit_of_work() as store:
        from gitward.storage.models import AuditEvent
        events = store.open().query(AuditEvent).filter_by(action="auth.failed").all()
        assert any(e.target == "user:alice" for e in events)


def test_tokens_typed_as_the_password_are_refused(client, acme):
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "x", "permissions": ["REPO_ADMIN"]},
                     headers=acme.auth).json()["token"]
    app = client.post("/2.0/user/app-passwords", json={"label": "a", "scopes": ["repository"]},
                      headers=acme.auth).json()["password"]
    for secret in (pat, app):
        token = page_csrf(client, "/login")
        r = client.post("/login", data={"username": "alice", "password": secret,
                                        "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 401, r.text
        assert "cannot sign in to the web interface" in r.text
        assert "gitward_session=" not in r.headers.get("set-cookie", "")


def test_two_step_users_are_asked_for_their_code(client, acme, runtime):
    now = [1_800_000_000]
    runtime.two_step.now = lambda: now[0]
    body = client.post("/2.0/user/two-step-verification", headers=acme.auth).json()
    totp = pyotp.TOTP(body["secret"])
    assert client.post("/2.0/user/two-step-verification/confirm",
                       json={"code": totp.at(now[0])}, headers=acme.auth).status_code == 200
    r = sign_in(client, acme)
    assert r.status_code == 401 and "enter the code" in r.text and 'id="otp"' in r.text
    r = sign_in(client, acme, otp="000000")
    assert r.status_code == 401
    now[0] += 30
    r = sign_in(client, acme, otp=totp.at(now[0]))
    assert r.status_code == 303
    _session_cookie(r)


# -- the cookie is honoured by the pages only ------------------------------------------------------


def test_a_cookie_alone_is_anonymous_everywhere_but_the_pages(client, acme):
    anonymous = [client.get(p) for p in ("/2.0/user", "/rest/api/1.0/admin/users",
                                         "/2.0/repositories/acme/widget")]
    git_anonymous = client.get("/acme/widget.git/info/refs",
                               params={"service": "git-upload-pack"})
    r = sign_in(client, acme)
    secret = r.cookies.get("gitward_session") or client.cookies.get("gitward_session")
    assert secret and secret.startswith("gwses_")
    assert client.get("/account/sessions").status_code == 200  # the pages do honour it
    for before, path in zip(anonymous, ("/2.0/user", "/rest/api/1.0/admin/users",
                                        "/2.0/repositories/acme/widget"), strict=True):
        after = client.get(path)
        assert (after.status_code, after.json()) == (before.status_code, before.json()), path
    r = client.get("/acme/widget.git/info/refs", params={"service": "git-upload-pack"})
    assert (r.status_code, r.text) == (git_anonymous.status_code, git_anonymous.text)
    # The secret itself, sent as a token, is refused: sessions are presented as the cookie.
    client.cookies.clear()
    assert client.get("/2.0/user", headers=bearer(secret)).status_code == 401
    assert client.get("/2.0/user", headers=basic("alice", secret)).status_code == 401


# -- CSRF --------------------------------------------------------------------------------------


def test_posts_without_a_valid_csrf_token_are_403_and_change_nothing(client, acme):
    sign_in(client, acme)
    path = "/account/personal-access-tokens"
    form = {"name": "sneaky", "repository": "REPO_ADMIN"}
    assert client.post(path, data=form).status_code == 403
    assert client.post(path, data={**form, "csrf_token": "0" * 64}).status_code == 403
    token = page_csrf(client, path)
    r = client.post(path, data={**form, "csrf_token": token},
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    # Logging out is a state change too.
    assert client.post("/logout").status_code == 403
    listing = client.get("/rest/access-tokens/1.0/users/alice", headers=acme.auth).json()
    assert listing["values"] == []
    # The same token with the right origin works.
    r = client.post(path, data={**form, "csrf_token": token},
                    headers={"Origin": "http://testserver"})
    assert r.status_code == 200 and new_secret(r.text).startswith("gwpat_")


def test_a_token_from_another_browser_is_refused(runtime, world):
    alice = world.user("dave")
    with _browser(runtime) as one, _browser(runtime) as other:
        sign_in(one, alice)
        sign_in(other, alice)
        foreign = page_csrf(other, "/account/app-passwords")
        r = one.post("/account/app-passwords", data={"label": "x", "scope": "repository",
                                                     "csrf_token": foreign})
        assert r.status_code == 403


def test_the_csrf_check_comes_before_the_session(client, acme, runtime):
    """A POST without a token is refused before its session is read: an ended session's
    cookie gets the same 403, not the sign-in redirect that reading it would give."""
    sign_in(client, acme)
    with runtime.unit_of_work() as store:
        from gitward.storage.models import WebSession
        store.open().query(WebSession).delete()
    r = client.post("/account/app-passwords", data={"label": "x"}, follow_redirects=False)
    assert r.status_code == 403


# -- lifetimes, freshness and ending ------------------------------------------------------------


def test_idle_and_absolute_expiry(client, acme, runtime):
    sessions = runtime.web_sessions
    start = utcnow()
    sessions.clock = lambda: start
    sign_in(client, acme)
    for hours in (2, 4, 6, 7.9):  # used often enough: still in
        sessions.clock = lambda h=hours: start + timedelta(hours=h)
        assert client.get("/account/sessions").status_code == 200
    sessions.clock = lambda: start + timedelta(hours=7.9 + 8.01)
    r = client.get("/account/sessions", follow_redirects=False)
    assert r.status_code == 303 and "ended=1" in r.headers["location"]
    # Absolute: used every few hours, it still ends 7 days after sign-in.
    sessions.clock = lambda: start
    sign_in(client, acme)
    moment = start
    while moment < start + timedelta(days=7) - timedelta(hours=5):
        moment += timedelta(hours=5)
        sessions.clock = lambda m=moment: m
        assert client.get("/account/sessions").status_code == 200
    sessions.clock = lambda: start + timedelta(days=7, minutes=1)
    r = client.get("/account/sessions", follow_redirects=False)
    assert r.status_code == 303 and "ended=1" in r.headers["location"]


def test_creating_a_credential_needs_a_fresh_sign_in(client, acme, runtime):
    sessions = runtime.web_sessions
    start = utcnow()
    sessions.clock = lambda: start
    sign_in(client, acme)
    path = "/account/personal-access-tokens"
    assert 'id="reauth-password"' not in client.get(path).text
    sessions.clock = lambda: start + timedelta(minutes=11)
    assert 'id="reauth-password"' in client.get(path).text
    form = {"name": "t", "repository": "REPO_READ"}
    r = post(client, path, form)
    assert r.status_code == 403 and "type your password again" in r.text
    r = post(client, path, {**form, "password": "wrong"})
    assert r.status_code == 401 and "id=\"new-secret\"" not in r.text
    r = post(client, path, {**form, "password": acme.password})
    assert r.status_code == 200 and new_secret(r.text).startswith("gwpat_")
    # Fresh again for the next ten minutes.
    r = post(client, path, {"name": "t2", "repository": "REPO_READ"})
    assert r.status_code == 200 and new_secret(r.text).startswith("gwpat_")


def test_the_fresh_window_is_the_setting(client, acme, runtime, monkeypatch):
    import dataclasses

    monkeypatch.setattr(runtime, "settings",
                        dataclasses.replace(runtime.settings, session_fresh_seconds=1800))
    sessions = runtime.web_sessions
    monkeypatch.setattr(sessions, "lifetimes",
                        dataclasses.replace(sessions.lifetimes, fresh=timedelta(minutes=30)))
    start = utcnow()
    sessions.clock = lambda: start
    sign_in(client, acme)
    path = "/account/personal-access-tokens"
    sessions.clock = lambda: start + timedelta(minutes=11)
    assert 'id="reauth-password"' not in client.get(path).text
    sessions.clock = lambda: start + timedelta(minutes=31)
    page = client.get(path).text
    assert 'id="reauth-password"' in page and "more than 30 minutes ago" in page


def test_logout_and_ending_sessions(runtime, world):
    alice = world.user("erin")
    with _browser(runtime) as laptop, _browser(runtime) as phone:
        sign_in(laptop, alice)
        sign_in(phone, alice)
        page = laptop.get("/account/sessions").text
        assert page.count('action="/account/sessions/') >= 2
        r = post(laptop, "/account/sessions/end-others", page="/account/sessions")
        assert r.status_code == 303
        r = phone.get("/account/sessions", follow_redirects=False)
        assert r.status_code == 303 and "ended=1" in r.headers["location"]
        stolen = laptop.cookies.get("gitward_session")
        r = post(laptop, "/logout", page="/account/sessions")
        assert r.status_code == 303 and r.headers["location"] == "/login?signed_out=1"
        laptop.cookies.set("gitward_session", stolen)
        r = laptop.get("/account/sessions", follow_redirects=False)
        assert r.status_code == 303 and "ended=1" in r.headers["location"]


def test_deactivating_a_user_ends_their_sessions(runtime, world):
    admin = world.user("root", site_admin=True)
    bob = world.user("bob")
    with _browser(runtime) as root_browser, _browser(runtime) as bob_browser:
        sign_in(bob_browser, bob)
        assert bob_browser.get("/account/sessions").status_code == 200
        sign_in(root_browser, admin)
        r = post(root_browser, "/admin/users/bob/deactivate", page="/admin/users/bob")
        assert r.status_code == 303
        r = bob_browser.get("/account/sessions", follow_redirects=False)
        assert r.status_code == 303
        r = post(root_browser, "/admin/users/bob/activate", page="/admin/users/bob")
        assert r.status_code == 303
        r = bob_browser.get("/account/sessions", follow_redirects=False)
        assert r.status_code == 303  # ended, not suspended


def test_a_site_admin_sees_and_lifts_an_accounts_guessing_lock(settings, world):
    """The account ceiling set to 3: three wrong passwords lock bob from every address."""
    from gitward.runtime import Runtime

    world.user("root", site_admin=True)
    world.user("bob")
    strict = Runtime.open(settings.with_overrides(auth_failure_account_limit=3))
    try:
        with _browser(strict) as root_browser:
            wrong = basic("bob", "not the password")
            for _ in range(3):
                assert root_browser.get("/2.0/user", headers=wrong).status_code == 401
            assert root_browser.get("/2.0/user", headers=basic(
                "bob", "correct horse battery staple")).status_code == 429
            sign_in(root_browser, world.user("root2", site_admin=True))
            page = root_browser.get("/admin/users/bob").text
            state = page.split('id="lock-state">', 1)[1].split("</dd>", 1)[0]
            assert state.startswith("3") and "locked" in state
            r = post(root_browser, "/admin/users/bob/unlock", page="/admin/users/bob")
            assert r.status_code == 303 and r.headers["location"].endswith("notice=unlocked")
            page = root_browser.get("/admin/users/bob").text
            assert 'id="lock-state">0</dd>' in page and "/unlock" not in page
            assert root_browser.get("/2.0/user", headers=basic(
                "bob", "correct horse battery staple")).status_code == 200
        with strict.unit_of_work() as store:
            assert [e.target for e in store.audit.events() if e.action == "user.unlock"] == [
                "user:bob"]
    finally:
        strict.close()


# -- the pages act through the services -------------------------------------------------------------


def test_the_permission_rule_holds_in_the_form(client, acme):
    sign_in(client, acme)
    r = post(client, "/account/personal-access-tokens",
             {"name": "t", "project": "PROJECT_WRITE", "repository": "REPO_READ"})
    assert r.status_code == 400 and "at least the project permission" in r.text
    assert 'id="new-secret"' not in r.text


def test_admins_modify_and_revoke_but_never_create_tokens(client, runtime, world, acme):
    root = world.user("root", site_admin=True)
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "ci", "permissions": ["REPO_WRITE"]},
                     headers=acme.auth).json()
    with _browser(runtime) as browser:
        sign_in(browser, root)
        page = browser.get("/admin/users/alice/personal-access-tokens")
        assert page.status_code == 200 and "ci" in page.text
        assert "Create a token" not in page.text
        r = post(browser, "/admin/users/alice/personal-access-tokens",
                 {"name": "x", "repository": "REPO_ADMIN"},
                 page="/admin/users/alice/personal-access-tokens")
        assert r.status_code == 405
        base = f"/admin/users/alice/personal-access-tokens/{pat['id']}"
        r = post(browser, base + "/permissions", {"repository": "REPO_READ"},
                 page="/admin/users/alice/personal-access-tokens")
        assert r.status_code == 303
        token = client.get(f"/rest/access-tokens/1.0/users/alice/{pat['id']}",
                           headers=acme.auth).json()
        assert token["permissions"] == ["REPO_READ"]
        r = post(browser, base + "/revoke", page="/admin/users/alice/personal-access-tokens")
        assert r.status_code == 303
        assert client.get("/2.0/user", headers=bearer(pat["token"])).status_code == 401


def test_admin_pages_are_for_site_admins(client, acme):
    sign_in(client, acme)
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/users/alice/personal-access-tokens").status_code == 403


def test_hidden_things_are_404_to_the_signed_in(client, runtime, world, acme):
    mallory = world.user("mallory")
    with _browser(runtime) as browser:
        sign_in(browser, mallory)
        for path in ("/acme/widget", "/acme/widget/settings/access-tokens"):
            r = browser.get(path, follow_redirects=False)
            assert r.status_code == 404, path
        assert browser.get("/acme/open").status_code == 200
        r = post(browser, "/acme/widget/settings/access-tokens", {"name": "x",
                 "scope": "repository"}, page="/account/sessions")
        assert r.status_code == 404


def test_repository_tokens_from_the_page(client, acme):
    sign_in(client, acme)
    path = "/acme/widget/settings/access-tokens"
    r = post(client, path, {"name": "ci", "scope": ["repository:write"]})
    assert r.status_code == 200, r.text
    secret = new_secret(r.text)
    assert secret.startswith("gwrep_")
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(secret)).status_code == 200
    token_id = client.get("/2.0/repositories/acme/widget/access-tokens",
                          headers=acme.auth).json()["values"][0]["id"]
    # the token's use shows on its row: the action, its count, what it needs and never did
    page = client.get(path).text
    usage = page[page.index("Usage, 90 days"):page.index("</details>", page.index("Usage, 90"))]
    assert "<code>repository:read</code></td><td>" in usage
    assert 'Needs: <span class="tag">repository:write</span>' in usage
    assert post(client, f"{path}/{token_id}/revoke", page=path).status_code == 303
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(secret)).status_code == 401


def test_the_authorize_page_uses_the_session_and_checks_csrf(client, acme):
    from tests.integration.oauth_helpers import (
        AUTHORIZE,
        CALLBACK,
        create_consumer,
        form_csrf,
        location_params,
        new_verifier,
        oauth_client,
    )

    consumer = create_consumer(client, acme)
    oc = oauth_client(client, consumer, code_challenge_method="S256")
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=new_verifier())
    assert 'id="password"' in client.get(url).text  # not signed in: the password is asked
    sign_in(client, acme)
    page = client.get(url)
    assert "Signed in as <strong>alice</strong>" in page.text
    assert 'id="password"' not in page.text
    assert "form-action 'self' https://app.example.com" in page.headers["content-security-policy"]
    # Without the token the session is not used: 403, and no code reaches the consumer.
    r = client.post(url, data={"decision": "allow"}, follow_redirects=False)
    assert r.status_code == 403 and "location" not in r.headers
    r = client.post(url, data={"decision": "allow", "csrf_token": form_csrf(client, url)},
                    follow_redirects=False)
    assert r.headers["location"].startswith(CALLBACK + "?")
    assert location_params(r)["code"].startswith("gwocd_")


def test_the_authorize_page_asks_a_stale_session_for_the_password(client, acme, runtime):
    """Authorizing a consumer issues tokens: as for any credential, a session that signed in
    more than the fresh window ago must type the password again."""
    from tests.integration.oauth_helpers import (
        AUTHORIZE,
        CALLBACK,
        create_consumer,
        form_csrf,
        new_verifier,
        oauth_client,
    )

    consumer = create_consumer(client, acme)
    oc = oauth_client(client, consumer, code_challenge_method="S256")
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=new_verifier())
    sessions = runtime.web_sessions
    start = utcnow()
    sessions.clock = lambda: start
    sign_in(client, acme)
    sessions.clock = lambda: start + timedelta(seconds=runtime.settings.session_fresh_seconds + 1)
    page = client.get(url)
    assert "Signed in as" not in page.text and 'id="password"' in page.text
    r = client.post(url, data={"decision": "allow", "csrf_token": form_csrf(client, url)},
                    follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers
    r = client.post(url, data={"decision": "allow", "csrf_token": form_csrf(client, url),
                               "username": "alice", "password": acme.password},
                    follow_redirects=False)
    assert r.headers["location"].startswith(CALLBACK + "?")


def test_repository_pages_of_an_empty_repository_and_bad_addresses(client, acme):
    sign_in(client, acme)
    r = client.get("/acme/widget")
    assert r.status_code == 200 and "This repository is empty" in r.text
    assert "http://testserver/acme/widget.git" in r.text
    assert "No commits yet" in client.get("/acme/widget/commits").text
    for path in ("/acme/widget/src/main/README", "/acme/widget/src/nope",
                 "/acme/widget/commits/zzzz", "/acme/widget/commits/" + "a" * 40,
                 "/acme/widget/commits?branch=nope", "/acme/nothing/commits"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
    # page numbers that are not ASCII digits, or too long to be a number, are page 1
    for page in ("²", "١٢", "9" * 5000):
        assert client.get("/acme/widget/commits", params={"page": page}).status_code == 200


def test_an_expiry_that_is_not_ascii_digits_is_a_400(client, acme):
    sign_in(client, acme)
    for expiry in ("²", "١٢٣", "9" * 5000):
        r = post(client, "/account/personal-access-tokens",
                 {"name": "ci", "repository": "REPO_READ", "expiry": expiry})
        assert r.status_code == 400, (expiry, r.status_code)
        assert "Choose an expiry" in r.text


NEW_PASSWORD = "a much better passphrase 42"


def test_changing_the_password_ends_the_other_sessions(runtime, world):
    frank = world.user("frank")
    with _browser(runtime) as laptop, _browser(runtime) as phone:
        sign_in(laptop, frank)
        sign_in(phone, frank)
        r = post(laptop, "/account/password", {"current": "wrong", "new": NEW_PASSWORD,
                                               "confirm": NEW_PASSWORD})
        assert r.status_code == 400 and "not right" in r.text
        r = post(laptop, "/account/password", {"current": frank.password, "new": "short",
                                               "confirm": "short"})
        assert r.status_code == 400 and "at least" in r.text
        r = post(laptop, "/account/password", {"current": frank.password, "new": NEW_PASSWORD,
                                               "confirm": NEW_PASSWORD})
        assert r.status_code == 303 and "password-changed" in r.headers["location"]
        _session_cookie(r)  # this browser signed in again with the new password
        assert laptop.get("/account/sessions").status_code == 200
        r = phone.get("/account/sessions", follow_redirects=False)
        assert r.status_code == 303 and "ended=1" in r.headers["location"]
        frank.password = NEW_PASSWORD
        assert sign_in(phone, frank).status_code == 303


def test_an_admin_reset_is_a_temporary_password_to_change_first(runtime, world):
    root = world.user("root", site_admin=True)
    gina = world.user("gina")
    with _browser(runtime) as admin, _browser(runtime) as browser:
        sign_in(browser, gina)
        sign_in(admin, root)
        r = post(admin, "/admin/users/gina/reset-password", page="/admin/users/gina")
        assert r.status_code == 200
        temporary = new_secret(r.text)
        r = browser.get("/account/sessions", follow_redirects=False)
        assert r.status_code == 303 and "ended=1" in r.headers["location"]
        gina.password = temporary
        r = sign_in(browser, gina)
        assert r.status_code == 303
        for path in ("/", "/account/personal-access-tokens", "/account/sessions"):
            r = browser.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/account/password", path
        page = browser.get("/account/password")
        assert page.status_code == 200 and "set by an administrator" in page.text
        r = post(browser, "/account/password", {"current": temporary, "new": NEW_PASSWORD,
                                                "confirm": NEW_PASSWORD})
        assert r.status_code == 303
        assert browser.get("/account/sessions").status_code == 200


def test_workspace_owners_manage_oauth_consumers_and_members(client, runtime, world, acme):
    helen = world.user("helen")
    sign_in(client, acme)
    path = "/acme/settings/oauth-consumers"
    r = post(client, path, {"name": "Deploy app", "callback_url": "https://app.example.com/cb",
                            "confidential": "yes", "scope": ["repository"]})
    assert r.status_code == 200, r.text
    assert new_secret(r.text).startswith("gwcsk_")
    listed = client.get("/2.0/workspaces/acme/oauth-consumers", headers=acme.auth).json()
    assert [c["name"] for c in listed["values"]] == ["Deploy app"]
    r = post(client, "/acme/settings/members", {"username": "helen", "role": "member"})
    assert r.status_code == 303
    assert "helen" in client.get("/acme/settings/members").text
    with _browser(runtime) as browser:
        sign_in(browser, helen)  # a member, not an owner
        assert browser.get(path).status_code == 403
        assert browser.get("/acme/settings/members").status_code == 403
    consumer_id = listed["values"][0]["id"]
    assert post(client, f"{path}/{consumer_id}/delete", page=path).status_code == 303
    assert client.get("/2.0/workspaces/acme/oauth-consumers",
                      headers=acme.auth).json()["values"] == []


def test_behind_a_tls_proxy_the_origin_is_the_base_url(runtime, world, settings):
    """With GITWARD_BASE_URL set (TLS ends at a proxy), the browser's Origin is that URL's,
    not the scheme and Host the request reached the server with."""
    from gitward.runtime import Runtime

    world.user("ivan")
    proxied = Runtime.open(settings.with_overrides(base_url="https://git.example.com"))
    try:
        with _browser(proxied) as browser:
            token = page_csrf(browser, "/login")
            form = {"username": "ivan", "password": "correct horse battery staple",
                    "csrf_token": token}
            r = browser.post("/login", data=form, headers={"Origin": "http://testserver"},
                             follow_redirects=False)
            assert r.status_code == 403
            r = browser.post("/login", data=form, headers={"Origin": "https://git.example.com"},
                             follow_redirects=False)
            assert r.status_code == 303
    finally:
        proxied.close()


def test_repository_permissions_page_grants_changes_and_removes(client, runtime, world, acme):
    bob = world.user("bob")
    sign_in(client, acme)
    path = "/acme/widget/settings/permissions"
    r = client.get(path)
    assert r.status_code == 200 and "No user is granted a permission" in r.text
    assert client.get("/2.0/repositories/acme/widget", headers=bob.auth).status_code == 404
    r = post(client, path, {"username": "bob", "permission": "write"})
    assert r.status_code == 303 and r.headers["location"] == f"{path}?notice=modified"
    assert 'id="grant-bob"' in client.get(path).text
    # The page and the API are one: the grant is the API's, and bob reads from the next request.
    listed = client.get("/2.0/repositories/acme/widget/permissions-config/users",
                        headers=acme.auth).json()
    assert [(v["user"]["nickname"], v["permission"]) for v in listed["values"]] == [
        ("bob", "write")]
    assert listed["size"] == 1 and listed["values"][0]["repository"]["full_name"] == "acme/widget"
    assert client.get("/2.0/repositories/acme/widget", headers=bob.auth).status_code == 200
    # Bad input is the form again with the reason, nothing kept.
    r = post(client, path, {"username": "nobody", "permission": "read"})
    assert r.status_code == 400 and "User nobody not found" in r.text
    r = post(client, path, {"username": "bob", "permission": "owner"})
    assert r.status_code == 400 and "Invalid permission" in r.text
    assert "write" in client.get(path).text
    # A writer is no admin: the page is refused to him, and so is granting.
    with _browser(runtime) as browser:
        sign_in(browser, bob)
        assert browser.get(path).status_code == 403
        assert browser.get("/acme/widget").status_code == 200
        assert "settings/permissions" not in browser.get("/acme/widget").text
    assert post(client, f"{path}/bob/remove", page=path).status_code == 303
    assert client.get("/2.0/repositories/acme/widget", headers=bob.auth).status_code == 404
    assert "No user is granted" in client.get(path).text


def test_project_page_and_its_permissions(client, runtime, world, acme):
    carol = world.user("carol")
    world.repository(acme, "acme", "elsewhere", world.project(acme, "acme", "Q")["key"])
    world.project(acme, "acme", "PUB", is_private=False)
    world.repository(acme, "acme", "shown", "PUB", private=False)
    world.repository(acme, "acme", "kept", "PUB")
    # A private project is for those who may read it; a public one shows anyone its public
    # repositories, and only its own.
    r = client.get("/acme/workspace/projects/P", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = client.get("/acme/workspace/projects/PUB")
    assert r.status_code == 200
    assert 'href="/acme/shown"' in r.text and 'href="/acme/kept"' not in r.text
    assert 'href="/acme/open"' not in r.text and "settings/permissions" not in r.text
    sign_in(client, acme)
    r = client.get("/acme/workspace/projects/P")
    assert 'href="/acme/widget"' in r.text and 'href="/acme/elsewhere"' not in r.text
    assert 'href="/acme/projects/P/settings/permissions"' in r.text
    assert 'href="/acme/workspace/projects/P"' in client.get("/acme").text
    assert client.get("/acme/workspace/projects/NOPE").status_code == 404
    path = "/acme/projects/P/settings/permissions"
    assert post(client, path, {"username": "carol", "permission": "read"}).status_code == 303
    # A project permission reaches the project's repositories.
    assert client.get("/2.0/repositories/acme/widget", headers=carol.auth).status_code == 200
    assert client.get("/2.0/repositories/acme/elsewhere", headers=carol.auth).status_code == 404
    listed = client.get("/2.0/workspaces/acme/projects/P/permissions-config/users",
                        headers=acme.auth).json()
    assert [(v["user"]["nickname"], v["permission"]) for v in listed["values"]] == [
        ("carol", "read")]
    assert client.get("/2.0/workspaces/acme/projects/P/permissions-config/users",
                      headers=carol.auth).status_code == 403
    with _browser(runtime) as browser:
        sign_in(browser, carol)
        r = browser.get("/acme/workspace/projects/P")
        assert 'href="/acme/widget"' in r.text and "settings/permissions" not in r.text
        assert browser.get(path).status_code == 403
    assert post(client, f"{path}/carol/remove", page=path).status_code == 303
    assert client.get("/2.0/repositories/acme/widget", headers=carol.auth).status_code == 404
    r = post(client, f"{path}/carol/remove", page=path)
    assert r.status_code == 400 and "has no permission" in r.text


def test_a_users_profile_page_is_where_the_api_links(client, runtime, world, acme):
    world.user("erin")
    r = client.get("/2.0/users/erin", headers=acme.auth)
    html_link = r.json()["links"]["html"]["href"]
    assert html_link == "http://testserver/users/erin"
    # Anonymous callers are asked to sign in, as the API asks them to authenticate.
    r = client.get("/users/erin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    sign_in(client, acme)
    r = client.get("/users/erin")
    assert r.status_code == 200 and "<h1>erin</h1>" in r.text
    assert "erin@example.com" not in r.text
    assert client.get("/users/nobody").status_code == 404
    # A deactivated account has no profile, here as in the API.
    root = world.user("root", site_admin=True)
    r = client.put("/rest/api/1.0/admin/users", json={"name": "erin", "active": False},
                   headers=root.auth)
    assert r.status_code == 200, r.text
    assert client.get("/users/erin").status_code == 404


def test_the_audit_log_page_for_site_admins(client, runtime, world, acme):
    root = world.user("root", site_admin=True)
    world.user("frank")
    world.grant_repo(acme, "acme", "widget", "frank", "read")
    sign_in(client, acme)
    # Not a site admin: no log.
    assert client.get("/admin/audit").status_code == 403
    with _browser(runtime) as browser:
        sign_in(browser, root)
        r = browser.get("/admin/audit")
        assert r.status_code == 200 and 'aria-current="page">Audit log' in r.text
        rows = r.text.split('<tr id="event-')[1:]
        assert rows, r.text[-2000:]
        # Newest first: root's own sign-in comes before the grant, which comes before the
        # repositories were created.
        actions = [row.split("<code>", 1)[1].split("</code>", 1)[0] for row in rows]
        assert actions.index("repository.permission.set") < actions.index("repository.create")
        r = browser.get("/admin/audit", params={"action": "repository.permission.set"})
        assert r.status_code == 200 and r.text.count('<tr id="event-') == 1
        assert "repository:acme/widget" in r.text and "user: frank" in r.text
        r = browser.get("/admin/audit", params={"actor": "frank"})
        assert r.text.count('<tr id="event-') == 0 and "No event matches" in r.text
        # A bad filter is the form's error, above the newest events.
        r = browser.get("/admin/audit", params={"from": "yesterday"})
        assert r.status_code == 400 and "from must be an ISO 8601 date" in r.text
        assert 'value="yesterday"' in r.text and '<tr id="event-' in r.text
        r = browser.get("/admin/audit", params={"actor": "a\x00b"})  # a 500 on PostgreSQL
        assert r.status_code == 400 and "actor must be one line of text" in r.text
        # Paging: 50 a page, newest first, the filter kept in the links.
        for n in range(55):
            world.grant_repo(acme, "acme", "widget", "frank", "read" if n % 2 else "write")
        r = browser.get("/admin/audit", params={"action": "repository.permission.set"})
        assert r.text.count('<tr id="event-') == 50
        assert "action=repository.permission.set&amp;page=2" in r.text
        r = browser.get("/admin/audit", params={"action": "repository.permission.set",
                                                "page": "2"})
        assert r.text.count('<tr id="event-') == 6 and "page=1" in r.text
