"""OIDC trusts (workload identity federation) through the REST API and the token endpoint,
in process, against a local issuer on loopback (tests/oidc_issuer.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitward.config import Settings
from gitward.credentials import oidc
from gitward.outbound import OutboundRules
from gitward.storage.models import OidcUsedJti, ResourceAccessToken, utcnow
from gitward.storage.oidc import Oidc
from tests.conftest import FAST_ARGON2, NO_WORKER, TEST_HOSTS
from tests.integration.conftest import basic, bearer
from tests.oidc_issuer import Issuer, exchange_form

TOKEN_URL = "/site/oauth2/access_token"
REPO = "/2.0/repositories/acme/widget/oidc-trusts"
PROJECT = "/2.0/workspaces/acme/projects/PRJ/oidc-trusts"
WORKSPACE = "/2.0/workspaces/acme/oidc-trusts"
SUB = "repo:acme/widget:ref:refs/heads/main"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    outbound_allowed_networks=("127.0.0.0/8",), **FAST_ARGON2, **TEST_HOSTS, **NO_WORKER)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    yield issuer
    issuer.close()


@pytest.fixture
def alice(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    world.repository(alice, "acme", "gadget", "PRJ")
    return alice


def trust_body(issuer: Issuer, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"issuer": issuer.url, "audience": "gitward",
                            "subject": "repo:acme/widget:ref:refs/heads/*",
                            "scopes": ["repository"], "ttl_seconds": 600}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def create(client, who, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body, headers=who.auth)
    assert r.status_code == 201, r.text
    return r.json()


def exchange(client, token: str, **extra: str):
    return client.post(TOKEN_URL, data=exchange_form(token, **extra))


def events(world, action: str) -> list[dict[str, Any]]:
    with world.runtime.unit_of_work(write=False) as store:
        return [dict(e.details, target=e.target, actor=e.actor)
                for e in store.audit.events() if e.action == action]


# -- the trusts' REST ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [REPO, PROJECT, WORKSPACE])
def test_create_list_get_delete_shapes(client, alice, issuer, world, path):
    body = trust_body(issuer, claims={"repository_owner": "acme", "ref_protected": "true"},
                      scopes=["repository:write", "repository"])
    made = create(client, alice, path, body)
    assert made["type"] == "oidc_trust"
    assert made["issuer"] == issuer.url and made["audience"] == "gitward"
    assert made["subject"] == "repo:acme/widget:ref:refs/heads/*"
    assert made["claims"] == {"ref_protected": "true", "repository_owner": "acme"}
    assert made["scopes"] == ["repository", "repository:write"]
    assert made["ttl_seconds"] == 600 and made["last_used_on"] is None
    assert made["created_by"]["username"] == "alice"
    assert made["links"]["self"]["href"].endswith(f"{path}/{made['id']}")
    page = client.get(path, headers=alice.auth).json()
    assert page["size"] == 1 and [t["id"] for t in page["values"]] == [made["id"]]
    assert client.get(f"{path}/{made['id']}", headers=alice.auth).json() == made
    assert client.delete(f"{path}/{made['id']}", headers=alice.auth).status_code == 204
    assert client.get(f"{path}/{made['id']}", headers=alice.auth).status_code == 404
    assert client.get(path, headers=alice.auth).json()["size"] == 0
    (created,) = events(world, "oidc-trust.create")
    assert created["trust_id"] == made["id"] and created["subject"] == body["subject"]
    assert [e["trust_id"] for e in events(world, "oidc-trust.delete")] == [made["id"]]


def test_ttl_defaults_to_an_hour(client, alice, issuer):
    made = create(client, alice, REPO, trust_body(issuer, ttl_seconds=None))
    assert made["ttl_seconds"] == 3600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ttl_seconds": 3601}, "between 60 and 3600"),
        ({"ttl_seconds": 10}, "between 60 and 3600"),
        ({"ttl_seconds": "600"}, "whole number"),
        ({"ttl_seconds": True}, "whole number"),
        ({"issuer": None}, "issuer is required"),
        ({"issuer": "ftp://issuer.example"}, "http:// or https://"),
        ({"issuer": "http://192.168.10.10/oidc"}, "loopback, private or link-local"),
        ({"issuer": "https://user:pw@issuer.example"}, "user name or password"),
        ({"audience": None}, "audience is required"),
        ({"audience": "a\nb"}, "control characters"),
        ({"subject": None}, "subject is required"),
        ({"subject": "*"}, "literal character"),
        ({"subject": "?epo:acme/*"}, "literal character"),
        ({"subject": "repo:acme\\"}, "lone backslash"),
        ({"subject": ""}, "non-empty"),
        ({"subject": 5}, "non-empty"),
        ({"claims": {"ref": "refs\\"}}, "claims.ref is not a valid glob"),
        ({"claims": {"sub": "x"}}, "cannot be a claim condition"),
        ({"claims": {"ref": 5}}, "claims.ref must be a non-empty string"),
        ({"claims": ["ref"]}, "claims must be an object"),
        ({"scopes": ["project"]}, "cannot have the scope"),
        ({"scopes": ["nope"]}, "nope"),
        ({"scopes": []}, "non-empty list"),
        ({"subjct": "typo"}, "Unknown field(s): subjct"),
    ],
)
def test_validation(client, alice, issuer, change, message):
    r = client.post(REPO, json={**trust_body(issuer), **change}, headers=alice.auth)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_plain_http_issuer_needs_the_allowed_networks(client, alice, issuer, runtime):
    # The same loopback issuer, once the site no longer allows loopback: refused on save.
    saved = runtime.oidc_keys.rules
    runtime.oidc_keys.rules = OutboundRules(())
    try:
        r = client.post(REPO, json=trust_body(issuer), headers=alice.auth)
    finally:
        runtime.oidc_keys.rules = saved
    assert r.status_code == 400
    assert "loopback" in r.json()["error"]["message"]


def test_only_admins_in_person_manage_trusts(client, alice, issuer, world):
    bob = world.user("bob")
    world.grant_repo(alice, "acme", "widget", "bob", "write")
    r = client.post(REPO, json=trust_body(issuer), headers=bob.auth)
    assert r.status_code == 403
    assert "admin" in r.json()["error"]["message"]
    assert client.get(REPO, headers=bob.auth).status_code == 403
    # A stranger does not learn that the repository exists.
    carol = world.user("carol")
    assert client.post(REPO, json=trust_body(issuer), headers=carol.auth).status_code == 404
    # Admin standing through a token is not enough: a trust mints tokens.
    world.grant_repo(alice, "acme", "widget", "bob", "admin")
    r = client.post("/2.0/user/app-passwords", json={"label": "ci", "scopes": [
        "repository:admin", "repository"]}, headers=bob.auth)
    app = basic("bob", r.json()["password"])
    assert client.post(REPO, json=trust_body(issuer), headers=app).status_code == 403
    assert client.get(REPO, headers=app).status_code == 403
    made = create(client, alice, REPO, trust_body(issuer))
    assert client.delete(f"{REPO}/{made['id']}", headers=app).status_code == 403
    assert client.get(f"{REPO}/{made['id']}", headers=alice.auth).status_code == 200
    # In person, bob is admin of the repository now.
    assert client.delete(f"{REPO}/{made['id']}", headers=bob.auth).status_code == 204
    # A project's trusts need its admins; a workspace's its owners.
    world.grant_project(alice, "acme", "PRJ", "bob", "write")
    r = client.post(PROJECT, json=trust_body(issuer), headers=bob.auth)
    assert r.status_code == 403
    assert "admin permission on this project" in r.json()["error"]["message"]
    assert client.post(WORKSPACE, json=trust_body(issuer), headers=bob.auth).status_code == 404
    world.grant_project(alice, "acme", "PRJ", "bob", "admin")
    assert client.post(PROJECT, json=trust_body(issuer), headers=bob.auth).status_code == 201


# -- the exchange -------------------------------------------------------------------------------


def test_exchange_mints_a_repository_token_of_the_trusts_scopes(client, alice, issuer, world):
    trust = create(client, alice, REPO, trust_body(issuer, claims={"ref_type": "branch"}))
    r = exchange(client, issuer.token(SUB, ref_type="branch"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert body["token_type"] == "bearer" and body["expires_in"] == 600
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["scopes"] == "repository"
    token = body["access_token"]
    assert token.startswith("gwrep_")
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(token)).status_code == 200
    # Inside its repository only, with its scopes only.
    assert client.get("/2.0/repositories/acme/gadget", headers=bearer(token)).status_code == 404
    r = client.delete("/2.0/repositories/acme/widget", headers=bearer(token))
    assert r.status_code == 403
    me = client.get("/2.0/user", headers=bearer(token)).json()
    assert me["kind"] == "repository_access_token"
    assert me["display_name"] == f"OIDC trust {trust['id']}: {SUB}"
    # It is one of the repository's access tokens, with its expiry.
    listed = client.get("/2.0/repositories/acme/widget/access-tokens", headers=alice.auth)
    assert [t["expires_on"] is not None for t in listed.json()["values"]] == [True]
    (event,) = events(world, "oidc.exchange")
    assert event["trust_id"] == trust["id"] and event["subject"] == SUB
    assert event["target"] == "repository:acme/widget"
    assert token not in str(event)
    assert client.get(f"{REPO}/{trust['id']}", headers=alice.auth).json()["last_used_on"]


def test_deleting_the_trust_ends_its_tokens(client, alice, issuer):
    trust = create(client, alice, REPO, trust_body(issuer))
    token = exchange(client, issuer.token(SUB)).json()["access_token"]
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(token)).status_code == 200
    assert client.delete(f"{REPO}/{trust['id']}", headers=alice.auth).status_code == 204
    assert client.get("/2.0/repositories/acme/widget", headers=bearer(token)).status_code == 401


def test_project_and_workspace_trusts_mint_their_kinds(client, alice, issuer):
    create(client, alice, PROJECT, trust_body(issuer, audience="project",
                                              scopes=["project"]))
    create(client, alice, WORKSPACE, trust_body(issuer, audience="workspace"))
    project = exchange(client, issuer.token(SUB, aud="project")).json()
    assert project["access_token"].startswith("gwprj_") and project["scopes"] == "project"
    assert client.get("/2.0/repositories/acme/gadget",
                      headers=bearer(project["access_token"])).status_code == 200
    workspace = exchange(client, issuer.token(SUB, aud=["other", "workspace"])).json()
    assert workspace["access_token"].startswith("gwwsp_")


def test_several_trusts_accepting_a_token_need_resource(client, alice, issuer):
    create(client, alice, REPO, trust_body(issuer))
    create(client, alice, WORKSPACE, trust_body(issuer, subject="repo:acme/*"))
    r = exchange(client, issuer.token(SUB))
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"
    assert "repository:acme/widget" in r.json()["error_description"]
    r = exchange(client, issuer.token(SUB), resource="http://testserver/2.0/workspaces/acme")
    assert r.status_code == 200, r.text
    assert r.json()["access_token"].startswith("gwwsp_")
    r = exchange(client, issuer.token(SUB), resource="repository:acme/widget")
    assert r.json()["access_token"].startswith("gwrep_")
    r = exchange(client, issuer.token(SUB), resource="repository:acme/gadget")
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"


def test_scope_narrows_and_never_widens(client, alice, issuer):
    create(client, alice, REPO, trust_body(issuer, scopes=["repository:write"]))
    r = exchange(client, issuer.token(SUB), scope="repository")
    assert r.status_code == 200 and r.json()["scopes"] == "repository"
    r = exchange(client, issuer.token(SUB), scope="repository:admin")
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def refused(r, text: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant", r.text
    assert text in r.json()["error_description"]


def test_claim_conditions_must_all_hold(client, alice, issuer, world):
    create(client, alice, REPO, trust_body(issuer, claims={"ref_type": "branch",
                                                            "run_attempt": "1"}))
    refused(exchange(client, issuer.token(SUB, ref_type="tag", run_attempt=1)), "claim ref_type")
    refused(exchange(client, issuer.token(SUB, ref_type="branch")), "claim run_attempt")
    assert exchange(client, issuer.token(SUB, ref_type="branch", run_attempt=1)).status_code == 200
    reasons = [e["reason"] for e in events(world, "oidc.exchange.refused")]
    assert len(reasons) == 2 and all("satisfies no trust" in r for r in reasons)


def test_refusals(client, alice, issuer):
    create(client, alice, REPO, trust_body(issuer))
    refused(exchange(client, issuer.token(SUB, aud="elsewhere")), "audience")
    refused(exchange(client, issuer.token("repo:acme/widget:pull_request")), "subject")
    refused(exchange(client, issuer.token(SUB, jti=None)), "no jti")
    refused(exchange(client, issuer.token(SUB, exp=1_000)), "expired")
    refused(exchange(client, "not-a-jwt"), "not a signed JWT")
    later = int(time.time()) + 3600
    refused(exchange(client, issuer.token(SUB, nbf=later, exp=later + 60)), "not valid yet")
    refused(exchange(client, issuer.token(SUB, iat=later, nbf=None, exp=later + 60)),
            "issued in the future")
    refused(exchange(client, issuer.token(SUB, iat=None)), "no issue time")
    refused(exchange(client, issuer.token(SUB, exp=later + 2 * 86400)), "longer than a day")
    refused(exchange(client, issuer.token(SUB, exp="soon")), "exp is not a number")
    refused(exchange(client, issuer.sign({k: v for k, v in issuer.claims(SUB).items()
                                          if k != "sub"})), "no subject")
    refused(exchange(client, issuer.token(SUB, aud=None)), "no audience")
    # Signed by the issuer, but claiming to be another: looked up under that other name.
    refused(exchange(client, issuer.token(SUB, iss="https://token.actions.githubusercontent.com"
                                          )), "No trust accepts")
    r = exchange(client, issuer.token(SUB), subject_token_type="urn:x")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_key_rotation_refetches_once_for_an_unknown_kid(client, alice, issuer, runtime):
    create(client, alice, REPO, trust_body(issuer))
    assert exchange(client, issuer.token(SUB)).status_code == 200
    fetched = len(issuer.requests)
    assert exchange(client, issuer.token(SUB)).status_code == 200
    assert len(issuer.requests) == fetched  # cached
    issuer.rotate("k2", ec=True)
    assert exchange(client, issuer.token(SUB)).status_code == 200  # ES256, new kid
    assert issuer.requests[fetched:] == ["/keys"]
    # A made-up kid right after: at most one refetch a minute, so no request at all.
    other = issuer.keys[0]
    issuer.rotate("k3")
    unknown = issuer.sign(issuer.claims(SUB))
    issuer.keys = [other]
    refused(exchange(client, unknown), "no key 'k3'")
    assert issuer.requests[fetched:] == ["/keys"]


def test_refetch_is_rate_limited_per_issuer(issuer):
    now = [1000.0]
    cache = oidc.IssuerKeyCache(OutboundRules(["127.0.0.0/8"]), clock=lambda: now[0])
    cache.keys_for(issuer.url, "k1")
    assert issuer.requests == ["/.well-known/openid-configuration", "/keys"]
    cache.keys_for(issuer.url, "k1")
    assert len(issuer.requests) == 2  # cached
    cache.keys_for(issuer.url, "nope")  # an unknown kid: one refetch of the keys
    cache.keys_for(issuer.url, "nope")  # and no more for a while
    assert issuer.requests[2:] == ["/keys"]
    now[0] += oidc.REFETCH_SECONDS - 1
    cache.keys_for(issuer.url, "nope")
    assert len(issuer.requests) == 3
    now[0] += 1
    cache.keys_for(issuer.url, "nope")
    assert issuer.requests[3:] == ["/keys"]
    now[0] += oidc.KEYS_SECONDS
    cache.keys_for(issuer.url, "k1")
    assert issuer.requests[4:] == ["/.well-known/openid-configuration", "/keys"]


def test_issuer_without_a_trust_is_never_fetched(client, alice, issuer, world):
    refused(exchange(client, issuer.token(SUB)), "No trust accepts")
    assert issuer.requests == []
    (event,) = events(world, "oidc.exchange.refused")
    assert event["issuer"] == issuer.url and event["subject"] == SUB


def test_two_exchanges_of_one_jti_racing_are_settled_by_the_unique_constraint(
    client, alice, issuer, world, monkeypatch
):
    """As if another worker had passed the check at the same moment: the check says the jti
    is new, the unique constraint refuses the second row, and the answer is invalid_grant."""
    create(client, alice, REPO, trust_body(issuer))
    claims = issuer.claims(SUB)
    token = issuer.sign(claims)
    assert exchange(client, token).status_code == 200
    monkeypatch.setattr(Oidc, "jti_used", lambda self, issuer, jti: False)
    refused(exchange(client, token), "already exchanged")
    listed = client.get("/2.0/repositories/acme/widget/access-tokens", headers=alice.auth)
    assert listed.json()["size"] == 1  # the loser minted nothing
    assert events(world, "oidc.exchange.refused")[-1]["jti"] == claims["jti"]


def test_expired_jtis_and_minted_tokens_are_dropped(client, alice, issuer, world):
    create(client, alice, REPO, trust_body(issuer))
    assert exchange(client, issuer.token(SUB)).status_code == 200
    with world.runtime.unit_of_work() as store:
        session = store.open()
        for row in session.query(ResourceAccessToken).all():
            row.expires_on = utcnow() - timedelta(seconds=1)
        for jti in session.query(OidcUsedJti).all():
            jti.expires_on = utcnow() - timedelta(seconds=1)
    assert exchange(client, issuer.token(SUB)).status_code == 200
    with world.runtime.unit_of_work(write=False) as store:
        session = store.open()
        assert session.query(OidcUsedJti).count() == 1
        assert session.query(ResourceAccessToken).count() == 1


def test_an_issuer_that_fails_is_not_asked_again_at_once(issuer):
    now = [1000.0]
    cache = oidc.IssuerKeyCache(OutboundRules(["127.0.0.0/8"]), clock=lambda: now[0])
    url = issuer.url + "/missing"  # its discovery document answers 404
    for _ in range(3):
        with pytest.raises(oidc.TokenRefused, match="HTTP 404"):
            cache.keys_for(url, "k1")
    assert len(issuer.requests) == 1
    now[0] += oidc.FAILURE_SECONDS
    with pytest.raises(oidc.TokenRefused, match="HTTP 404"):
        cache.keys_for(url, "k1")
    assert len(issuer.requests) == 2


def test_the_discovery_document_must_name_the_issuer(issuer):
    cache = oidc.IssuerKeyCache(OutboundRules(["127.0.0.0/8"]))
    # Served for issuer.url, asked for another spelling of it: refused.
    with pytest.raises(oidc.TokenRefused, match="names another issuer"):
        cache.keys_for(issuer.url + "/", "k1")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda request: httpx.Response(200, content=b"{" * (300 * 1024)),
         "over 256 KiB"),
        (lambda request: httpx.Response(200, content=b"<html>"), "not JSON"),
        (lambda request: httpx.Response(302, headers={"Location": "http://x/"}),
         "HTTP 302"),
    ],
)
def test_bad_issuer_answers_are_refused(answer, reason):
    cache = oidc.IssuerKeyCache(OutboundRules(["127.0.0.0/8"]),
                                transport=httpx.MockTransport(answer))
    with pytest.raises(oidc.TokenRefused, match=reason):
        cache.keys_for("http://127.0.0.1:9/", "k1")


def test_an_issuer_outside_the_allowed_networks_is_never_called(issuer):
    cache = oidc.IssuerKeyCache(OutboundRules(()))
    with pytest.raises(oidc.TokenRefused, match="may not be fetched"):
        cache.keys_for(issuer.url, "k1")
    assert issuer.requests == []


def test_a_resource_that_names_nothing_is_invalid_target(client, alice, issuer, world):
    create(client, alice, REPO, trust_body(issuer))
    r = exchange(client, issuer.token(SUB), resource="https://testserver/elsewhere")
    assert r.status_code == 400 and r.json()["error"] == "invalid_target"
    (event,) = events(world, "oidc.exchange.refused")
    assert event["error"] == "invalid_target" and event["subject"] == SUB
