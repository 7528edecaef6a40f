"""The pipeline under pressure, against a real `gitward serve` on SQLite: /status answers
while every unit-of-work thread waits for the database, and the waiting requests all succeed
once it is free (none is a 500, none is cut)."""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pytest

from tests.e2e.conftest import GitwardServer, start_server

pytestmark = pytest.mark.e2e

WRITERS = 24  # three times the unit-of-work threads


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    server = start_server(tmp_path_factory.mktemp("gitward-pipeline"))
    try:
        yield server
    finally:
        server.stop()


def test_status_answers_while_every_thread_waits_for_the_database(server: GitwardServer):
    admin = server.admin
    workspace = server.unique("ws")
    assert server.api("POST", "/2.0/workspaces", auth=admin,
                      json={"slug": workspace, "name": workspace}).status_code == 201
    database = server.data_dir / "gitward.db"
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    statuses: list[int] = []

    def write(i: int) -> None:
        r = httpx.post(f"{server.base_url}/2.0/workspaces/{workspace}/projects",
                       auth=admin.auth, json={"key": f"P{i}", "name": f"p{i}"}, timeout=60)
        statuses.append(r.status_code)

    writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    try:
        for thread in writers:
            thread.start()
        time.sleep(1.0)  # every thread is now waiting for the lock, the rest for a thread
        assert statuses == []
        started = time.monotonic()
        r = httpx.get(f"{server.base_url}/status", timeout=10)
        answered = time.monotonic() - started
        assert r.status_code == 200 and r.json() == {"state": "RUNNING"}
        assert answered < 2.0  # generous: it waited 30 s for a pooled connection before
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for thread in writers:
        thread.join(60)
    assert sorted(statuses) == [201] * WRITERS, server.log_tail()
