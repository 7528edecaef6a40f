"""Talking to one chosen worker of `gitward serve --workers N`.

The workers share one listening socket and the kernel picks which accepts a connection, so a
test opens connections until it holds one served by each worker, telling them apart by who
owns the connection's server side (Linux: /proc/net/tcp names the socket's inode, and only
the owning process has a descriptor for it). A keep-alive connection stays with its worker.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def wait_for_workers(pid: int, count: int, timeout: float = 60.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        children = children_of(pid)
        if len(children) >= count:
            return children
        if time.monotonic() > deadline:
            raise AssertionError(f"{pid} has {len(children)} workers, not {count}")
        time.sleep(0.1)


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port and inode != "0"):
                return inode
    return None


def owner_of(server_port: int, client_port: int, pids: list[int]) -> int | None:
    inode = _server_side_inode(server_port, client_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return pid
            except OSError:
                continue
    return None


def basic(username: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class WorkerConnection:
    """A keep-alive HTTP connection that one known worker serves."""

    def __init__(self, connection: http.client.HTTPConnection, worker: int) -> None:
        self.connection = connection
        self.worker = worker

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             json_body: Any = None, body: bytes | None = None) -> Answer:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        sent = dict(headers or {})
        if json_body is not None:
            sent["Content-Type"] = "application/json"
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        data = response.read()
        assert response.getheader("connection", "").lower() != "close", "the worker let go"
        return Answer(response.status, data, {k.lower(): v for k, v in response.getheaders()})

    def close(self) -> None:
        self.connection.close()


def one_connection_per_worker(port: int, workers: list[int],
                              attempts: int = 200) -> dict[int, WorkerConnection]:
    """A connection served by each of `workers`, found by opening new ones."""
    found: dict[int, WorkerConnection] = {}
    spare: list[http.client.HTTPConnection] = []
    try:
        for _ in range(attempts):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", "/status")
            connection.getresponse().read()  # accepted and answered: a worker holds it
            client_port = connection.sock.getsockname()[1]
            owner = owner_of(port, client_port, workers)
            if owner is not None and owner not in found:
                found[owner] = WorkerConnection(connection, owner)
                if len(found) == len(workers):
                    return found
            else:
                spare.append(connection)
    finally:
        for connection in spare:
            connection.close()
    raise AssertionError(f"no connection reached every worker: {sorted(found)} of {workers}")
