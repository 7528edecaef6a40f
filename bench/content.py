"""Repository content over the Server REST API against git run directly.

    PYTHONPATH=src .venv/bin/python bench/content.py [--commits 3000] [--rounds 40]

What one run does:

1. writes the bench history (bench/history.py: ~3,000 commits, a 1,000-line docs/big.txt)
   into a bare repository with `git fast-import`;
2. starts `gitward serve` (SQLite, fresh data dir, cheap password hashing), creates a public
   repository through the REST API and pushes the history into it with `git push`;
3. repeated and interleaved, times from this process:
   - `GET P/browse/docs/big.txt?at=main&limit=1000` (anonymous, one keep-alive connection)
     against `git show main:docs/big.txt` on the same objects;
   - `GET P/commits?until=main&limit=25` against `git log -n 25` with a format that prints
     every field the JSON carries (ids, author, committer, dates, parents, message);
   and prints the medians, the 90th percentiles and the ratios (Gitward / git).

A request's time includes the HTTP round trip, the unit of work (one statement of the access
generation, the repository from the read cache), the read through libgit2 and the JSON; a
git command's includes starting the git process, which is most of it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import FAST_ARGON2, Api, basic, start_gitward
from history import BIG_FILE, make_history

LOG_FORMAT = "--format=%H%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%P%x00%B%x00"


def git_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    return env


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="gitward-bench-content-"))
    env = git_env()
    server = None
    try:
        source = tmp / "history.git"
        make_history(source, args.commits)
        server = start_gitward(tmp / "server", env=FAST_ARGON2)
        api = Api(server.base, server.admin_password)
        api.workspace("bench", "BEN")
        api.repository("bench", "history", "BEN", private=False)
        header = "Authorization: " + basic("admin", server.admin_password)
        for what in ("--all", "--tags"):
            subprocess.run(["git", "-c", f"http.extraHeader={header}", "--git-dir", str(source),
                            "push", "-q", what, f"{server.base}/bench/history.git"],
                           check=True, env=env, timeout=600)
        api.close()

        base = f"{server.base}/rest/api/1.0/projects/BEN/repos/history"
        client = httpx.Client(timeout=60)
        browse_url = f"{base}/browse/{BIG_FILE}?at=main&limit=1000"
        commits_url = f"{base}/commits?until=main&limit=25"
        expected_lines = subprocess.run(
            ["git", "--git-dir", str(source), "show", f"main:{BIG_FILE}"], check=True,
            capture_output=True, env=env).stdout.decode().splitlines()
        body = client.get(browse_url).json()
        assert [line["text"] for line in body["lines"]] == expected_lines, "browse differs"
        assert len(expected_lines) == 1000 and body["isLastPage"]
        expected_ids = subprocess.run(
            ["git", "--git-dir", str(source), "log", "-n", "25", "--format=%H", "main"],
            check=True, capture_output=True, env=env).stdout.decode().split()
        assert [c["id"] for c in client.get(commits_url).json()["values"]] == expected_ids

        def rest(url: str) -> Callable[[], object]:
            def call() -> object:
                response = client.get(url)
                assert response.status_code == 200, response.text[:200]
                return response.content
            return call

        def git(*command: str) -> Callable[[], object]:
            def call() -> object:
                return subprocess.run(["git", "--git-dir", str(source), *command], check=True,
                                      capture_output=True, env=env).stdout
            return call

        cases = {
            "browse 1,000 lines": (rest(browse_url), git("show", f"main:{BIG_FILE}")),
            "commits?limit=25": (rest(commits_url), git("log", "-n", "25", LOG_FORMAT, "main")),
        }
        samples: dict[tuple[str, str], list[float]] = {}
        for name, (ours, theirs) in cases.items():
            ours()
            theirs()
            for round_ in range(args.rounds):
                order = [("gitward", ours), ("git", theirs)]
                if round_ % 2:
                    order.reverse()
                for who, fn in order:
                    samples.setdefault((name, who), []).append(timed(fn))
        client.close()
        print(f"{args.commits} commits, {args.rounds} rounds each, interleaved; ms")
        print(f"{'operation':22} {'gitward p50':>12} {'p90':>8} {'git p50':>9} {'p90':>8} "
              f"{'ratio p50':>10}")
        for name in cases:
            g50, g90 = summary(samples[(name, "gitward")])
            d50, d90 = summary(samples[(name, "git")])
            print(f"{name:22} {g50:12.2f} {g90:8.2f} {d50:9.2f} {d90:8.2f} {g50 / d50:9.2f}x")
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
