"""Running at scale: REST throughput by number of workers, and revocation across hosts.

Throughput (`--workers 1 2 4`): one `gitward serve --workers N` per N, each on its own data
dir (SQLite, or a fresh PostgreSQL database each with --postgres), all started and seeded
first (a user, a workspace with a project and a public repository, a REPO_READ personal
access token); then, in rounds with the order rotated, wrk (keep-alive, `-t2 -c32`) drives
`GET /2.0/repositories/bench/public-repo` with the token against each. Nothing is pinned: the
workers and wrk share every CPU of the machine, as they would on one host. Prints the median
req/s per N and its ratio to one worker.

Revocation (`--revocations 200`): two hosts (`gitward serve`, one worker each) on one fresh
PostgreSQL database and one shared data directory. Each round creates a token on host A, uses
it on host B (so B has verified and cached it), revokes it on A and, as soon as A has
answered, asks B with it again. The guarantee is that this very next request is refused: the
run counts the rounds in which it was not (must be 0) and prints how long that refusal took.

    PYTHONPATH=src python bench/scale.py                       # both parts (needs PostgreSQL)
    PYTHONPATH=src python bench/scale.py --no-revocation       # throughput only, SQLite
    PYTHONPATH=src python bench/scale.py --postgres --rounds 5 # throughput on PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    FAST_ARGON2,
    SRC,
    Api,
    Gitward,
    PostgresDatabase,
    free_port,
    log,
    require_wrk,
    spawn,
    start_gitward,
    wrk,
)

PASSWORD = "correct horse battery staple"
DEFAULT_POSTGRES = os.environ.get(
    "GITWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def seed(server: Gitward) -> str:
    api = Api(server.base, server.admin_password)
    try:
        api.user("bench", PASSWORD)
        api.workspace("bench", "BENCH")
        api.repository("bench", "public-repo", "BENCH")
        return api.personal_access_token(("bench", PASSWORD), ["REPO_READ"])
    finally:
        api.close()


def throughput(args: argparse.Namespace, root: Path) -> None:
    require_wrk()
    servers: dict[int, tuple[Gitward, str]] = {}
    databases: list[PostgresDatabase] = []
    try:
        for count in args.workers:
            url = None
            if args.postgres:
                database = PostgresDatabase(args.postgres)
                databases.append(database)
                url = database.url
            env = {**FAST_ARGON2, "GITWARD_WORKERS": str(count)}
            server = start_gitward(root / f"workers-{count}", src=args.src, database_url=url,
                                   env=env)
            servers[count] = (server, seed(server))
            log(f"{count} worker(s) on port {server.port}")
        results: dict[int, list[float]] = {count: [] for count in args.workers}
        order = list(args.workers)
        for round_ in range(args.rounds):
            for count in order:
                server, token = servers[count]
                url = server.base + "/2.0/repositories/bench/public-repo"
                wrk(url, token, 1, args.connections, threads=2)  # warm every worker
                result = wrk(url, token, args.seconds, args.connections, threads=2)
                if result.non_2xx or result.socket_errors:
                    raise SystemExit(f"{count} workers: {result}")
                results[count].append(result.rps)
                log(f"round {round_ + 1}: {count} worker(s) {result.rps:,.0f} req/s")
            order = order[1:] + order[:1]
        base = statistics.median(results[args.workers[0]])
        print(f"\nREST throughput, PAT repository GET, {os.cpu_count()} CPUs "
              f"({platform.python_version()}, {'PostgreSQL' if args.postgres else 'SQLite'}), "
              f"wrk -t2 -c{args.connections}, {args.rounds} rounds of {args.seconds:g} s:\n")
        print("| workers | median req/s | min | max | vs 1 worker |")
        print("|---:|---:|---:|---:|---:|")
        for count in args.workers:
            values = results[count]
            median = statistics.median(values)
            print(f"| {count} | {median:,.0f} | {min(values):,.0f} | {max(values):,.0f} | "
                  f"{median / base:.2f} |")
    finally:
        for server, _ in servers.values():
            server.stop()
        for database in databases:
            database.drop()


def revocation(args: argparse.Namespace, root: Path) -> None:
    database = PostgresDatabase(args.postgres or DEFAULT_POSTGRES)
    hosts: list[Gitward] = []
    try:
        shared = root / "shared"  # the data directory both hosts mount
        for name in ("a", "b"):
            hosts.append(_host(name, root / name, shared, database.url, args.src))
        a, b = hosts
        api = Api(a.base, a.admin_password)
        api.user("bench", PASSWORD)
        user = ("bench", PASSWORD)
        missed = 0
        refusals: list[float] = []
        with httpx.Client(base_url=a.base, timeout=60) as on_a, \
                httpx.Client(base_url=b.base, timeout=60) as on_b:
            for _ in range(args.revocations):
                r = on_a.put("/rest/access-tokens/1.0/users/bench", auth=user,
                             json={"name": "bench", "permissions": ["REPO_READ"]})
                r.raise_for_status()
                token = r.json()
                bearer = {"Authorization": f"Bearer {token['token']}"}
                if on_b.get("/2.0/user", headers=bearer).status_code != 200:
                    raise SystemExit("host B refused a live token")
                r = on_a.delete(f"/rest/access-tokens/1.0/users/bench/{token['id']}", auth=user)
                if r.status_code != 204:
                    raise SystemExit(f"revoke: {r.status_code} {r.text}")
                start = time.perf_counter()
                status = on_b.get("/2.0/user", headers=bearer).status_code
                refusals.append(time.perf_counter() - start)
                if status != 401:
                    missed += 1
        api.close()
        refusals.sort()
        print(f"\nRevocation across two hosts (PostgreSQL), {args.revocations} revocations:\n")
        print("| next request on the other host refused | refusal took: median | p99 | max |")
        print("|---:|---:|---:|---:|")
        print(f"| {args.revocations - missed} of {args.revocations} | "
              f"{statistics.median(refusals) * 1000:.1f} ms | "
              f"{refusals[int(len(refusals) * 0.99) - 1] * 1000:.1f} ms | "
              f"{refusals[-1] * 1000:.1f} ms |")
        if missed:
            raise SystemExit(f"{missed} revoked tokens were accepted by the other host")
    finally:
        for host in hosts:
            host.stop()
        database.drop()


def _host(name: str, root: Path, data: Path, database_url: str, src: Path) -> Gitward:
    """`gitward serve` (one worker) on the shared data directory `data`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITWARD_", "GIT_"))}
    env.update(PYTHONPATH=str(src.resolve()), GITWARD_LOG_LEVEL="warning",
               PYTHONUNBUFFERED="1", GITWARD_DATABASE_URL=database_url, GITWARD_WORKERS="1",
               **FAST_ARGON2)
    port = free_port()
    command = [sys.executable, "-m", "gitward.cli", "serve", "--data", str(data),
               "--host", "127.0.0.1", "--port", str(port)]
    base = spawn(f"gitward-{name}", command, root, env, port, None)
    server = Gitward(base.name, base.port, base.process, base.log_path, data_dir=data)
    server.wait_ready("/status")
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-revocation", action="store_true")
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None,
                        help="throughput on fresh PostgreSQL databases (and revocation's)")
    parser.add_argument("--src", type=Path, default=SRC)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitward-bench-scale-") as tmp:
        root = Path(tmp)
        if not args.no_throughput:
            throughput(args, root)
        if not args.no_revocation:
            revocation(args, root)


if __name__ == "__main__":
    main()
