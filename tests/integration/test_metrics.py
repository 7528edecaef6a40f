"""Prometheus metrics at /metrics: what is counted, that no secret or name is in them, and
who may read them (GITWARD_METRICS, after the trusted proxies)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.web.app import create_app
from tests.asgi_client import AppClient
from tests.integration.conftest import basic, bearer

SAMPLE = re.compile(r'^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is None:
            continue
        labels = frozenset(
            tuple(part.split("=", 1)) for part in re.findall(r'[a-z_]+="[^"]*"', match["labels"] or "")
        )
        found[(match["name"], frozenset((k, v.strip('"')) for k, v in labels))] = float(match["value"])
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def runtime(sqlite_settings: Settings):
    """SQLite only: what is counted does not depend on the database."""
    rt = Runtime.open(sqlite_settings)
    yield rt
    rt.close()


@pytest.fixture
def loopback_client(runtime: Runtime):
    # The AppClient's peer is "testclient": for these tests, a loopback address.
    with AppClient(create_app(runtime), client=("127.0.0.1", 50000)) as c:
        yield c


def test_requests_latency_and_authentications_are_counted(world, loopback_client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    client = loopback_client
    before = client.get("/metrics").text
    assert client.get("/2.0/user", headers=alice.auth).status_code == 200
    assert client.get("/2.0/user", headers=basic("alice", "wrong password here")).status_code == 401
    assert client.get("/2.0/user", headers=bearer("gwpat_" + "x" * 40)).status_code == 401
    assert client.get("/rest/api/1.0/projects").status_code == 200
    assert client.get("/status").status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("gitward_http_requests_total", surface="cloud", status="200") == 1
    assert grew("gitward_http_requests_total", surface="cloud", status="401") == 2
    assert grew("gitward_http_requests_total", surface="server", status="200") == 1
    assert grew("gitward_http_requests_total", surface="root", status="200") == 1
    assert grew("gitward_http_request_duration_seconds_count", surface="cloud") == 3
    assert grew("gitward_authentications_total", kind="password", result="success") == 1
    assert grew("gitward_authentications_total", kind="password", result="failure") == 1
    assert grew("gitward_authentications_total", kind="token", result="failure") == 1
    # Labels are fixed words: no username, path or secret ever reaches them.
    for secret in ("alice", "wrong password", "gwpat_", "acme", "/2.0"):
        assert secret not in after


def test_git_operations_are_counted_by_service(world, loopback_client):
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    world.repository(alice, "acme", "widget", "PRJ")
    client = loopback_client
    before = client.get("/metrics").text
    r = client.post("/acme/widget.git/git-upload-pack", content=b"0000", headers={
        **alice.auth, "Content-Type": "application/x-git-upload-pack-request"})
    status = str(r.status_code)
    after = client.get("/metrics").text
    assert (value(after, "gitward_git_operations_total", service="upload-pack", status=status)
            - value(before, "gitward_git_operations_total", service="upload-pack", status=status)
            ) == 1
    # The ref advertisement is no operation of its own.
    client.get("/acme/widget.git/info/refs", params={"service": "git-upload-pack"},
               headers=alice.auth)
    again = client.get("/metrics").text
    assert samples(again).keys() >= samples(after).keys()
    assert value(again, "gitward_git_operations_total", service="upload-pack", status=status) == (
        value(after, "gitward_git_operations_total", service="upload-pack", status=status))


def test_only_the_allowed_addresses_read_metrics(sqlite_settings: Settings):
    runtime = Runtime.open(replace(sqlite_settings, metrics_from=("10.1.0.0/16",),
                                   trusted_proxies=("127.0.0.1/32",)))
    try:
        app = create_app(runtime)
        with AppClient(app, client=("10.1.2.3", 1)) as inside:
            assert inside.get("/metrics").status_code == 200
            assert inside.post("/metrics").status_code == 405
        with AppClient(app, client=("127.0.0.1", 1)) as loopback:
            refused = loopback.get("/metrics")
            assert refused.status_code == 403 and "GITWARD_METRICS" in refused.text
            assert "gitward_" not in refused.text
            # Through the trusted proxy, the client it names is judged.
            assert loopback.get("/metrics", headers={"X-Forwarded-For": "10.1.9.9"}).status_code == 200
            assert loopback.get("/metrics", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 403
        with AppClient(app, client=("192.0.2.1", 1)) as outside:
            # Not a trusted proxy: what it says of its client is ignored.
            assert outside.get("/metrics", headers={"X-Forwarded-For": "10.1.9.9"}).status_code == 403
    finally:
        runtime.close()


def test_metrics_off(sqlite_settings: Settings):
    runtime = Runtime.open(replace(sqlite_settings, metrics_from=()))
    try:
        with AppClient(create_app(runtime), client=("127.0.0.1", 1)) as client:
            assert client.get("/metrics").status_code == 403
    finally:
        runtime.close()


def test_batched_latencies_match_prometheus_clients_own_histogram():
    """RequestCounts hands many samples to the histogram at once: the exposition must be the
    one prometheus-client gives for the same samples observed one by one."""
    import asyncio

    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from gitward.web import metrics

    observed = [0.0, 0.001, 0.002, 0.0021, 0.04, 0.7, 3.0, 59.9, 300.0, 301.0, 1e6]
    registry = CollectorRegistry()
    reference = Histogram("reference_seconds", "r", ["surface"], buckets=metrics._BOUNDS,
                          registry=registry)
    for seconds in observed:
        reference.labels("oauth").observe(seconds)

    def of_oauth(text: str, name: str) -> dict[str, float]:
        found = {}
        for (metric, labels), number in samples(text).items():
            if (metric.startswith(name) and ("surface", "oauth") in labels
                    and not metric.endswith("_created")):  # a timestamp, not a count
                le = dict(labels).get("le", "")
                found[metric[len(name):] + le] = number
        return found

    name = "gitward_http_request_duration_seconds"
    before = of_oauth(generate_latest().decode(), name)

    async def count() -> None:
        counts = metrics.RequestCounts()
        for seconds in observed:
            counts.request("oauth", 200, seconds)
        counts.flush()

    asyncio.run(count())
    after = of_oauth(generate_latest().decode(), name)
    grown = {key: after[key] - before.get(key, 0.0) for key in after}
    expected = of_oauth(generate_latest(registry).decode(), "reference_seconds")
    assert len(expected) == len(metrics._BOUNDS) + 3  # every bucket, +Inf, _count, _sum
    assert grown.keys() == expected.keys()
    for key, number in expected.items():
        assert grown[key] == pytest.approx(number), key
