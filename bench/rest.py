"""REST throughput of Gitward against a bare Starlette endpoint returning the same bytes.

One run:
  1. starts `gitward serve` (one process, SQLite, or a fresh PostgreSQL database with
     --postgres) on a fresh data dir, pinned to one CPU, and seeds it through the REST API: a
     user, a workspace with a project and a public repository, a second workspace with 100
     public repositories, and a personal access token (REPO_READ) of the user;
  2. captures Gitward's answers to `GET /2.0/repositories/{ws}/{repo}` and to the listing
     `GET /2.0/repositories/{ws}?pagelen=100`, and starts `bench/bare_app.py`, which returns
     those exact bytes from a Starlette route under the same uvicorn settings, on the same CPU;
  3. drives every case with wrk (keep-alive, pinned to the other CPUs), the cases interleaved
     and their order rotated each round; prints the median req/s per case and the ratios.

Targets on one worker: the PAT repository GET >= 15 % of the bare endpoint, PAT >= 0.95 x
anonymous; the same for the listing of 100 repositories against its bare equivalent.

    PYTHONPATH=src python bench/rest.py                    # SQLite, 5 rounds of 5 s
    PYTHONPATH=src python bench/rest.py --quick            # sanity run, ~30 s
    PYTHONPATH=src python bench/rest.py --postgres         # fresh database on local PostgreSQL
    PYTHONPATH=src python bench/rest.py --src ../other/src # the server of another tree
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    FAST_ARGON2,
    SRC,
    Api,
    Process,
    add_database_options,
    free_port,
    log,
    open_database,
    require_wrk,
    spawn,
    split_cpus,
    start_gitward,
    wrk,
)

WORKSPACE = "bench"
LISTING_WORKSPACE = "listing"
PROJECT = "BEN"
LISTING_PROJECT = "LST"  # project keys are unique across the site
REPO = "public-repo"
LISTED = 100
USER = "bencher"
USER_PASSWORD = "bench-password-0123456789"
REPO_PATH = f"/2.0/repositories/{WORKSPACE}/{REPO}"
LISTING_PATH = f"/2.0/repositories/{LISTING_WORKSPACE}"
LISTING_QUERY = f"?pagelen={LISTED}"
SHARE_OF_BARE = 0.15
PAT_OF_ANONYMOUS = 0.95


@dataclass(frozen=True)
class Case:
    name: str
    server: str  # "gitward" or "bare"
    path: str  # path and query
    header: str | None  # Authorization value


def seed(api: Api) -> str:
    """Everything the cases read; returns the PAT's Authorization value."""
    admin_pat = api.personal_access_token(api.admin, ["PROJECT_ADMIN", "REPO_ADMIN"], "seed")
    api.user(USER, USER_PASSWORD)
    api.workspace(WORKSPACE, PROJECT)
    api.repository(WORKSPACE, REPO, PROJECT, bearer=admin_pat)
    api.workspace(LISTING_WORKSPACE, LISTING_PROJECT)
    for i in range(LISTED):
        api.repository(LISTING_WORKSPACE, f"repo-{i:03d}", LISTING_PROJECT, bearer=admin_pat)
    return api.personal_access_token((USER, USER_PASSWORD), ["REPO_READ"])


def capture(api: Api, pat: str) -> dict[str, dict[str, str]]:
    """Gitward's answers (with the PAT) for the bare app; checks anonymous gets the same JSON."""
    bodies: dict[str, dict[str, str]] = {}
    for path, query in ((REPO_PATH, ""), (LISTING_PATH, LISTING_QUERY)):
        with_pat = api.call("GET", path + query, expect=(200,), headers={"Authorization": pat})
        anonymous = api.call("GET", path + query, expect=(200,), headers={})
        if with_pat.json() != anonymous.json():
            log(f"note: {path}: the PAT's answer differs from the anonymous one")
        if path == LISTING_PATH and len(with_pat.json()["values"]) != LISTED:
            raise SystemExit(f"listing has {len(with_pat.json()['values'])} values, not {LISTED}")
        bodies[path] = {"body": base64.b64encode(with_pat.content).decode(),
                        "content_type": with_pat.headers["content-type"]}
    return bodies


def start_bare(root: Path, bodies: dict[str, dict[str, str]], cpus: str | None) -> Process:
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "bare-bodies.json"
    spec.write_text(json.dumps(bodies))
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    command = [sys.executable, str(Path(__file__).resolve().parent / "bare_app.py"),
               str(spec), str(port)]
    bare = spawn("bare", command, root, env, port, cpus)
    bare.wait_ready("/status")
    return bare


def ratio_line(label: str, value: float, target: float) -> tuple[str, bool]:
    met = value >= target
    return f"{label:<48} {value:>7.3f}  (target >= {target:g}: {'met' if met else 'MISSED'})", met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_database_options(parser)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=5, help="per case and round (5)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s: a sanity run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs with taskset")
    parser.add_argument("--src", type=Path, default=SRC,
                        help="source tree the server runs from (default: this tree's src)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 2, 2.0
    require_wrk()
    cpus = split_cpus(not args.no_pin)
    root = Path(tempfile.mkdtemp(prefix="gitward-bench-rest-"))
    database, database_url = open_database(args)
    servers: list[Process] = []
    try:
        # No measured request checks an account password: cheap hashing only speeds up seeding.
        gitward = start_gitward(root / "gitward", src=args.src, database_url=database_url,
                                cpus=cpus.server, env=FAST_ARGON2)
        servers.append(gitward)
        api = Api(gitward.base, gitward.admin_password)
        try:
            log("seeding ...")
            pat = seed(api)
            bodies = capture(api, pat)
        finally:
            api.close()
        bare = start_bare(root / "bare", bodies, cpus.server)
        servers.append(bare)
        bases = {"gitward": gitward.base, "bare": bare.base}
        cases = [
            Case("repository GET, bare", "bare", REPO_PATH, None),
            Case("repository GET, anonymous", "gitward", REPO_PATH, None),
            Case("repository GET, PAT", "gitward", REPO_PATH, pat),
            Case(f"listing of {LISTED}, bare", "bare", LISTING_PATH + LISTING_QUERY, None),
            Case(f"listing of {LISTED}, anonymous", "gitward", LISTING_PATH + LISTING_QUERY,
                 None),
            Case(f"listing of {LISTED}, PAT", "gitward", LISTING_PATH + LISTING_QUERY, pat),
        ]
        backend = "PostgreSQL" if database_url else "SQLite"
        print(f"# REST throughput, one gitward process, {backend}; server from {args.src}")
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
              f"{os.cpu_count()} CPUs ({cpus.describe()}), Python {platform.python_version()}")
        print(f"# wrk -t1 -c{args.connections} -d{args.seconds:g}s per case and round, "
              f"{args.rounds} rounds, order rotated each round", flush=True)
        for case in cases:  # warm-up: bytecode, caches, connection pools
            wrk(bases[case.server] + case.path, case.header, 1, args.connections,
                cpus=cpus.client)
        runs: list[list[float]] = [[] for _ in cases]
        for round_ in range(args.rounds):
            for offset in range(len(cases)):
                index = (round_ + offset) % len(cases)
                case = cases[index]
                result = wrk(bases[case.server] + case.path, case.header, args.seconds,
                             args.connections, cpus=cpus.client)
                if result.non_2xx or result.socket_errors:
                    print(f"  ! {case.name}: {result.non_2xx} non-2xx of {result.requests}; "
                          f"{result.socket_errors}", flush=True)
                runs[index].append(result.rps)
            log(f"round {round_ + 1}/{args.rounds} done")
        medians = [statistics.median(r) for r in runs]
        print(f"{'case':<32} {'median req/s':>12}   runs")
        for case, median, values in zip(cases, medians, runs, strict=True):
            shown = " ".join(f"{v:.0f}" for v in values)
            print(f"{case.name:<32} {median:>12.1f}   {shown}")
        bare_repo, anon_repo, pat_repo, bare_list, anon_list, pat_list = medians
        lines = [
            ratio_line("repository GET: PAT / bare", pat_repo / bare_repo, SHARE_OF_BARE),
            ratio_line("repository GET: PAT / anonymous", pat_repo / anon_repo,
                       PAT_OF_ANONYMOUS),
            ratio_line(f"listing of {LISTED}: PAT / bare", pat_list / bare_list,
                       SHARE_OF_BARE),
            ratio_line(f"listing of {LISTED}: PAT / anonymous", pat_list / anon_list,
                       PAT_OF_ANONYMOUS),
        ]
        print(f"{'repository GET: anonymous / bare':<48} {anon_repo / bare_repo:>7.3f}")
        print(f"{f'listing of {LISTED}: anonymous / bare':<48} {anon_list / bare_list:>7.3f}")
        for line, _ in lines:
            print(line)
        missed = not all(met for _, met in lines)
    finally:
        for server in reversed(servers):
            server.stop()
        if database is not None:
            database.drop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
