"""Concurrent keep-alive clients against a real `gitward serve`: every request is answered.

A bounded version of `bench/load.py` (which runs 500 clients for 60 s): 120 clients for 3 s,
every fifth one writing, the others reading with each kind of credential, and `GET /status`
probed from another process throughout. Asserts correctness only (no 5xx, no unexpected
status, no reset, disconnection or timeout, /status answered within a generous bound while
loaded), never absolute speed: the machines that run the suite are shared and noisy.
"""

from __future__ import annotations

import pytest
from bench import loadgen
from bench.harness import Api

from tests.e2e.conftest import GitwardServer

CLIENTS = 120
SECONDS = 3.0
#: Generous: a /status stuck behind the request pipeline took 30 s (the pool's timeout).
STATUS_TIMEOUT = 5.0
REQUEST_TIMEOUT = 20.0

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def load_fixture(any_gitward_server: GitwardServer) -> loadgen.Fixture:
    api = Api(any_gitward_server.base_url, any_gitward_server.admin_password)
    try:
        return loadgen.seed(api, CLIENTS)
    finally:
        api.close()


def test_concurrent_clients_get_no_5xx_resets_or_timeouts(
    any_gitward_server: GitwardServer, load_fixture: loadgen.Fixture
) -> None:
    report = loadgen.run(any_gitward_server.base_url, load_fixture, clients=CLIENTS,
                         seconds=SECONDS, timeout=REQUEST_TIMEOUT, probe_interval=0.1,
                         probe_timeout=STATUS_TIMEOUT)
    summary = report.summary()
    assert report.failures() == [], summary + "\n" + any_gitward_server.log_tail(20)
    # Every client got answers, each kind of traffic succeeded, and writes really happened.
    assert report.tally.connections >= CLIENTS, summary
    assert report.tally.answered() >= CLIENTS, summary
    written = {status for (kind, status) in report.tally.statuses if kind.startswith("write")}
    assert {200, 204} <= written, summary
    assert max(report.probes.latencies) < STATUS_TIMEOUT, summary
    assert any_gitward_server.process.poll() is None, "the server exited under load"


def test_only_loopback_targets_are_loaded() -> None:
    with pytest.raises(SystemExit, match="only loopback"):
        loadgen.require_loopback("http://192.0.2.1:7990")
    loadgen.require_loopback("http://127.0.0.1:7990")
