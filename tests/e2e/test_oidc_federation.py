"""Workload identity federation end to end: a real `gitward serve` allowed to call loopback
(GITWARD_OUTBOUND_ALLOWED_NETWORKS), a local OIDC issuer (tests/oidc_issuer.py), a CI job's
ID token exchanged at the token endpoint, and the real git client cloning with the result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.e2e.conftest import GitwardServer, User, start_server
from tests.oidc_issuer import Issuer, exchange_form, unsigned

AUDIENCE = "https://gitward.example/ci"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitwardServer]:
    server = start_server(tmp_path_factory.mktemp("gitward-oidc"),
                          env={"GITWARD_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def repo(server: GitwardServer, issuer: Issuer) -> tuple[User, str, str]:
    owner = server.create_user()
    workspace, slug = server.create_repository(owner)
    server.seed(owner, workspace, slug)
    r = server.api("POST", f"/2.0/repositories/{workspace}/{slug}/oidc-trusts", auth=owner,
                   json={"issuer": issuer.url, "audience": AUDIENCE,
                         "subject": f"repo:{workspace}/{slug}:ref:refs/heads/*",
                         "claims": {"event_name": "push"},
                         "scopes": ["repository"], "ttl_seconds": 900})
    assert r.status_code == 201, r.text
    return owner, workspace, slug


def subject(repo: tuple[User, str, str], ref: str = "refs/heads/main") -> str:
    return f"repo:{repo[1]}/{repo[2]}:ref:{ref}"


def exchange(server: GitwardServer, token: str) -> Any:
    return server.api("POST", "/site/oauth2/access_token", data=exchange_form(token))


def test_a_job_token_clones_with_the_real_git_client(
    server: GitwardServer, issuer: Issuer, repo: tuple[User, str, str], tmp_path: Path
) -> None:
    _, workspace, slug = repo
    r = exchange(server, issuer.token(subject(repo), aud=AUDIENCE, event_name="push"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    token = body["access_token"]
    host = server.base_url.split("://", 1)[1]
    url = f"http://x-token-auth:{token}@{host}/{workspace}/{slug}.git"
    server.git("clone", "-q", url, str(tmp_path / "clone"))
    assert (tmp_path / "clone" / "README").read_text() == "hello\n"
    # Read only: the trust grants `repository`, not `repository:write`.
    (tmp_path / "clone" / "more").write_text("x\n")
    server.git("add", "more", cwd=tmp_path / "clone")
    server.git("commit", "-qm", "more", cwd=tmp_path / "clone")
    pushed = server.git("push", "-q", "origin", "HEAD:main", cwd=tmp_path / "clone",
                        check=False)
    assert pushed.returncode != 0


def test_refusals(server: GitwardServer, issuer: Issuer, repo: tuple[User, str, str]) -> None:
    sub = subject(repo)
    good = issuer.claims(sub, aud=AUDIENCE, event_name="push")
    replayed = issuer.sign(good)
    assert exchange(server, replayed).status_code == 200
    foreign = Issuer()  # a real issuer, with keys of its own, that no trust names
    try:
        other_key = RSAKey.generate_key(2048, parameters={"kid": issuer.keys[0].kid})
        cases = {
            "wrong audience": (issuer.token(sub, aud="someone-else", event_name="push"),
                               "audience"),
            "expired": (issuer.token(sub, aud=AUDIENCE, event_name="push",
                                     iat=1_700_000_000, nbf=1_700_000_000,
                                     exp=1_700_000_300), "expired"),
            "replayed jti": (replayed, "already exchanged"),
            "foreign issuer": (foreign.token(sub, aud=AUDIENCE, event_name="push"),
                               "No trust accepts"),
            "wrong subject": (issuer.token(subject(repo, "refs/tags/v1"), aud=AUDIENCE,
                                           event_name="push"), "subject"),
            "claim condition": (issuer.token(sub, aud=AUDIENCE, event_name="pull_request"),
                                "claim event_name"),
            "bad signature": (issuer.sign(issuer.claims(sub, aud=AUDIENCE, event_name="push"),
                                          other_key), "signature does not verify"),
            "alg none": (unsigned(issuer.claims(sub, aud=AUDIENCE, event_name="push")),
                         "'none' is not accepted"),
        }
        for case, (token, reason) in cases.items():
            r = exchange(server, token)
            assert r.status_code == 400, (case, r.text)
            assert r.json()["error"] == "invalid_grant", (case, r.text)
            assert reason in r.json()["error_description"], (case, r.text)
        assert foreign.requests == []  # an issuer no trust names is never called
    finally:
        foreign.close()
    # Each refusal, with its reason, is in the site's audit log (never the token).
    r = server.api("GET", "/rest/audit/1.0/events", auth=server.admin,
                   params={"action": "oidc.exchange.refused", "limit": 100})
    assert r.status_code == 200, r.text
    text = r.text
    assert text.count("oidc.exchange.refused") >= len(cases)
    assert replayed not in text
