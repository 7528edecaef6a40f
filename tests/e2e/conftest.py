"""End-to-end fixtures: a real `gitward serve` subprocess and the real git client.

`start_server()` starts a server on a free loopback port with its own data directory (SQLite,
or a fresh PostgreSQL database), waits for `GET /status`, and returns a `GitwardServer` that
knows its base URL, data dir and admin password and can run git (isolated HOME, no global or
system configuration, no prompts) and call the REST API. The `gitward_server` fixture shares
one SQLite server per test module; `gitward_pg_server` does the same on PostgreSQL and is
skipped unless GITWARD_TEST_POSTGRES_URL is set; `any_gitward_server` runs a test on both.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import migrated_sqlite_file

POSTGRES_URL = os.environ.get("GITWARD_TEST_POSTGRES_URL")
SKIP_POSTGRES = (
    "PostgreSQL end-to-end tests need GITWARD_TEST_POSTGRES_URL "
    "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
)
PASSWORD = "correct horse battery staple"
SRC = Path(__file__).resolve().parents[2] / "src"
STARTUP_TIMEOUT = 60.0

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_driver_url(url: str) -> str:
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class PostgresDatabase:
    """A fresh, empty PostgreSQL database, dropped on `drop()`."""

    def __init__(self, base_url: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self._text = text
        self.name = f"gitward_e2e_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(_pg_driver_url(base_url), isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            # As the integration tests' databases (tests/conftest.py): no wait for the disk.
            conn.execute(text(f'ALTER DATABASE "{self.name}" SET synchronous_commit = off'))
        plain = make_url(base_url).set(database=self.name)
        self.url = plain.render_as_string(hide_password=False)

    def drop(self) -> None:
        text = self._text
        with self._admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
        self._admin.dispose()


def project_key(workspace: str) -> str:
    """The key of the project `create_repository` makes in `workspace`: keys are unique
    across the site, so each workspace's is its own."""
    return "P_" + re.sub(r"[^A-Z0-9_]", "_", workspace.upper())


@dataclass
class User:
    username: str
    password: str = PASSWORD

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


@dataclass
class GitwardServer:
    base_url: str
    data_dir: Path
    admin_password: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    database: str
    # The server's database as a SQLAlchemy URL, for tests that read what the API cannot show.
    sqlalchemy_url: str = ""
    _counter: int = field(default=0)

    # -- REST ---------------------------------------------------------------------------
    @property
    def admin(self) -> User:
        return User("admin", self.admin_password)

    def api(
        self,
        method: str,
        path: str,
        *,
        auth: User | tuple[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One REST call; `auth` is a User or (username, secret) for Basic auth."""
        if isinstance(auth, User):
            auth = auth.auth
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            return client.request(method, path, auth=auth, **kwargs)

    def unique(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}{uuid.uuid4().hex[:6]}"

    def create_user(self, username: str | None = None, password: str = PASSWORD) -> User:
        username = username or self.unique("user")
        r = self.api(
            "POST",
            "/rest/api/1.0/admin/users",
            auth=self.admin,
            params={
                "name": username,
                "password": password,
                "displayName": username.title(),
                "emailAddress": f"{username}@example.com",
            },
        )
        assert r.status_code in (200, 201, 204), r.text
        return User(username, password)

    def create_repository(
        self, owner: User, *, private: bool = True, workspace: str | None = None,
        slug: str | None = None,
    ) -> tuple[str, str]:
        """A workspace (owned by `owner`) with project `project_key(workspace)` and one
        repository in it."""
        if workspace is None:
            workspace = self.unique("ws")
            r = self.api("POST", "/2.0/workspaces", auth=owner,
                         json={"slug": workspace, "name": workspace})
            assert r.status_code == 201, r.text
            r = self.api("POST", f"/2.0/workspaces/{workspace}/projects", auth=owner,
                         json={"key": project_key(workspace), "name": "Project"})
            assert r.status_code == 201, r.text
        slug = slug or self.unique("repo")
        r = self.api("POST", f"/2.0/repositories/{workspace}/{slug}", auth=owner,
                     json={"scm": "git", "project": {"key": project_key(workspace)},
                           "is_private": private})
        assert r.status_code == 200, r.text
        return workspace, slug

    def grant(self, admin: User, workspace: str, slug: str, user: User, permission: str) -> None:
        r = self.api(
            "PUT",
            f"/2.0/repositories/{workspace}/{slug}/permissions-config/users/{user.username}",
            auth=admin,
            json={"permission": permission},
        )
        assert r.status_code in (200, 201), r.text

    def seed(self, owner: User, workspace: str, slug: str) -> Path:
        """Push a first commit (README "hello") to main; the working copy it came from."""
        seed = self.home / f"seed-{slug}"
        self.git("clone", "-q", self.clone_url(workspace, slug, owner), str(seed))
        (seed / "README").write_text("hello\n")
        self.git("add", "README", cwd=seed)
        self.git("commit", "-qm", "readme", cwd=seed)
        self.git("push", "-q", "origin", "HEAD:main", cwd=seed)
        return seed

    def branches(self, user: User | None, workspace: str, slug: str) -> dict[str, str]:
        r = self.api("GET", f"/2.0/repositories/{workspace}/{slug}/refs/branches",
                     auth=user, params={"pagelen": 100})
        assert r.status_code == 200, r.text
        return {b["name"]: b["target"]["hash"] for b in r.json()["values"]}

    # -- Git ----------------------------------------------------------------------------
    def clone_url(self, workspace: str, slug: str, user: User | None = None,
                  suffix: str = ".git") -> str:
        host = self.base_url.split("://", 1)[1]
        cred = ""
        if user is not None:
            cred = f"{quote(user.username, safe='')}:{quote(user.password, safe='')}@"
        return f"http://{cred}{host}/{workspace}/{slug}{suffix}"

    def git_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            HOME=str(self.home),
            GIT_CONFIG_GLOBAL=str(self.home / ".gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
            GIT_ASKPASS="",
            SSH_ASKPASS="",
            LC_ALL="C",
        )
        env.update(extra or {})
        return env

    def git(
        self,
        *args: str,
        cwd: Path | str | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run the git client; with check=True a failure shows git's output."""
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.git_env(env),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def repo_path(self, workspace: str, slug: str) -> Path:
        """The bare repository on disk (found via its storage name in the database)."""
        r = self.api("GET", f"/2.0/repositories/{workspace}/{slug}", auth=self.admin)
        assert r.status_code == 200, r.text
        repos = self.data_dir / "repos"
        candidates = [p for p in repos.iterdir() if p.name.endswith(".git")]
        # The API does not expose the storage name: match by uuid when present.
        repo_uuid = r.json().get("uuid", "").strip("{}")
        for path in candidates:
            if repo_uuid and path.name == f"{repo_uuid}.git":
                return path
        raise AssertionError(f"no storage for {workspace}/{slug} among {candidates}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_server(
    root: Path,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    data: Path | None = None,
    scheme: str = "http",
) -> GitwardServer:
    """Start `gitward serve` in `root` and wait until it answers GET /status. `data` is its
    data directory (default `root/data`; several hosts may share one)."""
    data = data or root / "data"
    if database_url is None and not (data / "gitward.db").exists():
        # A copy of the migrated schema (tests/conftest.py): every migration run again for
        # each server was seconds of its start. `gitward migrate` on an empty data directory
        # is tested on its own (tests/e2e/test_cli.py).
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(migrated_sqlite_file(), data / "gitward.db")
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = E2E Tester\n\temail = e2e@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITWARD_", "GIT_"))}
    server_env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        GITWARD_ARGON2_MEMORY_KIB="1024",
        GITWARD_ARGON2_TIME_COST="1",
        GITWARD_ARGON2_PARALLELISM="1",
        GITWARD_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        server_env["GITWARD_DATABASE_URL"] = database_url
    server_env.update(env or {})
    log_path = root / "server.log"
    log = open(log_path, "wb")  # closed below, once the child has it
    process = subprocess.Popen(
        [sys.executable, "-m", "gitward.cli", "serve", "--data", str(data),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=server_env,
        cwd=root,
    )
    log.close()
    base_url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gitward serve exited ({process.returncode}):\n"
                               + log_path.read_text(errors="replace"))
        try:
            # (A test of HTTPS checks the certificate itself; this only waits for the server.)
            r = httpx.get(base_url + "/status", timeout=2, verify=scheme == "http")
            if r.status_code == 200 and r.json() == {"state": "RUNNING"}:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("gitward serve did not answer /status in time:\n"
                               + log_path.read_text(errors="replace"))
        time.sleep(0.1)
    password_file = data / "initial-admin-password"
    while not password_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # written by whichever host sharing `data` created the administrator
    password = password_file.read_text().strip()
    return GitwardServer(
        base_url=base_url,
        data_dir=data,
        admin_password=password,
        home=home,
        process=process,
        log_path=log_path,
        database="postgresql" if database_url else "sqlite",
        sqlalchemy_url=(
            _pg_driver_url(database_url) if database_url
            else f"sqlite:///{(data / 'gitward.db').resolve()}"
        ),
    )


@pytest.fixture(scope="module")
def gitward_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitwardServer]:
    """One SQLite-backed server shared by the tests of a module."""
    server = start_server(tmp_path_factory.mktemp("gitward-e2e"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gitward_pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitwardServer]:
    """One server on a fresh PostgreSQL database, shared by the tests of a module."""
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    database = PostgresDatabase(POSTGRES_URL)
    try:
        server = start_server(tmp_path_factory.mktemp("gitward-e2e-pg"), database_url=database.url)
        try:
            yield server
        finally:
            server.stop()
    finally:
        database.drop()


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def any_gitward_server(request: pytest.FixtureRequest) -> GitwardServer:
    """The test runs once against the SQLite server and once against the PostgreSQL one."""
    name = "gitward_server" if request.param == "sqlite" else "gitward_pg_server"
    server: GitwardServer = request.getfixturevalue(name)
    return server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def write_random_files(root: Path, total_bytes: int, files: int, prefix: str = "blob") -> None:
    """Incompressible content, written fast (os.urandom in 1 MiB pieces)."""
    root.mkdir(parents=True, exist_ok=True)
    per_file = total_bytes // files
    for i in range(files):
        with open(root / f"{prefix}{i}.bin", "wb") as handle:
            left = per_file
            while left > 0:
                n = min(left, 1 << 20)
                handle.write(os.urandom(n))
                left -= n
