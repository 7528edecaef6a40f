"""Instructions per request, counted by valgrind's callgrind: a figure that a busy machine does
not bend (time does), for comparing two ways through the same code.

    python bench/instructions.py [--requests 400] [CASE ...]

Each case runs in its own process under `valgrind --tool=callgrind --instr-atstart=no`: the
process builds a server in a temporary directory (SQLite) and seeds it as bench/pipeline.py
does, with instrumentation off; then instrumentation is switched on, counters zeroed, the
case's requests driven through the ASGI application in process (the unit of work run inline,
with no thread hop, so that every instruction is the request's own), and the counters dumped.
Cases: repository GET and listing of 100, anonymous and with a personal access token, and with
a PAT that carries an address allow-list (the request's address inside it). The ratio of a
PAT case to its anonymous case is the share of a request that the token costs.
valgrind comes from Debian's packages (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Each case: path, query, and the credential ("": anonymous; "pat"; "pat+list": a PAT with
#: an address allow-list that the request's 127.0.0.1 is inside).
CASES: dict[str, tuple[str, bytes, str]] = {
    "repository GET, anonymous": ("/2.0/repositories/acme/r001", b"", ""),
    "repository GET, PAT": ("/2.0/repositories/acme/r001", b"", "pat"),
    "repository GET, PAT with allow-list": ("/2.0/repositories/acme/r001", b"", "pat+list"),
    "listing of 100, anonymous": ("/2.0/repositories/acme", b"pagelen=100", ""),
    "listing of 100, PAT": ("/2.0/repositories/acme", b"pagelen=100", "pat"),
    "listing of 100, PAT with allow-list": ("/2.0/repositories/acme", b"pagelen=100",
                                            "pat+list"),
}
WARM_UP = 50


async def child(case: str, requests: int, flag: Path, access_log: bool = False) -> None:
    """Inside valgrind: seed, warm up, signal, wait for the counters, drive, signal."""
    if access_log:  # as `gitward serve` logs by default (to nowhere here)
        import logging

        logging.basicConfig(level=logging.INFO, handlers=[logging.FileHandler(os.devnull)])
    import pipeline as bench_pipeline

    from gitward.config import Settings
    from gitward.runtime import Runtime
    from gitward.storage.database import migrate
    from gitward.web import pipeline as pipeline_module
    from gitward.web.app import create_app

    try:
        from gitward.web import metrics
    except ImportError:  # a tree from before the metrics
        pass
    else:
        # In real time the counts reach prometheus-client once a second, i.e. once every few
        # thousand requests; at callgrind's pace a second is a few dozen requests, which
        # would charge each request a hundred times its share: the flush is left out.
        metrics.FLUSH_SECONDS = 3600.0
    root = Path(tempfile.mkdtemp(prefix="gitward-bench-instructions-"))
    try:
        settings = Settings(data_dir=root, argon2_time_cost=1, argon2_memory_kib=64,
                            argon2_parallelism=1)
        migrate(settings.sqlalchemy_url)
        runtime = Runtime.open(settings)
        app = create_app(runtime)
        token = bench_pipeline.seed(runtime, app)
        path, query, credential = CASES[case]
        if credential == "pat+list":
            token = listed_token(app)
        pipeline_module.Pipeline.call = bench_pipeline.with_hop("none")  # type: ignore[method-assign]
        template = bench_pipeline.scope(path, query, token if credential else None)
        for _ in range(WARM_UP):
            status = await bench_pipeline.call(app, template)
            assert status == 200, status
        print("ready", flush=True)
        while not flag.exists():
            time.sleep(0.05)
        for _ in range(requests):
            await bench_pipeline.call(app, template)
        flag.unlink()
        print("done", flush=True)
        while not flag.with_suffix(".dumped").exists():
            time.sleep(0.05)
        runtime.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def listed_token(app: Any) -> str:
    """A second PAT of the seeded admin, usable only from the loopback networks."""
    import base64

    import pipeline as bench_pipeline
    from fastapi.testclient import TestClient

    auth = base64.b64encode(f"alice:{bench_pipeline.PASSWORD}".encode()).decode()
    r = TestClient(app, base_url="http://127.0.0.1").put(
        "/rest/access-tokens/1.0/users/alice", headers={"Authorization": f"Basic {auth}"},
        json={"name": "listed", "permissions": ["REPO_READ"],
              "allowedIps": ["10.0.0.0/8", "127.0.0.0/8", "::1/128"]},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _wait_for(log: Path, word: str, process: subprocess.Popen[Any]) -> None:
    while word not in log.read_text():
        if process.poll() is not None:
            raise SystemExit(f"the case ended early:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)


def count(case: str, requests: int, access_log: bool = False) -> float:
    """Instructions per request of `case`, in a child process under callgrind."""
    work = Path(tempfile.mkdtemp(prefix="gitward-callgrind-"))
    flag, log = work / "go", work / "log"
    try:
        with log.open("w") as out:
            process = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 f"--callgrind-out-file={work}/callgrind.out",
                 sys.executable, "-W", "ignore", __file__, "--child", case,
                 "--requests", str(requests), "--flag", str(flag),
                 *(["--access-log"] if access_log else [])],
                stdout=out, stderr=subprocess.STDOUT,
            )
        _wait_for(log, "ready", process)
        control = ["callgrind_control"]
        subprocess.run([*control, "--instr=on", str(process.pid)], check=True,
                       capture_output=True)
        time.sleep(1)
        subprocess.run([*control, "--zero", str(process.pid)], check=True, capture_output=True)
        flag.touch()
        _wait_for(log, "done", process)
        subprocess.run([*control, "--dump", str(process.pid)], check=True, capture_output=True)
        flag.with_suffix(".dumped").touch()
        process.wait(timeout=600)
        dumps = sorted(work.glob("callgrind.out.*"))
        for line in dumps[0].read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]) / requests
        raise SystemExit(f"no totals in {dumps[0]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", default=list(CASES))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--flag", help=argparse.SUPPRESS)
    parser.add_argument("--access-log", action="store_true",
                        help="with the access log on (to /dev/null), as `gitward serve` runs")
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.requests, Path(args.flag), args.access_log))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; cases: {list(CASES)}")
    print(f"# instructions per request (callgrind), {args.requests} requests per case, "
          f"in process, SQLite{', access log on' if args.access_log else ''}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    results = {case: count(case, args.requests, args.access_log) for case in args.cases}
    for case, value in results.items():
        print(f"{case:<32} {value:12,.0f}")
    for kind in ("repository GET", "listing of 100"):
        anonymous, pat = results.get(f"{kind}, anonymous"), results.get(f"{kind}, PAT")
        if anonymous and pat:
            # Instructions per request are inverse to requests per second: this is the
            # PAT's throughput as a share of anonymous throughput (target >= 0.95).
            print(f"{kind}: anonymous / PAT instructions   {anonymous / pat:.3f}")
        listed = results.get(f"{kind}, PAT with allow-list")
        if pat and listed:
            print(f"{kind}: allow-list costs {listed - pat:,.0f} instructions "
                  f"({listed / pat - 1:+.1%} of the PAT request)")


if __name__ == "__main__":
    main()
