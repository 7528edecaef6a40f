"""No secret is ever stored or logged in clear: the database files (SQLite file and WAL, or a
PostgreSQL dump) and every log record are scanned for each secret after creating and using it.

Later credential kinds add their secrets to `issue_and_use`.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pyotp
import pytest

from gitward.credentials import codec
from tests.integration.conftest import basic, bearer


def issue_and_use(client, world) -> list[str]:
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    secrets = []
    for permissions in (["REPO_READ"], ["PROJECT_ADMIN", "REPO_ADMIN"]):
        r = client.put(
            "/rest/access-tokens/1.0/users/alice",
            json={"name": "ci", "permissions": permissions, "expiryDays": 5},
            headers=alice.auth,
        )
        assert r.status_code == 200
        secret = r.json()["token"]
        secrets.append(secret)
        assert client.get("/2.0/repositories/acme/widget", headers=bearer(secret)).status_code == 200
        assert client.get("/2.0/user", headers=basic("alice", secret)).status_code == 200
        # A failed use (wrong user) is audited: still without the secret.
        assert client.get("/2.0/user", headers=basic("bob", secret)).status_code == 401
    rotated = client.post(
        f"/rest/access-tokens/1.0/users/alice/{r.json()['id']}/rotate", headers=alice.auth
    )
    secrets.append(rotated.json()["token"])
    for path in (
        "/2.0/repositories/acme/widget/access-tokens",
        "/2.0/workspaces/acme/projects/PRJ/access-tokens",
        "/2.0/workspaces/acme/access-tokens",
    ):
        r = client.post(path, json={"name": "ci", "scopes": ["repository"]}, headers=alice.auth)
        assert r.status_code == 201
        secret = r.json()["token"]
        secrets.append(secret)
        assert client.get("/2.0/repositories/acme/widget", headers=bearer(secret)).status_code == 200
        assert client.get("/2.0/user", headers=basic("x-token-auth", secret)).status_code == 200
        assert client.get("/2.0/user", headers=basic("alice", secret)).status_code == 401
    secrets.extend(issue_and_use_oauth(client, alice))
    r = client.post("/2.0/user/app-passwords", json={"label": "git", "scopes": ["repository"]},
                    headers=alice.auth)
    app_password = r.json()["password"]
    secrets.append(app_password)
    assert client.get("/2.0/user", headers=basic("alice", app_password)).status_code in (200, 403)
    enrolment = client.post("/2.0/user/two-step-verification", headers=alice.auth).json()
    code = pyotp.TOTP(enrolment["secret"]).now()
    r = client.post("/2.0/user/two-step-verification/confirm", json={"code": code},
                    headers=alice.auth)
    assert r.status_code == 200
    secrets.append(enrolment["secret"])
    secrets.extend(enrolment["recovery_codes"])
    headers = {**alice.auth, "X-Gitward-OTP": enrolment["recovery_codes"][0]}
    assert client.get("/2.0/user", headers=headers).status_code == 200
    secrets.append(alice.password)
    return secrets


def issue_and_use_oauth(client, alice) -> list[str]:
    """A consumer secret (also after regeneration), codes, access and refresh tokens."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tests.integration.oauth_helpers import TOKEN, assertion, create_consumer, user_token
    found = []
    consumer = create_consumer(client, alice, scopes=["repository"])
    found.append(consumer["secret"])
    codes: list[str] = []
    oc, token = user_token(client, consumer, alice, codes=codes)
    found.extend(codes)
    found.extend([token["access_token"], token["refresh_token"]])
    assert client.get("/2.0/repositories/acme/widget",
                      headers=bearer(token["access_token"])).status_code == 200
    refreshed = oc.refresh_token(TOKEN, refresh_token=token["refresh_token"])
    found.extend([refreshed["access_token"], refreshed["refresh_token"]])
    cc = oc.fetch_token(TOKEN, grant_type="client_credentials")
    found.append(cc["access_token"])
    assert client.get("/2.0/repositories/acme/widget",
                      headers=basic("x-token-auth", cc["access_token"])).status_code == 200
    r = client.post(TOKEN, data={"grant_type": "urn:bitbucket:oauth2:jwt"},
                    headers={"Authorization": f"JWT {assertion(consumer)}"})
    assert r.status_code == 200
    found.append(r.json()["access_token"])
    # A failed use (wrong secret) is audited: still without the secret.
    r = client.post(TOKEN, data={"grant_type": "client_credentials"},
                    auth=(consumer["key"], consumer["secret"] + "x"))
    assert r.status_code == 401
    r = client.post(f"/2.0/workspaces/acme/oauth-consumers/{consumer['id']}/secret",
                    headers=alice.auth)
    found.append(r.json()["secret"])
    return found


def _database_bytes(settings) -> bytes:
    if settings.is_sqlite:
        path = Path(settings.sqlalchemy_url.removeprefix("sqlite:///"))
        return b"".join(
            p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()
        )
    url = settings.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")
    dump = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True)
    return dump.stdout


def test_secrets_never_in_database_or_logs(client, world, runtime, settings, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements and parameters
    try:
        secrets = issue_and_use(client, world)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    runtime.engine.dispose()  # flush SQLite's WAL handles; PostgreSQL is read by pg_dump
    stored = _database_bytes(settings)
    logged = "\n".join(r.getMessage() + " " + str(r.args) for r in caplog.records)
    # The scan sees the rows: the keyed hash of a live token is there, and statements were logged.
    assert codec.keyed_hash(runtime.secret_key, secrets[0]).encode() in stored
    assert "personal_access_tokens" in logged
    for secret in secrets:
        assert secret.encode() not in stored, "a secret reached the database"
        assert secret not in logged, "a secret reached the log"


@pytest.fixture(autouse=True)
def _reset_sqlalchemy_logging():
    yield
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
