"""Many concurrent keep-alive clients against one Gitward, and what they got back.

Used by `bench/load.py` (500 clients for 60 s) and by `tests/e2e/test_load.py` (a bounded
run in the suite). `seed()` creates, through the REST API, what the clients use; `run()` drives
the server with `clients` concurrent clients, each on its own keep-alive connection (one aiohttp
session each), cycling through one kind of traffic per client:

- anonymous reads of a public repository;
- reads of a private repository with a personal access token (Bearer), a repository access
  token (Bearer) and an app password (Basic `user:gwapp_…`);
- writes with an administrator's personal access token: change a repository's description,
  grant a user read access to it, remove the grant (every writer has its own (repository,
  user) pair, so every answer is determined: no legitimate 404 or conflict);

while a separate process (`python bench/loadgen.py --probe …`, so that the load generator's
busy event loop does not delay it) asks `GET /status` at a fixed interval and records each
latency. Everything is counted: answers by status and by kind, unexpected statuses, connection
resets, disconnections, connect errors, timeouts, and the connections each client opened.
Only loopback URLs are accepted; the run is bounded by its duration plus the request timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

if __package__ in (None, ""):  # run as a script (the /status prober)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Api

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WORKSPACE = "load"
PROJECT = "LOAD"
PUBLIC_REPO = "public"
PRIVATE_REPO = "private"
READER = "reader"
READER_PASSWORD = "load-reader-password-0123"
WRITE_REPOS = 20
#: Every fifth client writes.
KIND_CYCLE = ("anonymous", "personal access token", "repository access token", "app password",
              "write (admin PAT)")


def require_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"refusing to load {url}: only loopback targets are allowed")


# -- what the clients do ---------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    expect: frozenset[int]
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Traffic:
    """One client's traffic: the credential it sends and the requests it cycles through."""

    kind: str
    header: str | None
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Fixture:
    """What `seed()` created: the credentials and paths the clients use."""

    pat: str
    repository_token: str
    app_password: str
    admin_pat: str
    target_users: tuple[str, ...]

    def traffic(self, index: int) -> Traffic:
        """The traffic of client number `index` (kinds cycle; writers get their own pair)."""
        kind = KIND_CYCLE[index % len(KIND_CYCLE)]
        ok = frozenset({200})
        public = Step("GET", f"/2.0/repositories/{WORKSPACE}/{PUBLIC_REPO}", ok)
        private = Step("GET", f"/2.0/repositories/{WORKSPACE}/{PRIVATE_REPO}", ok)
        if kind == "anonymous":
            return Traffic(kind, None, (public,))
        if kind == "personal access token":
            return Traffic(kind, self.pat, (private,))
        if kind == "repository access token":
            return Traffic(kind, self.repository_token, (private,))
        if kind == "app password":
            return Traffic(kind, self.app_password, (private,))
        writer = index // len(KIND_CYCLE)
        repo = f"/2.0/repositories/{WORKSPACE}/w-{writer % WRITE_REPOS:02d}"
        user = self.target_users[(writer // WRITE_REPOS) % len(self.target_users)]
        grant = f"{repo}/permissions-config/users/{user}"
        return Traffic(kind, self.admin_pat, (
            Step("PUT", repo, ok, {"description": f"written by client {index}"}),
            Step("PUT", grant, frozenset({200, 201}), {"permission": "read"}),
            Step("DELETE", grant, frozenset({204})),
        ))


def writers(clients: int) -> int:
    return len(range(len(KIND_CYCLE) - 1, clients, len(KIND_CYCLE)))


def seed(api: Api, clients: int) -> Fixture:
    """Repositories, users and credentials for `clients` clients, through the REST API."""
    admin_pat = api.personal_access_token(api.admin, ["PROJECT_ADMIN", "REPO_ADMIN"], "load")
    reader = (READER, READER_PASSWORD)
    api.user(READER, READER_PASSWORD)
    api.workspace(WORKSPACE, PROJECT)
    api.repository(WORKSPACE, PUBLIC_REPO, PROJECT, bearer=admin_pat)
    api.repository(WORKSPACE, PRIVATE_REPO, PROJECT, private=True, bearer=admin_pat)
    api.grant(WORKSPACE, PRIVATE_REPO, READER, "read", bearer=admin_pat)
    for i in range(WRITE_REPOS):
        api.repository(WORKSPACE, f"w-{i:02d}", PROJECT, private=True, bearer=admin_pat)
    # Enough grantees that no two writers share a (repository, user) pair.
    targets = tuple(f"grantee{i}" for i in range(max(1, math.ceil(writers(clients)
                                                                     / WRITE_REPOS))))
    for name in targets:
        api.user(name, READER_PASSWORD)
    return Fixture(
        pat=api.personal_access_token(reader, ["REPO_READ"]),
        repository_token=api.repository_access_token(WORKSPACE, PRIVATE_REPO, ["repository"]),
        app_password=api.app_password(reader, ["repository"]),
        admin_pat=admin_pat,
        target_users=targets,
    )


# -- counting --------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    connections: int = 0
    unfinished: int = 0

    def answered(self) -> int:
        return sum(self.statuses.values())

    def by_class(self) -> Counter[str]:
        classes: Counter[str] = Counter()
        for (_, status), n in self.statuses.items():
            classes[f"{status // 100}xx"] += n
        return classes


def _error_name(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connect error"
    if isinstance(error, aiohttp.ClientOSError):
        if error.errno in (errno.ECONNRESET, errno.EPIPE):
            return "reset"
        # aiohttp's "Can not write request body": the server closed the kept-alive connection.
        return "connection lost while sending" if error.errno is None else f"errno {error.errno}"
    return type(error).__name__


async def _client(base: str, traffic: Traffic, end: float, timeout: float,
                  tally: Tally) -> None:
    trace = aiohttp.TraceConfig()

    async def opened(*_: object) -> None:
        tally.connections += 1

    trace.on_connection_create_end.append(opened)
    headers = {"Authorization": traffic.header} if traffic.header else {}
    latencies = tally.latencies.setdefault(traffic.kind, [])
    session = aiohttp.ClientSession(
        base, connector=aiohttp.TCPConnector(limit=1), trace_configs=[trace],
        timeout=aiohttp.ClientTimeout(total=timeout), headers=headers)
    # aiohttp silently retries an idempotent request once when a reused connection fails: that
    # would hide exactly the resets we count (its own test client turns this off the same way).
    session._retry_connection = False
    loop = asyncio.get_running_loop()
    async with session:
        turn = 0
        while loop.time() < end:
            step = traffic.steps[turn % len(traffic.steps)]
            turn += 1
            start = loop.time()
            try:
                async with session.request(step.method, step.path, json=step.body) as response:
                    await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                tally.errors[(traffic.kind, _error_name(error))] += 1
                turn = 0  # a failed step may or may not have taken effect: start the cycle anew
                continue
            latencies.append(loop.time() - start)
            tally.statuses[(traffic.kind, status)] += 1
            if status not in step.expect:
                tally.unexpected[(traffic.kind, f"{step.method} {step.path}", status)] += 1
                turn = 0


async def _drive(base: str, fixture: Fixture, clients: int, seconds: float,
                 timeout: float) -> Tally:
    tally = Tally()
    end = asyncio.get_running_loop().time() + seconds
    tasks = [asyncio.ensure_future(_client(base, fixture.traffic(i), end, timeout, tally))
             for i in range(clients)]
    # Bounded: a client finishes at most `timeout` after the end (its last request's limit).
    _, pending = await asyncio.wait(tasks, timeout=seconds + timeout + 10)
    for task in pending:
        task.cancel()
    tally.unfinished = len(pending)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            tally.errors[("client", repr(task.exception()))] += 1
    return tally


# -- the /status prober ----------------------------------------------------------------------


@dataclass
class Probes:
    latencies: list[float]
    errors: Counter[str]
    bad_statuses: Counter[int]

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return math.inf
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1]


def _probe(url: str, seconds: float, interval: float, timeout: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    bad: Counter[int] = Counter()
    end = time.monotonic() + seconds
    with httpx.Client(timeout=timeout) as client:
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                response = client.get(url)
                elapsed = time.perf_counter() - start
                if response.status_code == 200:
                    latencies.append(elapsed)
                else:
                    bad[response.status_code] += 1
            except httpx.TimeoutException:
                errors["timeout"] += 1
            except httpx.TransportError as error:
                errors[type(error).__name__] += 1
            time.sleep(max(0.0, interval - (time.perf_counter() - start)))
    return {"latencies": latencies, "errors": dict(errors),
            "bad_statuses": {str(k): v for k, v in bad.items()}}


def start_prober(base: str, seconds: float, interval: float,
                 timeout: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--probe", base + "/status",
         "--seconds", str(seconds), "--interval", str(interval), "--timeout", str(timeout)],
        stdout=subprocess.PIPE, text=True)


def collect_probes(prober: subprocess.Popen[str], wait: float) -> Probes:
    out, _ = prober.communicate(timeout=wait)
    raw = json.loads(out)
    return Probes(raw["latencies"], Counter(raw["errors"]),
                  Counter({int(k): v for k, v in raw["bad_statuses"].items()}))


# -- a run -----------------------------------------------------------------------------------


@dataclass
class Report:
    clients: int
    seconds: float
    elapsed: float
    tally: Tally
    probes: Probes

    def failures(self, status_p99: float | None = None) -> list[str]:
        """Everything that went wrong; `status_p99` (seconds) also bounds /status's p99."""
        found = []
        fives = self.tally.by_class().get("5xx", 0)
        if fives:
            found.append(f"{fives} answers 5xx")
        for (kind, what, status), n in sorted(self.tally.unexpected.items()):
            if status < 500:
                found.append(f"{n} × {status} to {kind}: {what}")
        for (kind, name), n in sorted(self.tally.errors.items()):
            found.append(f"{n} × {name} ({kind})")
        if self.tally.unfinished:
            found.append(f"{self.tally.unfinished} clients did not finish")
        kinds = {kind for kind, status in self.tally.statuses if 200 <= status < 300}
        for kind in sorted(set(KIND_CYCLE[: self.clients]) - kinds):
            found.append(f"no successful answer at all for {kind}")
        for name, n in sorted(self.probes.errors.items()):
            found.append(f"/status: {n} × {name}")
        for status, n in sorted(self.probes.bad_statuses.items()):
            found.append(f"/status: {n} × {status}")
        if not self.probes.latencies:
            found.append("/status never answered")
        elif status_p99 is not None and self.probes.quantile(0.99) >= status_p99:
            found.append(f"/status p99 {self.probes.quantile(0.99) * 1000:.1f} ms "
                         f">= {status_p99 * 1000:.0f} ms")
        return found

    def summary(self) -> str:
        t = self.tally
        lines = [f"{self.clients} clients, {self.seconds:g} s (took {self.elapsed:.1f} s): "
                 f"{t.answered()} answers, {t.answered() / self.elapsed:.0f}/s; "
                 f"connections opened: {t.connections}"]
        classes = t.by_class()
        lines.append("status classes: " + ", ".join(f"{c} {classes[c]}" for c in sorted(classes)))
        lines.append(f"{'kind':<28} {'answers':>8} {'p50 ms':>8} {'p99 ms':>9}   statuses")
        for kind in KIND_CYCLE:
            values = sorted(t.latencies.get(kind, []))
            statuses = {s: n for (k, s), n in sorted(t.statuses.items()) if k == kind}
            if not values:
                lines.append(f"{kind:<28} {0:>8}")
                continue
            p50 = values[len(values) // 2] * 1000
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
            lines.append(f"{kind:<28} {len(values):>8} {p50:>8.1f} {p99:>9.1f}   {statuses}")
        errors = sum(t.errors.values())
        lines.append(f"errors (resets, disconnections, timeouts, ...): {errors}"
                     + (f" {dict(t.errors)}" if errors else ""))
        p = self.probes
        if p.latencies:
            lines.append(f"/status: {len(p.latencies)} answered, p50 {p.quantile(0.5) * 1000:.1f}"
                         f" ms, p99 {p.quantile(0.99) * 1000:.1f} ms, max "
                         f"{max(p.latencies) * 1000:.1f} ms; errors {dict(p.errors)}, "
                         f"non-200 {dict(p.bad_statuses)}")
        else:
            lines.append(f"/status: never answered; errors {dict(p.errors)}")
        return "\n".join(lines)


def run(base: str, fixture: Fixture, *, clients: int, seconds: float, timeout: float = 30,
        probe_interval: float = 0.05, probe_timeout: float = 30) -> Report:
    """Drive `base` (a loopback URL) for `seconds` with `clients` clients, /status probed."""
    require_loopback(base)
    prober = start_prober(base, seconds, probe_interval, probe_timeout)
    try:
        start = time.monotonic()
        tally = asyncio.run(_drive(base, fixture, clients, seconds, timeout))
        elapsed = time.monotonic() - start
        probes = collect_probes(prober, probe_timeout + 30)
    finally:
        if prober.poll() is None:
            prober.kill()
            prober.wait()
    return Report(clients, seconds, elapsed, tally, probes)


def _probe_main() -> int:
    parser = argparse.ArgumentParser(description="GET /status at an interval; JSON on stdout")
    parser.add_argument("--probe", required=True, metavar="URL")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    require_loopback(args.probe)
    json.dump(_probe(args.probe, args.seconds, args.interval, args.timeout), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(_probe_main())
