"""Failed-login counters in Redis (GITWARD_REDIS_URL): shared by every process (the guard's
rules on Redis: test_password_guard.py).

Runs when GITWARD_TEST_REDIS_URL is set (CI sets it), skipped with that reason otherwise.
"""

from __future__ import annotations

import os

import pytest

from gitward.credentials.throttle import RedisCounters
from gitward.runtime import Runtime
from gitward.web.app import create_app
from tests.asgi_client import AppClient
from tests.integration.conftest import basic

REDIS_URL = os.environ.get("GITWARD_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(
    not REDIS_URL,
    reason="Redis tests need GITWARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)",
)


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(RedisCounters.PREFIX + "*"):
        client.delete(key)


def test_two_processes_share_the_counters(settings, world, redis_client):
    """Two runtimes (standing for two worker processes) on the same Redis and database."""
    world.user("alice")
    variant = settings.with_overrides(redis_url=REDIS_URL)
    first, second = Runtime.open(variant), Runtime.open(variant)
    try:
        with AppClient(create_app(first)) as a, AppClient(create_app(second)) as b:
            limit = variant.auth_failure_limit
            for i in range(limit):
                client = a if i % 2 else b
                assert client.get("/2.0/user",
                                  headers=basic("alice", "wrong password")).status_code == 401
            r = b.get("/2.0/user", headers=basic("alice", "correct horse battery staple"))
            assert r.status_code == 429 and "Retry-After" in r.headers
    finally:
        first.close()
        second.close()
