"""Ids are never handed out twice, on SQLite as on PostgreSQL: a script that deletes a stale id
must not revoke a newer credential, and an audit event's id names one thing only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Integer, create_engine, text

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.storage.database import alembic_config, migrate
from gitward.storage.models import Base
from gitward.web.app import create_app
from tests.asgi_client import AppClient
from tests.conftest import FAST_ARGON2, NO_WORKER, TEST_HOSTS
from tests.integration.conftest import World
from tests.integration.oauth_helpers import create_consumer

PAT_URL = "/rest/access-tokens/1.0/users/alice"


def _id_tables() -> list[str]:
    return sorted(
        t.name for t in Base.metadata.sorted_tables
        if [c.name for c in t.primary_key.columns] == ["id"]
        and isinstance(t.c.id.type.dialect_impl(_sqlite_dialect()), Integer)
    )


def _sqlite_dialect():
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect()


@pytest.fixture
def alice(world):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    return alice


def _pat(client, alice, name):
    r = client.put(PAT_URL, json={"name": name, "permissions": ["REPO_READ"]},
                   headers=alice.auth)
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def test_a_revoked_personal_token_id_is_not_reused(client, alice):
    first = _pat(client, alice, "one")
    newest = _pat(client, alice, "two")
    assert client.delete(f"{PAT_URL}/{newest}", headers=alice.auth).status_code == 204
    third = _pat(client, alice, "three")
    assert third not in (first, newest) and third > newest
    # Deleting the stale id again is a 404: it never names the newer token.
    assert client.delete(f"{PAT_URL}/{newest}", headers=alice.auth).status_code == 404
    assert client.get(f"{PAT_URL}/{third}", headers=alice.auth).status_code == 200


def test_other_credentials_and_resources_get_new_ids(client, alice, world):
    url = "/2.0/workspaces/acme/access-tokens"
    body = {"name": "t", "scopes": ["repository"]}
    old = client.post(url, json=body, headers=alice.auth).json()["id"]
    assert client.delete(f"{url}/{old}", headers=alice.auth).status_code == 204
    assert client.post(url, json=body, headers=alice.auth).json()["id"] > old

    url = "/2.0/user/app-passwords"
    body = {"label": "git", "scopes": ["repository"]}
    old = client.post(url, json=body, headers=alice.auth).json()["id"]
    assert client.delete(f"{url}/{old}", headers=alice.auth).status_code == 204
    assert client.post(url, json=body, headers=alice.auth).json()["id"] > old

    old = create_consumer(client, alice, name="App")["id"]
    r = client.delete(f"/2.0/workspaces/acme/oauth-consumers/{old}", headers=alice.auth)
    assert r.status_code == 204
    assert create_consumer(client, alice, name="App 2")["id"] > old


def test_every_table_with_an_integer_id_never_reuses_ids_on_sqlite(sqlite_template):
    """The models say so, and the migrated schema does (it is what the database obeys)."""
    tables = _id_tables()
    assert {"users", "personal_access_tokens", "oauth_access_tokens", "audit_events"} <= set(
        tables)
    for name in tables:
        assert Base.metadata.tables[name].dialect_options["sqlite"]["autoincrement"], name
    engine = create_engine(f"sqlite:///{sqlite_template}")
    with engine.connect() as conn:
        sql = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type='table'"))
                   .all())
    engine.dispose()
    for name in tables:
        assert "AUTOINCREMENT" in sql[name], (name, sql[name])


def _dump(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'alembic_version'"))]
        dump = {n: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{n}"'))), key=repr)
                for n in names}
    engine.dispose()
    return dump


#: Columns that migrations after 0008 add, with the defaults they give existing rows: added
#: by hand to the 0007 database while today's code writes its data, dropped again before
#: the upgrade (which adds them back).
LATER_COLUMNS = {
    "users": {
        "must_change_password": "BOOLEAN NOT NULL DEFAULT 0",
        "password_epoch": "INTEGER NOT NULL DEFAULT 0",
    },
    "repositories": {"push_protection": "BOOLEAN"},
    **{table: {"allowed_ips": "VARCHAR(4096)"}
       for table in ("personal_access_tokens", "resource_access_tokens", "app_passwords")},
}
for _table in ("personal_access_tokens", "resource_access_tokens"):
    LATER_COLUMNS[_table] = {**LATER_COLUMNS[_table], "ref_patterns": "VARCHAR(13000)",
                             "fast_forward_only": "BOOLEAN NOT NULL DEFAULT 0"}
    LATER_COLUMNS[_table] = {**LATER_COLUMNS[_table], "narrowing_key": "VARCHAR(64)"}


def _later_columns(url: str, *, add: bool) -> None:
    from gitward.storage.database import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table, columns in LATER_COLUMNS.items():
                for name, definition in columns.items():
                    change = f"ADD COLUMN {name} {definition}" if add else f"DROP COLUMN {name}"
                    conn.execute(text(f"ALTER TABLE {table} {change}"))
    finally:
        engine.dispose()


def test_migration_keeps_every_row_and_then_never_reuses_ids(tmp_path: Path):
    """A database with data in it, at 0007, upgraded: every row intact (foreign keys and
    cascades included), and a delete then a create gives a new id."""
    db = tmp_path / "gitward.db"
    url = f"sqlite:///{db}"
    command.upgrade(alembic_config(url), "0007")
    _later_columns(url, add=True)  # today's code writes the data of 0007
    settings = Settings(data_dir=tmp_path / "data", database_url=url, **FAST_ARGON2, **TEST_HOSTS, **NO_WORKER)
    runtime = Runtime.open(settings)
    try:
        with AppClient(create_app(runtime), raise_server_exceptions=False) as client:
            world = World(runtime, client)
            alice = world.user("alice")
            world.user("bob")
            world.workspace(alice, "acme")
            world.project(alice, "acme", "PRJ")
            world.repository(alice, "acme", "widget", "PRJ")
            world.grant_repo(alice, "acme", "widget", "bob", "write")
            r = client.put("/2.0/workspaces/acme/members/bob", json={"role": "member"},
                           headers=alice.auth)
            assert r.status_code in (200, 201), r.text
            create_consumer(client, alice, name="App")
            client.post("/2.0/user/app-passwords", json={"label": "git",
                                                         "scopes": ["repository"]},
                        headers=alice.auth)
            _pat(client, alice, "one")
            stale = _pat(client, alice, "two")
            assert client.delete(f"{PAT_URL}/{stale}", headers=alice.auth).status_code == 204
            # Before 0008, SQLite hands the deleted id out again: the bug this migration ends.
            again = _pat(client, alice, "two again")
            assert again == stale
            assert client.delete(f"{PAT_URL}/{again}", headers=alice.auth).status_code == 204
    finally:
        runtime.close()

    # A token made before narrowing existed has no narrowing key (today's code wrote one).
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in ("personal_access_tokens", "resource_access_tokens"):
            conn.execute(text(f"UPDATE {table} SET narrowing_key = NULL"))
    engine.dispose()
    before = _dump(url)
    assert before["repository_grants"] and before["workspace_members"]
    assert before["oauth_consumers"] and before["app_passwords"] and before["audit_events"]
    backup = tmp_path / "before.db"
    shutil.copy(db, backup)

    _later_columns(url, add=False)
    migrate(url)
    after = _dump(url)
    # Tables that later migrations create (web_sessions) start empty; the rest is as it was.
    assert all(not rows for table, rows in after.items() if table not in before)
    assert {table: rows for table, rows in after.items() if table in before} == before

    runtime = Runtime.open(settings)
    try:
        with AppClient(create_app(runtime), raise_server_exceptions=False) as client:
            from tests.integration.conftest import PASSWORD, basic

            auth = basic("alice", PASSWORD)
            r = client.get(f"{PAT_URL}", headers=auth)
            assert [t["name"] for t in r.json()["values"]] == ["one"]
            # SQLite kept no record of ids deleted before the upgrade (that is the bug), so
            # the sequence starts after the largest id still present; from then on, none is
            # handed out twice.
            newest = _pat(client, alice, "new")
            assert client.delete(f"{PAT_URL}/{newest}", headers=auth).status_code == 204
            assert _pat(client, alice, "newer") > newest
            # The data's relations work as before: bob's grant and membership.
            bob = basic("bob", PASSWORD)
            assert client.get("/2.0/repositories/acme/widget", headers=bob).status_code == 200
    finally:
        runtime.close()


def test_the_migration_refuses_to_run_with_foreign_keys_on(tmp_path: Path):
    """Run any other way than through `migrate` (foreign keys on), the rebuild would cascade
    deletes to child rows: it refuses instead, and the database stays at 0007."""
    db = tmp_path / "gitward.db"
    url = f"sqlite:///{db}"
    command.upgrade(alembic_config(url), "0007")
    from gitward.storage.database import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            with pytest.raises(RuntimeError, match="foreign keys off"):
                command.upgrade(config, "head")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"
    finally:
        engine.dispose()
