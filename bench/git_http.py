"""Benchmark: Git over HTTP through Gitward vs. plain `git http-backend` vs. `file://`.

One run:
  1. generates a repository of ~60 MB packed (incompressible blobs, via git fast-import);
  2. starts Gitward (`gitward serve`, SQLite) and Apache + mod_cgid + git-http-backend, each on
     a free 127.0.0.1 port with everything in a temporary directory;
  3. measures `git clone --bare` and `git push` (of the whole history into an empty repository)
     through each, plus `file://`, repeated and interleaved; prints medians and ratios;
  4. pushes a ~300 MB repository to Gitward while sampling the server's RSS from /proc, and
     prints the growth.

    PYTHONPATH=src python bench/git_http.py [--size-mb 60] [--reps 5] [--rss-push-mb 300]

Everything talks to 127.0.0.1 only. The run is bounded: every git command has a timeout and the
whole run stops at --time-limit seconds. Apache comes from Debian's `apache2` package
(`apt-get install -y apache2`); without it, or with --no-apache, only Gitward and file:// run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import FAST_ARGON2, free_port, log

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
GIT_EXEC_PATH = subprocess.run(
    ["git", "--exec-path"], capture_output=True, text=True, check=True
).stdout.strip()
MB = 1 << 20
# Git is authenticated the way CI and integrations are meant to: with a personal access token
# (a keyed-hash look-up). `--password` uses the account password instead, which is an argon2id
# verification on every request (about 0.2 s at the default cost) and is reported separately;
# --fast-argon2 runs the server with FAST_ARGON2, the test suite's cheap hashing.
FILES = 150  # over receive.unpackLimit (100): every server keeps the pushed pack as it is


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise SystemExit("benchmark: time limit reached")
        return left


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
               GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


class Runner:
    def __init__(self, root: Path, deadline: Deadline) -> None:
        self.home = root / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Bench\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n"
        )
        self.env = git_env(self.home)
        self.deadline = deadline

    def git(self, *args: str, cwd: Path | None = None, stdin: bytes | None = None,
            extra: list[str] | None = None) -> float:
        """Run git, return the wall time; a failure ends the benchmark with git's output."""
        start = time.perf_counter()
        result = subprocess.run(
            ["git", *(extra or []), *args], cwd=cwd, env=self.env, input=stdin,
            capture_output=True, timeout=min(600, self.deadline.left()),
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"git {' '.join(args)} failed:\n"
                             + result.stderr.decode(errors="replace"))
        return elapsed


def make_repository(run: Runner, path: Path, size_mb: int, files: int) -> int:
    """A repository of `size_mb` MB of random blobs in one commit, fully packed."""
    run.git("init", "-q", "--bare", str(path))
    per_file = size_mb * MB // files
    proc = subprocess.Popen(
        ["git", "-c", "pack.compression=1", "fast-import", "--quiet"],
        cwd=path, env=run.env, stdin=subprocess.PIPE,
    )
    assert proc.stdin is not None
    with proc.stdin as out:
        for i in range(files):
            out.write(b"blob\nmark :%d\ndata %d\n" % (i + 1, per_file))
            left = per_file
            while left:
                n = min(left, MB)
                out.write(os.urandom(n))
                left -= n
            out.write(b"\n")
        message = b"random data"
        out.write(b"commit refs/heads/main\ncommitter Bench <b@e> 1700000000 +0000\n")
        out.write(b"data %d\n%s\n" % (len(message), message))
        for i in range(files):
            out.write(b"M 100644 :%d d%02d/f%04d.bin\n" % (i + 1, i % 16, i))
        out.write(b"\n")
    if proc.wait(timeout=run.deadline.left()) != 0:
        raise SystemExit("git fast-import failed")
    run.git("--git-dir", str(path), "repack", "-adq")
    return sum(p.stat().st_size for p in (path / "objects" / "pack").glob("*.pack"))


def rss_kib(pid: int) -> int:
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1])
    return total


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except OSError as error:
            if getattr(error, "code", None) is not None:
                return  # an HTTP answer: the server is up
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


class Gitward:
    name = "gitward"

    def __init__(self, root: Path, env_extra: dict[str, str], use_token: bool = True) -> None:
        self.root = root
        self.port = free_port()
        data = root / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITWARD_", "GIT_"))}
        env.update(GITWARD_LOG_LEVEL="warning", **env_extra)
        self.log = open(root / "gitward.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitward.cli", "serve", "--data", str(data),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        wait_http(self.base + "/status", self.proc, "gitward serve")
        password = (data / "initial-admin-password").read_text().strip()
        self.auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        self.api("POST", "/2.0/workspaces", {"slug": "bench", "name": "Bench"})
        self.api("POST", "/2.0/workspaces/bench/projects", {"key": "B", "name": "Bench"})
        self.count = 0
        self.git_auth = self.auth
        if use_token:
            token = self.api("PUT", "/rest/access-tokens/1.0/users/admin",
                             {"name": "bench", "permissions": ["PROJECT_ADMIN", "REPO_ADMIN"]})
            self.git_auth = "Bearer " + str(token["token"])

    @property
    def git_args(self) -> list[str]:
        # Credentials sent with every request, as CI systems do: no 401 round trips.
        return ["-c", f"http.extraHeader=Authorization: {self.git_auth}"]

    def api(self, method: str, path: str, body: dict[str, object]) -> dict[str, object]:
        req = urllib.request.Request(
            self.base + path, method=method, data=json.dumps(body).encode(),
            headers={"Authorization": self.auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
        return json.loads(raw) if raw else {}

    def new_repo(self) -> str:
        self.count += 1
        slug = f"r{self.count}"
        self.api("POST", f"/2.0/repositories/bench/{slug}",
                 {"scm": "git", "project": {"key": "B"}, "is_private": True})
        return f"{self.base}/bench/{slug}.git"

    def auth_cost(self) -> float:
        """Median time of a GET /2.0/user with the credential git uses."""
        samples = []
        for _ in range(5):
            req = urllib.request.Request(
                self.base + "/2.0/user", headers={"Authorization": self.git_auth})
            start = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class ApacheHttpBackend:
    name = "http-backend"
    git_args: list[str] = []

    def __init__(self, root: Path, run: Runner) -> None:
        self.root = root
        self.run = run
        self.repos = root / "repos"
        self.repos.mkdir(parents=True)
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        modules = ["mpm_event", "authz_core", "alias", "env", "cgid"]
        lines = [f"ServerRoot {root}", f"Listen 127.0.0.1:{self.port}",
                 f"PidFile {root}/httpd.pid", f"ErrorLog {root}/error.log",
                 f"ScriptSock {root}/cgid.sock", "ServerName 127.0.0.1",
                 "LogLevel warn", "Timeout 600", "KeepAlive On"]
        lines += [f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in modules]
        if self.as_root:
            lines += ["User www-data", "Group www-data"]
        lines += [
            f"SetEnv GIT_PROJECT_ROOT {self.repos}",
            "SetEnv GIT_HTTP_EXPORT_ALL 1",
            f"ScriptAlias / {GIT_EXEC_PATH}/git-http-backend/",
            f'<Directory "{GIT_EXEC_PATH}">', "  Require all granted", "</Directory>",
        ]
        (root / "httpd.conf").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [APACHE, "-f", str(root / "httpd.conf"), "-DFOREGROUND"],
            stdout=subprocess.DEVNULL, stderr=open(root / "stderr.log", "wb"),
        )
        self.base = f"http://127.0.0.1:{self.port}"
        wait_http(self.base + "/nothing/info/refs", self.proc, "apache2")
        self.count = 0

    def new_repo(self) -> str:
        self.count += 1
        path = self.repos / f"r{self.count}.git"
        self.run.git("init", "-q", "--bare", str(path))
        self.run.git("--git-dir", str(path), "config", "http.receivepack", "true")
        if self.as_root:
            shutil.chown(path, "www-data", "www-data")
            for p in path.rglob("*"):
                shutil.chown(p, "www-data", "www-data")
        return f"{self.base}/r{self.count}.git"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class FileUrl:
    name = "file://"
    git_args: list[str] = []

    def __init__(self, root: Path, run: Runner) -> None:
        self.root = root
        self.run = run
        self.count = 0
        root.mkdir(parents=True)

    def new_repo(self) -> str:
        self.count += 1
        path = self.root / f"r{self.count}.git"
        self.run.git("init", "-q", "--bare", str(path))
        return f"file://{path}"

    def stop(self) -> None:
        pass


def measure(args: argparse.Namespace) -> int:
    deadline = Deadline(args.time_limit)
    root = Path(tempfile.mkdtemp(prefix="gitward-bench-"))
    os.chmod(root, 0o755)  # Apache's CGI user must reach the repositories
    run = Runner(root, deadline)
    servers: list[Gitward | ApacheHttpBackend | FileUrl] = []
    try:
        log(f"generating a {args.size_mb} MB repository in {root} ...")
        source = root / "source.git"
        packed = make_repository(run, source, args.size_mb, FILES)
        log(f"  packed size {packed / MB:.1f} MB")

        gitward_env = dict(FAST_ARGON2) if args.fast_argon2 else {}
        if args.password_cache_seconds is not None:
            gitward_env["GITWARD_PASSWORD_CACHE_SECONDS"] = str(args.password_cache_seconds)
        gitward = Gitward(_mkdir(root / "gitward"), gitward_env, use_token=not args.password)
        auth_cost = gitward.auth_cost()
        servers.append(gitward)
        if not args.no_apache and Path(APACHE).exists():
            servers.append(ApacheHttpBackend(root / "apache", run))
        else:
            log("apache2 not used: comparing with file:// only")
        servers.append(FileUrl(root / "file", run))

        # One seeded repository per server to clone from, pushed through that server.
        seeds = {}
        for server in servers:
            url = server.new_repo()
            run.git("push", "-q", url, "main", cwd=source, extra=server.git_args)
            seeds[server.name] = url
        times: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.reps):
            order = servers[rep % len(servers):] + servers[: rep % len(servers)]
            for server in order:
                dest = root / f"clone-{server.name.strip(':/')}-{rep}"
                t = run.git("clone", "-q", "--bare", seeds[server.name], str(dest),
                            extra=server.git_args)
                shutil.rmtree(dest)
                times.setdefault((server.name, "clone"), []).append(t)
                url = server.new_repo()
                t = run.git("push", "-q", url, "main", cwd=source, extra=server.git_args)
                times.setdefault((server.name, "push"), []).append(t)
            log(f"  repetition {rep + 1}/{args.reps} done")

        print(f"\nGit over HTTP, {packed / MB:.1f} MB pack, {args.reps} repetitions, "
              f"{os.cpu_count()} CPUs, git {_git_version()}")
        hashing = "fast (1 MiB, t=1)" if args.fast_argon2 else "default"
        credential = "account password" if args.password else "personal access token"
        if args.password and args.password_cache_seconds is not None:
            credential += f" (verified-password cache {args.password_cache_seconds} s)"
        print(f"git credential: {credential}; argon2 settings: {hashing}; "
              f"one authenticated request: {auth_cost * 1000:.1f} ms")
        print(f"{'':14}{'clone (s)':>12}{'push (s)':>12}")
        medians = {k: statistics.median(v) for k, v in times.items()}
        for server in servers:
            print(f"{server.name:14}{medians[(server.name, 'clone')]:12.3f}"
                  f"{medians[(server.name, 'push')]:12.3f}")
        if any(s.name == "http-backend" for s in servers):
            for op in ("clone", "push"):
                ratio = medians[("gitward", op)] / medians[("http-backend", op)]
                print(f"ratio gitward / http-backend, {op}: {ratio:.3f}")
        for op in ("clone", "push"):
            ratio = medians[("gitward", op)] / medians[("file://", op)]
            print(f"ratio gitward / file://, {op}: {ratio:.3f}")
        print("all samples:", json.dumps({f"{k[0]} {k[1]}": [round(x, 3) for x in v]
                                          for k, v in times.items()}))

        if args.rss_push_mb:
            shutil.rmtree(source)
            for server in servers[1:]:
                server.stop()
            servers = servers[:1]
            log(f"generating a {args.rss_push_mb} MB repository for the memory test ...")
            big = root / "big.git"
            big_packed = make_repository(run, big, args.rss_push_mb, FILES)
            url = gitward.new_repo()
            pid = gitward.proc.pid
            samples: list[int] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(rss_kib(pid))
                    stop.wait(0.02)

            before = rss_kib(pid)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t = run.git("push", "-q", url, "main", cwd=big, extra=gitward.git_args)
            stop.set()
            sampler.join()
            peak = max([*samples, before])
            print(f"\nRSS of the gitward process during a {big_packed / MB:.0f} MB push "
                  f"({t:.1f} s, {len(samples)} samples): before {before / 1024:.1f} MB, "
                  f"peak {peak / 1024:.1f} MB, growth {(peak - before) / 1024:.1f} MB")
        return 0
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _git_version() -> str:
    return subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=60, help="repository size (default 60)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--rss-push-mb", type=int, default=300,
                        help="size of the push for the memory test; 0 skips it (default 300)")
    parser.add_argument("--no-apache", action="store_true", help="skip Apache + http-backend")
    parser.add_argument("--time-limit", type=float, default=1200,
                        help="stop after this many seconds (default 1200)")
    parser.add_argument("--password", action="store_true",
                        help="authenticate git with the account password instead of a token")
    parser.add_argument("--password-cache-seconds", type=int, default=None,
                        help="the server's verified-password cache lifetime (0: off; "
                             "default: the server's own, 60)")
    parser.add_argument("--fast-argon2", action="store_true",
                        help="run Gitward with cheap password hashing (as the test suite does)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    runner: Callable[[argparse.Namespace], int] = measure
    return runner(args)


if __name__ == "__main__":
    sys.exit(main())
