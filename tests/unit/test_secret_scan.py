"""The scan of a push's new objects for strings shaped as Gitward secrets (real git, no
database): only new objects, checksum first, chunk boundaries, binaries, the quarantine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitward.credentials import codec, narrowing
from gitward.gitstore import secret_scan
from gitward.gitstore.secret_scan import ScanFailed, quarantine_of, scan_push
from gitward.gitstore.store import git_env

KINDS = frozenset({"gwpat_", "gwapp_", "gwrep_"})


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd, env=env or git_env(), check=True, capture_output=True, text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    _git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    (work / "README").write_text("old " + codec.generate("gwpat_") + "\n")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "first", cwd=work)
    return work


def _unreferenced_commit(work: Path, files: dict[str, bytes], message: str = "next") -> str:
    """A commit of `files` on top of HEAD that no ref points at (as a push's new tip)."""
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(content)
    _git("add", ".", cwd=work)
    tree = _git("write-tree", cwd=work)
    return _git("commit-tree", tree, "-p", "HEAD", "-m", message, cwd=work)


def test_finds_checksum_valid_secrets_in_new_files_and_names_them(repo):
    live = codec.generate("gwpat_")
    app = codec.generate("gwapp_")
    typo = live[:-1] + ("A" if live[-1] != "A" else "B")
    tip = _unreferenced_commit(repo, {
        "conf/app.env": f"TOKEN={live}\nOTHER={app}\n".encode(),
        "typo.txt": f"{typo}\n".encode(),
        "other-kind.txt": codec.generate("gwoat_").encode(),  # not a prefix asked for
    })
    result = scan_push(repo, None, [tip], KINDS)
    found = {(c.secret, c.prefix, c.where) for c in result.candidates}
    assert found == {(live, "gwpat_", "conf/app.env"), (app, "gwapp_", "conf/app.env")}
    assert live not in repr(result)


def test_only_objects_no_ref_has_are_read(repo):
    # README (with its token) is reachable from main: not new, not read again.
    tip = _unreferenced_commit(repo, {"new.txt": b"nothing here\n"})
    result = scan_push(repo, None, [tip], KINDS)
    assert result.candidates == []
    assert result.objects == 2  # the new commit and the new blob; trees are not read
    assert scan_push(repo, None, ["0" * 40], KINDS).objects == 0  # a deletion brings nothing


def test_a_secret_in_a_commit_message_is_found(repo):
    secret = codec.generate("gwrep_")
    tip = _unreferenced_commit(repo, {"a.txt": b"a\n"}, message=f"oops {secret}")
    [candidate] = scan_push(repo, None, [tip], KINDS).candidates
    assert candidate.secret == secret and candidate.where.startswith("commit ")


@pytest.mark.parametrize("readers", [1, 3])
def test_a_secret_across_two_chunks_is_found_once(repo, monkeypatch, readers):
    monkeypatch.setattr(secret_scan, "CHUNK", 64)
    monkeypatch.setattr(secret_scan, "READERS", readers)  # objects shared out, or not
    # One file per offset around the chunk boundaries (64, 128): each its own secret.
    planted = {f"f{offset}.txt": (offset, codec.generate("gwpat_")) for offset in range(15, 95)}
    tip = _unreferenced_commit(repo, {
        name: b"x" * offset + secret.encode() + b"y" * 100
        for name, (offset, secret) in planted.items()
    })
    result = scan_push(repo, None, [tip], KINDS)
    assert result.objects == len(planted) + 1  # the files and the commit
    found = [(c.where, c.secret) for c in result.candidates]
    assert sorted(found) == sorted((name, secret) for name, (_, secret) in planted.items())


def test_large_binary_blobs_are_skipped_and_small_ones_read(repo, monkeypatch):
    monkeypatch.setattr(secret_scan, "BINARY_SKIP_BYTES", 1000)
    small, large = codec.generate("gwpat_"), codec.generate("gwpat_")
    tip = _unreferenced_commit(repo, {
        "small.bin": b"\0" + small.encode(),
        "large.bin": b"\0" * 2000 + large.encode(),
        "large.txt": b"t" * 2000 + large.encode(),  # text is read whatever its size
    })
    result = scan_push(repo, None, [tip], KINDS)
    assert {(c.secret, c.where) for c in result.candidates} == {
        (small, "small.bin"), (large, "large.txt")
    }
    assert result.skipped == ["large.bin"]


def test_too_many_candidates_are_reported_not_collected(repo, monkeypatch):
    monkeypatch.setattr(secret_scan, "MAX_CANDIDATES", 3)
    monkeypatch.setattr(secret_scan, "READERS", 2)
    tip = _unreferenced_commit(repo, {
        f"many{i}.txt": "\n".join(codec.generate("gwpat_") for _ in range(2)).encode()
        for i in range(3)
    })
    result = scan_push(repo, None, [tip], KINDS)
    assert len(result.candidates) == 3 and result.too_many


def test_an_unknown_tip_is_a_scan_failure(repo):
    with pytest.raises(ScanFailed):
        scan_push(repo, None, ["1" * 40], KINDS)


def test_the_quarantine_must_be_one_of_the_repositorys(tmp_path, repo):
    bare = tmp_path / "bare.git"
    _git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    good = bare / "objects" / "tmp_objdir-incoming-Ab12_x"
    good.mkdir()
    assert quarantine_of(bare, None) is None
    assert quarantine_of(bare, str(good)) == good.resolve()
    elsewhere = tmp_path / "tmp_objdir-incoming-zz"
    elsewhere.mkdir()
    (bare / "objects" / "tmp_objdir-incoming-link").symlink_to(elsewhere)
    for claimed in (
        str(elsewhere),
        str(bare / "objects" / "tmp_objdir-incoming-link"),
        str(bare / "objects" / "pack"),
        str(bare / "objects" / "tmp_objdir-incoming-missing"),
        "objects/tmp_objdir-incoming-Ab12_x",
    ):
        with pytest.raises(ScanFailed):
            quarantine_of(bare, claimed)


def test_objects_in_the_quarantine_are_read_there(tmp_path, repo):
    """As in pre-receive: the new objects only in the quarantine, the old in the repository."""
    bare = tmp_path / "bare.git"
    _git("clone", "-q", "--bare", str(repo), str(bare), cwd=tmp_path)
    quarantine = bare / "objects" / "tmp_objdir-incoming-q1"
    quarantine.mkdir()
    secret = codec.generate("gwapp_")
    (repo / "k.txt").write_text(secret)
    _git("add", "k.txt", cwd=repo)
    _git("commit", "-qm", "k", cwd=repo)
    pack = subprocess.run(
        ["git", "pack-objects", "--revs", "--stdout"], cwd=repo, env=git_env(), check=True,
        input=b"HEAD\n^HEAD~1\n", capture_output=True,
    ).stdout
    env = git_env() | {"GIT_OBJECT_DIRECTORY": str(quarantine),
                       "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(bare / "objects")}
    subprocess.run(["git", "-C", str(bare), "unpack-objects", "-q"], input=pack, env=env,
                   check=True)
    tip = _git("rev-parse", "HEAD", cwd=repo)
    with pytest.raises(ScanFailed):  # not in the repository itself
        scan_push(bare, None, [tip], KINDS)
    [candidate] = scan_push(bare, quarantine_of(bare, str(quarantine)), [tip], KINDS).candidates
    assert (candidate.secret, candidate.where) == (secret, "k.txt")


def test_a_path_shaped_as_a_secret_is_masked(repo):
    in_name, inside = codec.generate("gwpat_"), codec.generate("gwpat_")
    tip = _unreferenced_commit(repo, {f"keys/{in_name}.txt": inside.encode()})
    [candidate] = scan_push(repo, None, [tip], KINDS).candidates
    assert candidate.secret == inside
    assert candidate.where == "keys/gwpat_....txt"
    assert in_name not in candidate.where


@pytest.mark.parametrize("chunk", [secret_scan.CHUNK, 256])
def test_a_narrowed_token_is_found_whole(repo, monkeypatch, chunk):
    """Narrowed tokens are longer than the others and of a length of their own: found
    whole (across chunks too), a truncated or mistyped one is not a candidate."""
    monkeypatch.setattr(secret_scan, "CHUNK", chunk)
    token = narrowing.narrow(codec.generate("gwpat_"), narrowing.Caveat(
        repositories=("acme/app",), read_only=True))
    again = narrowing.narrow(token, narrowing.Caveat(allowed_ips=("10.0.0.0/8",)))
    truncated = again[:-10]
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    tip = _unreferenced_commit(repo, {
        "ci.yml": f"padding {'x' * 300}\ntoken: '{token}'\n".encode(),
        "deploy/env": f"T={again}\nU={truncated}\nV={typo}\n".encode(),
    })
    kinds = KINDS | {narrowing.PREFIX}
    found = {(c.secret, c.prefix, c.where) for c in scan_push(repo, None, [tip], kinds).candidates}
    assert found == {(token, "gwnar_", "ci.yml"), (again, "gwnar_", "deploy/env")}
    # Not asked for: not looked for.
    assert scan_push(repo, None, [tip], KINDS).candidates == []
