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
    PYTHONPATH=src python bench/scale.py --no-throughput --no-revocation --clones 200

Clones (`--clones 200`): two hosts (one worker each) on one fresh PostgreSQL database and one
shared directory behind Debian's HAProxy (round robin), a public repository of `--clone-mb`
MB of random files pushed through it, then that many `git clone --bare` at once, anonymous:
each must succeed with the pushed `main`; prints the errors (must be 0) and the times.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


HAPROXY_CONFIG = """\
global
    maxconn 2048
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    option forwardfor
frontend gitward
    bind 127.0.0.1:{port}
    default_backend hosts
backend hosts
    balance roundrobin
    option httpchk GET /status
    server a 127.0.0.1:{a} check inter 1s
    server b 127.0.0.1:{b} check inter 1s
"""


def _haproxy(root: Path, a: int, b: int) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's HAProxy on loopback, round robin over the two hosts, as in production."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(haproxy, os.X_OK):
        raise SystemExit("the clone benchmark needs HAProxy: apt-get install haproxy")
    port = free_port()
    config = root / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, a=a, b=b))
    with open(root / "haproxy.log", "wb") as out:
        process = subprocess.Popen([haproxy, "-f", str(config), "-db"], stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/status", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("haproxy did not answer:\n" + (root / "haproxy.log").read_text())


def clones(args: argparse.Namespace, root: Path) -> None:
    """`--clones N` concurrent anonymous clones of a public repository through HAProxy in
    front of two hosts on one PostgreSQL database and one shared directory: every clone
    must succeed and be complete (`git fsck`-clean HEAD of the right commit)."""
    from git_http import Deadline, Runner, make_repository

    database = PostgresDatabase(args.postgres or DEFAULT_POSTGRES)
    hosts: list[Gitward] = []
    proxy: subprocess.Popen[bytes] | None = None
    try:
        shared = root / "shared"
        for name in ("a", "b"):
            hosts.append(_host(name, root / name, shared, database.url, args.src))
        a, b = hosts
        proxy, url = _haproxy(root, a.port, b.port)
        api = Api(url, a.admin_password)
        api.workspace("bench", "BEN")
        api.repository("bench", "medium", "BEN", private=False)
        api.close()
        run = Runner(root, Deadline(3600))
        source = root / "medium.git"
        packed = make_repository(run, source, args.clone_mb, args.clone_files)
        host = url.split("://", 1)[1]
        push_url = f"http://admin:{a.admin_password}@{host}/bench/medium.git"
        run.git("--git-dir", str(source), "push", "-q", push_url, "main")
        head = subprocess.run(["git", "--git-dir", str(source), "rev-parse", "main"],
                              capture_output=True, text=True, check=True).stdout.strip()
        clone_url = f"{url}/bench/medium.git"
        log(f"{args.clones} concurrent clones of {packed / 1e6:.1f} MB "
            f"({args.clone_files} files) through HAProxy over two hosts")

        def one(i: int) -> tuple[float, str]:
            target = root / "clones" / f"c{i}"
            start = time.perf_counter()
            done = subprocess.run(["git", "clone", "-q", "--bare", clone_url, str(target)],
                                  env=run.env, capture_output=True, text=True)
            took = time.perf_counter() - start
            problem = ""
            if done.returncode != 0:
                problem = done.stderr.strip()[-300:] or f"exit {done.returncode}"
            else:
                got = subprocess.run(["git", "--git-dir", str(target), "rev-parse", "main"],
                                     capture_output=True, text=True).stdout.strip()
                if got != head:
                    problem = f"cloned main at {got!r}, not {head}"
            shutil.rmtree(target, ignore_errors=True)  # 200 copies would not fit on disk
            return took, problem

        (root / "clones").mkdir()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clones) as pool:
            results = list(pool.map(one, range(args.clones)))
        wall = time.perf_counter() - started
        took = sorted(t for t, _ in results)
        errors = [p for _, p in results if p]
        print(f"\n{args.clones} concurrent clones through HAProxy, two hosts (PostgreSQL, "
              f"one shared directory), {packed / 1e6:.1f} MB packed:\n")
        print("| clones | errors | all done in | one clone: median | p95 | max |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.clones} | **{len(errors)}** | {wall:.1f} s | "
              f"{statistics.median(took):.1f} s | {took[int(len(took) * 0.95) - 1]:.1f} s | "
              f"{took[-1]:.1f} s |")
        if errors:
            raise SystemExit(f"{len(errors)} clones failed; the first: {errors[0]}")
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for server in hosts:
            server.stop()
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
    parser.add_argument("--clones", type=int, default=0,
                        help="concurrent clones through HAProxy over two hosts (e.g. 200)")
    parser.add_argument("--clone-mb", type=int, default=10,
                        help="size of the cloned repository's random content (default 10)")
    parser.add_argument("--clone-files", type=int, default=500)
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
        if args.clones:
            clones(args, root)


if __name__ == "__main__":
    main()
