"""Cloud listings: BBQL `q`, `sort`, `role`, `fields`, `GET /2.0/repositories`,
`GET /2.0/workspaces` and `GET /2.0/users/{user}`, on SQLite and PostgreSQL.

Query shapes are Bitbucket Cloud's (its "Filtering and sorting API responses" docs:
`name ~ "..."`, `project.key = "..."`, `updated_on > 2015-11-01`, `sort=-updated_on`); the
error message for an unknown field is Bitbucket's own (`Field "commit.date" does not support
filtering`, quoted in Atlassian's issue BCLOUD-22361); `fields` as the partial-response
section of the same docs (`fields=values.id,next`, `-values.links`, `+values.reviewers`).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api_checks import BASE, cloud_error, cloud_object


def _setup(world):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    world.project(alice, "acme", "OPS", is_private=False)
    world.repository(alice, "acme", "site", "WEB")
    world.repository(alice, "acme", "api", "WEB")
    world.repository(alice, "acme", "deploy", "OPS", private=False)
    world.repository(alice, "acme", "docs-site", "OPS", private=False)
    return alice, bob


def _slugs(r):
    assert r.status_code == 200, r.text
    return [v["slug"] for v in r.json()["values"]]


def test_q_filters_in_sql_and_counts(world, client):
    alice, _ = _setup(world)
    def get(q, **kw):
        return client.get("/2.0/repositories/acme", params={"q": q, **kw}, headers=alice.auth)

    assert _slugs(get('name ~ "SITE"')) == ["docs-site", "site"]
    assert _slugs(get('project.key = "OPS"')) == ["deploy", "docs-site"]
    assert _slugs(get('is_private = false AND name !~ "docs"')) == ["deploy"]
    assert _slugs(get('(slug = "api" OR slug = "deploy") AND workspace.slug = "acme"')) == [
        "api", "deploy"]
    assert _slugs(get("created_on > 2000-01-01 AND size >= 0")) == [
        "api", "deploy", "docs-site", "site"]
    assert _slugs(get("created_on < 2000-01-01")) == []
    assert _slugs(get('mainbranch.name = null AND full_name = "acme/api"')) == ["api"]
    r = get('project.key = "WEB"', pagelen="1")
    assert r.json()["size"] == 2 and len(r.json()["values"]) == 1 and "next" in r.json()
    # The link a project hands out for its repositories is such a query.
    project = client.get("/2.0/workspaces/acme/projects/OPS", headers=alice.auth).json()
    href = project["links"]["repositories"]["href"]
    assert _slugs(client.get(href[len(BASE):], headers=alice.auth)) == ["deploy", "docs-site"]


def test_q_errors_are_cloud_400s_naming_the_problem(world, client):
    alice, _ = _setup(world)
    url = "/2.0/repositories/acme"
    body = cloud_error(client.get(url, params={"q": 'commit.date > 2011-05-18'},
                                  headers=alice.auth), 400)
    assert body["error"]["message"] == 'Field "commit.date" does not support filtering at position 1'
    cloud_error(client.get(url, params={"q": 'name = "x'}, headers=alice.auth), 400,
                "Unterminated string at position 8")
    cloud_error(client.get(url, params={"q": "size ~ 5"}, headers=alice.auth), 400, "text field")
    cloud_error(client.get(url, params={"sort": "-secret"}, headers=alice.auth), 400,
                'Field "secret" does not support sorting')
    cloud_error(client.get(url, params={"role": "king"}, headers=alice.auth), 400, "member")
    cloud_error(client.get(url, params={"q": "name = \"\x00\""}, headers=alice.auth), 400)


def test_sort(world, client):
    alice, _ = _setup(world)
    r = client.get("/2.0/repositories/acme", params={"sort": "-name"}, headers=alice.auth)
    assert _slugs(r) == ["site", "docs-site", "deploy", "api"]
    r = client.get("/2.0/repositories/acme", params={"sort": "project.key", "pagelen": 2,
                                                     "page": 2}, headers=alice.auth)
    assert _slugs(r) == ["api", "site"]
    r = client.get("/2.0/workspaces/acme/projects", params={"sort": "-key"}, headers=alice.auth)
    assert [v["key"] for v in r.json()["values"]] == ["WEB", "OPS"]
    r = client.get("/2.0/workspaces/acme/projects", params={"q": 'name ~ "op"'},
                   headers=alice.auth)
    assert [v["key"] for v in r.json()["values"]] == ["OPS"]


def test_role_on_repository_listings(world, client):
    alice, bob = _setup(world)
    world.grant_repo(alice, "acme", "site", "bob", "write")
    world.grant_repo(alice, "acme", "deploy", "bob", "read")
    def listing(role, url="/2.0/repositories/acme", who=bob):
        return _slugs(client.get(url, params={"role": role}, headers=who.auth))

    # Without a role bob sees what he may read: his grants and the public repositories.
    assert listing("") == ["deploy", "docs-site", "site"]
    assert listing("member") == ["deploy", "site"]  # explicit access, not mere publicity
    assert listing("contributor") == ["site"]
    assert listing("admin") == []
    assert listing("owner") == []
    assert listing("owner", who=alice) == ["api", "deploy", "docs-site", "site"]
    # Across workspaces: without a role, the public repositories; with one, as above.
    assert listing("", "/2.0/repositories") == ["deploy", "docs-site"]
    assert listing("contributor", "/2.0/repositories") == ["site"]
    world.workspace(bob, "bobs")
    world.project(bob, "bobs", "B")
    world.repository(bob, "bobs", "mine", "B")
    assert listing("admin", "/2.0/repositories") == ["mine"]
    assert listing("member", "/2.0/repositories") == ["deploy", "site", "mine"]
    r = client.get("/2.0/repositories", params={"role": "member", "q": 'workspace.slug = "bobs"'},
                   headers=bob.auth)
    assert _slugs(r) == ["mine"]
    assert _slugs(client.get("/2.0/repositories")) == ["deploy", "docs-site"]
    cloud_error(client.get("/2.0/repositories", params={"role": "member"}), 401)


def test_workspaces_and_members_listings(world, client):
    alice, bob = _setup(world)
    world.workspace(alice, "beta")
    client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"}, headers=alice.auth)
    r = client.get("/2.0/workspaces", headers=alice.auth)
    assert [cloud_object(v, "workspace")["slug"] for v in r.json()["values"]] == ["acme", "beta"]
    r = client.get("/2.0/workspaces", params={"role": "member"}, headers=bob.auth)
    assert [v["slug"] for v in r.json()["values"]] == ["acme"]
    r = client.get("/2.0/workspaces", params={"role": "owner"}, headers=bob.auth)
    assert r.json()["values"] == []
    r = client.get("/2.0/workspaces", params={"q": 'slug ~ "BET"', "sort": "-slug"},
                   headers=alice.auth)
    assert [v["slug"] for v in r.json()["values"]] == ["beta"]
    r = client.get("/2.0/user/workspaces", params={"q": "administrator = true"}, headers=bob.auth)
    assert r.json()["values"] == []
    r = client.get("/2.0/workspaces/acme/members", params={"q": 'user.username = "bob"'},
                   headers=alice.auth)
    assert [v["user"]["username"] for v in r.json()["values"]] == ["bob"]
    r = client.get("/2.0/workspaces/acme/members", params={"sort": "-user.username"},
                   headers=alice.auth)
    assert [v["user"]["username"] for v in r.json()["values"]] == ["bob", "alice"]


def test_access_token_listing_q(world, client):
    alice, _ = _setup(world)
    for name in ("ci", "deploy-bot"):
        r = client.post("/2.0/repositories/acme/site/access-tokens",
                        json={"name": name, "scopes": ["repository"]}, headers=alice.auth)
        assert r.status_code == 201, r.text
    r = client.get("/2.0/repositories/acme/site/access-tokens", params={"q": 'name ~ "bot"'},
                   headers=alice.auth)
    assert [v["name"] for v in r.json()["values"]] == ["deploy-bot"]
    r = client.get("/2.0/repositories/acme/site/access-tokens",
                   params={"q": "expires_on = null", "sort": "name"}, headers=alice.auth)
    assert [v["name"] for v in r.json()["values"]] == ["ci", "deploy-bot"]


def test_fields_partial_responses(world, client):
    alice, _ = _setup(world)
    r = client.get("/2.0/repositories/acme", params={"fields": "values.slug,size"},
                   headers=alice.auth)
    assert r.json() == {"size": 4, "values": [{"slug": s} for s in
                                              ["api", "deploy", "docs-site", "site"]]}
    r = client.get("/2.0/repositories/acme/site", params={"fields": "-links,-owner,-project"},
                   headers=alice.auth)
    body = r.json()
    assert "links" not in body and "owner" not in body and body["slug"] == "site"
    assert body["workspace"]["links"]["self"]
    r = client.get("/2.0/repositories/acme/site", params={"fields": "-*.links"},
                   headers=alice.auth)
    assert "links" in r.json() and "links" not in r.json()["workspace"]
    # An unencoded "+" reads as a space: still an added field.
    r = client.get("/2.0/repositories/acme/site?fields=+name", headers=alice.auth)
    assert r.json()["slug"] == "site"
    r = client.get("/2.0/repositories/acme/site", params={"fields": "name,+slug"},
                   headers=alice.auth)
    assert r.json() == {"name": "site", "slug": "site"}
    cloud_error(client.get("/2.0/repositories/acme", params={"fields": "values..slug"},
                           headers=alice.auth), 400, "Invalid field path")
    # Errors are never cut down.
    r = client.get("/2.0/repositories/acme/nope", params={"fields": "values.slug"},
                   headers=alice.auth)
    cloud_error(r, 404)


def test_user_profiles(world, client):
    alice, bob = _setup(world)
    me = client.get("/2.0/user", headers=alice.auth).json()
    for ref in (me["uuid"], me["account_id"], "alice"):
        r = client.get(f"/2.0/users/{ref}", headers=bob.auth)
        body = cloud_object(r.json(), "user")
        assert body["uuid"] == me["uuid"] and body["account_id"] == me["account_id"]
        assert body["display_name"] == me["display_name"] and "email" not in body
    r = client.get(me["links"]["avatar"]["href"][len(BASE):], headers=bob.auth)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in r.content
    cloud_error(client.get("/2.0/users/{00000000-0000-0000-0000-000000000000}",
                           headers=bob.auth), 404)
    cloud_error(client.get(f"/2.0/users/{me['uuid']}"), 401)


_QUERY_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from([
        "name", "slug", "size", "created_on", "is_private", "mainbranch.name", "project.key",
        "=", "!=", "~", "!~", ">", "<=", "AND", "OR", "(", ")", '"x"', '"%_\\\\"', "5",
        "-1.5", "1e308", "99999999999999999999", "9223372036854775807", "true", "null", "2020-01-01", "2020-01-01T00:00:00+14:00", "\x00",
        '"\\u0000"', '"\\ud800"', "é",
    ]), max_size=12).map(" ".join),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=_QUERY_TEXT, sort=st.one_of(st.none(), st.text(max_size=20)),
       fields=st.one_of(st.none(), st.text(max_size=30)))
def test_no_input_is_ever_a_500(world, client, q, sort, fields):
    """Whatever `q`, `sort` and `fields` hold: a page or a Cloud 400, on both databases."""
    if not getattr(client, "_fuzz_setup", False):
        _setup(world)
        client._fuzz_setup = True
    alice_auth = {"Authorization": _basic_alice()}
    params = {"q": q}
    if sort is not None:
        params["sort"] = sort
    if fields is not None:
        params["fields"] = fields
    r = client.get("/2.0/repositories/acme", params=params, headers=alice_auth)
    assert r.status_code in (200, 400), (r.status_code, r.text, params)
    if r.status_code == 400:
        cloud_error(r, 400)


def _basic_alice():
    import base64

    from tests.integration.conftest import PASSWORD

    return "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
