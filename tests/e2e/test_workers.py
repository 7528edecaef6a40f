"""`gitward serve --workers 2`: every guarantee holds whichever worker a request reaches.

One server with two workers for the module, on PostgreSQL (the production choice) when
GITWARD_TEST_POSTGRES_URL is set, else on SQLite (every other end-to-end server runs one
worker per CPU on SQLite as well); each test holds a keep-alive connection to each worker
(tests/e2e/workers.py) and sends the requests that must agree to different ones.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import create_engine, text

from tests.e2e.conftest import POSTGRES_URL, GitwardServer, PostgresDatabase, start_server
from tests.e2e.workers import (
    Answer,
    WorkerConnection,
    basic,
    children_of,
    one_connection_per_worker,
    wait_for_workers,
)

pytestmark = pytest.mark.e2e

WORKERS = 2
FAILURE_LIMIT = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitwardServer]:
    database = PostgresDatabase(POSTGRES_URL) if POSTGRES_URL else None
    try:
        yield from _serve(tmp_path_factory, database.url if database else None)
    finally:
        if database is not None:
            database.drop()


def _serve(tmp_path_factory: pytest.TempPathFactory,
           database_url: str | None) -> Iterator[GitwardServer]:
    server = start_server(
        tmp_path_factory.mktemp("gitward-workers"), database_url=database_url,
        env={"GITWARD_WORKERS": str(WORKERS), "GITWARD_AUTH_FAILURE_LIMIT": str(FAILURE_LIMIT),
             "GITWARD_LOG_LEVEL": "warning"},
    )
    try:
        workers = wait_for_workers(server.process.pid, WORKERS)
        yield server
    finally:
        server.stop()
    # Stopping the server (SIGTERM to the parent) stops every worker, and cleanly.
    assert server.process.returncode == 0, server.log_tail()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), pid


@pytest.fixture
def pair(server: GitwardServer) -> Iterator[tuple[WorkerConnection, WorkerConnection]]:
    workers = wait_for_workers(server.process.pid, WORKERS)
    port = int(server.base_url.rsplit(":", 1)[1])
    connections = one_connection_per_worker(port, workers)
    first, second = connections.values()
    assert first.worker != second.worker
    try:
        yield first, second
    finally:
        for connection in connections.values():
            connection.close()


def test_the_server_runs_the_workers_it_was_asked_for(server: GitwardServer) -> None:
    workers = wait_for_workers(server.process.pid, WORKERS)
    assert len(workers) == WORKERS and server.process.pid not in workers


def test_the_first_administrator_is_created_once(server: GitwardServer) -> None:
    engine = create_engine(server.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            users = connection.execute(text("SELECT username FROM users")).scalars().all()
            created = connection.execute(text(
                "SELECT count(*) FROM audit_events WHERE action = 'user.bootstrap-admin'"
            )).scalar_one()
    finally:
        engine.dispose()
    assert users.count("admin") == 1 and created == 1
    assert server.api("GET", "/2.0/user", auth=server.admin).status_code == 200


def _pat(connection: WorkerConnection, username: str, password: str) -> dict[str, str]:
    answer = connection.call(
        "PUT", f"/rest/access-tokens/1.0/users/{username}", headers=basic(username, password),
        json_body={"name": "workers", "permissions": ["REPO_READ"]},
    )
    assert answer.status == 200, answer.body
    body: dict[str, str] = answer.json()
    return body


def test_a_revocation_on_one_worker_is_refused_by_the_other(
    server: GitwardServer, pair: tuple[WorkerConnection, WorkerConnection]
) -> None:
    first, second = pair
    user = server.create_user()
    for revoker, other in ((first, second), (second, first)):
        token = _pat(revoker, user.username, user.password)
        bearer = {"Authorization": f"Bearer {token['token']}"}
        # Both workers have verified (and cached) the token.
        assert revoker.call("GET", "/2.0/user", headers=bearer).status == 200
        assert other.call("GET", "/2.0/user", headers=bearer).status == 200
        answer = revoker.call(
            "DELETE", f"/rest/access-tokens/1.0/users/{user.username}/{token['id']}",
            headers=basic(user.username, user.password),
        )
        assert answer.status == 204, answer.body
        refused = other.call("GET", "/2.0/user", headers=bearer)
        assert refused.status == 401 and "www-authenticate" in refused.headers
        assert revoker.call("GET", "/2.0/user", headers=bearer).status == 401


def test_a_tokens_last_use_is_written_once_a_minute_across_workers(
    server: GitwardServer, pair: tuple[WorkerConnection, WorkerConnection]
) -> None:
    """Each worker writes a credential's last use at most once a minute, and the write is
    conditional, so a second worker's first use within that minute writes nothing."""
    first, second = pair
    user = server.create_user()
    token = _pat(first, user.username, user.password)
    bearer = {"Authorization": f"Bearer {token['token']}"}

    def last_used() -> object:
        engine = create_engine(server.sqlalchemy_url)
        try:
            with engine.connect() as connection:
                return connection.execute(
                    text("SELECT last_authenticated FROM personal_access_tokens WHERE id = :id"),
                    {"id": int(token["id"])},
                ).scalar_one()
        finally:
            engine.dispose()

    assert last_used() is None
    # The deferred write runs before the answer leaves (runtime.unit_of_work).
    assert first.call("GET", "/2.0/user", headers=bearer).status == 200
    stamped = last_used()
    assert stamped is not None
    assert second.call("GET", "/2.0/user", headers=bearer).status == 200
    assert first.call("GET", "/2.0/user", headers=bearer).status == 200
    assert last_used() == stamped


def _enable_two_step(connection: WorkerConnection, username: str, password: str) -> pyotp.TOTP:
    auth = basic(username, password)
    answer = connection.call("POST", "/2.0/user/two-step-verification", headers=auth)
    assert answer.status == 200, answer.body
    totp = pyotp.TOTP(answer.json()["secret"])
    answer = connection.call("POST", "/2.0/user/two-step-verification/confirm", headers=auth,
                             json_body={"code": totp.now()})
    assert answer.status == 200, answer.body
    return totp


def test_a_two_step_code_is_spent_once_across_workers(
    server: GitwardServer, pair: tuple[WorkerConnection, WorkerConnection]
) -> None:
    first, second = pair
    user = server.create_user()
    totp = _enable_two_step(first, user.username, user.password)
    # The step after the one enrolment spent: still accepted (one step of clock drift).
    code = totp.at(time.time() + 30)
    headers = {**basic(user.username, user.password), "X-Gitward-OTP": code}
    answers: dict[int, int] = {}
    start = threading.Barrier(2)

    def send(connection: WorkerConnection) -> None:
        start.wait()
        answers[connection.worker] = connection.call("GET", "/2.0/user", headers=headers).status

    threads = [threading.Thread(target=send, args=(c,)) for c in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers.values()) == [200, 401], answers
    # And one after the other: the worker that refused does not accept it later either.
    assert first.call("GET", "/2.0/user", headers=headers).status == 401
    assert second.call("GET", "/2.0/user", headers=headers).status == 401


def test_a_jwt_assertion_is_used_once_across_workers(
    server: GitwardServer, pair: tuple[WorkerConnection, WorkerConnection]
) -> None:
    """Bitbucket's JWT grant: an assertion's id (jti) is single-use; two workers given the
    same assertion at once issue one token."""
    owner = server.create_user()
    workspace = server.unique("ws")
    auth = basic(owner.username, owner.password)
    first, _ = pair
    assert first.call("POST", "/2.0/workspaces", headers=auth,
                      json_body={"slug": workspace, "name": workspace}).status == 201
    answer = first.call("POST", f"/2.0/workspaces/{workspace}/oauth-consumers", headers=auth,
                        json_body={"name": "CI", "callback_url": "https://ci.example.com/cb",
                                   "is_private": True, "scopes": ["repository"]})
    assert answer.status == 201, answer.body
    consumer = answer.json()
    now = int(time.time())
    signed = jwt.encode({"alg": "HS256"}, {"iss": consumer["key"], "iat": now,
                                           "exp": now + 180, "jti": uuid.uuid4().hex},
                        OctKey.import_key(consumer["secret"]))
    form = urlencode({"grant_type": "urn:bitbucket:oauth2:jwt"})
    answers: dict[int, Answer] = {}
    start = threading.Barrier(2)

    def exchange(connection: WorkerConnection) -> None:
        start.wait()
        answers[connection.worker] = connection.call(
            "POST", "/site/oauth2/access_token", body=form.encode(),
            headers={"Authorization": f"JWT {signed}",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )

    threads = [threading.Thread(target=exchange, args=(c,)) for c in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(answer.status for answer in answers.values())
    assert statuses == [200, 400], {w: a.body for w, a in answers.items()}
    refused = next(answer for answer in answers.values() if answer.status == 400)
    assert refused.json()["error"] == "invalid_grant"


def test_password_guessing_is_counted_across_workers(
    server: GitwardServer, pair: tuple[WorkerConnection, WorkerConnection]
) -> None:
    first, second = pair
    user = server.create_user()
    wrong = basic(user.username, "not the password at all")
    for attempt in range(FAILURE_LIMIT):
        connection = pair[attempt % 2]
        assert connection.call("GET", "/2.0/user", headers=wrong).status == 401
    # The limit is reached with half the attempts made on each worker: both refuse even the
    # right password now, without verifying it.
    right = basic(user.username, user.password)
    for connection in (first, second):
        answer = connection.call("GET", "/2.0/user", headers=right)
        assert answer.status == 429 and "retry-after" in answer.headers, answer.body


def test_metrics_add_up_every_worker(
    server: GitwardServer, pair: tuple[WorkerConnection, WorkerConnection]
) -> None:
    first, second = pair

    def served(connection: WorkerConnection) -> float:
        answer = connection.call("GET", "/metrics")
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("text/plain")
        for line in answer.body.decode().splitlines():
            if line.startswith('gitward_http_requests_total{status="200",surface="root"}'):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError("no count of /status answers")

    def settled(expected: float | None = None) -> float:
        """The count once both workers have handed theirs over (each does every second,
        web/metrics.py): both scrapes then agree (on `expected`, when given)."""
        deadline = time.monotonic() + 30
        while True:
            one, other = served(first), served(second)
            if one == other and expected in (None, one):
                return one
            assert time.monotonic() < deadline, (one, other, expected)
            time.sleep(0.3)

    before = settled()
    for _ in range(3):
        assert first.call("GET", "/status").status == 200
        assert second.call("GET", "/status").status == 200
    # Whichever worker answers the scrape counts the other's requests too.
    settled(before + 6)
    assert served(first) == served(second) == before + 6


def test_a_worker_that_dies_is_replaced(server: GitwardServer) -> None:
    workers = wait_for_workers(server.process.pid, WORKERS)
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = children_of(server.process.pid)
        if len(now) == WORKERS and workers[0] not in now:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.1)
    port = int(server.base_url.rsplit(":", 1)[1])
    # Both the survivor and the replacement serve.
    connections = one_connection_per_worker(port, now)
    for connection in connections.values():
        connection.close()
    assert sorted(connections) == sorted(now) and server.process.poll() is None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
