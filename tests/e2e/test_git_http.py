"""Git over HTTP with the real git client against a real `gitward serve`."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import GitwardServer, User

pytestmark = pytest.mark.e2e


def _commit(server: GitwardServer, work: Path, name: str, content: str) -> str:
    (work / name).write_text(content)
    server.git("add", name, cwd=work)
    server.git("commit", "-q", "-m", f"add {name}", cwd=work)
    return server.git("rev-parse", "HEAD", cwd=work).stdout.strip()


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def _ls_remote(server: GitwardServer, url: str) -> dict[str, str]:
    out = server.git("ls-remote", url).stdout
    refs = {}
    for line in out.splitlines():
        sha, ref = line.split("\t")
        refs[ref] = sha
    return refs


@pytest.fixture(scope="module")
def owner(any_gitward_server: GitwardServer) -> User:
    return any_gitward_server.create_user()


def test_clone_empty_push_clone_back(any_gitward_server: GitwardServer, owner: User, tmp_path):
    server = any_gitward_server
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)

    empty = server.git("clone", url, str(tmp_path / "a"))
    assert "empty repository" in empty.stderr
    work = tmp_path / "a"
    _commit(server, work, "README.md", "hello\n")
    head = _commit(server, work, "src.txt", "some source\n" * 100)
    server.git("push", "-q", "origin", "main", cwd=work)
    server.git("switch", "-q", "-c", "feature", cwd=work)
    feature = _commit(server, work, "feature.txt", "feature\n")
    server.git("push", "-q", "origin", "feature", cwd=work)

    # Cloned back: same content, both branches, HEAD on main.
    server.git("clone", "-q", url, str(tmp_path / "b"))
    back = tmp_path / "b"
    assert server.git("rev-parse", "HEAD", cwd=back).stdout.strip() == head
    server.git("switch", "-q", "main", cwd=work)
    assert _tree(back) == _tree(work)
    assert server.git("rev-parse", "origin/feature", cwd=back).stdout.strip() == feature

    assert server.branches(owner, ws, slug) == {"main": head, "feature": feature}
    repo = server.api("GET", f"/2.0/repositories/{ws}/{slug}", auth=owner).json()
    assert repo["mainbranch"]["name"] == "main"


def test_first_push_sets_mainbranch(any_gitward_server: GitwardServer, owner: User, tmp_path):
    """A first push of only `trunk` makes it the main branch (HEAD moves to it)."""
    server = any_gitward_server
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)
    work = tmp_path / "w"
    server.git("init", "-q", "-b", "trunk", str(work))
    head = _commit(server, work, "a.txt", "a\n")
    server.git("push", "-q", url, "trunk", cwd=work)
    repo = server.api("GET", f"/2.0/repositories/{ws}/{slug}", auth=owner).json()
    assert repo["mainbranch"]["name"] == "trunk"
    assert server.branches(owner, ws, slug) == {"trunk": head}
    server.git("clone", "-q", url, str(tmp_path / "c"))
    assert server.git("branch", "--show-current", cwd=tmp_path / "c").stdout.strip() == "trunk"


def test_push_denied_with_read_grant(any_gitward_server: GitwardServer, owner: User, tmp_path):
    server = any_gitward_server
    ws, slug = server.create_repository(owner)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    head = _commit(server, work, "a.txt", "a\n")
    server.git("push", "-q", server.clone_url(ws, slug, owner), "main", cwd=work)

    reader = server.create_user()
    server.grant(owner, ws, slug, reader, "read")
    reader_url = server.clone_url(ws, slug, reader)
    server.git("clone", "-q", reader_url, str(tmp_path / "r"))  # read works
    _commit(server, work, "b.txt", "b\n")
    result = server.git("push", reader_url, "main", cwd=work, check=False)
    assert result.returncode != 0
    # The server's text/plain message reaches the user, as `remote: ...`.
    assert "remote: You need write permission" in result.stderr, result.stderr
    assert "403" in result.stderr
    assert server.branches(owner, ws, slug) == {"main": head}


def test_anonymous_clone_public(any_gitward_server: GitwardServer, owner: User, tmp_path):
    server = any_gitward_server
    ws, slug = server.create_repository(owner, private=False)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    head = _commit(server, work, "a.txt", "public\n")
    server.git("push", "-q", server.clone_url(ws, slug, owner), "main", cwd=work)
    server.git("clone", "-q", server.clone_url(ws, slug), str(tmp_path / "anon"))
    assert server.git("rev-parse", "HEAD", cwd=tmp_path / "anon").stdout.strip() == head
    # ...but pushing anonymously asks for credentials.
    result = server.git("push", server.clone_url(ws, slug), "main:other", cwd=work, check=False)
    assert result.returncode != 0
    assert "could not read Username" in result.stderr or "Authentication failed" in result.stderr


def test_anonymous_clone_private_is_401(any_gitward_server: GitwardServer, owner: User, tmp_path):
    server = any_gitward_server
    ws, slug = server.create_repository(owner, private=True)
    url = server.clone_url(ws, slug)
    result = server.git("clone", url, str(tmp_path / "x"), check=False)
    assert result.returncode != 0
    assert "could not read Username" in result.stderr or "Authentication failed" in result.stderr
    r = httpx.get(f"{url}/info/refs", params={"service": "git-upload-pack"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="Gitward"'
    assert r.headers["content-type"].startswith("text/plain")


def test_hidden_repository_is_404(any_gitward_server: GitwardServer, owner: User, tmp_path):
    server = any_gitward_server
    ws, slug = server.create_repository(owner, private=True)
    stranger = server.create_user()
    result = server.git("clone", server.clone_url(ws, slug, stranger), str(tmp_path / "x"),
                        check=False)
    assert result.returncode != 0
    assert "remote: Repository not found" in result.stderr, result.stderr
    for target in (f"/{ws}/{slug}.git", f"/{ws}/no-such-repo.git", f"/no-such-ws/{slug}.git"):
        r = server.api("GET", f"{target}/info/refs", auth=stranger,
                       params={"service": "git-upload-pack"})
        assert r.status_code == 404, (target, r.status_code)
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text == "Repository not found\n"
    # The same body for one that exists and one that does not: nothing is revealed.


@pytest.mark.parametrize("version", ["0", "1", "2"])
def test_protocol_versions(any_gitward_server: GitwardServer, owner: User, tmp_path, version):
    server = any_gitward_server
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner, suffix="")  # the `.git` may be omitted
    proto = ("-c", f"protocol.version={version}")
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    head = _commit(server, work, "a.txt", "v\n")
    server.git(*proto, "push", "-q", url, "main", cwd=work)
    traced = server.git(*proto, "clone", url, str(tmp_path / "c"),
                        env={"GIT_TRACE_PACKET": "1"})
    assert server.git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == head
    if version == "2":
        assert "version 2" in traced.stderr
    else:
        assert "version 2" not in traced.stderr
    # Incremental fetch on the same protocol.
    second = _commit(server, work, "b.txt", "w\n")
    server.git(*proto, "push", "-q", url, "main", cwd=work)
    server.git(*proto, "pull", "-q", "--ff-only", cwd=tmp_path / "c")
    assert server.git("rev-parse", "HEAD", cwd=tmp_path / "c").stdout.strip() == second


def test_gzip_request_from_git(any_gitward_server: GitwardServer, owner: User, tmp_path):
    """A fetch with many `have` lines makes git gzip the upload-pack request."""
    server = any_gitward_server
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    _commit(server, work, "base.txt", "base\n")
    server.git("push", "-q", url, "main", cwd=work)
    # A clone with a long unrelated history of its own: negotiation sends many `have`
    # lines in growing rounds, and git gzips a request body over 1 KiB.
    server.git("clone", "-q", url, str(tmp_path / "c"))
    clone = tmp_path / "c"
    fast_import = "".join(
        f"commit refs/heads/local\ncommitter T <t@e> {4000000000 + i} +0000\n"
        f"data 4\nc{i:03d}\nM 644 inline f{i}.txt\ndata 2\n{i % 10}\n\n"
        for i in range(300)
    )
    subprocess.run(["git", "fast-import", "--quiet", "--force"], input=fast_import,
                   text=True, cwd=clone, env=server.git_env(), check=True)
    for version in ("0", "2"):
        newer = _commit(server, work, f"more{version}.txt", "more\n")
        server.git("push", "-q", url, "main", cwd=work)
        traced = server.git("-c", f"protocol.version={version}", "fetch", "origin",
                            cwd=clone, env={"GIT_TRACE_CURL": "1",
                                            "GIT_TRACE_CURL_NO_DATA": "1"})
        assert "Content-Encoding: gzip" in traced.stderr, f"v{version}: no gzip request"
        got = server.git("rev-parse", "origin/main", cwd=clone).stdout.strip()
        assert got == newer


def test_gzip_request_by_hand(any_gitward_server: GitwardServer, owner: User, tmp_path):
    server = any_gitward_server
    ws, slug = server.create_repository(owner)
    url = server.clone_url(ws, slug, owner)
    work = tmp_path / "w"
    server.git("init", "-q", str(work))
    head = _commit(server, work, "a.txt", "gz\n")
    server.git("push", "-q", url, "main", cwd=work)

    def pkt(s: str) -> bytes:
        return b"%04x" % (len(s) + 4) + s.encode()

    body = pkt(f"want {head} ofs-delta\n") + b"0000" + pkt("done\n")
    base = f"/{ws}/{slug}.git/git-upload-pack"
    headers = {"Content-Type": "application/x-git-upload-pack-request"}
    plain = server.api("POST", base, auth=owner, content=body, headers=headers)
    assert plain.status_code == 200
    zipped = server.api("POST", base, auth=owner, content=gzip.compress(body),
                        headers={**headers, "Content-Encoding": "gzip"})
    assert zipped.status_code == 200
    assert zipped.headers["content-type"] == "application/x-git-upload-pack-result"
    assert zipped.content.startswith(b"0008NAK\n")
    assert zipped.content == plain.content
    # A body that claims gzip but is not: a plain 400 that says so.
    broken = server.api("POST", base, auth=owner, content=b"not gzip at all",
                        headers={**headers, "Content-Encoding": "gzip"})
    assert broken.status_code == 400
    assert broken.headers["content-type"].startswith("text/plain")
    assert "not valid gzip" in broken.text
    bad = server.api("POST", base, auth=owner, content=body,
                     headers={**headers, "Content-Encoding": "br"})
    assert bad.status_code == 415
    assert bad.headers["content-type"].startswith("text/plain")
