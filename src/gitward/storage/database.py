"""Engine, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from gitward.storage.generation import watch_access_changes

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: Pool size when the caller names none (tools and tests).
DEFAULT_POOL_SIZE = 10
#: Connections beyond one per thread, for the short side transactions of a unit of work.
SIDE_CONNECTIONS = 4
#: A thread never waits this long for a connection unless something leaks them.
POOL_TIMEOUT_SECONDS = 10


#: Execution option of a connection whose transaction will write: on SQLite it begins with
#: `BEGIN IMMEDIATE` (see `_sqlite_begin`).
WRITE = "gitward_write"

#: How long a SQLite writer waits for another writer's lock before giving up, in milliseconds.
BUSY_TIMEOUT_MS = 30_000
#: Execution option: a shorter wait for this transaction's write lock (best-effort writes).
BUSY_WAIT_MS = "gitward_busy_wait_ms"


def make_engine(url: str, *, pool_size: int | None = None, **kwargs: Any) -> Engine:
    """An engine configured for our use of each backend.

    `pool_size` is the number of threads that run units of work: every such thread can hold
    one connection, so none waits for one; a few more serve the short side transactions a
    unit opens besides its own (guessing-protection counters on PostgreSQL, last-use writes).
    """
    if pool_size is not None and "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", pool_size)
        kwargs.setdefault("max_overflow", SIDE_CONNECTIONS)
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, issue BEGIN, so that our transactions are real.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # NOTE: a deferred transaction that reads and then writes cannot wait for the
            # write lock: if another writer committed since its first read, SQLite answers
            # SQLITE_BUSY at once, busy_timeout or not ("database is locked"). A unit of work
            # that may write therefore takes the lock up front, where busy_timeout applies.
            # A unit that only reads opens no transaction at all: each statement is atomic
            # on its own (as under PostgreSQL's READ COMMITTED), and a stray write in it (a
            # spent two-step code) commits by itself, waiting for the lock like any writer.
            options = conn.get_execution_options()
            if options.get(WRITE, False):
                wait = int(options.get(BUSY_WAIT_MS, BUSY_TIMEOUT_MS))
                conn.exec_driver_sql(f"PRAGMA busy_timeout={wait}")
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it is a round trip on every checkout, and a unit of work checks out once
    # or twice. A connection that died (the server restarted) fails its statement instead;
    # SQLAlchemy then drops every pooled connection of that server, the request is a 503
    # (web/errors.py) and the next one connects afresh. Idle connections are renewed before
    # a server or proxy would time them out.
    kwargs.setdefault("pool_recycle", 1800)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", DEFAULT_POOL_SIZE)
        kwargs.setdefault("max_overflow", SIDE_CONNECTIONS)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)
    watch_access_changes(factory)
    return factory


#: The newest migration's revision (storage/migrations/versions): a database already there is
#: left alone without loading Alembic at all (a second or more at every start and command).
#: tests/unit/test_schema_head.py keeps it equal to Alembic's own head.
SCHEMA_HEAD = "0022"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema up to the newest migration."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                # Table rebuilds (SQLite's only way to change a table) drop the old table,
                # which with foreign keys on would cascade to the children's rows. The pragma
                # only takes outside a transaction; this connection is discarded afterwards.
                connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA foreign_keys=OFF"
                )
            with connection.begin():
                take_setup_lock(connection)
                if _revision_of(connection) == SCHEMA_HEAD:
                    return
                from alembic import command

                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    finally:
        engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    """The schema's revision, or None (no schema yet, or one Alembic has to look at)."""
    if "alembic_version" not in inspect(connection).get_table_names():
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


#: The PostgreSQL advisory lock that start-up's one-time work (migrations, the first
#: administrator) holds, so that several hosts starting together on one database do it once.
SETUP_LOCK_KEY = 0x6769_7477  # "gitw"


def take_setup_lock(connection: Connection) -> None:
    """Hold the setup lock until the transaction ends (PostgreSQL; elsewhere nothing: SQLite
    serves one host, and its write transactions already exclude each other)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SETUP_LOCK_KEY})


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()
