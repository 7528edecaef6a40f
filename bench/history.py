"""A bench repository with a long history, written with `git fast-import`.

    make_history(path, commits=3000)

~3,000 commits on `main` over a tree of 240 text files in 12 directories (each commit changes
one to three files, every 50th adds a file), a 1,000-line `docs/big.txt` changed every 100
commits, 20 branches and 30 tags (annotated and lightweight) along the history. Deterministic
(a seeded random generator), so that figures from two runs read the same repository.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

BIG_FILE = "docs/big.txt"
DIRECTORIES = [f"pkg{i:02d}" for i in range(12)]


def _git_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    return env


def _lines(rng: random.Random, n: int, tag: int) -> bytes:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    return b"".join(
        (f"{tag:05d}:{i:04d} " + " ".join(rng.choice(words) for _ in range(8)) + "\n").encode()
        for i in range(n)
    )


def make_history(path: Path, commits: int = 3000, seed: int = 12) -> None:
    """Write the history into a new bare repository at `path` and pack it."""
    env = _git_env()
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(path)],
                   check=True, env=env)
    rng = random.Random(seed)
    files = [f"{d}/file{j:02d}.txt" for d in DIRECTORIES for j in range(20)]
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, env=env,
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    branch_points = set(rng.sample(range(100, commits), 20))
    tag_points = set(rng.sample(range(100, commits), 30))
    with proc.stdin as out:
        for n in range(1, commits + 1):
            when = 1_600_000_000 + n * 3600
            message = f"Change {n}: update {rng.choice(files)}\n\nBody of change {n}.\n".encode()
            author = rng.choice(["Ada <ada@example.com>", "Linus <linus@example.com>",
                                 "Grace <grace@example.com>"])
            out.write(b"commit refs/heads/main\n")
            out.write(b"mark :%d\n" % n)
            out.write(f"author {author} {when} +0000\n".encode())
            out.write(f"committer {author} {when} +0000\n".encode())
            out.write(b"data %d\n%s\n" % (len(message), message))
            if n == 1:
                changed = [*files, BIG_FILE, "README.md"]
            else:
                changed = rng.sample(files, rng.randint(1, 3))
                if n % 50 == 0:
                    new = f"{rng.choice(DIRECTORIES)}/added{n:05d}.txt"
                    files.append(new)
                    changed.append(new)
                if n % 100 == 0:
                    changed.append(BIG_FILE)
            for name in changed:
                if name == BIG_FILE:
                    data = _lines(rng, 1000, n)
                elif name == "README.md":
                    data = b"# Bench repository\n\nA long history for benchmarks.\n"
                else:
                    data = _lines(rng, rng.randint(10, 80), n)
                out.write(f"M 100644 inline {name}\n".encode())
                out.write(b"data %d\n%s\n" % (len(data), data))
            out.write(b"\n")
            if n in branch_points:
                out.write(f"reset refs/heads/feature/b{n:05d}\nfrom :{n}\n\n".encode())
            if n in tag_points:
                if n % 2:
                    out.write(f"reset refs/tags/v{n}\nfrom :{n}\n\n".encode())
                else:
                    msg = f"Release {n}\n".encode()
                    out.write(f"tag v{n}\nfrom :{n}\n".encode())
                    out.write(f"tagger Ada <ada@example.com> {when} +0000\n".encode())
                    out.write(b"data %d\n%s\n" % (len(msg), msg))
    if proc.wait(timeout=600) != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "--git-dir", str(path), "repack", "-adq"], check=True, env=env)


if __name__ == "__main__":
    import sys

    make_history(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3000)
