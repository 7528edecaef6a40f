"""Webhooks end to end: a real `gitward serve`, the real git client, a real receiver on
loopback (allowed by GITWARD_OUTBOUND_ALLOWED_NETWORKS).

- a push is delivered as `repo:push` to a Cloud hook and as `repo:refs_changed` to a Server
  hook, signed with each hook's secret, a forced push saying so;
- deliveries pending while the receiver is down survive `gitward serve` being stopped, and
  all arrive, in order, once it is started again.

Two worker processes (each with its delivery worker) deliver every event once. On SQLite,
and on PostgreSQL when GITWARD_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    POSTGRES_URL,
    SKIP_POSTGRES,
    GitwardServer,
    PostgresDatabase,
    free_port,
    project_key,
    start_server,
)
from tests.integration.webhook_helpers import Receiver

pytestmark = pytest.mark.e2e

FAST = {
    "GITWARD_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
    "GITWARD_WEBHOOK_POLL_SECONDS": "0.2",
    "GITWARD_WEBHOOK_BACKOFF_SECONDS": "0.2",
    "GITWARD_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    "GITWARD_WEBHOOK_MAX_ATTEMPTS": "100",
    "GITWARD_WORKERS": "2",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    database = PostgresDatabase(POSTGRES_URL)
    try:
        yield database.url
    finally:
        database.drop()


def signed(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header, expected)


def hooks(server: GitwardServer, workspace: str, slug: str, url: str) -> None:
    r = server.api("POST", f"/2.0/repositories/{workspace}/{slug}/hooks", auth=server.admin,
                   json={"description": "ci", "url": url + "?cloud", "events": ["repo:push"],
                         "secret": "cloud-secret"})
    assert r.status_code == 201, r.text
    r = server.api("POST", f"/rest/api/1.0/projects/{project_key(workspace)}/repos/{slug}"
                   "/webhooks", auth=server.admin,
                   json={"name": "ci", "url": url + "?server", "events": ["repo:refs_changed"],
                         "configuration": {"secret": "server-secret"}})
    assert r.status_code == 201, r.text


def test_pushes_are_delivered_and_survive_a_restart(
    tmp_path: Path, database_url: str | None
) -> None:
    """One server for both halves (starting one is most of the time this takes)."""
    receiver = Receiver().start()
    port = free_port()
    down = f"http://127.0.0.1:{port}/hook"  # nothing listens there yet
    server = start_server(tmp_path, env=FAST, database_url=database_url)
    try:
        delivered_in_both_formats(server, receiver)
        workspace, slug = server.create_repository(server.admin)
        r = server.api("POST", f"/2.0/repositories/{workspace}/{slug}/hooks",
                       auth=server.admin, json={"url": down, "events": ["repo:push"]})
        assert r.status_code == 201, r.text
        hook = r.json()["uuid"]
        seed = server.seed(server.admin, workspace, slug)
        (seed / "more").write_text("more\n")
        server.git("add", "more", cwd=seed)
        server.git("commit", "-qm", "more", cwd=seed)
        server.git("push", "-q", "origin", "HEAD:main", cwd=seed)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listing = server.api("GET", f"/2.0/repositories/{workspace}/{slug}/hooks/{hook}"
                                 "/deliveries", auth=server.admin).json()["values"]
            if len(listing) == 2 and listing[-1]["attempts"] >= 1:
                break
            time.sleep(0.1)
        assert len(listing) == 2 and all(d["state"] != "delivered" for d in listing)
        assert "Connect" in listing[-1]["attempt_history"][0]["error"]
    finally:
        server.stop()
        receiver.stop()
    # Stopped with both deliveries pending; the receiver comes up, then the server again.
    receiver = Receiver(port).start()
    try:
        again = start_server(tmp_path / "again", env=FAST, data=server.data_dir,
                             database_url=database_url)
        try:
            got = receiver.wait(2, timeout=20)
            messages = [r.json["push"]["changes"][0]["commits"][0]["message"] for r in got]
            assert messages == ["readme\n", "more\n"]
            time.sleep(0.5)
            assert len(receiver.requests) == 2  # once each, by one of the two workers
        finally:
            again.stop()
    finally:
        receiver.stop()


def delivered_in_both_formats(server: GitwardServer, receiver: Receiver) -> None:
    workspace, slug = server.create_repository(server.admin)
    hooks(server, workspace, slug, receiver.url)
    seed = server.seed(server.admin, workspace, slug)
    got = receiver.wait(2)
    cloud = next(r for r in got if r.path.endswith("?cloud"))
    srv = next(r for r in got if r.path.endswith("?server"))
    assert cloud.event == "repo:push"
    assert signed("cloud-secret", cloud.body, cloud.headers["x-hub-signature"])
    [change] = cloud.json["push"]["changes"]
    assert change["created"] and change["new"]["name"] == "main"
    assert [c["message"] for c in change["commits"]] == ["readme\n"]
    assert srv.event == "repo:refs_changed"
    assert signed("server-secret", srv.body, srv.headers["x-hub-signature"])
    assert srv.json["changes"][0]["type"] == "ADD"
    assert srv.json["changes"][0]["refId"] == "refs/heads/main"

    # A forced push: the old commit is not an ancestor of the new one.
    old = server.branches(server.admin, workspace, slug)["main"]
    (seed / "README").write_text("rewritten\n")
    server.git("commit", "-q", "-a", "--amend", "-m", "rewritten", cwd=seed)
    server.git("push", "-q", "--force", "origin", "HEAD:main", cwd=seed)
    got = receiver.wait(4)[2:]
    time.sleep(0.3)
    every = receiver.requests
    assert len(every) == 4 and len({r.headers.get("x-request-uuid") or
                                    r.headers["x-request-id"] for r in every}) == 4
    cloud = next(r for r in got if r.path.endswith("?cloud"))
    srv = next(r for r in got if r.path.endswith("?server"))
    [change] = cloud.json["push"]["changes"]
    assert change["forced"] is True and change["old"]["target"]["hash"] == old
    assert [c["message"] for c in change["commits"]] == ["rewritten\n"]
    assert srv.json["changes"][0]["type"] == "UPDATE"
    assert srv.json["changes"][0]["fromHash"] == old
