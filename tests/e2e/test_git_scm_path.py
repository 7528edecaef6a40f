"""Bitbucket Server's clone path `/scm/{PROJECT_KEY}/{slug}.git` with the real git client:
clone, push and fetch as Jenkins does — Basic `x-token-auth:<token>` for a personal access
token and for a repository access token, and `Bearer` through `http.extraHeader` — under
the same checks as `/{workspace}/{slug}.git`, which serves the same repository."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import GitwardServer, User

API = "/rest/api/1.0"


def scm_url(server: GitwardServer, key: str, slug: str, user: User | None = None,
            suffix: str = ".git") -> str:
    host = server.base_url.split("://", 1)[1]
    cred = ""
    if user is not None:
        cred = f"{quote(user.username, safe='')}:{quote(user.password, safe='')}@"
    return f"http://{cred}{host}/scm/{key}/{slug}{suffix}"


def bearer(token: str) -> list[str]:
    return ["-c", f"http.extraHeader=Authorization: Bearer {token}"]


def commit(server: GitwardServer, clone: Path, name: str) -> str:
    (clone / name).write_text(name + "\n")
    server.git("add", name, cwd=clone)
    server.git("commit", "-qm", f"add {name}", cwd=clone)
    return server.git("rev-parse", "HEAD", cwd=clone).stdout.strip()


@pytest.fixture(scope="module")
def scm(gitward_server: GitwardServer):
    """A project made through the Server API (so in the default workspace), a repository
    in it, and a developer granted REPO_WRITE on it through the Server API."""
    server = gitward_server
    key = server.unique("K").upper()
    r = server.api("POST", f"{API}/projects", auth=server.admin,
                   json={"key": key, "name": "Scm"})
    assert r.status_code == 201, r.text
    r = server.api("POST", f"{API}/projects/{key}/repos", auth=server.admin,
                   json={"name": "Service"})
    assert r.status_code == 201, r.text
    repo = r.json()
    assert repo["links"]["clone"] == [
        {"href": f"{server.base_url}/scm/{key}/service.git", "name": "http"}]
    dev = server.create_user()
    r = server.api("PUT", f"{API}/projects/{key}/repos/service/permissions/users",
                   auth=server.admin, params={"name": dev.username, "permission": "REPO_WRITE"})
    assert r.status_code == 204, r.text
    return server, key, dev


def test_pat_as_x_token_auth_and_as_bearer(scm, tmp_path):
    server, key, dev = scm
    r = server.api("PUT", f"/rest/access-tokens/1.0/users/{dev.username}", auth=dev,
                   json={"name": "jenkins", "permissions": ["REPO_WRITE"]})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # Basic x-token-auth:<PAT> (the token names its owner), as Jenkins sends every token.
    clone = tmp_path / "pat"
    server.git("clone", "-q", scm_url(server, key, "service", User("x-token-auth", token)),
               str(clone))
    pushed = commit(server, clone, "one")
    server.git("push", "-q", "origin", "HEAD:main", cwd=clone)
    # Bearer, the key in lower case and without .git: the same repository.
    other = tmp_path / "bearer"
    server.git(*bearer(token), "clone", "-q",
               scm_url(server, key.lower(), "service", suffix=""), str(other))
    assert server.git("rev-parse", "HEAD", cwd=other).stdout.strip() == pushed
    second = commit(server, other, "two")
    server.git(*bearer(token), "push", "-q", "origin", "HEAD:main", cwd=other)
    server.git("fetch", "-q", "origin", cwd=clone)
    assert server.git("rev-parse", "origin/main", cwd=clone).stdout.strip() == second
    # The workspace path serves the same repository, under the same checks.
    r = server.api("GET", f"{API}/projects/{key}/repos/service", auth=dev)
    assert r.status_code == 200, r.text
    plain = server.clone_url("default", "service", User(dev.username, token))
    listed = server.git("ls-remote", plain, "refs/heads/main").stdout.split()[0]
    assert listed == second


def test_repository_token_and_its_bound(scm, tmp_path):
    server, key, _dev = scm
    path = f"/rest/access-tokens/1.0/projects/{key}/repos/service"
    writer = server.api("PUT", path, auth=server.admin,
                        json={"name": "deploy", "permissions": ["REPO_WRITE"]})
    assert writer.status_code == 200, writer.text
    reader = server.api("PUT", path, auth=server.admin,
                        json={"name": "ro", "permissions": ["REPO_READ"]})
    assert reader.status_code == 200, reader.text
    writer_token, reader_token = writer.json()["token"], reader.json()["token"]

    clone = tmp_path / "rep"
    server.git("clone", "-q",
               scm_url(server, key, "service", User("x-token-auth", writer_token)), str(clone))
    pushed = commit(server, clone, "by-token")
    server.git("push", "-q", "origin", "HEAD:main", cwd=clone)
    server.git(*bearer(writer_token), "fetch", "-q", scm_url(server, key, "service"), "main",
               cwd=clone)
    assert server.git("rev-parse", "FETCH_HEAD", cwd=clone).stdout.strip() == pushed

    # REPO_READ: fetch, never push; git shows why.
    ro = tmp_path / "ro"
    server.git(*bearer(reader_token), "clone", "-q", scm_url(server, key, "service"), str(ro))
    commit(server, ro, "refused")
    result = server.git(*bearer(reader_token), "push", "origin", "HEAD:main", cwd=ro,
                        check=False)
    assert result.returncode != 0
    assert "repository:write" in result.stderr

    # Revoked: the next request is refused.
    token_id = reader.json()["id"]
    assert server.api("DELETE", f"{path}/{token_id}", auth=server.admin).status_code == 204
    result = server.git(*bearer(reader_token), "ls-remote", scm_url(server, key, "service"),
                        check=False)
    assert result.returncode != 0


def test_hidden_and_missing_repositories(scm, tmp_path):
    server, key, _dev = scm
    stranger = server.create_user()
    # No credential: 401, so git asks (and, with no terminal, fails saying so).
    result = server.git("ls-remote", scm_url(server, key, "service"), check=False)
    assert result.returncode != 0 and "could not read Username" in result.stderr
    # A user who may not see it, a key or a slug that does not exist: all "not found".
    for url in (scm_url(server, key, "service", stranger),
                scm_url(server, "NOSUCHKEY", "service", stranger),
                scm_url(server, key, "nothing", stranger)):
        result = server.git("ls-remote", url, check=False)
        assert result.returncode != 0
        assert "Repository not found" in result.stderr, result.stderr
    # A repository is only under its own project's key.
    other = server.unique("O").upper()
    r = server.api("POST", f"{API}/projects", auth=server.admin, json={"key": other, "name": "O"})
    assert r.status_code == 201, r.text
    result = server.git("ls-remote", scm_url(server, other, "service", server.admin),
                        check=False)
    assert result.returncode != 0 and "Repository not found" in result.stderr
    assert server.git("ls-remote", scm_url(server, key, "service", server.admin)).returncode == 0


def test_the_readme_server_walk_through(tmp_path):
    """README's "Bitbucket Server clients" commands, as written, against a fresh server."""
    import subprocess

    from tests.e2e.conftest import start_server
    from tests.e2e.test_readme import section, shell_blocks

    blocks = shell_blocks(section("Bitbucket Server clients"))
    assert len(blocks) == 1
    server = start_server(tmp_path / "server")
    try:
        host = server.base_url.removeprefix("http://")
        script = "\n".join([
            "set -euo pipefail",
            'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }',
            f"P='{server.admin_password}'",
            blocks[0],
        ]).replace("localhost:7990", host)
        work = tmp_path / "work"
        work.mkdir()
        result = subprocess.run(["bash", "-c", script], cwd=work, env=server.git_env(),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{server.log_tail()}"
        assert (work / "deploy" / ".git").is_dir()
        r = server.api("GET", "/2.0/repositories/default/deploy", auth=server.admin)
        assert r.status_code == 200 and r.json()["project"]["key"] == "OPS", r.text
    finally:
        server.stop()
