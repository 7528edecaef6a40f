"""Several hosts: two `gitward serve` processes on one PostgreSQL database and one shared
data directory, behind HAProxy (Debian's `haproxy`), all on loopback.

The hosts are started together on an empty database (migrations and the first administrator
happen once). HAProxy balances round robin, as in production; a request carrying
`X-Test-Host: a` or `b` is sent to that host only, so a test can push through one and fetch
through the other, or revoke on one and ask the other. One set of processes for the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import (
    POSTGRES_URL,
    SKIP_POSTGRES,
    GitwardServer,
    PostgresDatabase,
    User,
    free_port,
    start_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
HOSTS = ("a", "b")

HAPROXY_CONFIG = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    option forwardfor
frontend gitward
    bind 127.0.0.1:{port}
    use_backend only_a if {{ req.hdr(x-test-host) -m str a }}
    use_backend only_b if {{ req.hdr(x-test-host) -m str b }}
    default_backend both
backend both
    balance roundrobin
    option httpchk GET /status
    server a 127.0.0.1:{a} check inter 1s
    server b 127.0.0.1:{b} check inter 1s
backend only_a
    server a 127.0.0.1:{a}
backend only_b
    server b 127.0.0.1:{b}
"""


@dataclass
class Site:
    hosts: dict[str, GitwardServer]
    proxy_url: str
    database_url: str
    data: Path

    @property
    def any(self) -> GitwardServer:
        return self.hosts["a"]

    def api(self, host: str | None, method: str, path: str, *, auth: User | None = None,
            **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if host is not None:
            headers["X-Test-Host"] = host
        with httpx.Client(base_url=self.proxy_url, timeout=60) as client:
            return client.request(method, path, auth=auth.auth if auth else None,
                                  headers=headers, **kwargs)

    def clone_url(self, workspace: str, slug: str, user: User) -> str:
        host = self.proxy_url.split("://", 1)[1]
        return f"http://{user.username}:{user.password.replace(' ', '%20')}@{host}/{workspace}/{slug}.git"

    def git(self, host: str | None, *args: str, cwd: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        via = ("-c", f"http.extraHeader=X-Test-Host: {host}") if host else ()
        return self.any.git(*via, *args, cwd=cwd, check=check)


def _haproxy(root: Path, a: int, b: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = root / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, a=a, b=b))
    log = open(root / "haproxy.log", "wb")
    process = subprocess.Popen([HAPROXY, "-f", str(config), "-db"], stdout=log,
                               stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError("haproxy exited:\n" + (root / "haproxy.log").read_text())
        try:
            if httpx.get(url + "/status", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("haproxy did not answer:\n" + (root / "haproxy.log").read_text())
        time.sleep(0.1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not POSTGRES_URL:
        pytest.skip(SKIP_POSTGRES)
    if not os.access(HAPROXY, os.X_OK):
        pytest.skip("the several-hosts test needs HAProxy (apt-get install haproxy)")
    root = tmp_path_factory.mktemp("gitward-hosts")
    shared = root / "shared"  # the directory every host mounts (NFSv4 in production)
    database = PostgresDatabase(POSTGRES_URL)
    hosts: dict[str, GitwardServer] = {}
    proxy: subprocess.Popen[bytes] | None = None
    try:
        errors: list[BaseException] = []

        def start(name: str) -> None:
            try:
                hosts[name] = start_server(
                    root / name, database_url=database.url, data=shared,
                    env={"GITWARD_WORKERS": "1", "GITWARD_TRUSTED_PROXIES": "127.0.0.1/32"},
                )
            except BaseException as error:
                errors.append(error)

        # Both at once, on the empty database and the empty shared directory.
        threads = [threading.Thread(target=start, args=(name,)) for name in HOSTS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        if errors:
            raise errors[0]
        proxy, url = _haproxy(root, *(int(hosts[n].base_url.rsplit(":", 1)[1]) for n in HOSTS))
        yield Site(hosts, url, database.url, shared)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(15)
        for host in hosts.values():
            host.stop()
        database.drop()


def test_hosts_started_together_set_the_site_up_once(site: Site) -> None:
    engine = create_engine(site.any.sqlalchemy_url)
    try:
        with engine.connect() as connection:
            admins = connection.execute(
                text("SELECT count(*) FROM users WHERE username = 'admin'")
            ).scalar_one()
            created = connection.execute(text(
                "SELECT count(*) FROM audit_events WHERE action = 'user.bootstrap-admin'"
            )).scalar_one()
    finally:
        engine.dispose()
    assert admins == 1 and created == 1
    # One secret for both, so a credential made on one verifies on the other.
    assert len((site.data / "secret.key").read_bytes()) == 32
    assert not [p for p in site.data.iterdir() if p.name.startswith(".secret.key.")]
    for host in HOSTS:
        assert site.api(host, "GET", "/2.0/user", auth=site.any.admin).status_code == 200


def _commit(site: Site, clone: Path, name: str) -> str:
    (clone / name).write_text(name + "\n")
    site.any.git("add", name, cwd=clone)
    site.any.git("commit", "-qm", name, cwd=clone)
    return site.any.git("rev-parse", "HEAD", cwd=clone).stdout.strip()


def test_push_through_one_host_fetch_through_the_other(site: Site, tmp_path: Path) -> None:
    owner = site.any.create_user()
    workspace, slug = site.any.create_repository(owner)
    url = site.clone_url(workspace, slug, owner)
    first = tmp_path / "first"
    site.git("a", "clone", "-q", url, str(first))
    pushed = _commit(site, first, "README")
    site.git("a", "push", "-q", "origin", "HEAD:main", cwd=first)
    second = tmp_path / "second"
    site.git("b", "clone", "-q", url, str(second))
    assert site.any.git("rev-parse", "HEAD", cwd=second).stdout.strip() == pushed
    # A clone balanced over both hosts, request by request, is the same.
    balanced = tmp_path / "balanced"
    site.git(None, "clone", "-q", url, str(balanced))
    assert site.any.git("rev-parse", "HEAD", cwd=balanced).stdout.strip() == pushed

    # Two pushes of the same branch at once, one through each host: one lands whole, the
    # other is refused (git's ref lock on the shared directory), and nothing is half-written.
    mine = _commit(site, first, "from-a")
    theirs = _commit(site, second, "from-b")
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def push(host: str, clone: Path) -> None:
        results[host] = site.git(host, "push", "origin", "HEAD:main", cwd=clone, check=False)

    threads = [threading.Thread(target=push, args=args) for args in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    landed = [host for host, result in results.items() if result.returncode == 0]
    assert len(landed) == 1, {h: r.stderr for h, r in results.items()}
    winner = mine if landed == ["a"] else theirs
    for host in HOSTS:
        assert site.any.branches(owner, workspace, slug)["main"] == winner
        heads = site.git(host, "ls-remote", url, "refs/heads/main").stdout.split()
        assert heads[0] == winner
    repo = site.any.repo_path(workspace, slug)
    fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_revocation_on_one_host_is_honoured_by_the_other(site: Site) -> None:
    user = site.any.create_user()
    r = site.api("a", "PUT", f"/rest/access-tokens/1.0/users/{user.username}", auth=user,
                 json={"name": "hosts", "permissions": ["REPO_READ"]})
    assert r.status_code == 200, r.text
    token = r.json()
    bearer = {"Authorization": f"Bearer {token['token']}"}
    for host in HOSTS:  # verified, and cached, on both
        assert site.api(host, "GET", "/2.0/user", headers=bearer).status_code == 200
    r = site.api("a", "DELETE", f"/rest/access-tokens/1.0/users/{user.username}/{token['id']}",
                 auth=user)
    assert r.status_code == 204, r.text
    refused = site.api("b", "GET", "/2.0/user", headers=bearer)
    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
    assert site.api("a", "GET", "/2.0/user", headers=bearer).status_code == 401


def test_metrics_judge_the_client_the_trusted_proxy_names(site: Site) -> None:
    """Behind HAProxy (trusted), /metrics is for the client HAProxy names, not for HAProxy."""
    assert site.api("a", "GET", "/metrics").status_code == 200  # a loopback client
    direct = httpx.get(site.hosts["a"].base_url + "/metrics",
                       headers={"X-Forwarded-For": "203.0.113.9"})
    assert direct.status_code == 403 and "GITWARD_METRICS" in direct.text
