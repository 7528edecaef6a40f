"""The request pipeline: surfaces and their shapes, hosts and proxies, write locks, deferred
writes, and the generation-checked read cache."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.storage.models import AuditEvent, Repository
from gitward.web.app import create_app
from tests.asgi_client import AppClient

from .conftest import World, basic, bearer


def _pat(world: World, owner, permissions: list[str]) -> str:
    r = world.client.put(
        f"/rest/access-tokens/1.0/users/{owner.username}",
        json={"name": "t", "permissions": permissions},
        headers=owner.auth,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


# -- surfaces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/2.0/nothing/here", "cloud"),
        ("/2.0", "cloud"),
        ("/rest/nothing", "server"),
        ("/rest", "server"),
        ("/site/oauth2/nothing", "oauth"),
        ("/.well-known/nothing", "oauth"),
        ("/acme/widget.git/nothing/at/all", "git"),
    ],
)
def test_each_surface_answers_unknown_paths_in_its_own_shape(client, path, shape):
    r = client.get(path)
    assert r.status_code == 404
    if shape == "cloud":
        assert r.json()["type"] == "error" and r.json()["error"]["message"]
    elif shape == "server":
        assert r.json()["errors"][0]["exceptionName"].endswith("NoSuchEntityException")
    elif shape == "oauth":
        assert r.json()["error"] == "invalid_request"
    else:
        assert r.headers["content-type"].startswith("text/plain")


def test_status_and_openapi_describe_every_surface(client):
    assert client.get("/status").json() == {"state": "RUNNING"}
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/2.0/repositories/{workspace}/{repo_slug}", "/rest/api/1.0/admin/users",
                 "/site/oauth2/access_token", "/.well-known/oauth-authorization-server",
                 "/status"):
        assert path in paths


# -- hosts and proxies -------------------------------------------------------------------------


def _app(tmp_path: Path, settings: Settings, **overrides: object) -> tuple[Runtime, AppClient]:
    runtime = Runtime.open(settings.with_overrides(data_dir=tmp_path / "other", **overrides))
    return runtime, AppClient(create_app(runtime))


def test_unknown_host_is_refused_in_the_surface_shape(client):
    evil = {"Host": "evil.example"}
    r = client.get("/2.0/repositories/acme", headers=evil)
    assert r.status_code == 400 and "GITWARD_ALLOWED_HOSTS" in r.json()["error"]["message"]
    r = client.get("/rest/api/1.0/admin/users", headers=evil)
    assert r.status_code == 400 and r.json()["errors"][0]["message"]
    r = client.get("/.well-known/oauth-authorization-server", headers=evil)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    # An allowed name with a port is that name.
    r = client.get("/.well-known/oauth-authorization-server", headers={"Host": "testserver:8443"})
    assert r.json()["issuer"] == "http://testserver:8443"


def test_default_hosts_are_the_loopback_names(tmp_path, settings):
    runtime, client = _app(tmp_path, settings, allowed_hosts=())
    try:
        for host in ("localhost:7990", "127.0.0.1", "[::1]:7990"):
            r = client.get("/.well-known/oauth-authorization-server", headers={"Host": host})
            assert r.status_code == 200, host
        assert client.get("/2.0/user", headers={"Host": "attacker.test"}).status_code == 400
    finally:
        runtime.close()


def test_base_url_sets_links_and_issuer_whatever_the_host(tmp_path, settings):
    runtime, client = _app(tmp_path, settings, base_url="https://git.example.com")
    try:
        r = client.get("/.well-known/oauth-authorization-server", headers={"Host": "evil.test"})
        assert r.status_code == 200
        assert r.json()["issuer"] == "https://git.example.com"
    finally:
        runtime.close()


def _failed_login_address(runtime: Runtime, app, peer: str, forwarded: str) -> str | None:
    client = AppClient(app, client=(peer, 40000))
    r = client.get("/2.0/user", headers={**basic("nobody", "wrong"),
                                         "X-Forwarded-For": forwarded})
    assert r.status_code == 401
    with runtime.unit_of_work() as store:
        event = store.open().scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.failed")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert event is not None
        return event.client_ip


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path, settings, runtime):
    app = create_app(runtime)
    # Not a trusted proxy: the header is the client's own invention.
    assert _failed_login_address(runtime, app, "127.0.0.1", "203.0.113.9") == "127.0.0.1"
    trusting, _ = _app(tmp_path, settings, trusted_proxies=("127.0.0.0/8",))
    try:
        app = create_app(trusting)
        # The right-most entry the trusted proxy did not write itself is the client; what the
        # client put further left proves nothing.
        assert _failed_login_address(
            trusting, app, "127.0.0.1", "198.51.100.7, 203.0.113.9"
        ) == "203.0.113.9"
        assert _failed_login_address(
            trusting, app, "127.0.0.1", "203.0.113.9, 127.0.0.2"
        ) == "203.0.113.9"
        # From elsewhere, even with trusted proxies configured, the peer is the client.
        assert _failed_login_address(trusting, app, "192.0.2.1", "203.0.113.9") == "192.0.2.1"
    finally:
        trusting.close()


def _access_lines(caplog, count: int) -> list[str]:
    """The access log's lines, once its writer thread has written `count` of them."""
    deadline = time.monotonic() + 5
    while True:
        lines = [r.getMessage() for r in caplog.records if r.name == "gitward.access"]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def test_access_log_cannot_be_forged_with_encoded_line_breaks(client, caplog):
    with caplog.at_level(logging.INFO, logger="gitward.access"):
        client.get("/2.0/a%0D%0A127.0.0.1 \"GET /admin\" 200")
        lines = _access_lines(caplog, 1)
    assert lines and all("\n" not in line and "\r" not in line for line in lines)
    assert any("\\r\\n" in line for line in lines)


def test_access_log_has_a_line_per_request_without_the_query(client, caplog):
    with caplog.at_level(logging.INFO, logger="gitward.access"):
        assert client.get("/status?secret=hunter2").status_code == 200
        assert client.get("/2.0/nothing").status_code == 404
        lines = _access_lines(caplog, 2)
    assert any('"GET /status" 200' in line for line in lines)
    assert any('"GET /2.0/nothing" 404' in line for line in lines)
    assert not any("hunter2" in line for line in lines)


# -- write locks and deferred writes (SQLite) ----------------------------------------------------


def test_sqlite_writers_wait_for_each_other_instead_of_failing(sqlite_settings):
    """A unit that reads, then writes after another writer committed, must not get
    "database is locked": writers take the lock up front and wait for it."""
    runtime = Runtime.open(sqlite_settings)
    first_holds = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with runtime.unit_of_work() as store:
            store.audit.record("test.first", actor="test")
            store.flush()
            first_holds.set()
            time.sleep(0.3)

    def second() -> None:
        try:
            first_holds.wait(5)
            with runtime.unit_of_work() as store:
                store.open().scalars(select(AuditEvent)).all()
                time.sleep(0.5)  # the first one commits meanwhile
                store.audit.record("test.second", actor="test")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    with runtime.unit_of_work(write=False) as store:
        actions = {e.action for e in store.open().scalars(select(AuditEvent))}
    assert {"test.first", "test.second"} <= actions
    runtime.close()


def test_a_locked_database_never_fails_a_read_for_its_last_use_stamp(sqlite_settings):
    runtime = Runtime.open(sqlite_settings)
    with AppClient(create_app(runtime)) as client:
        world = World(runtime, client)
        alice = world.user("alice")
        world.workspace(alice, "acme")
        world.project(alice, "acme", "WEB")
        world.repository(alice, "acme", "site", "WEB")
        token = _pat(world, alice, ["REPO_READ"])
        path = sqlite_settings.sqlalchemy_url.removeprefix("sqlite:///")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            started = time.monotonic()
            r = client.get("/2.0/repositories/acme/site", headers=bearer(token))
            elapsed = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert r.status_code == 200, r.text
        assert elapsed < 10  # not the 30 s a writer waits for the lock
    runtime.close()


# -- the generation-checked read cache -----------------------------------------------------------


def test_changes_to_access_rows_bump_the_generation_by_themselves(world, runtime):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    world.repository(alice, "acme", "site", "WEB", private=False)

    def generation() -> int:
        with runtime.unit_of_work(write=False) as store:
            return store.credentials.generation()

    before = generation()
    with runtime.unit_of_work() as store:  # an ORM change, with no service asking
        repo = store.open().scalars(select(Repository)).one()
        repo.description = "changed"
    after_orm = generation()
    assert after_orm > before
    with runtime.unit_of_work() as store:  # a bulk UPDATE
        store.open().execute(update(Repository).values(is_private=True))
    assert generation() > after_orm
    with runtime.unit_of_work() as store:  # a read only: no bump
        store.open().scalars(select(Repository)).all()
    assert generation() == generation()


def test_a_cached_repository_is_reread_on_the_next_request_on_every_node(
    world, runtime, settings, tmp_path
):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    world.repository(alice, "acme", "site", "WEB", private=False)
    other = Runtime.open(settings.with_overrides(data_dir=tmp_path / "node-b"))
    try:
        node_b = AppClient(create_app(other))
        for _ in range(2):  # cached on node B
            assert node_b.get("/2.0/repositories/acme/site").status_code == 200
        r = world.client.put("/2.0/repositories/acme/site", json={"is_private": True},
                             headers=alice.auth)
        assert r.status_code == 200
        assert node_b.get("/2.0/repositories/acme/site").status_code == 401
        assert node_b.get("/2.0/repositories/acme/site", headers=alice.auth).status_code == 200
    finally:
        other.close()


def test_a_grant_change_is_honoured_on_the_next_request(world):
    alice, bob = world.user("alice"), world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    world.repository(alice, "acme", "site", "WEB")
    world.grant_repo(alice, "acme", "site", "bob", "read")
    token = _pat(world, bob, ["REPO_READ"])
    for _ in range(2):
        assert world.client.get("/2.0/repositories/acme/site",
                                headers=bearer(token)).status_code == 200
    r = world.client.delete(
        f"/2.0/repositories/acme/site/permissions-config/users/{bob.username}",
        headers=alice.auth,
    )
    assert r.status_code == 204
    assert world.client.get("/2.0/repositories/acme/site",
                            headers=bearer(token)).status_code == 404


def test_a_database_restart_costs_at_most_one_503(postgres_database, tmp_path):
    """No pre-ping on checkout: a pooled PostgreSQL connection the server dropped fails its
    statement, which is a 503 (never a 500), and the pool then connects afresh."""
    from sqlalchemy import create_engine, text

    from tests.conftest import FAST_ARGON2, NO_WORKER, TEST_HOSTS, _truncate

    _truncate(postgres_database)
    runtime = Runtime.open(Settings(data_dir=tmp_path / "data", database_url=postgres_database,
                                    **FAST_ARGON2, **TEST_HOSTS, **NO_WORKER))
    try:
        world = World(runtime, AppClient(create_app(runtime)))
        alice = world.user("alice")
        world.workspace(alice, "acme")
        world.project(alice, "acme", "WEB")
        world.repository(alice, "acme", "site", "WEB", private=False)
        assert world.client.get("/2.0/repositories/acme/site").status_code == 200
        admin = create_engine(postgres_database, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            )
        admin.dispose()
        statuses = [world.client.get("/2.0/repositories/acme/site").status_code
                    for _ in range(3)]
        assert 500 not in statuses
        assert statuses[-1] == 200 and statuses.count(503) <= 1, statuses
    finally:
        runtime.close()


def test_a_rolled_back_change_is_never_served_from_the_read_cache(world, runtime):
    """A unit that changed access rows reads its own uncommitted generation: nothing it
    reads may enter the shared cache, or the change, rolled back, would come back as soon as
    another commit brought the counter to the same value."""
    from gitward.storage.models import Workspace

    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.workspace(alice, "other")

    def rename(slug: str, name: str) -> None:
        session = store.open()
        row = session.scalars(select(Workspace).where(Workspace.slug == slug)).one()
        row.name = name
        session.flush()  # one flush: the counter moves on by one

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), runtime.unit_of_work() as store:
        rename("acme", "ROLLED-BACK")
        assert store.repos.workspace_view("acme").name == "ROLLED-BACK"
        raise Abandon
    with runtime.unit_of_work() as store:  # another commit brings the counter to that value
        rename("other", "Other")
    with runtime.unit_of_work(write=False) as store:
        assert store.repos.workspace_view("acme").name == "acme"


def test_head_on_the_root_answers_as_get(client):
    for path in ("/status", "/openapi.json"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b"", path
        assert r.headers["content-type"].startswith("application/json")


def test_a_listing_shows_a_change_on_the_next_request(world):
    alice, bob = world.user("alice"), world.user("bob")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "WEB")
    world.repository(alice, "acme", "one", "WEB", private=False)
    world.repository(alice, "acme", "secret", "WEB")

    def slugs(account=None):
        headers = account.auth if account else {}
        r = world.client.get("/2.0/repositories/acme", headers=headers)
        assert r.status_code == 200, r.text
        return [v["slug"] for v in r.json()["values"]]

    for _ in range(2):  # the encoded page is now cached
        assert slugs(alice) == ["one", "secret"]
        assert slugs(bob) == ["one"]  # another caller, another page
    world.repository(alice, "acme", "two", "WEB", private=False)
    assert slugs(alice) == ["one", "secret", "two"]
    assert slugs(bob) == ["one", "two"]
