"""Guessing protection that cannot be turned against users (credentials/throttle.py), on each
place the counters can live: a SQLite file of their own, PostgreSQL, and Redis.

The rules: an attempt takes its place before the password is verified, all-or-none over
its three counters, and gives it back when it was not a wrong guess; per (account,
address) the limit is met first; per account and per address there are higher ceilings; an
administrator's unlock forgets an account's counters only. Then the race over real HTTP: 60
wrong passwords at once from one address are verified at most `limit` times, and the right
password from another address still signs in.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from gitward.config import Settings
from gitward.credentials.throttle import (
    Blocked,
    Limits,
    PasswordGuard,
    RedisCounters,
    Reservation,
    SqlCounters,
)
from gitward.runtime import Runtime
from gitward.services.users import create_user
from gitward.storage.database import make_engine
from tests.conftest import FAST_ARGON2

REDIS_URL = os.environ.get("GITWARD_TEST_REDIS_URL")
SKIP_REDIS = "Redis tests need GITWARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)"
T0 = datetime(2027, 1, 1, tzinfo=UTC)


def _redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(RedisCounters.PREFIX + "*"):
        client.delete(key)
    return client


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "redis"])
def counters(request, tmp_path: Path):
    """Each backend of the counters, empty."""
    if request.param == "sqlite":
        store = SqlCounters.sqlite_file(tmp_path / "throttle.db")
        yield store
        store.close()
    elif request.param == "postgresql":
        store = SqlCounters(make_engine(request.getfixturevalue("postgres_database")))
        store.clear(prefixes=[""])
        yield store
        store.clear(prefixes=[""])
        store.close()
    else:
        if not REDIS_URL:
            pytest.skip(SKIP_REDIS)
        client = _redis_client()
        yield RedisCounters(client)
        for key in client.scan_iter(RedisCounters.PREFIX + "*"):
            client.delete(key)


def guard_of(counters, **limits) -> PasswordGuard:
    return PasswordGuard(counters, Limits(**{"pair": 3, "account": 5, "address": 4,
                                             "window_seconds": 600, **limits}))


def taken(result) -> bool:
    return isinstance(result, Reservation)


def test_pair_limit_first(counters):
    guard = guard_of(counters)
    for _ in range(3):
        assert taken(guard.reserve("alice", "10.0.0.1"))
    blocked = guard.reserve("alice", "10.0.0.1")
    assert isinstance(blocked, Blocked) and 0 < blocked.retry_after <= 601
    # The owner elsewhere, and others from the same address, are not locked out.
    assert taken(guard.reserve("alice", "10.0.0.2"))
    assert taken(guard.reserve("bob", "10.0.0.1"))
    # Refused attempts took no place: the account holds 3 + 1.
    for _ in range(10):
        assert not taken(guard.reserve("alice", "10.0.0.1"))
    assert guard.state("alice").failures == 4


def test_right_passwords_give_their_place_back(counters):
    guard = guard_of(counters)
    for _ in range(20):
        reservation = guard.reserve("alice", "10.0.0.1")
        assert isinstance(reservation, Reservation)
        guard.release(reservation)
    assert guard.state("alice").failures == 0


def test_account_ceiling_over_many_addresses(counters):
    guard = guard_of(counters)
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        assert taken(guard.reserve("alice", address))
    blocked = guard.reserve("alice", "10.0.0.9")
    assert isinstance(blocked, Blocked)
    state = guard.state("alice")
    assert state.failures == 5 and state.locked_for is not None
    # All or none: the refused attempt took no place on its pair or its address either.
    assert taken(guard.reserve("bob", "10.0.0.9"))
    for _ in range(2):
        assert taken(guard.reserve("bob", "10.0.0.9"))
    assert not taken(guard.reserve("bob", "10.0.0.9"))  # bob's pair is full at 3


def test_address_ceiling_over_many_accounts(counters):
    guard = guard_of(counters)
    for name in ("u1", "u2", "u3", "u4"):
        assert taken(guard.reserve(name, "10.0.0.7"))
    assert isinstance(guard.reserve("u5", "10.0.0.7"), Blocked)
    assert taken(guard.reserve("u5", "10.0.0.8"))


def test_unlock_forgets_one_account_only(counters):
    guard = guard_of(counters, address=1000)
    for name in ("a_b", "axb"):
        for _ in range(3):
            assert taken(guard.reserve(name, "10.0.1.1"))
    assert not taken(guard.reserve("a_b", "10.0.1.1"))
    assert guard.unlock("a_b") >= 2
    assert taken(guard.reserve("a_b", "10.0.1.2"))
    assert taken(guard.reserve("a_b", "10.0.1.1"))
    # `_` is no wildcard: the other account keeps its counters.
    assert not taken(guard.reserve("axb", "10.0.1.1"))
    assert guard.state("axb").failures == 3


def test_reservations_are_atomic(counters):
    guard = guard_of(counters, pair=10, account=1000, address=1000)
    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(lambda _: guard.reserve("alice", "10.0.2.1"), range(50)))
    assert sum(taken(r) for r in results) == 10
    assert guard.state("alice").failures == 10


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_window_ends(backend, request, tmp_path):
    if backend == "sqlite":
        store = SqlCounters.sqlite_file(tmp_path / "throttle.db")
    else:
        store = SqlCounters(make_engine(request.getfixturevalue("postgres_database")))
        store.clear(prefixes=[""])
    now = [T0]
    store.clock = lambda: now[0]
    guard = guard_of(store)
    try:
        for _ in range(3):
            assert taken(guard.reserve("alice", "10.0.3.1"))
        blocked = guard.reserve("alice", "10.0.3.1")
        assert isinstance(blocked, Blocked) and blocked.retry_after == 601
        now[0] = T0 + timedelta(seconds=300)
        blocked = guard.reserve("alice", "10.0.3.1")
        assert isinstance(blocked, Blocked) and blocked.retry_after == 301
        now[0] = T0 + timedelta(seconds=601)
        assert taken(guard.reserve("alice", "10.0.3.1"))  # a new window, counted from one
        assert guard.state("alice").failures == 1
    finally:
        store.clear(prefixes=[""])
        store.close()


# -- the race, over real HTTP ---------------------------------------------------------------


@contextmanager
def live_server(runtime: Runtime, listener: socket.socket) -> Iterator[str]:
    """The application served by uvicorn on `listener`, in this process (so that the test
    can count what the server verifies)."""
    from gitward.web.app import create_app

    config = uvicorn.Config(create_app(runtime), log_level="warning", access_log=False,
                            proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("redis", [False, True], ids=["database-counters", "redis-counters"])
def test_parallel_guesses_do_not_overrun_the_limit(settings: Settings, redis: bool):
    if redis and not REDIS_URL:
        pytest.skip(SKIP_REDIS)
    if redis:
        _redis_client()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    # A verification that takes a while (16 MiB argon2id), so that guesses overlap.
    variant = settings.with_overrides(
        allowed_hosts=(f"127.0.0.1:{port}",),
        redis_url=REDIS_URL if redis else None,
        argon2_memory_kib=16384,
        argon2_time_cost=FAST_ARGON2["argon2_time_cost"],
    )
    runtime = Runtime.open(variant)
    name = f"victim{uuid.uuid4().hex[:6]}"
    password = "the victim's own passphrase"
    with runtime.unit_of_work() as store:
        create_user(store, runtime.passwords, username=name, email=f"{name}@example.com",
                    password=password)
    verified: list[str] = []
    lock = threading.Lock()
    real_verify = runtime.passwords.verify

    def counting_verify(stored_hash: str | None, secret: str) -> bool:
        with lock:
            verified.append(secret)
        return real_verify(stored_hash, secret)

    runtime.passwords.verify = counting_verify  # type: ignore[method-assign]
    limit = variant.auth_failure_limit
    try:
        with live_server(runtime, listener) as base:
            def guess(i: int) -> int:
                with httpx.Client(base_url=base, timeout=60) as client:
                    return client.get("/2.0/user", auth=(name, f"guess {i}")).status_code

            with ThreadPoolExecutor(max_workers=60) as pool:
                statuses = list(pool.map(guess, range(60)))
            assert set(statuses) <= {401, 429}, statuses
            wrong = [s for s in verified if s.startswith("guess")]
            assert 0 < len(wrong) <= limit, (len(wrong), statuses)
            assert statuses.count(401) == len(wrong)
            # The guesser's address is locked, even for the right password ...
            with httpx.Client(base_url=base, timeout=60) as client:
                assert client.get("/2.0/user", auth=(name, password)).status_code == 429
            # ... but the owner, signing in from another address, is not.
            other = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(base_url=base, timeout=60, transport=other) as client:
                r = client.get("/2.0/user", auth=(name, password))
                assert r.status_code == 200, r.text
                assert r.json()["username"] == name
    finally:
        runtime.close()
        listener.close()
        if redis:
            _redis_client()
