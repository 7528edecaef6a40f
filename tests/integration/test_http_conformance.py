"""What the HTTP surfaces promise about themselves: /openapi.json lists the statuses they
really answer and the methods a 405's `Allow` names; one credential per request; Git paths
as forgiving as REST about `.git`; the authorize form only from our own page; consumer
callbacks without user info."""

from __future__ import annotations

import re
import subprocess

import pytest

from gitward.credentials import codec
from tests.integration.conftest import basic, bearer
from tests.integration.oauth_helpers import (
    AUTHORIZE,
    BASE,
    CALLBACK,
    create_consumer,
    form_csrf,
    new_verifier,
    oauth_client,
)

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture
def settings(sqlite_settings):
    return sqlite_settings  # the subject is HTTP, not the database


@pytest.fixture
def alice(world, runtime):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    body = world.repository(alice, "acme", "widget", "PRJ", private=False)
    bare = runtime.git.path_of(body["uuid"].strip("{}") + ".git")
    stream = ("commit refs/heads/main\ncommitter T <t@example.com> 1700000000 +0000\n"
              "data 2\nc\nM 644 inline a.txt\ndata 2\na\n\n")
    subprocess.run(["git", "--git-dir", str(bare), "fast-import", "--quiet"], input=stream,
                   text=True, check=True)
    return alice


def _spec(client):
    return client.get("/openapi.json").json()


def _operation(spec, path, method):
    return spec["paths"][path][method]


# -- /openapi.json: the statuses ------------------------------------------------------------


def test_no_operation_documents_a_422_and_every_one_documents_its_errors(client):
    spec = _spec(client)
    for path, item in spec["paths"].items():
        if not path.startswith(("/2.0", "/rest")):
            continue
        for method in METHODS:
            if method not in item:
                continue
            responses = item[method]["responses"]
            assert "422" not in responses, (path, method)
            assert "400" in responses, (path, method)
            if method in ("put", "post", "patch"):
                assert "413" in responses, (path, method)
            schema = responses["400"]["content"]["application/json"]["schema"]["$ref"]
            assert schema.endswith("/CloudError" if path.startswith("/2.0") else "/ServerError")
    assert {"CloudError", "ServerError"} <= set(spec["components"]["schemas"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def _answers(client, alice):
    """(documented path, method, status) for real requests, each answering that status."""
    wrong = basic("alice", "not the password")
    pat = client.put("/rest/access-tokens/1.0/users/alice",
                     json={"name": "r", "permissions": ["REPO_READ"]},
                     headers=alice.auth).json()["token"]
    yield ("/2.0/repositories/{workspace}", "get",
           client.get("/2.0/repositories/acme?pagelen=x", headers=alice.auth).status_code)
    yield ("/2.0/repositories/{workspace}/{repo_slug}", "get",
           client.get("/2.0/repositories/acme/nothing", headers=alice.auth).status_code)
    yield ("/2.0/repositories/{workspace}/{repo_slug}", "put",
           client.put("/2.0/repositories/acme/widget", json={"description": "x"},
                      headers=wrong).status_code)
    yield ("/2.0/repositories/{workspace}/{repo_slug}", "put",
           client.put("/2.0/repositories/acme/widget", json={"description": "x"},
                      headers=bearer(pat)).status_code)
    yield ("/2.0/repositories/{workspace}/{repo_slug}", "put",
           client.put("/2.0/repositories/acme/widget", content=b'{"description": "'
                      + b"x" * 1_100_000 + b'"}', headers={**alice.auth,
                      "Content-Type": "application/json"}).status_code)
    duplicate = client.post("/rest/api/1.0/projects/PRJ/repos", json={"name": "widget"},
                            headers=alice.auth)
    assert duplicate.status_code == 409, duplicate.text
    yield ("/rest/api/1.0/projects/{project_key}/repos", "post", duplicate.status_code)
    for _ in range(12):
        last = client.get("/rest/api/1.0/projects", headers=wrong).status_code
    yield ("/rest/api/1.0/projects", "get", last)


def test_the_statuses_answered_are_the_statuses_documented(client, alice):
    spec = _spec(client)
    seen = set()
    for path, method, status in _answers(client, alice):
        seen.add(status)
        assert str(status) in _operation(spec, path, method)["responses"], (path, method, status)
    assert seen == {400, 401, 403, 404, 409, 413, 429}


def test_the_admin_api_documents_the_404_for_a_user_it_does_not_find(client, world):
    """The admin API names the user in its query or body, not its path: a user who does not
    exist is a 404, which its operations document (found by the fuzzing of /openapi.json)."""
    root = world.user("root", site_admin=True)
    spec = _spec(client)
    answers = {
        "put": client.put("/rest/api/1.0/admin/users", json={"name": "nobody"},
                          headers=root.auth),
        "delete": client.delete("/rest/api/1.0/admin/users?name=nobody", headers=root.auth),
    }
    for method, r in answers.items():
        assert r.status_code == 404, r.text
        assert "404" in _operation(spec, "/rest/api/1.0/admin/users", method)["responses"]
    r = client.put("/rest/api/1.0/admin/users/credentials", headers=root.auth,
                   json={"name": "nobody", "password": "p" * 20, "passwordConfirm": "p" * 20})
    assert r.status_code == 404, r.text
    assert "404" in _operation(spec, "/rest/api/1.0/admin/users/credentials", "put")["responses"]
    r = client.delete("/rest/api/1.0/admin/users/captcha?name=nobody", headers=root.auth)
    assert r.status_code == 404, r.text
    assert "404" in _operation(spec, "/rest/api/1.0/admin/users/captcha", "delete")["responses"]
    # The rule adds it only where a resource is named: the listing finds no one by name.
    assert "404" not in _operation(spec, "/rest/api/1.0/admin/users", "get")["responses"]


def test_the_content_types_answered_are_the_content_types_documented(client, alice):
    """Avatars are SVG, diffs and files plain text: each operation documents the type it
    answers, not FastAPI's default JSON (found by the fuzzing of /openapi.json)."""
    spec = _spec(client)
    cases = [
        ("/2.0/users/{selected_user}/avatar", "/2.0/users/alice/avatar", "image/svg+xml"),
        ("/2.0/repositories/{workspace}/{repo_slug}/diff/{spec}",
         "/2.0/repositories/acme/widget/diff/main", "text/plain"),
        ("/2.0/repositories/{workspace}/{repo_slug}/src/{revision}/{path}",
         "/2.0/repositories/acme/widget/src/main/a.txt", "text/plain"),
        ("/2.0/repositories/{workspace}/{repo_slug}/src/{revision}/{path}",
         "/2.0/repositories/acme/widget/src/main/a.txt?format=meta", "application/json"),
        ("/rest/api/1.0/projects/{project_key}/repos/{slug}/raw/{path}",
         "/rest/api/1.0/projects/PRJ/repos/widget/raw/a.txt", "text/plain"),
    ]
    for documented, url, expected in cases:
        r = client.get(url, headers=alice.auth)
        assert r.status_code == 200, (url, r.text)
        received = r.headers["content-type"].split(";")[0]
        assert received == expected, (url, received)
        content = _operation(spec, documented, "get")["responses"]["200"]["content"]
        assert any(kind == received or (kind.endswith("/*") and received.startswith(kind[:-1]))
                   for kind in content), (documented, received, list(content))
    avatar = _operation(spec, "/2.0/users/{selected_user}/avatar", "get")["responses"]["200"]
    assert list(avatar["content"]) == ["image/svg+xml"]
    diff = "/2.0/repositories/{workspace}/{repo_slug}/diff/{spec}"
    assert list(_operation(spec, diff, "get")["responses"]["200"]["content"]) == ["text/plain"]


def test_the_revocation_api_documents_no_credential_errors(client):
    responses = _operation(_spec(client), "/rest/revocation/1.0/tokens", "post")["responses"]
    assert set(responses) == {"200", "400", "413", "429"}


# -- 405: Allow names every method of the path ------------------------------------------------


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("".join(
        "[^/]+" if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[^}]+\})", path)
    ) + "$")


def test_allow_on_405_lists_exactly_the_methods_documented(client):
    spec = _spec(client)
    patterns = {path: _pattern(path) for path in spec["paths"]}
    checked = 0
    for path in spec["paths"]:
        # Every documented path the request's path is (`/users/credentials` is also a
        # `/users/{user_slug}`).
        documented = {
            m.upper()
            for other, item in spec["paths"].items()
            if patterns[other].match(_concrete(path))
            for m in METHODS
            if m in item
        }
        unused = next((m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented),
                      None)
        if unused is None or path.endswith("{path}"):
            continue
        r = client.request(unused, _concrete(path))
        assert r.status_code == 405, (path, unused, r.status_code)
        allowed = {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD", "OPTIONS"}
        assert allowed == documented, (path, allowed, documented)
        checked += 1
    assert checked > 50


# -- credentials ------------------------------------------------------------------------------


def test_two_authorization_headers_are_a_400_on_every_surface(client, alice):
    good = alice.auth["Authorization"]
    other = bearer(codec.generate("gwpat_"))["Authorization"]
    for path in ("/2.0/user", "/rest/api/1.0/projects", "/site/oauth2/access_token",
                 "/acme/widget.git/info/refs?service=git-upload-pack"):
        for pair in ((good, good), (good, other), (other, good)):
            r = client.get(path, headers=[("Authorization", pair[0]),
                                          ("Authorization", pair[1])])
            assert r.status_code == 400, (path, r.text)
            assert "one Authorization header" in r.text, path
    for path in ("/2.0/user", "/rest/api/1.0/projects",
                 "/acme/widget.git/info/refs?service=git-upload-pack"):
        assert client.get(path, headers=alice.auth).status_code == 200  # one is fine


# -- Git paths --------------------------------------------------------------------------------


def test_the_git_suffix_is_case_insensitive_like_rest_names(client, alice):
    for name in ("widget.git", "widget.GIT", "widget.Git", "widget", "WIDGET.GIT"):
        for path in (f"/acme/{name}/info/refs", f"/scm/PRJ/{name}/info/refs"):
            r = client.get(path, params={"service": "git-upload-pack"})
            assert r.status_code == 200, (path, r.text)
            assert r.headers["content-type"] == "application/x-git-upload-pack-advertisement"
        # REST names the repository in any case too.
        slug = name[:-4] if name[-4:].lower() == ".git" else name
        assert client.get(f"/2.0/repositories/acme/{slug}").status_code == 200


# -- the OAuth authorize form --------------------------------------------------------------


def _authorize_url(client, alice):
    consumer = create_consumer(client, alice)
    oc = oauth_client(client, consumer, code_challenge_method="S256")
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=new_verifier())
    return url


def test_the_authorize_form_needs_its_csrf_token(client, alice):
    url = _authorize_url(client, alice)
    form = {"username": "alice", "password": alice.password, "decision": "allow"}
    for extra in ({}, {"csrf_token": "0" * 64}):
        r = client.post(url, data={**form, **extra}, follow_redirects=False)
        assert r.status_code == 403, r.text
        assert "location" not in r.headers
    ok = client.post(url, data={**form, "csrf_token": form_csrf(client, url)},
                     follow_redirects=False)
    assert ok.status_code == 302 and ok.headers["location"].startswith(CALLBACK)


def test_the_authorize_form_from_another_site_is_refused(client, alice):
    url = _authorize_url(client, alice)
    form = {"username": "alice", "password": alice.password, "decision": "allow",
            "csrf_token": form_csrf(client, url)}
    r = client.post(url, data=form, headers={"Origin": "https://evil.example"},
                    follow_redirects=False)
    assert r.status_code == 403 and "location" not in r.headers
    assert "another site" in r.text
    same = client.post(url, data=form, headers={"Origin": BASE}, follow_redirects=False)
    assert same.status_code == 302


# -- OAuth consumers --------------------------------------------------------------------------


def test_a_callback_url_with_user_info_is_refused(client, alice):
    consumer = create_consumer(client, alice)
    for callback in ("https://user@app.example.com/cb", "https://user:pass@app.example.com/cb",
                     "https://:pass@app.example.com/cb", "https://@app.example.com/cb",
                     "https://app.example.com@evil.example/cb"):
        r = client.post("/2.0/workspaces/acme/oauth-consumers",
                        json={"name": "x", "callback_url": callback, "scopes": ["repository"]},
                        headers=alice.auth)
        assert r.status_code == 400, (callback, r.text)
        assert "user info" in r.json()["error"]["message"]
        r = client.put(f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}",
                       json={"callback_url": callback}, headers=alice.auth)
        assert r.status_code == 400, (callback, r.text)
