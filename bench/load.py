"""Load: 500 concurrent keep-alive clients for 60 s against one `gitward serve`.

One run starts `gitward serve` (one process; SQLite, or a fresh database on the PostgreSQL
server given with --postgres) on a fresh data dir, pinned to one CPU, seeds it through the
REST API, and drives it from the other CPUs with `bench/loadgen.py`: every fifth client writes
(repository description, grant and removal of a repository permission, with an administrator's
PAT), the others read repositories anonymously, with a personal access token, a repository
access token and an app password. A separate process probes `GET /status` every 50 ms.

Exits 1 when any answer is 5xx or unexpected, any connection is reset or times out, or the
/status p99 is 100 ms or more. Loopback only; bounded by --seconds plus --timeout.

    PYTHONPATH=src python bench/load.py                     # SQLite, 500 clients, 60 s
    PYTHONPATH=src python bench/load.py --postgres          # fresh database on local PostgreSQL
    PYTHONPATH=src python bench/load.py --clients 100 --seconds 10
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.harness import (
    FAST_ARGON2,
    SRC,
    Api,
    Gitward,
    add_database_options,
    log,
    open_database,
    split_cpus,
    start_gitward,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=500, help="concurrent clients (500)")
    parser.add_argument("--seconds", type=float, default=60, help="duration (60)")
    parser.add_argument("--timeout", type=float, default=30,
                        help="per request, /status probes included (30 s)")
    parser.add_argument("--status-p99-ms", type=float, default=100,
                        help="fail when /status's p99 latency reaches this (100 ms)")
    add_database_options(parser)
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs")
    parser.add_argument("--src", type=Path, default=SRC,
                        help="source tree the server runs from (default: this tree's src)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 5000 or not 0 < args.seconds <= 3600:
        raise SystemExit("--clients must be 1..5000 and --seconds 0..3600")
    cpus = split_cpus(not args.no_pin)
    root = Path(tempfile.mkdtemp(prefix="gitward-bench-load-"))
    database, database_url = open_database(args)
    server: Gitward | None = None
    try:
        # No request of the load checks an account password: cheap hashing speeds up seeding.
        server = start_gitward(root / "gitward", src=args.src,
                               database_url=database_url,
                               cpus=cpus.server, env=FAST_ARGON2)
        api = Api(server.base, server.admin_password)
        try:
            log("seeding ...")
            fixture = loadgen.seed(api, args.clients)
        finally:
            api.close()
        if cpus.client is not None:
            os.sched_setaffinity(0, {int(c) for c in cpus.client.split(",")})
        backend = "PostgreSQL" if database_url else "SQLite"
        print(f"# load, one gitward process, {backend}; server from {args.src}")
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{os.cpu_count()} CPUs ({cpus.describe()}), Python {platform.python_version()}")
        print(f"# {args.clients} keep-alive clients ({loadgen.writers(args.clients)} writing), "
              f"{args.seconds:g} s, request timeout {args.timeout:g} s", flush=True)
        report = loadgen.run(server.base, fixture, clients=args.clients, seconds=args.seconds,
                             timeout=args.timeout, probe_timeout=args.timeout)
        print(report.summary())
        failures = report.failures(status_p99=args.status_p99_ms / 1000)
        if server.process.poll() is not None:
            failures.append(f"the server exited ({server.process.returncode})")
        if failures:
            print("FAILED:\n  " + "\n  ".join(failures))
            tail = server.log_tail(15)
            if tail:
                print("server log (last lines):\n" + tail)
        else:
            print("passed: no 5xx, no unexpected answer, no reset or timeout, "
                  f"/status p99 < {args.status_p99_ms:g} ms")
        return 1 if failures else 0
    finally:
        if server is not None:
            server.stop()
        if database is not None:
            database.drop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
