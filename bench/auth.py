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
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make `bench.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    SRC,
    Api,
    add_database_options,
    basic,
    open_database,
    require_wrk,
    start_gitward,
    wrk,
)

WORKSPACE = "bench"
PROJECT = "BEN"
REPO = "public-repo"
USER = "bencher"
USER_PASSWORD = "bench-password-0123456789"
TARGET_RATIO = 0.9
REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass
class Server:
    base: str
    client: httpx.Client
    admin_password: str
    api: Api
    state: dict[str, str] = field(default_factory=dict)

    def admin(self) -> tuple[str, str]:
        return ("admin", self.admin_password)


# -- rows: how each credential is obtained and presented ----------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    #: Returns the Authorization header value (None: send none). Runs once, after setup.
    authorization: Callable[[Server], str | None]


def anonymous(_server: Server) -> str | None:
    return None


def personal_access_token(server: Server) -> str:
    return server.api.personal_access_token((USER, USER_PASSWORD), ["REPO_READ"])


def repository_access_token(server: Server) -> str:
    return server.api.repository_access_token(WORKSPACE, REPO, ["repository"])


def app_password(server: Server) -> str:
    return server.api.app_password((USER, USER_PASSWORD), ["repository"])


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
    return "Bearer " + str(response.json()["access_token"])


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
    return "Bearer " + str(response.json()["access_token"])


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


def set_up(server: Server) -> str:
    """A user and a public repository; the URL path the rows read."""
    server.api.user(USER, USER_PASSWORD)
    server.api.workspace(WORKSPACE, PROJECT)
    server.api.repository(WORKSPACE, REPO, PROJECT)
    return f"/2.0/repositories/{WORKSPACE}/{REPO}"


def measure(url: str, header: str | None, seconds: int, connections: int) -> float:
    result = wrk(url, header, seconds, connections)
    if result.non_2xx or result.socket_errors:
        # Reported, not fatal: a handful in thousands does not move a median, but is shown.
        print(f"  ! {header.split()[0] if header else 'anonymous'}: "
              f"{result.non_2xx} non-2xx {result.socket_errors}", flush=True)
    return result.rps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    add_database_options(parser)
    parser.add_argument("--redis", action="store_true",
                        help="set GITWARD_REDIS_URL (failed-login counters in Redis)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seconds", type=int, default=5, help="per row and round")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--src", type=Path, default=SRC,
                        help="source tree the server runs from (to compare two versions)")
    args = parser.parse_args()
    require_wrk()

    tmp = Path(tempfile.mkdtemp(prefix="gitward-bench-auth-"))
    database, database_url = open_database(args)
    gitward = None
    try:
        gitward = start_gitward(tmp, src=args.src,
                                database_url=database_url,
                                env={"GITWARD_REDIS_URL": REDIS_URL} if args.redis else None)
        api = Api(gitward.base, gitward.admin_password)
        try:
            server = Server(gitward.base, api.client, gitward.admin_password, api)
            path = set_up(server)
            headers = [row.authorization(server) for row in ROWS]
            for row, header in zip(ROWS, headers, strict=True):
                sent = {"Authorization": header} if header else {}
                response = api.client.get(path, headers=sent)
                if response.status_code != 200:
                    raise SystemExit(f"{row.name}: {response.status_code} {response.text}")
        finally:
            api.close()
        url = gitward.base + path
        backend = "PostgreSQL" if database_url else "SQLite"
        cache = "with Redis" if args.redis else "no Redis"
        print(f"# server from {args.src}")
        print(f"# GET {path}  backend={backend}  redis={cache}  "
              f"wrk -t1 -c{args.connections} -d{args.seconds}s  rounds={args.repeat}", flush=True)
        for header in headers:  # warm-up: caches, connection pools, bytecode
            measure(url, header, 1, args.connections)
        results: list[list[float]] = [[] for _ in ROWS]
        for round_ in range(args.repeat):
            # Rotate the order each round so that no row always runs first or last.
            order = [(round_ + i) % len(ROWS) for i in range(len(ROWS))]
            for index in order:
                results[index].append(measure(url, headers[index], args.seconds,
                                              args.connections))
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
        if gitward is not None:
            gitward.stop()
        if database is not None:
            database.drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
