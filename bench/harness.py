"""What the benchmarks share: loopback servers, CPU pinning, a fresh database, seeding, wrk.

Every benchmark starts `gitward serve` (any version: only `--data`, `--host`, `--port` and
`GITWARD_*` variables are used) on a free 127.0.0.1 port with its own data directory, seeds it
through the public REST API as a client would, and drives it from 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
#: The PostgreSQL server `--postgres` creates its fresh database on, unless given a URL.
DEFAULT_POSTGRES = os.environ.get("GITWARD_TEST_POSTGRES_URL",
                                  "postgresql://postgres@127.0.0.1:5432/postgres")
#: Cheap password hashing, as the test suite uses: only for runs that measure something else.
FAST_ARGON2 = {"GITWARD_ARGON2_MEMORY_KIB": "1024", "GITWARD_ARGON2_TIME_COST": "1",
               "GITWARD_ARGON2_PARALLELISM": "1"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


# -- CPU pinning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpus:
    """Which CPUs the server and the load generator run on (None: not pinned)."""

    server: str | None
    client: str | None

    def describe(self) -> str:
        if self.server is None:
            return "not pinned"
        return f"server on CPU {self.server}, load generator on CPU {self.client}"


def split_cpus(enabled: bool = True) -> Cpus:
    """Server on the first CPU this process may use, client on the others (needs taskset)."""
    allowed = sorted(os.sched_getaffinity(0))
    if not enabled or len(allowed) < 2 or shutil.which("taskset") is None:
        return Cpus(None, None)
    return Cpus(str(allowed[0]), ",".join(str(c) for c in allowed[1:]))


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus is not None else list(command)


# -- PostgreSQL ------------------------------------------------------------------------------


def _driver_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


class PostgresDatabase:
    """A fresh, empty database on the server of `admin_url`, dropped by `drop()`."""

    def __init__(self, admin_url: str, prefix: str = "gitward_bench") -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._engine = create_engine(_driver_url(admin_url), isolation_level="AUTOCOMMIT")
        self._execute(f'CREATE DATABASE "{self.name}"')
        self.url = make_url(admin_url).set(database=self.name).render_as_string(
            hide_password=False)

    def _execute(self, sql: str) -> None:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            conn.execute(text(sql))

    def drop(self) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._engine.dispose()


def add_database_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, metavar="URL",
                       help="run on a fresh database, dropped afterwards, of this PostgreSQL "
                            "server (default $GITWARD_TEST_POSTGRES_URL or "
                            "postgresql://postgres@127.0.0.1:5432/postgres)")
    group.add_argument("--database-url", metavar="URL",
                       help="run on this existing, empty database instead (not dropped)")


def open_database(args: argparse.Namespace) -> tuple[PostgresDatabase | None, str | None]:
    """The fresh database `--postgres` asks for (to drop afterwards) and the URL to serve on."""
    if args.postgres:
        database = PostgresDatabase(args.postgres)
        return database, database.url
    return None, args.database_url


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Process:
    """A server subprocess on 127.0.0.1:port; its output goes to `log_path`."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.process.returncode}):\n"
                                 + self.log_tail())
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{self.name} did not answer {path} in {timeout:.0f} s:\n"
                         + self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def spawn(name: str, command: Sequence[str], root: Path, env: Mapping[str, str], port: int,
          cpus: str | None) -> Process:
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / f"{name}.log"
    with open(log_path, "wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(pinned(command, cpus), stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(env), cwd=root)
    return Process(name, port, process, log_path)


@dataclass
class Gitward(Process):
    data_dir: Path = field(default_factory=Path)

    @property
    def admin_password(self) -> str:
        return (self.data_dir / "initial-admin-password").read_text().strip()


def start_gitward(root: Path, *, src: Path = SRC, database_url: str | None = None,
                  cpus: str | None = None, env: Mapping[str, str] | None = None) -> Gitward:
    """`gitward serve` from the source tree `src` on a fresh data dir under `root`."""
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITWARD_", "GIT_"))}
    # One process unless a benchmark asks for more: the figures here (and the RSS samples
    # of bench/git_http.py, which read the server's own process) are of one worker.
    server_env.update(PYTHONPATH=str(src.resolve()), GITWARD_LOG_LEVEL="warning",
                      PYTHONUNBUFFERED="1", GITWARD_WORKERS="1")
    if database_url:
        server_env["GITWARD_DATABASE_URL"] = database_url
    server_env.update(env or {})
    port = free_port()
    data = root / "data"
    command = [sys.executable, "-m", "gitward.cli", "serve", "--data", str(data),
               "--host", "127.0.0.1", "--port", str(port)]
    base = spawn("gitward", command, root, server_env, port, cpus)
    server = Gitward(base.name, base.port, base.process, base.log_path, data_dir=data)
    server.wait_ready("/status")
    return server


# -- seeding through the public API -----------------------------------------------------------


class Api:
    """REST calls as a client makes them; every unexpected answer ends the run with its body.

    A call is made as the site administrator (Basic) unless it is given `auth` or `headers`
    (`headers={}`: anonymous).
    """

    def __init__(self, base: str, admin_password: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=120)
        self.admin = ("admin", admin_password)

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 204),
             auth: tuple[str, str] | None = None, headers: Mapping[str, str] | None = None,
             **kwargs: Any) -> httpx.Response:
        if headers is None and auth is None:
            auth = self.admin
        response = self.client.request(method, path, auth=auth, headers=headers, **kwargs)
        if response.status_code not in expect:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response

    def user(self, name: str, password: str) -> None:
        self.call("POST", "/rest/api/1.0/admin/users",
                  params={"name": name, "password": password, "displayName": name.title(),
                          "emailAddress": f"{name}@example.com"})

    def workspace(self, slug: str, project: str) -> None:
        self.call("POST", "/2.0/workspaces", json={"slug": slug, "name": slug.title()})
        self.call("POST", f"/2.0/workspaces/{slug}/projects",
                  json={"key": project, "name": project.title()})

    def repository(self, workspace: str, slug: str, project: str, *, private: bool = False,
                   bearer: str | None = None) -> None:
        headers = {"Authorization": bearer} if bearer else None
        self.call("POST", f"/2.0/repositories/{workspace}/{slug}", headers=headers,
                  json={"scm": "git", "project": {"key": project}, "is_private": private})

    def personal_access_token(self, user: tuple[str, str], permissions: list[str],
                              name: str = "bench") -> str:
        """A `Bearer …` header value for a new personal access token of `user`."""
        response = self.call("PUT", f"/rest/access-tokens/1.0/users/{user[0]}", auth=user,
                             json={"name": name, "permissions": permissions})
        return "Bearer " + str(response.json()["token"])

    def repository_access_token(self, workspace: str, slug: str, scopes: list[str]) -> str:
        response = self.call("POST", f"/2.0/repositories/{workspace}/{slug}/access-tokens",
                             json={"name": "bench", "scopes": scopes})
        return "Bearer " + str(response.json()["token"])

    def app_password(self, user: tuple[str, str], scopes: list[str]) -> str:
        """A `Basic user:gwapp_…` header value for a new app password of `user`."""
        response = self.call("POST", "/2.0/user/app-passwords", auth=user,
                             json={"label": "bench", "scopes": scopes})
        return basic(user[0], str(response.json()["password"]))

    def grant(self, workspace: str, slug: str, user: str, permission: str,
              bearer: str | None = None) -> None:
        headers = {"Authorization": bearer} if bearer else None
        self.call("PUT", f"/2.0/repositories/{workspace}/{slug}/permissions-config/users/{user}",
                  headers=headers, json={"permission": permission})


# -- wrk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    non_2xx: int
    socket_errors: str  # wrk's "Socket errors: …" line, "" when there were none


def _field(output: str, prefix: str) -> str | None:
    for line in output.splitlines():
        if line.strip().startswith(prefix):
            return line.strip()
    return None


def wrk(url: str, header: str | None, seconds: float, connections: int, *,
        threads: int = 1, cpus: str | None = None) -> WrkResult:
    """One wrk run (keep-alive); `header` is an Authorization value or None."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s"]
    if header is not None:
        command += ["-H", f"Authorization: {header}"]
    out = subprocess.run(pinned([*command, url], cpus), check=True, capture_output=True,
                         text=True, timeout=seconds + 60).stdout
    rps = _field(out, "Requests/sec:")
    total = next((line for line in out.splitlines() if "requests in" in line), None)
    if rps is None or total is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    non_2xx = _field(out, "Non-2xx or 3xx responses:")
    return WrkResult(
        rps=float(rps.split()[1]),
        requests=int(total.split()[0]),
        non_2xx=int(non_2xx.split()[-1]) if non_2xx else 0,
        socket_errors=_field(out, "Socket errors:") or "",
    )


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (Debian: apt-get install -y wrk)")
