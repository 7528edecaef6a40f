"""Bad input is a clear 4xx in the right error shape, never a 500; and the OpenAPI description."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api_checks import cloud_error, server_error


@pytest.fixture
def acme(world):
    alice = world.user("alice")
    world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


JSON_ENDPOINTS = [
    ("POST", "/2.0/workspaces"),
    ("PUT", "/2.0/workspaces/acme/members/bob"),
    ("POST", "/2.0/workspaces/acme/projects"),
    ("PUT", "/2.0/workspaces/acme/projects/PRJ"),
    ("PUT", "/2.0/workspaces/acme/projects/PRJ/permissions-config/users/bob"),
    ("POST", "/2.0/repositories/acme/fresh"),
    ("PUT", "/2.0/repositories/acme/widget"),
    ("PUT", "/2.0/repositories/acme/widget/permissions-config/users/bob"),
]


def send(client, method, url, auth, **kwargs):
    return client.request(method, url, headers={**auth, **kwargs.pop("headers", {})}, **kwargs)


@pytest.mark.parametrize(("method", "url"), JSON_ENDPOINTS)
def test_malformed_and_non_object_bodies(acme, client, method, url):
    ct = {"Content-Type": "application/json"}
    for raw in (b"{", b"{'slug': 1}", b"\xff\xfe", b"[1,", b"nul"):
        cloud_error(send(client, method, url, acme.auth, content=raw, headers=ct), 400)
    for value in ([], [{"slug": "x"}], "text", 42, True):
        r = send(client, method, url, acme.auth, content=json.dumps(value), headers=ct)
        if url == "/2.0/repositories/acme/fresh" and value is True:
            continue  # a JSON literal that is not an object: checked just below
        cloud_error(r, 400, "JSON object")


def test_malformed_json_message(acme, client):
    r = client.post("/2.0/workspaces", content=b"{", headers={**acme.auth,
                                                             "Content-Type": "application/json"})
    cloud_error(r, 400, "Malformed JSON")


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("POST", "/2.0/workspaces", {"slug": 5}, "slug"),
        ("POST", "/2.0/workspaces", {"slug": "ok", "name": ["x"]}, "name"),
        ("POST", "/2.0/workspaces/acme/projects", {"key": "K", "name": "n", "is_private": "yes"},
         "is_private"),
        ("POST", "/2.0/workspaces/acme/projects", {"key": 1, "name": "n"}, "key"),
        ("POST", "/2.0/workspaces/acme/projects", {"key": "K", "name": "n", "description": 5},
         "description"),
        ("PUT", "/2.0/workspaces/acme/projects/PRJ", {"is_private": 1}, "is_private"),
        ("POST", "/2.0/repositories/acme/fresh", {"is_private": "yes"}, "is_private"),
        ("POST", "/2.0/repositories/acme/fresh", {"project": {"key": 7}}, "project.key"),
        ("POST", "/2.0/repositories/acme/fresh", {"project": []}, "project"),
        ("POST", "/2.0/repositories/acme/fresh", {"scm": None}, "scm"),
        ("PUT", "/2.0/repositories/acme/widget", {"mainbranch": "main"}, "mainbranch"),
        ("PUT", "/2.0/repositories/acme/widget", {"name": {"a": 1}}, "name"),
        ("PUT", "/2.0/workspaces/acme/members/bob", {"role": True}, "role"),
        ("PUT", "/2.0/repositories/acme/widget/permissions-config/users/bob",
         {"permission": 3}, "permission"),
    ],
)
def test_wrong_types_name_the_field(acme, client, method, url, body, field):
    cloud_error(send(client, method, url, acme.auth, json=body), 400, field)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "/2.0/workspaces/acme/members/bob", {"role": "admin"}),
        ("PUT", "/2.0/workspaces/acme/projects/PRJ/permissions-config/users/bob",
         {"permission": "superuser"}),
        ("PUT", "/2.0/workspaces/acme/projects/PRJ/permissions-config/users/bob",
         {"permission": "READ"}),
        ("PUT", "/2.0/repositories/acme/widget/permissions-config/users/bob",
         {"permission": "create-repo"}),
        ("PUT", "/2.0/repositories/acme/widget/permissions-config/users/bob",
         {"permission": ""}),
    ],
)
def test_unknown_roles_and_permissions(acme, client, method, url, body):
    cloud_error(send(client, method, url, acme.auth, json=body), 400)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/2.0/workspaces", {"slug": "ok", "name": "a\u0000b"}),
        ("POST", "/2.0/workspaces/acme/projects", {"key": "K", "name": "n",
                                                   "description": "nul \u0000 here"}),
        ("PUT", "/2.0/workspaces/acme/projects/PRJ", {"description": "\u0000"}),
        ("POST", "/2.0/repositories/acme/fresh", {"description": "\u0000"}),
        ("PUT", "/2.0/repositories/acme/widget", {"description": "x\u0000"}),
        ("POST", "/2.0/workspaces/acme/projects", {"key": "K", "name": "n",
                                                   "description": "x" * 10001}),
        ("POST", "/2.0/workspaces", {"slug": "ok", "name": "n" * 256}),
        ("POST", "/2.0/workspaces/acme/projects", {"key": "K" * 65, "name": "n"}),
        ("POST", "/2.0/workspaces/acme/projects", {"key": "K", "name": "\ud800"}),
    ],
)
def test_unstorable_text_is_refused(acme, client, method, url, body):
    """NUL characters (which PostgreSQL cannot store), lone surrogates and overlong text."""
    content = json.dumps(body).encode()
    r = send(client, method, url, acme.auth, content=content,
             headers={"Content-Type": "application/json"})
    cloud_error(r, 400)


def test_oversized_bodies_are_413(acme, client, runtime):
    limit = runtime.settings.max_body_bytes
    big = json.dumps({"slug": "big", "name": "n", "padding": "x" * (limit + 10)})
    cloud_error(client.post("/2.0/workspaces", content=big, headers={
        **acme.auth, "Content-Type": "application/json"}), 413, "limit")

    def chunks():
        yield b'{"slug": "big", "padding": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    # Without a Content-Length (chunked), counted as it arrives.
    cloud_error(client.post("/2.0/workspaces", content=chunks(), headers={
        **acme.auth, "Content-Type": "application/json"}), 413)
    server_error(client.post("/rest/api/1.0/admin/users", content=b"x" * (limit + 1),
                             headers=acme.auth), 413)
    # A body just under the limit is fine.
    ok = json.dumps({"slug": "fits", "pad": "x" * (limit - 100)})
    assert len(ok) <= limit
    r = client.post("/2.0/workspaces", content=ok, headers={
        **acme.auth, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_head_answers_as_get_without_a_body(acme, client):
    for url in ("/2.0/repositories/acme/widget", "/rest/access-tokens/1.0/users/alice",
                "/2.0/user", "/openapi.json"):
        got = client.get(url, headers=acme.auth)
        head = client.head(url, headers=acme.auth)
        assert head.status_code == got.status_code == 200, url
        assert head.content == b"" and got.content
        assert head.headers["content-type"] == got.headers["content-type"]
        assert int(head.headers["content-length"]) == len(got.content)
    r = client.head("/2.0/repositories/acme/widget")
    assert r.status_code == client.get("/2.0/repositories/acme/widget").status_code == 401
    assert r.content == b""
    r = client.head("/2.0/user")
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers and r.content == b""
    # Only GET routes answer HEAD.
    assert client.head("/2.0/workspaces/acme/oauth-consumers/1/secret",
                       headers=acme.auth).status_code == 405


def test_unsupported_methods_are_405(acme, client):
    for method, url in [
        ("PATCH", "/2.0/user"),
        ("DELETE", "/2.0/user"),
        ("POST", "/2.0/repositories/acme"),
        ("PATCH", "/2.0/repositories/acme/widget"),
        ("POST", "/2.0/workspaces/acme"),
        ("DELETE", "/2.0/workspaces/acme/projects"),
        ("PUT", "/2.0/repositories/acme/widget/refs/branches"),
    ]:
        r = client.request(method, url, headers=acme.auth)
        cloud_error(r, 405, method)
    server_error(client.patch("/rest/api/1.0/admin/users", headers=acme.auth), 405)
    server_error(client.post("/rest/api/1.0/repos", headers=acme.auth), 405)


def test_unknown_paths_are_404_in_the_family_shape(acme, client):
    for url in ("/2.0/nothing", "/2.0/repositories/acme/widget/nothing", "/2.0/", "/2.0"):
        cloud_error(client.get(url, headers=acme.auth), 404)
    server_error(client.get("/rest/api/1.0/nothing", headers=acme.auth), 404)


def test_bad_paging_params(acme, client):
    for url in ("/2.0/repositories/acme", "/2.0/workspaces/acme/members", "/2.0/user/workspaces",
                "/2.0/repositories/acme/widget/refs/branches"):
        for bad in ("pagelen=0", "pagelen=1000", "pagelen=ten", "page=0", "page=x", "page="):
            r = client.get(f"{url}?{bad}", headers=acme.auth)
            if bad == "page=":
                assert r.status_code == 200  # empty means default
                continue
            cloud_error(r, 400, bad.split("=")[0])


def test_openapi_lists_the_implemented_paths(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    expected = {
        "/2.0/user": {"get"},
        "/2.0/user/workspaces": {"get"},
        "/2.0/workspaces": {"post"},
        "/2.0/workspaces/{workspace}": {"get"},
        "/2.0/workspaces/{workspace}/members": {"get"},
        "/2.0/workspaces/{workspace}/members/{user}": {"get", "put", "delete"},
        "/2.0/workspaces/{workspace}/projects": {"get", "post"},
        "/2.0/workspaces/{workspace}/projects/{project_key}": {"get", "put", "delete"},
        "/2.0/workspaces/{workspace}/projects/{project_key}/permissions-config/users/{user}": {
            "put", "delete"},
        "/2.0/repositories/{workspace}": {"get"},
        "/2.0/repositories/{workspace}/{repo_slug}": {"get", "post", "put", "delete"},
        "/2.0/repositories/{workspace}/{repo_slug}/refs/branches": {"get"},
        "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/users/{user}": {
            "put", "delete"},
        # `latest` is the same as 1.0: one alias for the surface, not a path parameter.
        "/rest/api/1.0/admin/users": {"get", "post", "put", "delete"},
        "/rest/api/1.0/application-properties": {"get"},
        "/rest/api/1.0/projects": {"get", "post"},
        "/rest/api/1.0/projects/{project_key}": {"get", "put", "delete"},
        "/rest/api/1.0/projects/{project_key}/permissions/users": {"get", "put", "delete"},
        "/rest/api/1.0/projects/{project_key}/repos": {"get", "post"},
        "/rest/api/1.0/projects/{project_key}/repos/{repo_slug}": {"get", "put", "delete"},
        "/rest/api/1.0/projects/{project_key}/repos/{repo_slug}/permissions/users": {
            "get", "put", "delete"},
        "/rest/api/1.0/repos": {"get"},
        "/rest/api/1.0/users": {"get"},
        "/rest/api/1.0/users/{user_slug}": {"get"},
        "/rest/access-tokens/1.0/users/{user_slug}": {"get", "put"},
        "/rest/revocation/1.0/tokens": {"post"},
        "/rest/access-tokens/1.0/projects/{project_key}": {"get", "put"},
        "/rest/access-tokens/1.0/projects/{project_key}/{token_id}": {"get", "post", "delete"},
        "/rest/access-tokens/1.0/projects/{project_key}/repos/{repo_slug}": {"get", "put"},
        "/rest/access-tokens/1.0/projects/{project_key}/repos/{repo_slug}/{token_id}": {
            "get", "post", "delete"},
        "/status": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["slug", "name", "key", "description", "is_private", "role", "permission", "scm",
          "project", "mainbranch"]
json_bodies = json_values | st.dictionaries(
    st.sampled_from(FIELDS),
    json_values | st.fixed_dictionaries({"key": json_values}) | st.fixed_dictionaries(
        {"name": json_values}),
    max_size=5,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(endpoint=st.sampled_from(JSON_ENDPOINTS), body=json_bodies)
def test_fuzzed_bodies_never_500(acme, client, endpoint, body):
    method, url = endpoint
    r = send(client, method, url, acme.auth, content=json.dumps(body),
             headers={"Content-Type": "application/json"})
    assert r.status_code < 500, (method, url, body, r.text)
    if r.status_code >= 400:
        cloud_error(r, r.status_code)


def test_descriptions_keep_newlines_and_tabs(acme, client):
    r = client.put("/2.0/repositories/acme/widget", json={"description": "line 1\n\tline 2"},
                   headers=acme.auth)
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "line 1\n\tline 2"


def test_git_paths_do_not_swallow_rest_paths(acme, client):
    """Git's POST route takes only git's services; other POSTs reach the REST routes."""
    r = client.post("/acme/widget/git-upload-pack", headers=acme.auth)
    assert r.status_code == 415
    assert r.headers["content-type"].startswith("text/plain")
    cloud_error(client.post("/2.0/repositories/acme", headers=acme.auth), 405)
    cloud_error(client.post("/2.0/foo/bar", headers=acme.auth), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/2.0/workspaces/a%00b"),
        ("GET", "/2.0/workspaces/acme/projects/P%00"),
        ("GET", "/2.0/repositories/a%00b"),
        ("GET", "/2.0/repositories/acme/a%00b"),
        ("GET", "/2.0/repositories/acme/a%00b/refs/branches"),
        ("PUT", "/2.0/workspaces/acme/members/b%00b"),
        ("DELETE", "/2.0/workspaces/acme/members/%7Bx%00%7D"),
        ("PUT", "/2.0/repositories/acme/widget/permissions-config/users/b%00b"),
        ("POST", "/2.0/repositories/acme/a%00b"),
    ],
)
def test_nul_in_paths_is_not_found(acme, client, method, url):
    """PostgreSQL cannot compare text with NUL in it: such names simply do not exist."""
    body = {"role": "member", "permission": "read"} if method == "PUT" else None
    r = client.request(method, url, json=body, headers=acme.auth)
    assert r.status_code in (400, 404), r.text
    cloud_error(r, r.status_code)


def test_nul_in_admin_parameters_is_400(acme, client, world):
    root = world.user("root", site_admin=True)
    for params in (
        "name=x%00y&password=xxxxxxxxxx&emailAddress=a@b.c",
        "name=xy&password=xxxxxxxxxx&emailAddress=a%00@b.c",
        "name=xy&password=xxxxxxxxxx&emailAddress=a%01@b.c",
        "name=xy&password=xxxxxxxxxx&emailAddress=a@b.c&displayName=N%00",
    ):
        server_error(client.post(f"/rest/api/1.0/admin/users?{params}", headers=root.auth), 400)
    # A password is hashed, never stored: any character will do.
    r = client.post("/rest/api/1.0/admin/users?name=xy&password=xxxx%00xxxxxx&emailAddress=a@b.c",
                    headers=root.auth)
    assert r.status_code == 204, r.text
    # Basic credentials with NUL in the username: a 401, not a 500.
    token = base64.b64encode(b"ali\x00ce:secret").decode()
    cloud_error(client.get("/2.0/user", headers={"Authorization": f"Basic {token}"}), 401)
