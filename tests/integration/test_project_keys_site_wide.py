"""Project keys are unique across the site (Bitbucket Server names a project by its key
alone): migration 0009 adds the rule, refusing — and naming the keys — when two workspaces
already share one; afterwards the Cloud API refuses such a key with a Cloud 400."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from gitward.storage.database import alembic_config, migrate
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, _driver_url
from tests.integration.api_checks import cloud_error


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, with no schema yet, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gitward.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    admin_url = _driver_url(POSTGRES_URL)
    name = f"gitward_keys_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _upgrade_to(url: str, revision: str) -> None:
    """As `migrate`, to `revision` (SQLite's table rebuilds in 0008 need foreign keys off)."""
    from sqlalchemy.pool import NullPool

    from gitward.storage.database import make_engine

    engine = make_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with connection.begin():
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    engine.dispose()


def _insert(url: str, *rows: tuple[str, str]) -> None:
    """Workspaces and projects (workspace slug, project key) written as 0008 allowed them."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for slug in sorted({slug for slug, _ in rows}):
            conn.execute(
                text("INSERT INTO workspaces (uuid, slug, name, created_on) "
                     "VALUES (:uuid, :slug, :slug, CURRENT_TIMESTAMP)"),
                {"uuid": str(uuid.uuid4()), "slug": slug},
            )
        for slug, key in rows:
            conn.execute(
                text("INSERT INTO projects (uuid, workspace_id, key, name, description, "
                     "is_private, created_on, updated_on) SELECT :uuid, id, :key, :key, '', "
                     ":private, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM workspaces "
                     "WHERE slug = :slug"),
                {"uuid": str(uuid.uuid4()), "slug": slug, "key": key, "private": True},
            )
    engine.dispose()


def _version(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return str(version)


def test_migration_refuses_duplicates_and_names_them(empty_url):
    _upgrade_to(empty_url, "0008")
    _insert(empty_url, ("acme", "WEB"), ("beta", "WEB"), ("beta", "API"), ("gamma", "WEB"),
            ("gamma", "OPS"), ("acme", "OPS"), ("acme", "SOLO"))
    with pytest.raises(RuntimeError) as refused:
        migrate(empty_url)
    message = str(refused.value)
    assert "OPS in acme, gamma" in message
    assert "WEB in acme, beta, gamma" in message
    assert "API" not in message and "SOLO" not in message
    assert "nothing was changed" in message
    assert _version(empty_url) == "0008"

    # Renamed, the keys are unique: the migration passes and the index holds the rule.
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE projects SET key = 'WEB2' WHERE key = 'WEB' AND workspace_id "
                          "= (SELECT id FROM workspaces WHERE slug = 'beta')"))
        conn.execute(text("UPDATE projects SET key = 'WEB3' WHERE key = 'WEB' AND workspace_id "
                          "= (SELECT id FROM workspaces WHERE slug = 'gamma')"))
        conn.execute(text("UPDATE projects SET key = 'OPS2' WHERE key = 'OPS' AND workspace_id "
                          "= (SELECT id FROM workspaces WHERE slug = 'gamma')"))
    engine.dispose()
    migrate(empty_url)
    assert _version(empty_url) >= "0009"  # this migration ran, and those after it
    engine = create_engine(empty_url)
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("projects")}
    assert indexes["uq_projects_key"]["unique"] and indexes["uq_projects_key"][
        "column_names"] == ["key"]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), engine.begin() as conn:
        _insert_project(conn, "beta", "SOLO")
    engine.dispose()

    # And down again: the index goes, keys may repeat across workspaces as before.
    command.downgrade(alembic_config(empty_url), "0008")
    engine = create_engine(empty_url)
    assert "uq_projects_key" not in {ix["name"] for ix in inspect(engine).get_indexes("projects")}
    engine.dispose()


def _insert_project(conn, slug: str, key: str) -> None:
    conn.execute(
        text("INSERT INTO projects (uuid, workspace_id, key, name, description, is_private, "
             "created_on, updated_on) SELECT :uuid, id, :key, :key, '', :private, "
             "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM workspaces WHERE slug = :slug"),
        {"uuid": str(uuid.uuid4()), "slug": slug, "key": key, "private": True},
    )


def test_cloud_refuses_a_key_of_another_workspace(world, client):
    alice = world.user("alice")
    bob = world.user("bob")
    world.workspace(alice, "acme")
    world.workspace(bob, "beta")
    world.project(alice, "acme", "WEB")
    body = cloud_error(
        client.post("/2.0/workspaces/beta/projects", json={"key": "web", "name": "Web"},
                    headers=bob.auth),
        400, "another workspace",
    )
    # The other workspace is not named: bob may not see it.
    assert "acme" not in str(body)
    # Renaming a project onto a key used elsewhere is refused the same way.
    world.project(bob, "beta", "API")
    cloud_error(client.put("/2.0/workspaces/beta/projects/API", json={"key": "WEB"},
                           headers=bob.auth), 400, "unique across the site")
    # In its own workspace, the duplicate message is the usual one.
    cloud_error(client.post("/2.0/workspaces/acme/projects", json={"key": "WEB", "name": "W"},
                            headers=alice.auth), 400, "already exists in acme")
