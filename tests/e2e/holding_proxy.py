"""A TCP proxy in front of a test server that can hold a push on its way in.

Each `POST …/git-receive-pack` that passes through calls `before_post()` before a byte of it
is forwarded, then forwards its headers, calls `after_headers()`, and forwards the rest: so a
test can line several pushes up (a barrier in `before_post`), or act while the server runs
receive-pack and waits for the pack (in `after_headers`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

RECEIVE_PACK = b"/git-receive-pack HTTP/1."


def _nothing() -> None:
    return None


class HoldingProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        before_post: Callable[[], None] = _nothing,
        after_headers: Callable[[], None] = _nothing,
    ) -> None:
        self.upstream_port = upstream_port
        self.before_post = before_post
        self.after_headers = after_headers
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, server_url: str) -> str:
        """`server_url` (a clone URL of the server) through this proxy."""
        return server_url.replace(f":{self.upstream_port}/", f":{self.port}/", 1)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()

    def _up(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if RECEIVE_PACK in chunk and chunk.startswith(b"POST "):
                    self.before_post()
                    end = chunk.find(b"\r\n\r\n")
                    end = len(chunk) if end < 0 else end + 4
                    target.sendall(chunk[:end])
                    self.after_headers()
                    chunk = chunk[end:]
                if chunk:
                    target.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)

    def _copy(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
