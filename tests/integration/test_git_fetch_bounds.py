"""Upload-pack request bodies are bounded: a small gzip body cannot make the server inflate
hundreds of megabytes, nor git answer a `have` line each; the refusal is Git's plain text."""

from __future__ import annotations

import subprocess
import zlib

import pytest

from gitward.runtime import Runtime
from gitward.web.app import create_app
from tests.integration.conftest import LinkCheckingClient

URL = "/acme/widget.git/git-upload-pack"
HEADERS = {"Content-Type": "application/x-git-upload-pack-request"}
GZIP = {**HEADERS, "Content-Encoding": "gzip"}


def pkt(text: str) -> bytes:
    return b"%04x" % (len(text) + 4) + text.encode()


def gzip_of(*parts: bytes, repeat: int = 1) -> bytes:
    """`parts`, the middle one `repeat` times, gzipped as a stream (never all in memory)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first, middle, last = parts
    out = [packer.compress(first)]
    block = middle * max(1, 1_000_000 // len(middle))
    blocks, rest = divmod(repeat, 1_000_000 // len(middle))
    out += [packer.compress(block) for _ in range(blocks)]
    out += [packer.compress(middle * rest), packer.compress(last), packer.flush()]
    return b"".join(out)


@pytest.fixture
def head(world, runtime):
    """A public repository acme/widget with one commit; its id."""
    alice = world.user("alice")
    world.workspace(alice, "acme")
    world.project(alice, "acme", "PRJ")
    body = world.repository(alice, "acme", "widget", "PRJ", private=False)
    bare = runtime.git.path_of(body["uuid"].strip("{}") + ".git")
    stream = ("commit refs/heads/main\ncommitter T <t@example.com> 1700000000 +0000\n"
              "data 2\nc\nM 644 inline a.txt\ndata 2\na\n\n")
    subprocess.run(["git", "--git-dir", str(bare), "fast-import", "--quiet"], input=stream,
                   text=True, check=True)
    return subprocess.run(["git", "--git-dir", str(bare), "rev-parse", "main"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def settings(sqlite_settings):
    return sqlite_settings  # the subject is the Git surface, not the database


def _refused(r, status, *phrases):
    assert r.status_code == status, (r.status_code, r.content[:300])
    assert r.headers["content-type"].startswith("text/plain")
    assert len(r.content) < 1000
    for phrase in phrases:
        assert phrase in r.text


def test_a_flood_of_have_lines_is_refused_before_git_answers(client, head):
    """The report: ~600 KiB of anonymous gzip made the server inflate 200 MiB of `have`
    lines and send 205 MB of answers. Now: 413 at the default limit of `have` lines."""
    body = gzip_of(pkt(f"want {head} multi_ack_detailed\n") + b"0000",
                   pkt(f"have {head}\n"), pkt("done\n"), repeat=4_000_000)
    assert len(body) < 700_000  # ~200 MiB once inflated
    r = client.post(URL, content=body, headers=GZIP)
    _refused(r, 413, "fetch refused", "100,000 'have' lines")


def test_a_body_inflating_past_the_size_limit_is_refused(client, head):
    body = gzip_of(pkt(f"want {head}\n"), pkt(f"want {head}\n"), pkt("done\n"),
                   repeat=1_000_000)  # ~50 MB of want lines
    r = client.post(URL, content=body, headers=GZIP)
    _refused(r, 413, "fetch refused", "33,554,432 bytes")


def _client(settings, **overrides):
    limited = Runtime.open(settings.with_overrides(**overrides))
    return limited, LinkCheckingClient(limited, create_app(limited),
                                       raise_server_exceptions=False)


def test_the_limits_are_settings_and_a_fetch_within_them_works(settings, head):
    runtime, client = _client(settings, max_fetch_haves=3, max_fetch_request_bytes=400)
    try:
        with client:
            want = pkt(f"want {head} ofs-delta\n") + b"0000"
            within = want + pkt(f"have {head}\n") * 3 + pkt("done\n")
            for headers, content in ((HEADERS, within), (GZIP, zlib.compress(within, wbits=31))):
                r = client.post(URL, content=content, headers=headers)
                assert r.status_code == 200, r.text
                assert r.headers["content-type"] == "application/x-git-upload-pack-result"
                assert b"PACK" in r.content
            over = want + pkt(f"have {head}\n") * 4 + pkt("done\n")
            _refused(client.post(URL, content=over, headers=HEADERS), 413, "3 'have' lines")
            big = want + pkt(f"want {head}\n") * 8 + pkt("done\n")
            assert len(big) > 400
            for headers, content in ((HEADERS, big), (GZIP, zlib.compress(big, wbits=31))):
                _refused(client.post(URL, content=content, headers=headers), 413, "400 bytes")
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("content", "headers", "phrase"),
    [
        (b"not pkt-lines at all", HEADERS, "not a Git request"),
        (b"0003", HEADERS, "not a Git request"),
        (b"0x12want", HEADERS, "not a Git request"),
        (b"not gzip at all", GZIP, "not valid gzip"),
    ],
)
def test_a_body_that_is_not_a_git_request_is_a_plain_400(client, head, content, headers, phrase):
    _refused(client.post(URL, content=content, headers=headers), 400, phrase)


def test_protocol_v2_fetch_arguments_are_counted_too(settings, head):
    runtime, client = _client(settings, max_fetch_haves=2)
    try:
        with client:
            body = (pkt("command=fetch\n") + b"0001" + pkt(f"want {head}\n")
                    + pkt(f"have {head}\n") * 3 + pkt("done\n") + b"0000")
            r = client.post(URL, content=body, headers={**HEADERS, "Git-Protocol": "version=2"})
            _refused(r, 413, "2 'have' lines")
    finally:
        runtime.close()


def test_the_ref_advertisement_is_streamed_whole(client, runtime, head):
    """Past one chunk of refs (5,000 refs, ~300 KB), streamed rather than buffered: no
    Content-Length, and byte for byte what git advertises."""
    with runtime.unit_of_work() as store:
        ws = store.repos.workspace_by_slug("acme")
        bare = runtime.git.path_of(store.repos.repository_by_slug(ws.id, "widget").storage_name)
    # Written as packed refs directly: 5,000 loose ones take seconds to create.
    subprocess.run(["git", "--git-dir", str(bare), "pack-refs", "--all"], check=True)
    lines = "".join(f"{head} refs/tags/v{i:05d}\n" for i in range(5000))  # after main
    packed = bare / "packed-refs"
    packed.write_text(packed.read_text() + lines)
    expected = subprocess.run(
        ["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(bare)],
        capture_output=True, check=True,
    ).stdout
    r = client.get("/acme/widget.git/info/refs", params={"service": "git-upload-pack"})
    assert r.status_code == 200
    assert "content-length" not in r.headers
    assert r.content == b"001e# service=git-upload-pack\n0000" + expected
    assert len(expected) > 256 * 1024
    v2 = client.get("/acme/widget.git/info/refs", params={"service": "git-upload-pack"},
                    headers={"Git-Protocol": "version=2"})
    assert v2.content.startswith(b"000eversion 2\n")
