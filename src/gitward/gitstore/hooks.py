"""The git hooks of every push: one directory, written by the server, given to receive-pack.

Gitward never writes hooks into repositories. Each `git receive-pack` it starts gets
`-c core.hooksPath=<DATA>/hooks`, a directory the server (re)writes when it starts, so the
hooks always run the Python of the running install, a moved install or data directory needs
no repair, and a repository's own `hooks/` (git's samples, or anything planted there) is
never run. The hooks are two-line shell scripts that exec `gitstore/hook_client.py` with the
server's own Python, which calls back into the process that started git (see web/hooks/).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

# What the process that spawns receive-pack puts in its environment for the hooks.
from gitward.gitstore.hook_client import ENV_NONCE as ENV_NONCE
from gitward.gitstore.hook_client import ENV_PUSH as ENV_PUSH
from gitward.gitstore.hook_client import ENV_SOCKET as ENV_SOCKET

HOOK_NAMES = ("pre-receive", "post-receive")

_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# git's own check-ref-format is stricter; this only keeps what we store and show sane.
_REF = re.compile(r"^refs/[\x21-\x7e]{1,1000}$")


@dataclass(frozen=True)
class RefUpdate:
    """One `(old, new, ref)` line of a push; an all-zero id means created or deleted."""

    old: str
    new: str
    ref: str

    @property
    def created(self) -> bool:
        return set(self.old) == {"0"}

    @property
    def deleted(self) -> bool:
        return set(self.new) == {"0"}

    def as_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "old": self.old, "new": self.new}


def parse_update(value: object) -> RefUpdate:
    """A RefUpdate from `[old, new, ref]` as a hook sends it; ValueError when malformed."""
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError("an update is [old, new, ref]")
    old, new, ref = value
    if not (isinstance(old, str) and isinstance(new, str) and isinstance(ref, str)):
        raise ValueError("an update is three strings")
    if not _OID.match(old) or not _OID.match(new) or len(old) != len(new):
        raise ValueError("an update's object ids are not hexadecimal object names")
    if not _REF.match(ref):
        raise ValueError("an update's ref is not a ref name")
    return RefUpdate(old, new, ref)


CLIENT = Path(__file__).with_name("hook_client.py")


def hook_script(python: str, name: str, client: Path = CLIENT) -> str:
    # `-I -S`: the hook process sees neither PYTHONPATH, the user's site nor site-packages,
    # nor the repository it runs in: hook_client.py needs only the standard library.
    return (
        "#!/bin/sh\n"
        "# Written by gitward serve when it starts: calls back into the server.\n"
        f"exec {shlex.quote(python)} -I -S {shlex.quote(str(client))} {name}\n"
    )


class HooksUnusable(RuntimeError):
    """git could not run our hooks; it would then apply pushes without them."""


def hooks_ready(directory: Path) -> bool:
    """Both hooks are there and executable, by git's own test (access X_OK)."""
    return all(
        (directory / name).is_file() and os.access(directory / name, os.X_OK)
        for name in HOOK_NAMES
    )


def write_hooks_dir(directory: Path, python: str = sys.executable) -> Path:
    """Write (or refresh) the hooks directory; safe when several workers do it at once.

    git skips a hook it cannot execute and applies the push anyway, so a directory whose
    hooks cannot run (a data dir mounted noexec) raises HooksUnusable instead.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in HOOK_NAMES:
        script = hook_script(python, name)
        target = directory / name
        if (
            target.is_file()
            and not target.is_symlink()
            and os.access(target, os.X_OK)
            and target.read_text() == script
        ):
            continue
        tmp = directory / f".{name}.{uuid.uuid4().hex}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(script)
        os.replace(tmp, target)
    if not hooks_ready(directory):
        raise HooksUnusable(
            f"git cannot execute the hooks in {directory}: the data dir must allow executing "
            "files (is it mounted noexec?)"
        )
    return directory


def receive_pack_args(hooks_dir: Path, repository: Path) -> list[str]:
    """The command line of a stateless receive-pack whose hooks are ours, and only ours."""
    return [
        "git",
        "-c",
        f"core.hooksPath={hooks_dir}",
        "receive-pack",
        "--stateless-rpc",
        str(repository),
    ]
