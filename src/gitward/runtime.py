"""The long-lived parts of a running server, built once from Settings."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gitward.config import Settings
from gitward.credentials.api_token import ApiTokens
from gitward.credentials.app_password import AppPasswords
from gitward.credentials.cache import CredentialCache
from gitward.credentials.narrowed import NarrowedTokens
from gitward.credentials.oauth import OAuthTokens
from gitward.credentials.oidc import IssuerKeyCache
from gitward.credentials.password import AccountPasswords, PasswordHashing, VerifiedPasswords
from gitward.credentials.personal import PersonalAccessTokens
from gitward.credentials.registry import CredentialRegistry
from gitward.credentials.resource import ResourceAccessTokens
from gitward.credentials.session import Lifetimes, Sessions
from gitward.credentials.throttle import (
    AddressLimit,
    CounterStore,
    Limits,
    PasswordGuard,
    RedisCounters,
    SqlCounters,
)
from gitward.credentials.totp import TwoStep
from gitward.credentials.usage import UsageLedger
from gitward.gitstore.store import GitStore
from gitward.outbound import OutboundRules
from gitward.services import web_sessions
from gitward.services.notices import Sightings
from gitward.storage.database import BUSY_WAIT_MS, WRITE, make_engine, make_session_factory
from gitward.storage.generation import ReadCache
from gitward.storage.held import HeldConnections
from gitward.storage.store import Store

log = logging.getLogger(__name__)

SECRET_KEY_BYTES = 32
#: How long a deferred write waits for SQLite's write lock before it is dropped (ms).
DEFERRED_WAIT_MS = 1000


def ensure_secret_key(path: Path) -> bytes:
    """The server secret: created once (0600), then read. Keys every stored hash.

    Written whole to a file of its own, then linked into place: a link never replaces a file,
    so when several hosts start together on one shared directory exactly one secret wins, and
    no one ever reads a half-written one (the shared filesystem must make `link` atomic, as
    local filesystems and NFS do)."""
    if not path.exists():
        key = secrets.token_bytes(SECRET_KEY_BYTES)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            partial.unlink()
    stored = path.read_bytes()
    if len(stored) < SECRET_KEY_BYTES:
        raise RuntimeError(f"{path} is damaged: expected {SECRET_KEY_BYTES} bytes")
    return stored


def prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.repos_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secret_key: bytes
    passwords: PasswordHashing
    git: GitStore
    credentials: CredentialRegistry
    personal_tokens: PersonalAccessTokens
    resource_tokens: ResourceAccessTokens
    two_step: TwoStep
    password_guard: PasswordGuard
    account_passwords: AccountPasswords
    app_passwords: AppPasswords
    api_tokens: ApiTokens
    oauth: OAuthTokens
    #: Narrowed tokens (`gwnar_`), derived offline from personal and resource tokens.
    narrowed_tokens: NarrowedTokens
    # Web sessions (the pages' cookie); `sessions` above is SQLAlchemy's session factory.
    web_sessions: Sessions
    # One connection per unit-of-work thread for the generation read (storage/held.py).
    held: HeldConnections
    # Requests to the revocation API, per client address (services/revocation.py).
    revocation_limit: AddressLimit
    # OIDC issuers' keys, fetched under the outbound rule (credentials/oidc.py); its
    # `rules` also judge a trust's issuer when it is saved.
    oidc_keys: IssuerKeyCache
    # Reads validated by the access generation (storage/generation.py), shared by all units.
    reads: ReadCache = field(default_factory=ReadCache)
    # What credentials were used for, noted in memory and written now and then.
    usage: UsageLedger = field(default_factory=UsageLedger)
    # Where this process knows each credential was used from (services/notices.py).
    sightings: Sightings = field(default_factory=Sightings)
    # Called (with no arguments, in the committing thread) after a unit of work that wrote
    # webhook deliveries commits: the delivery worker of this process wakes up at once.
    on_emitted: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        prepare_data_dir(settings)
        secret_key = ensure_secret_key(settings.secret_key_path)
        engine = make_engine(settings.sqlalchemy_url, pool_size=settings.db_threads)
        passwords = PasswordHashing(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        two_step = TwoStep(secret_key)
        counters = counters_for(settings, engine)
        guard = PasswordGuard(
            counters,
            Limits(
                pair=settings.auth_failure_limit,
                account=settings.auth_failure_account_limit,
                address=settings.auth_failure_address_limit,
                window_seconds=settings.auth_failure_window_seconds,
            ),
        )
        account_passwords = AccountPasswords(
            passwords,
            guard,
            two_step,
            settings.min_password_length,
            VerifiedPasswords(secret_key, settings.password_cache_seconds),
        )
        personal_tokens = PersonalAccessTokens(secret_key, CredentialCache())
        resource_tokens = ResourceAccessTokens(secret_key, CredentialCache())
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            secret_key=secret_key,
            passwords=passwords,
            git=GitStore(settings.repos_dir),
            credentials=CredentialRegistry(account_passwords),
            account_passwords=account_passwords,
            personal_tokens=personal_tokens,
            resource_tokens=resource_tokens,
            narrowed_tokens=NarrowedTokens(
                secret_key, personal_tokens, resource_tokens, CredentialCache()
            ),
            two_step=two_step,
            password_guard=guard,
            app_passwords=AppPasswords(secret_key, CredentialCache()),
            api_tokens=ApiTokens(secret_key, CredentialCache()),
            oauth=OAuthTokens(secret_key, CredentialCache()),
            web_sessions=Sessions(
                secret_key,
                CredentialCache(),
                Lifetimes(
                    idle=timedelta(seconds=settings.session_idle_seconds),
                    absolute=timedelta(seconds=settings.session_lifetime_seconds),
                    fresh=timedelta(seconds=settings.session_fresh_seconds),
                ),
            ),
            held=HeldConnections(settings.sqlalchemy_url),
            revocation_limit=AddressLimit(
                counters,
                "revoke",
                settings.revocation_limit,
                settings.revocation_window_seconds,
            ),
            oidc_keys=IssuerKeyCache(OutboundRules(settings.outbound_allowed_networks)),
        )
        register_credential_kinds(runtime)
        web_sessions.install()
        return runtime

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Store]:
        """One transaction: committed if the block succeeds, rolled back otherwise.

        `write=False` promises that the block only reads (a GET): on SQLite it then opens no
        transaction instead of taking the write lock up front, and its session opens only if
        it needs one (see Store). Writes that the block defers (`Store.defer`, such as a
        credential's last use) run after the commit, each in a short transaction of its own
        that can never fail the block.
        """
        if write:
            store = Store(self.sessions(), self.reads, ledger=self.usage)
            store.open().connection(execution_options={WRITE: True})
        else:
            store = Store(self.sessions, self.reads, raw=self.held, ledger=self.usage)
        try:
            yield store
            if store.opened is not None:
                store.opened.commit()
                if store.emitted:
                    for wake in self.on_emitted:
                        wake()
        except BaseException:
            if store.opened is not None:
                store.opened.rollback()
            raise
        finally:
            try:
                store.release_raw()
                if store.deferred:
                    _run_deferred(store.open(), store)
            finally:
                if store.opened is not None:
                    store.opened.close()

    def close(self) -> None:
        self.held.close()
        if isinstance(self.password_guard.counters, SqlCounters):
            self.password_guard.counters.close()  # its own engine on SQLite
        self.engine.dispose()


def _run_deferred(session: Session, store: Store) -> None:
    """Best-effort writes after the unit of work: logged, never raised (a request must not
    fail because, say, its last-use stamp met a locked database)."""
    deferred, store.deferred = store.deferred, []
    for write in deferred:
        try:
            session.connection(execution_options={WRITE: True, BUSY_WAIT_MS: DEFERRED_WAIT_MS})
            write(store)
            session.commit()
        except Exception:
            session.rollback()
            log.warning("a deferred write failed; it is dropped", exc_info=True)


def counters_for(settings: Settings, engine: Engine) -> CounterStore:
    """Where the guessing protection counts: Redis when set, else PostgreSQL itself, else
    a SQLite file of its own beside the data (storage/throttle.py says why)."""
    redis_client = redis_for(settings)
    if redis_client is not None:
        return RedisCounters(redis_client)
    if engine.dialect.name == "sqlite":
        return SqlCounters.sqlite_file(settings.data_dir / "throttle.db")
    return SqlCounters(engine)


def redis_for(settings: Settings) -> Any:
    if not settings.redis_url:
        return None
    import redis

    return redis.Redis.from_url(settings.redis_url)


def register_credential_kinds(runtime: Runtime) -> None:
    """Each token kind plugs in here under its prefix."""
    runtime.credentials.register(runtime.personal_tokens)
    runtime.credentials.register(runtime.app_passwords)
    runtime.credentials.register(runtime.api_tokens)
    runtime.credentials.register(runtime.oauth)
    runtime.credentials.register(runtime.web_sessions)
    for kind in runtime.resource_tokens.kinds():
        runtime.credentials.register(kind)
    runtime.credentials.register(runtime.narrowed_tokens)
