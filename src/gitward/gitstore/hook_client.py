"""The process behind our `pre-receive` and `post-receive` hooks, run as a script.

It reads git's `<old> <new> <ref>` lines from stdin, sends them with the push's id and nonce
to the server that started git (a Unix socket named in the environment), and prints the
server's message to stderr, which `git push` shows as `remote: ...`. pre-receive exits
non-zero unless the server allowed the push (git then applies nothing); post-receive always
exits 0, because the refs have moved already and a failure must not fail the push.

It runs once per hook per push, as `python -I -S hook_client.py <hook>`: it imports only
small modules of the standard library, and nothing of Gitward.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

ENV_SOCKET = "GITWARD_HOOK_SOCKET"
ENV_PUSH = "GITWARD_HOOK_PUSH"
ENV_NONCE = "GITWARD_HOOK_NONCE"
# Longer than any check the server makes (it bounds its own work); the push timeout of the
# server bounds the whole push anyway.
TIMEOUT_SECONDS = 300.0
MAX_ANSWER = 1 << 20
CONNECT_ATTEMPTS = 5


def _say(message: str) -> None:
    for line in message.splitlines() or [""]:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _connect(path: str) -> socket.socket:
    delay = 0.05
    for attempt in range(CONNECT_ATTEMPTS):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT_SECONDS)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            # A listen backlog that is full answers EAGAIN: worth another try, briefly.
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
        time.sleep(delay)
        delay *= 2
    raise OSError("unreachable")


def call(path: str, request: dict[str, object]) -> dict[str, object]:
    """Send one request, read the one answer."""
    with _connect(path) as sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while len(data) <= MAX_ANSWER:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data.decode())
    if not isinstance(answer, dict):
        raise ValueError("the answer is not an object")
    return answer


def main(argv: list[str]) -> int:
    hook = argv[1] if len(argv) > 1 else ""
    if hook not in ("pre-receive", "post-receive"):
        _say(f"gitward hook: unknown hook {hook!r}")
        return 1
    refuse = 1 if hook == "pre-receive" else 0
    path = os.environ.get(ENV_SOCKET)
    push = os.environ.get(ENV_PUSH)
    nonce = os.environ.get(ENV_NONCE)
    if not path or not push or not nonce:
        _say("push refused: this repository accepts pushes only through Gitward")
        return refuse
    updates = [line.split(" ", 2) for line in sys.stdin.read().splitlines() if line]
    request: dict[str, object] = {"hook": hook, "push": push, "nonce": nonce, "updates": updates}
    quarantine = os.environ.get("GIT_QUARANTINE_PATH")
    if hook == "pre-receive" and quarantine:
        # Where git holds the pushed objects until the hooks say yes (push protection reads
        # them there); the server checks that it is one of the repository's.
        request["quarantine"] = quarantine
    try:
        answer = call(path, request)
    except (OSError, ValueError) as error:
        if hook == "pre-receive":
            _say(f"push refused: Gitward could not check this push ({error.__class__.__name__})")
        else:
            _say("warning: Gitward could not record this push; its refs are updated")
        return refuse
    message = answer.get("message")
    if isinstance(message, str) and message:
        _say(message)
    return 0 if answer.get("ok") is True else refuse


if __name__ == "__main__":
    sys.exit(main(sys.argv))
