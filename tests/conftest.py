"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), runtimes, clients.

PostgreSQL tests run when GITWARD_TEST_POSTGRES_URL is set (for example
`postgresql://postgres@127.0.0.1:5432/postgres`) and are skipped with that reason otherwise.
Each test session (and each xdist worker) gets its own fresh PostgreSQL database, migrated once
and truncated between tests; each SQLite test gets a copy of a migrated template file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from gitward.config import Settings
from gitward.storage.database import migrate
from gitward.storage.models import Base

POSTGRES_URL = os.environ.get("GITWARD_TEST_POSTGRES_URL")
SKIP_POSTGRES = "PostgreSQL tests need GITWARD_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"

#: argon2id with a small memory cost: the algorithm is the real one, the suite stays fast.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
#: The host name in-process client (tests/asgi_client.py) sends, as a site would list its own.
TEST_HOSTS = {"allowed_hosts": ("testserver",)}
#: In-process tests run no webhook delivery worker unless they ask for one
#: (tests/integration/test_webhooks.py): its rounds, started with every application, would
#: contend for SQLite's write lock with each test's own setup and slow the whole suite.
NO_WORKER = {"webhook_worker": False}


def _driver_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


_TEMPLATE: list[Path] = []


def migrated_sqlite_file() -> Path:
    """A SQLite database migrated to the newest schema, made once per test process: tests
    start from copies of it rather than running every migration again."""
    if not _TEMPLATE:
        import atexit
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="gitward-sqlite-template-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "gitward.db"
        migrate(f"sqlite:///{path}")
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    return migrated_sqlite_file()


@pytest.fixture(scope="session")
def postgres_database(worker_id: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (or xdist worker).

    Commits do not wait for the WAL to reach the disk (`synchronous_commit = off`): a crash
    could lose the last commits of a database dropped afterwards anyway, and on a busy disk a
    commit costs 17 ms with the wait against under 2 ms without."""
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    admin_url = _driver_url(POSTGRES_URL)
    name = f"gitward_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    try:
        yield url
    finally:
        cleaner = _CLEANERS.pop(url, None)
        if cleaner is not None:
            cleaner.dispose()
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


#: One engine per test database, kept for the session: emptying it between tests is then a
#: few statements on a pooled connection.
_CLEANERS: dict[str, Engine] = {}


def _truncate(url: str) -> None:
    """Empty every table and restart every sequence, as `TRUNCATE … RESTART IDENTITY` would.

    DELETE, not TRUNCATE: on tables of a test's few rows, TRUNCATE (a new file per table,
    under exclusive locks) took 0.5–0.9 s per test, DELETE 20 ms. Foreign keys are not
    checked while emptying (replica role: triggers off), so the order does not matter."""
    engine = _CLEANERS.get(url)
    if engine is None:
        # Pre-pinged: a test may end every connection to its database (test_pipeline's
        # database restart), this one's too.
        engine = _CLEANERS[url] = create_engine(url, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in Base.metadata.sorted_tables:
            # The credential generation's single row is the migration's, not test data.
            if table.name != "credential_generation":
                conn.execute(table.delete())
        conn.execute(text(
            "SELECT setval(c.oid, 1, false) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
        ))


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "main"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """Each integration test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "gitward.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_database")
    _truncate(url)
    yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, **FAST_ARGON2, **TEST_HOSTS, **NO_WORKER)


@pytest.fixture
def sqlite_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """Settings on SQLite only, for tests whose subject is not the database."""
    path = tmp_path / "gitward.db"
    shutil.copy(sqlite_template, path)
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{path}", **FAST_ARGON2, **TEST_HOSTS, **NO_WORKER)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection built (every test module, the package, its routes) is frozen out of
    the collector's sight, and collections run less often, as `gitward serve` does
    (cli._settle_garbage_collector): each test's applications and runtimes are garbage of
    cycles that grew every full collection's walk over a heap of a gigabyte or more."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
