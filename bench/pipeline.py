"""What one request costs inside the process, piece by piece: the figures behind the choices
in docs/architecture.md ("A request"), measured as CPU time (all threads) so that a busy
machine bends them less than wall-clock figures.

    python bench/pipeline.py [--rounds 5] [--requests 3000]

It builds a server in a temporary directory (SQLite), seeds it through the REST API (a public
repository, 100 repositories to list, a personal access token), then drives the ASGI
application directly — no sockets, no uvicorn — and prints, per case, the median over rounds
of the CPU µs per request:

- the framework alone: `/status` at the root, and the same answer from inside a surface
- a unit of work's thread hop: the pipeline's executor, anyio's `to_thread` (what FastAPI
  uses), and no hop at all (the work run on the event loop)
- the access generation read through a SQLAlchemy session, and on a bare pooled connection
- the repository GET and the listing of 100, anonymous and with the token
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import anyio.to_thread
from fastapi.testclient import TestClient

from gitward.config import Settings
from gitward.runtime import Runtime
from gitward.services.users import create_user
from gitward.storage.database import migrate
from gitward.web import pipeline as pipeline_module
from gitward.web.app import create_app

PASSWORD = "bench-password-1"
LISTED = 100


def seed(runtime: Runtime, app: Any) -> str:
    client = TestClient(app, base_url="http://127.0.0.1")
    with runtime.unit_of_work() as store:
        create_user(store, runtime.passwords, username="alice", email="alice@example.com",
                    password=PASSWORD, is_site_admin=True)
    auth = {"Authorization": "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()}
    assert client.post("/2.0/workspaces", json={"slug": "acme", "name": "Acme"},
                       headers=auth).status_code == 201
    assert client.post("/2.0/workspaces/acme/projects", json={"key": "WEB", "name": "Web"},
                       headers=auth).status_code == 201
    for i in range(LISTED):
        r = client.post(f"/2.0/repositories/acme/r{i:03d}", headers=auth,
                        json={"scm": "git", "project": {"key": "WEB"}, "is_private": False})
        assert r.status_code == 200, r.text
    r = client.put("/rest/access-tokens/1.0/users/alice", headers=auth,
                   json={"name": "bench", "permissions": ["REPO_READ"]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def scope(path: str, query: bytes = b"", token: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "path": path, "raw_path": path.encode(), "root_path": "", "scheme": "http",
            "query_string": query, "headers": headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80)}


async def call(app: Any, template: dict[str, Any]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(template), receive, send)
    return status


async def cpu_per_call(run: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(max(n // 10, 10)):
        await run()
    started = time.process_time()
    for _ in range(n):
        await run()
    return (time.process_time() - started) / n * 1e6


def with_hop(kind: str) -> Callable[..., Any]:
    """Pipeline.call, hopping as `kind` says (the code under test uses the executor)."""
    original = pipeline_module.Pipeline.call

    async def inline(self: Any, ingress: Any, work: Any) -> Any:
        return self.run(ingress, work)

    async def anyio_hop(self: Any, ingress: Any, work: Any) -> Any:
        return await anyio.to_thread.run_sync(self.run, ingress, work)

    return {"executor": original, "anyio": anyio_hop, "none": inline}[kind]


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="gitward-bench-pipeline-"))
    settings = Settings(data_dir=root, argon2_time_cost=1, argon2_memory_kib=1024,
                        argon2_parallelism=1)
    migrate(settings.sqlalchemy_url)
    runtime = Runtime.open(settings)
    app = create_app(runtime)
    token = seed(runtime, app)
    repo = "/2.0/repositories/acme/r001"
    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "/status (root, no unit of work)": lambda: call(app, scope("/status")),
        "repository GET, anonymous": lambda: call(app, scope(repo)),
        "repository GET, PAT": lambda: call(app, scope(repo, token=token)),
        f"listing of {LISTED}, anonymous": lambda: call(
            app, scope("/2.0/repositories/acme", b"pagelen=100")),
        f"listing of {LISTED}, PAT": lambda: call(
            app, scope("/2.0/repositories/acme", b"pagelen=100", token)),
    }
    from gitward.storage.unit import _READ_GENERATION

    def generation_in_session() -> None:
        session = runtime.sessions()
        session.connection().execute(_READ_GENERATION).scalar_one()
        session.commit()
        session.close()

    def generation_on_raw_connection() -> None:
        with runtime.unit_of_work(write=False) as store:
            store.credentials.generation()

    async def sync(fn: Callable[[], None]) -> None:
        fn()

    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for hop in ("executor", "anyio", "none"):
            pipeline_module.Pipeline.call = with_hop(hop)  # type: ignore[method-assign]
            for name, run in cases.items():
                if name.startswith("/status") and hop != "executor":
                    continue
                n = args.requests // 10 if "listing" in name else args.requests
                results.setdefault(f"{name} [hop: {hop}]", []).append(
                    await cpu_per_call(run, n))
        pipeline_module.Pipeline.call = with_hop("executor")  # type: ignore[method-assign]
        results.setdefault("generation read through a session", []).append(
            await cpu_per_call(lambda: sync(generation_in_session), args.requests))
        results.setdefault("generation read on a bare pooled connection (unit of work)",
                           []).append(
            await cpu_per_call(lambda: sync(generation_on_raw_connection), args.requests))
    print(f"# CPU µs per request (median of {args.rounds} rounds), in process, SQLite")
    for name, values in results.items():
        print(f"{name:<62} {statistics.median(values):8.1f}")
    runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
