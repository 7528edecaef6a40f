"""Requests per second of one REST read, by the credential presented.

One real server (`gitward serve`, one process) is started on a temporary data directory; a
public repository is created; then `wrk` (keep-alive, a few connections) drives
`GET /2.0/repositories/{ws}/{slug}` once per row, rows interleaved, repeated, medians taken.

Rows (see ROWS at the bottom of the row definitions; a new credential kind is one more entry):

- anonymous: no Authorization header (the baseline);
- personal access token: `Authorization: Bearer gwpat_…`;
- account password: `Authorization: Basic user:password` (argon2id per request: slow by design);
- OAuth access tokens of the client credentials and authorization code grants (`gwoat_`).

Target: personal access token >= 0.9 x anonymous.

    PYTHONPATH=src python bench/auth.py                 # SQLite
    PYTHONPATH=src python bench/auth.py --postgres      # PostgreSQL
    PYTHONPATH=src python bench/auth.py --postgres --redis   # and Redis for the login counters
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = "bench"
PROJECT = "BEN"
REPO = "public-repo"
USER = "bencher"
USER_PASSWORD = "bench-password-0123456789"
TARGET_RATIO = 0.9
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "gitward_bench_auth"
REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass
class Server:
    base: str
    client: httpx.Client
    admin_password: str
    state: dict[str, str] = field(default_factory=dict)

    def admin(self) -> tuple[str, str]:
        return ("admin", self.admin_password)


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


# -- rows: how each credential is obtained and presented ----------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    #: Returns the Authorization header value (None: send none). Runs once, after setup.
    authorization: Callable[[Server], str | None]


def anonymous(_server: Server) -> str | None:
    return None


def personal_access_token(server: Server) -> str:
    response = server.client.put(
        f"/rest/access-tokens/1.0/users/{USER}",
        json={"name": "bench", "permissions": ["REPO_READ"]},
        auth=(USER, USER_PASSWORD),
    )
    response.raise_for_status()
    return "Bearer " + response.json()["token"]


def repository_access_token(server: Server) -> str:
    response = server.client.post(
        f"/2.0/repositories/{WORKSPACE}/{REPO}/access-tokens",
        json={"name": "bench", "scopes": ["repository"]},
        auth=server.admin(),
    )
    response.raise_for_status()
    return "Bearer " + response.json()["token"]


def app_password(server: Server) -> str:
    response = server.client.post(
        "/2.0/user/app-passwords",
        json={"label": "bench", "scopes": ["repository"]},
        auth=(USER, USER_PASSWORD),
    )
    response.raise_for_status()
    return basic(USER, response.json()["password"])


def account_password(_server: Server) -> str:
    return basic(USER, USER_PASSWORD)


def _oauth_consumer(server: Server) -> dict[str, str]:
    if "consumer" not in server.state:
        response = server.client.post(
            f"/2.0/workspaces/{WORKSPACE}/oauth-consumers",
            json={"name": "bench", "is_private": True, "scopes": ["repository"],
                  "callback_url": "https://bench.example/callback"},
            auth=server.admin(),
        )
        response.raise_for_status()
        consumer = response.json()
        server.state["consumer"] = consumer["key"]
        server.state["consumer_secret"] = consumer["secret"]
    return {"key": server.state["consumer"], "secret": server.state["consumer_secret"]}


def oauth_client_credentials(server: Server) -> str:
    consumer = _oauth_consumer(server)
    response = server.client.post(
        "/site/oauth2/access_token", data={"grant_type": "client_credentials"},
        auth=(consumer["key"], consumer["secret"]),
    )
    response.raise_for_status()
    return "Bearer " + response.json()["access_token"]


def oauth_user_grant(server: Server) -> str:
    """The authorization code grant, answered on the authorize page as the bench user."""
    consumer = _oauth_consumer(server)
    response = server.client.post(
        "/site/oauth2/authorize",
        params={"client_id": consumer["key"], "response_type": "code"},
        data={"username": USER, "password": USER_PASSWORD, "decision": "allow"},
    )
    if response.status_code != 302:
        raise RuntimeError(f"authorize answered {response.status_code}: {response.text[:200]}")
    code = re.search(r"[?&]code=([^&]+)", response.headers["location"])
    assert code is not None, response.headers["location"]
    response = server.client.post(
        "/site/oauth2/access_token",
        data={"grant_type": "authorization_code", "code": code.group(1)},
        auth=(consumer["key"], consumer["secret"]),
    )
    response.raise_for_status()
    return "Bearer " + response.json()["access_token"]


#: The first row is the baseline for every ratio. Append rows for new credential kinds.
ROWS: list[Row] = [
    Row("anonymous", anonymous),
    Row("personal access token (Bearer)", personal_access_token),
    Row("repository access token (Bearer)", repository_access_token),
    Row("app password (Basic)", app_password),
    Row("OAuth client credentials (Bearer)", oauth_client_credentials),
    Row("OAuth user grant (Bearer)", oauth_user_grant),
    Row("account password (Basic, argon2id)", account_password),
]

# -- server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql],
        check=True,
        capture_output=True,
    )


def start_server(data: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(data.parent / "server.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "gitward.cli", "serve", "--data", str(data),
             "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited; see {data.parent / 'server.log'}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/2.0/repositories/x/y", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("server did not start")


def set_up(server: Server) -> str:
    """A user and a public repository; the URL path the rows read."""
    c = server.client
    c.post(
        "/rest/api/1.0/admin/users",
        params={"name": USER, "password": USER_PASSWORD, "emailAddress": "b@example.com"},
        auth=server.admin(),
    ).raise_for_status()
    c.post("/2.0/workspaces", json={"slug": WORKSPACE, "name": "Bench"},
           auth=server.admin()).raise_for_status()
    c.post(f"/2.0/workspaces/{WORKSPACE}/projects", json={"key": PROJECT, "name": "Bench"},
           auth=server.admin()).raise_for_status()
    c.post(
        f"/2.0/repositories/{WORKSPACE}/{REPO}",
        json={"scm": "git", "project": {"key": PROJECT}, "is_private": False},
        auth=server.admin(),
    ).raise_for_status()
    return f"/2.0/repositories/{WORKSPACE}/{REPO}"


# -- load -----------------------------------------------------------------------------------------

_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors:.*")


def wrk(url: str, header: str | None, seconds: int, connections: int) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if header is not None:
        command += ["-H", f"Authorization: {header}"]
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    bad = _NON_2XX.search(out)
    errors = _ERRORS.search(out)
    if bad or errors:
        # Reported, not fatal: a handful in thousands does not move a median, but is shown.
        print(f"  ! {header.split()[0] if header else 'anonymous'}: "
              f"{bad.group(0) if bad else ''} {errors.group(0) if errors else ''}", flush=True)
    match = _RPS.search(out)
    if match is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--postgres", action="store_true", help="run on PostgreSQL")
    parser.add_argument("--redis", action="store_true",
                        help="set GITWARD_REDIS_URL (failed-login counters in Redis)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seconds", type=int, default=5, help="per row and round")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="source tree the server runs from (to compare two versions)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (apt-get install wrk)")

    tmp = Path(tempfile.mkdtemp(prefix="gitward-bench-auth-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(args.src.resolve())
    env["GITWARD_LOG_LEVEL"] = "warning"
    for name in ("GITWARD_DATABASE_URL", "GITWARD_REDIS_URL"):
        env.pop(name, None)
    if args.postgres:
        psql(f"DROP DATABASE IF EXISTS {PG_DB}")
        psql(f"CREATE DATABASE {PG_DB}")
        env["GITWARD_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
    if args.redis:
        env["GITWARD_REDIS_URL"] = REDIS_URL
    port = free_port()
    process = start_server(tmp / "data", port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            password = (tmp / "data" / "initial-admin-password").read_text().strip()
            server = Server(base, client, password)
            path = set_up(server)
            headers = [row.authorization(server) for row in ROWS]
            for row, header in zip(ROWS, headers, strict=True):
                sent = {"Authorization": header} if header else {}
                response = client.get(path, headers=sent)
                if response.status_code != 200:
                    raise SystemExit(f"{row.name}: {response.status_code} {response.text}")
        url = base + path
        backend = "PostgreSQL" if args.postgres else "SQLite"
        cache = "with Redis" if args.redis else "no Redis"
        print(f"# server from {args.src}")
        print(f"# GET {path}  backend={backend}  redis={cache}  "
              f"wrk -t1 -c{args.connections} -d{args.seconds}s  rounds={args.repeat}", flush=True)
        for header in headers:  # warm-up: caches, connection pools, bytecode
            wrk(url, header, 1, args.connections)
        results: list[list[float]] = [[] for _ in ROWS]
        for round_ in range(args.repeat):
            # Rotate the order each round so that no row always runs first or last.
            order = [(round_ + i) % len(ROWS) for i in range(len(ROWS))]
            for index in order:
                results[index].append(wrk(url, headers[index], args.seconds, args.connections))
        baseline = statistics.median(results[0])
        print(f"{'credential':<40} {'median req/s':>12} {'ratio':>7}   runs")
        for row, runs in zip(ROWS, results, strict=True):
            median = statistics.median(runs)
            shown = " ".join(f"{r:.0f}" for r in runs)
            print(f"{row.name:<40} {median:>12.1f} {median / baseline:>7.3f}   {shown}")
        pat = statistics.median(results[1]) / baseline
        verdict = "met" if pat >= TARGET_RATIO else "MISSED"
        print(f"target: personal access token >= {TARGET_RATIO} x anonymous: {verdict} "
              f"({pat:.3f})")
    finally:
        process.terminate()
        process.wait(timeout=30)
        if args.postgres:
            psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
