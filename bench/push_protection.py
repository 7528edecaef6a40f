"""Benchmark: what push protection costs on a large push, and that its memory does not grow.

One run:
  1. generates a repository of --size-mb MB of text blobs (random letters, digits, spaces and
     newlines: every byte is read by the scan, and `g` is as frequent as in prose), in one
     commit, packed; one blob holds a string shaped as a secret whose checksum is wrong, so
     that the scan also takes the path of a candidate (checked, never looked up);
  2. starts `gitward serve` (SQLite, fresh data dir, PAT authentication) with one workspace;
  3. --reps times, interleaved (the order alternates every repetition), pushes the whole
     history into a new empty private repository with push protection on (the default: every
     new blob, commit and tag is scanned) and into one with it off (nothing scanned), and
     prints the medians and their ratio;
  4. measures, per push, the CPU time of the server and of every process it ran and waited
     for (receive-pack, index-pack, the hooks, the scan's git processes: /proc/PID/stat
     utime+stime+cutime+cstime), which the other work on a shared machine bends far less
     than the wall time, and prints its medians too;
  5. samples the server process's VmRSS every 20 ms during each push and prints the largest
     growth (peak - before) of each mode.

    PYTHONPATH=src .venv/bin/python bench/push_protection.py [--size-mb 100] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import FAST_ARGON2, Api, log, start_gitward

MB = 1 << 20
FILES = 150  # over receive.unpackLimit (100): the pushed pack is kept as it is
# 64 symbols, so that a random byte maps onto one of them without bias.
ALPHABET = (b"abcdefghijklmnopqrstuvwxyz" b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" b"0123456789" b"  \n.")
TABLE = bytes(ALPHABET[i % 64] for i in range(256))
DECOY = b"gwpat_" + b"A" * 38  # shaped as a secret; its checksum is wrong


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
               GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def make_repository(path: Path, env: dict[str, str], size_mb: int) -> int:
    """`size_mb` MB of text in FILES blobs of one commit, packed; the pack's size."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], env=env, check=True)
    per_file = size_mb * MB // FILES
    proc = subprocess.Popen(["git", "-c", "pack.compression=1", "fast-import", "--quiet"],
                            cwd=path, env=env, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    with proc.stdin as out:
        for i in range(FILES):
            out.write(b"blob\nmark :%d\ndata %d\n" % (i + 1, per_file))
            left = per_file
            if i == FILES // 2:
                out.write(DECOY)
                left -= len(DECOY)
            while left:
                n = min(left, MB)
                out.write(os.urandom(n).translate(TABLE))
                left -= n
            out.write(b"\n")
        message = b"text"
        out.write(b"commit refs/heads/main\ncommitter Bench <b@e> 1700000000 +0000\n")
        out.write(b"data %d\n%s\n" % (len(message), message))
        for i in range(FILES):
            out.write(b"M 100644 :%d d%02d/f%04d.txt\n" % (i + 1, i % 16, i))
        out.write(b"\n")
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "--git-dir", str(path), "repack", "-adq"], env=env, check=True)
    return sum(p.stat().st_size for p in (path / "objects" / "pack").glob("*.pack"))


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of the process and of its waited-for descendants."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """The largest VmRSS of `pid` seen while running, every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, rss_kib(pid), threading.Event()
        self.before = self.peak
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="gitward-bench-pp-"))
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = b@example.com\n")
    env = git_env(home)
    server = None
    try:
        log(f"generating {args.size_mb} MB of text blobs in {root} ...")
        source = root / "source.git"
        packed = make_repository(source, env, args.size_mb)
        log(f"  packed size {packed / MB:.1f} MB")
        server = start_gitward(root / "gitward", env=FAST_ARGON2)
        api = Api(server.base, server.admin_password)
        api.workspace("bench", "BENCH")
        token = api.personal_access_token(("admin", server.admin_password), ["REPO_WRITE"])
        header = ["-c", f"http.extraHeader=Authorization: {token}"]
        times: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        growth: dict[str, int] = {"on": 0, "off": 0}
        for rep in range(args.reps):
            for mode in (("on", "off") if rep % 2 == 0 else ("off", "on")):
                slug = f"r{rep}-{mode}"
                api.repository("bench", slug, "BENCH", private=True)
                if mode == "off":
                    api.call("PUT", f"/2.0/repositories/bench/{slug}/push-protection",
                             json={"enabled": False})
                url = f"{server.base}/bench/{slug}.git"
                pid = server.process.pid
                with RssSampler(pid) as rss:
                    cpu_before = cpu_seconds(pid)
                    start = time.perf_counter()
                    result = subprocess.run(["git", *header, "push", "-q", url, "main"],
                                            cwd=source, env=env, capture_output=True,
                                            timeout=args.timeout)
                    elapsed = time.perf_counter() - start
                    time.sleep(0.5)  # the push's last audit write, after git answered
                    used = cpu_seconds(pid) - cpu_before
                if result.returncode != 0:
                    raise SystemExit(f"push failed:\n{result.stderr.decode(errors='replace')}")
                times[mode].append(elapsed)
                cpu[mode].append(used)
                growth[mode] = max(growth[mode], rss.peak - rss.before)
                log(f"  rep {rep} protection {mode}: {elapsed:.2f} s, server CPU {used:.2f} s, "
                    f"RSS +{(rss.peak - rss.before) / 1024:.1f} MiB")
        on, off = statistics.median(times["on"]), statistics.median(times["off"])
        print(f"push of {args.size_mb} MB of text ({packed / MB:.1f} MB packed), "
              f"{args.reps} repetitions, medians:")
        print(f"  protection off: {off:.2f} s   on: {on:.2f} s   on/off: {on / off:.3f} "
              f"({(on / off - 1) * 100:+.1f} %)")
        con, coff = statistics.median(cpu["on"]), statistics.median(cpu["off"])
        print(f"  server CPU (with its git processes): off {coff:.2f} s   on {con:.2f} s   "
              f"on/off: {con / coff:.3f} ({(con / coff - 1) * 100:+.1f} %)")
        print(f"  server RSS growth during a push: off {growth['off'] / 1024:.1f} MiB, "
              f"on {growth['on'] / 1024:.1f} MiB")
        return 0
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--keep", action="store_true")
    return measure(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
