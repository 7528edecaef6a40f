"""Git smart HTTP at `/{workspace}/{repo_slug}.git` and `/scm/{PROJECT_KEY}/{repo_slug}.git`.

Every check happens first, in one unit of work that is closed before git starts: the
credential, the repository, and `policy.authorize` for read (fetch) or write (push). Then
`git upload-pack|receive-pack --stateless-rpc` runs with the request body (gunzipped) streamed
into its stdin and its stdout streamed back, in bounded chunks both ways, so memory does not
grow with the size of a clone or a push.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import re
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gitward.credentials.registry import AuthenticationFailed, AuthenticationThrottled
from gitward.domain.identity import AuthContext
from gitward.domain.permissions import Action
from gitward.gitstore.hooks import HooksUnusable, receive_pack_args
from gitward.gitstore.pktline import (
    NotPktLines,
    PktLineScanner,
    PushCommands,
    ReportRewriter,
    parse_push_commands,
    push_refusal,
    safe_git_protocol,
    service_announcement,
    wants_v2,
)
from gitward.gitstore.store import UnsafePath, git_env
from gitward.runtime import Runtime
from gitward.services import repositories, site
from gitward.services.caller import Caller
from gitward.services.errors import ServiceError
from gitward.web.errors import Surface, error_response
from gitward.web.hooks.callbacks import PushGrant
from gitward.web.hooks.server import HookServer, PushSession, hook_server
from gitward.web.hosts import base_url
from gitward.web.middleware import TWO_AUTHORIZATIONS
from gitward.web.pipeline import Ingress, pipeline_of

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Bytes buffered between the client and git, each way: big enough that neither side waits for
# the event loop on every chunk, small enough that memory stays flat.
PIPE_BUFFER = 1024 * 1024
SERVICES = {"git-upload-pack": Action.REPO_READ, "git-receive-pack": Action.REPO_WRITE}
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# How much of an oversized push we read and discard so that the client gets our answer
# instead of a broken connection; past this the connection is simply closed.
DRAIN_LIMIT = 1 << 30
# How long receive-pack gets to clean up after a refused or broken push, per signal.
STOP_GRACE = 10.0
HEAD_BYTES = 65536
# A fetch request is held in memory up to this size, then in a temporary file (it is bounded
# by `max_fetch_request_bytes`).
SPOOL_IN_MEMORY = 1024 * 1024


@dataclass(frozen=True)
class Authorized:
    ctx: AuthContext
    repository_id: int
    path: Path


def _widen_pipes(proc: asyncio.subprocess.Process) -> None:
    """Bigger pipes to and from git, so that the event loop wakes up per chunk, not per read.

    git index-pack reads its input 4 KiB at a time: through a default 64 KiB pipe every such
    read woke the event loop for one more small write. With 1 MiB pipes (Linux F_SETPIPE_SZ,
    up to /proc/sys/fs/pipe-max-size) writes of a whole chunk go straight through.
    """
    assert proc.stdin is not None
    proc.stdin.transport.set_write_buffer_limits(high=PIPE_BUFFER)
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:
        return
    # StreamReader does not expose its transport; without it only stdin is widened.
    stdout = getattr(proc.stdout, "_transport", None)
    for transport in (proc.stdin.transport, stdout):
        pipe = transport.get_extra_info("pipe") if transport is not None else None
        if pipe is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), setpipe, PIPE_BUFFER)


def _no_cache() -> dict[str, str]:
    return {
        "Cache-Control": "no-cache, max-age=0, must-revalidate",
        "Pragma": "no-cache",
        "Expires": "Fri, 01 Jan 1980 00:00:00 GMT",
    }


def _plain_path(request: Request) -> bool:
    """The path as sent holds no encoded characters, backslashes or empty/dot segments.

    Every legitimate Git path is plain ASCII (slugs need no escaping). Anything else, e.g.
    `%2F` that the server would decode into a `/`, is refused before routing means anything.
    """
    raw = request.scope.get("raw_path")
    if raw is None:
        return True
    if any(c in raw for c in (b"%", b"\\", b"\0")) or not raw.isascii():
        return False
    return all(segment not in (b"", b".", b"..") for segment in raw.split(b"/")[1:])


def _bad_path(request: Request) -> Response:
    return error_response(Surface.GIT, 400, "Invalid repository path.")


@dataclass(frozen=True)
class RepositoryPath:
    """A repository as a clone URL names it: `/{workspace}/{slug}.git`, or Bitbucket
    Server's `/scm/{PROJECT_KEY}/{slug}.git` (keys are unique across the site)."""

    slug: str
    workspace: str | None = None
    project_key: str | None = None


def _split(request: Request) -> RepositoryPath | None:
    params = request.path_params
    owner: str = params["project_key"] if "project_key" in params else params["workspace"]
    repo: str = params["repo"]
    if repo[-4:].lower() == ".git":  # as on REST: `.GIT` is `.git`
        repo = repo[:-4]
    if not _SEGMENT.match(owner) or not _SEGMENT.match(repo) or repo.startswith("."):
        return None
    if "project_key" in params:
        return RepositoryPath(repo, project_key=owner)
    return RepositoryPath(repo, workspace=owner)


def _authorize(
    runtime: Runtime, caller: Caller, names: RepositoryPath | None, service: str
) -> Authorized:
    """In the pipeline's unit of work (closed before git starts): the repository, if the
    caller may fetch (or push to) it — the same check whichever path names it."""
    if names is None:
        raise caller.not_found("Repository not found")
    action = SERVICES[service]
    if names.project_key is not None:
        repo = site.read_repository(caller, names.project_key, names.slug, action)
    else:
        assert names.workspace is not None
        repo = repositories.read_repository(caller, names.workspace, names.slug, action)
    try:
        path = runtime.git.path_of(repo.storage_name)
    except UnsafePath:
        # The store was tampered with (e.g. a symlink planted): never follow it.
        log.error("refusing unsafe storage for repository %s", repo.id, exc_info=True)
        raise caller.not_found("Repository not found") from None
    return Authorized(caller.ctx, repo.id, path)


async def _check(request: Request, service: str) -> Authorized | Response:
    runtime: Runtime = request.app.state.runtime
    if len(request.headers.getlist("authorization")) > 1:
        return error_response(Surface.GIT, 400, TWO_AUTHORIZATIONS)
    names = _split(request)
    # Checking access only reads: the push itself writes through git and its hooks. No
    # two-step code: git sends its credential on every request of a fetch or push, and a
    # code is good once, so accounts with two-step verification use app passwords or tokens.
    ingress = Ingress(
        authorization=request.headers.get("authorization"),
        client_ip=request.client.host if request.client else None,
        write=False,
        base_url=base_url(request),
        user_agent=request.headers.get("user-agent"),
    )
    try:
        return await pipeline_of(request).call(
            ingress, lambda caller: _authorize(runtime, caller, names, service)
        )
    except AuthenticationFailed as failure:
        return error_response(Surface.GIT, 401, failure.message)
    except AuthenticationThrottled as throttled:
        return error_response(
            Surface.GIT, 429, throttled.message, headers={"Retry-After": str(throttled.retry_after)}
        )
    except ServiceError as error:
        status = error.status
        message = error.message
        if status == 404:
            message = "Repository not found"
        return error_response(Surface.GIT, status, message)


def _env(request: Request) -> dict[str, str]:
    env = git_env()
    protocol = safe_git_protocol(request.headers.get("git-protocol"))
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    return env


async def info_refs(request: Request) -> Response:
    if not _plain_path(request):
        return _bad_path(request)
    service = request.query_params.get("service", "")
    if service not in SERVICES:
        return error_response(
            Surface.GIT, 403, "Only the smart HTTP protocol is supported: use a git client."
        )
    checked = await _check(request, service)
    if isinstance(checked, Response):
        return checked
    env = _env(request)
    proc = await asyncio.create_subprocess_exec(
        "git",
        service[4:],
        "--stateless-rpc",
        "--advertise-refs",
        str(checked.path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        limit=PIPE_BUFFER,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(_stderr_of(proc.stderr))
    # The advertisement is streamed (one line per ref: it grows with the repository). Only
    # its first chunk is awaited before answering, so that a git that fails at once still
    # gets a clean 500.
    try:
        first = await proc.stdout.read(CHUNK)
    except BaseException:
        await _stop(proc, graceful=False)
        errors.cancel()
        raise
    if not first:
        await proc.wait()
        stderr = await errors
        if proc.returncode != 0:
            log.error("git %s --advertise-refs failed: %s", service,
                      stderr.decode(errors="replace"))
            return error_response(Surface.GIT, 500, "The repository could not be read.")
    announcement = b""
    if not (service == "git-upload-pack" and wants_v2(env.get("GIT_PROTOCOL"))):
        announcement = service_announcement(service)

    async def stream() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        try:
            yield announcement + first
            while chunk := await proc.stdout.read(CHUNK):
                yield chunk
            await proc.wait()
            if proc.returncode != 0:
                # Part of the advertisement is out: the client sees it cut short.
                log.error("git %s --advertise-refs failed midway: %s", service,
                          (await errors).decode(errors="replace"))
        finally:
            await _stop(proc, graceful=False)
            if not errors.done():
                errors.cancel()

    return PipeResponse(stream(), f"application/x-{service}-advertisement", _no_cache())


async def _stderr_of(stderr: asyncio.StreamReader) -> bytes:
    """What git says on stderr: its first 4 KiB kept (for the log), the rest read and dropped,
    so that git never blocks on a full pipe."""
    kept = await stderr.read(4096)
    while await stderr.read(CHUNK):
        pass
    return kept


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body, gunzipped when the client compressed it."""
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        async for chunk in request.stream():
            while chunk:
                data = inflater.decompress(chunk, CHUNK)
                chunk = inflater.unconsumed_tail
                if data:
                    yield data
        rest = inflater.flush()
        if rest:
            yield rest
    elif encoding in ("", "identity"):
        async for chunk in request.stream():
            if chunk:
                yield chunk
    else:
        raise ValueError(f"unsupported Content-Encoding: {encoding}")


class FetchRefused(Exception):
    """A fetch request that is not given to git: answered with `status`, in plain text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FetchRequest:
    """An upload-pack request body read to its end, within the limits, before git starts.

    NOTE: the whole request is read first (it is only the negotiation, wants and haves,
    never pack data) so that every limit is checked before git answers a byte: a refusal is
    then a clean 413 instead of a stream cut off midway, and git never spends work on a
    request that will be refused. Gunzipping and scanning run in a worker thread, one hop
    per piece of the body as it arrives, so a body that inflates a lot never holds up the
    event loop; no piece is ever inflated past what the limit still allows, so a gzip bomb
    costs at most `max_bytes` of work. The body waits in memory up to 1 MiB, then in a
    temporary file.
    """

    def __init__(self, max_bytes: int, max_haves: int, gzipped: bool) -> None:
        self.max_bytes = max_bytes
        self.max_haves = max_haves
        self.size = 0
        self.scanner = PktLineScanner()
        # Closed once handed on (`chunks`), or by the handler when git never reads it.
        self.body: IO[bytes] = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None

    def take(self, chunk: bytes) -> None:
        """One piece of the body as sent (in a worker thread)."""
        inflater = self._inflater
        if inflater is None:
            self._keep(chunk)
            return
        while chunk:
            try:
                data = inflater.decompress(chunk, min(CHUNK, self.max_bytes - self.size + 1))
            except zlib.error as error:
                raise FetchRefused(400, "The request body is not valid gzip.") from error
            chunk = inflater.unconsumed_tail
            self._keep(data)

    def finish(self) -> None:
        """The body has ended (in a worker thread)."""
        if self._inflater is not None and not self._inflater.eof:
            raise FetchRefused(400, "The request body is not valid gzip.")
        if not self.scanner.complete:
            raise FetchRefused(400, "The request body is not a Git request: it ends mid-line.")
        self.body.seek(0)

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            raise FetchRefused(
                413, f"fetch refused: the request is larger than the limit of "
                f"{self.max_bytes:,} bytes"
            )
        try:
            self.scanner.feed(data)
        except NotPktLines as error:
            raise FetchRefused(400, "The request body is not a Git request.") from error
        if self.scanner.haves > self.max_haves:
            raise FetchRefused(
                413, f"fetch refused: the request has more than the limit of "
                f"{self.max_haves:,} 'have' lines"
            )
        self.body.write(data)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body for git's stdin (the file is read in a worker thread)."""
        try:
            while chunk := await asyncio.to_thread(self.body.read, CHUNK):
                yield chunk
        finally:
            self.body.close()


async def _read_fetch(request: Request, runtime: Runtime) -> FetchRequest:
    """The whole upload-pack request, checked; FetchRefused if it breaks a limit."""
    settings = runtime.settings
    encoding = request.headers.get("content-encoding", "").lower()
    fetch = FetchRequest(
        settings.max_fetch_request_bytes, settings.max_fetch_haves, encoding in ("gzip", "x-gzip")
    )
    try:
        async for chunk in request.stream():
            if chunk:
                await asyncio.to_thread(fetch.take, chunk)
        await asyncio.to_thread(fetch.finish)
    except BaseException:
        fetch.body.close()
        raise
    return fetch


async def _drain_briefly(request: Request, limit: int) -> None:
    """Read and drop up to `limit` more bytes of a refused body, for a short while: a client
    still sending gets the answer, one that keeps sending does not hold us."""

    async def drain() -> None:
        drained = 0
        with contextlib.suppress(ClientDisconnect, Exception):
            async for chunk in request.stream():
                drained += len(chunk)
                if drained > limit:
                    break

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(drain(), STOP_GRACE)


def _commands(head: bytearray) -> PushCommands:
    """The push's commands; if they never arrived, assume what every git client asks for."""
    return parse_push_commands(bytes(head)) or PushCommands([], frozenset({"side-band-64k"}))


class PushTooLarge(Exception):
    def __init__(self, commands: PushCommands) -> None:
        super().__init__("push too large")
        self.commands = commands


async def _feed(
    body: AsyncIterator[bytes],
    stdin: asyncio.StreamWriter,
    limit: int | None,
    head: bytearray,
) -> None:
    """Copy the request body into git's stdin; stop at `limit` bytes with PushTooLarge.

    The first 64 KiB of a push are kept in `head`: its commands, to refuse each ref by name.
    """
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if limit is not None and len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            if limit is not None and received > limit:
                raise PushTooLarge(_commands(head))
            stdin.write(chunk)
            await stdin.drain()
    finally:
        with contextlib.suppress(Exception):
            stdin.close()


async def _read(
    stdout: asyncio.StreamReader, deadline: asyncio.Future[None] | None
) -> bytes | None:
    """The next chunk of git's output, or None if the push's time ran out first."""
    read = asyncio.ensure_future(stdout.read(CHUNK))
    if deadline is None:
        return await read
    racing: set[asyncio.Future[Any]] = {read, deadline}
    await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
    if read.done():
        return read.result()
    read.cancel()
    return None


async def _drain(request: Request, head: bytearray | None = None) -> None:
    """Read and drop the rest of the body (keeping its start in `head` while that is short)."""
    drained = 0
    with contextlib.suppress(ClientDisconnect, Exception):
        async for chunk in request.stream():
            if head is not None and len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            drained += len(chunk)
            if drained > DRAIN_LIMIT:
                break


async def rpc(request: Request) -> Response:
    if not _plain_path(request):
        return _bad_path(request)
    service = request.path_params["service"]
    if service not in SERVICES:
        return error_response(Surface.GIT, 404, "Not found")
    expected = f"application/x-{service}-request"
    if request.headers.get("content-type", "").split(";")[0].strip() != expected:
        return error_response(Surface.GIT, 415, f"Expected Content-Type {expected}")
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        return error_response(Surface.GIT, 415, f"Unsupported Content-Encoding {encoding}")
    checked = await _check(request, service)
    if isinstance(checked, Response):
        return checked
    runtime: Runtime = request.app.state.runtime
    push = service == "git-receive-pack"
    limit = runtime.settings.max_push_bytes if push else None
    body: AsyncIterator[bytes]
    fetch: FetchRequest | None = None
    if push:
        body = _body_chunks(request)
    else:
        try:
            fetch = await _read_fetch(request, runtime)
        except FetchRefused as refused:
            if refused.status == 413:
                log.info("fetch of repository %s refused: %s", checked.repository_id,
                         refused.message)
            await _drain_briefly(request, runtime.settings.max_fetch_request_bytes)
            return error_response(Surface.GIT, refused.status, refused.message)
        body = fetch.chunks()
    env = _env(request)
    args = ["git", service[4:], "--stateless-rpc", str(checked.path)]
    hooks: HookServer | None = None
    session: PushSession | None = None
    if push:
        # The hooks call back into this process: pre-receive checks the credential and
        # every ref again just before refs move, post-receive records the push.
        hooks = hook_server(request.app)
        try:
            await hooks.ready()
        except HooksUnusable:
            log.exception("refusing a push: git could not run its hooks")
            return error_response(
                Surface.GIT, 503, "Pushes are unavailable: the server cannot run its hooks."
            )
        ip = request.client.host if request.client else None
        grant = PushGrant(
            request.headers.get("authorization"), ip, checked.repository_id, checked.ctx,
            base_url(request),
        )
        session = hooks.open_push(grant, runtime.settings.push_timeout_seconds)
        env.update(session.env())
        args = receive_pack_args(hooks.hooks_dir, checked.path)
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=PIPE_BUFFER,
        )
    except BaseException:
        if hooks is not None and session is not None:
            hooks.end_push(session)
        if fetch is not None:
            fetch.body.close()
        raise
    assert proc.stdin is not None and proc.stdout is not None
    _widen_pipes(proc)
    head = bytearray()
    feeder = asyncio.create_task(_feed(body, proc.stdin, limit, head))
    deadline: asyncio.Future[None] | None = None
    if push:
        deadline = asyncio.ensure_future(asyncio.sleep(runtime.settings.push_timeout_seconds))

    async def time_up(started: bool) -> AsyncIterator[bytes]:
        """The push took too long: stop git (nothing more is applied), tell the client."""
        assert session is not None
        session.open = False  # from now on pre-receive refuses, whatever git is doing
        seconds = runtime.settings.push_timeout_seconds
        log.warning("push to repository %s stopped after %s s", checked.repository_id, seconds)
        if not feeder.done():
            feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder
        if started:
            # Part of git's answer is out: nothing can be added to it cleanly.
            await _stop(proc, graceful=True)
            return

        async def drain_briefly() -> None:
            # A slow client still gets the answer; one that stalls does not hold us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_drain(request, head), STOP_GRACE)

        await asyncio.gather(_stop(proc, graceful=True), drain_briefly())
        yield push_refusal(
            _commands(head), f"push refused: it took longer than the limit of {seconds} seconds"
        )

    async def stream() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        first = asyncio.ensure_future(proc.stdout.read(CHUNK))
        gone: asyncio.Future[Any] | None = None
        started = False
        try:
            racing: set[asyncio.Future[Any]] = {first, feeder}
            if deadline is not None:
                racing.add(deadline)
            done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            if feeder in done and feeder.exception() is not None:
                first.cancel()
                error = feeder.exception()
                if isinstance(error, PushTooLarge):
                    # git's stdin is closed: receive-pack sees a truncated pack, refuses it
                    # and removes its quarantine, while we read what is left of the body.
                    await asyncio.gather(_stop(proc, graceful=True), _drain(request))
                    limit_text = f"{runtime.settings.max_push_bytes:,} bytes"
                    yield push_refusal(
                        error.commands, f"push refused: larger than the limit of {limit_text}"
                    )
                if isinstance(error, zlib.error):
                    # Nothing has been sent yet: answer the broken body with a plain 400.
                    raise RefusedBody("The request body is not valid gzip.") from error
                return
            chunk: bytes | None
            if first.done() or deadline is None:
                chunk = await first
            else:
                pair: set[asyncio.Future[Any]] = {first, deadline}
                await asyncio.wait(pair, return_when=asyncio.FIRST_COMPLETED)
                chunk = first.result() if first.done() else None
                if chunk is None:
                    first.cancel()
            # A push's report gets the reason of each ref pre-receive refused (pktline.py).
            rewriter = (
                ReportRewriter(lambda: session.ref_reasons) if session is not None else None
            )
            while chunk:
                out = rewriter.feed(chunk) if rewriter is not None else chunk
                if out:
                    yield out
                    started = True
                if gone is None and not push and feeder.done():
                    # The body is all read: `receive` now only reports a disconnect. Once
                    # the client has gone, uvicorn drops what we send without a word, so
                    # without this upload-pack would build the whole pack for nobody.
                    gone = asyncio.ensure_future(request.receive())
                if gone is not None and gone.done():
                    log.info("client went away during %s", service)
                    break
                chunk = await _read(proc.stdout, deadline)
            if chunk is None:
                async for refusal in time_up(started):
                    yield refusal
                return
            if rewriter is not None and (rest := rewriter.finish()):
                yield rest
            if gone is not None and gone.done():
                return
            await feeder
            await proc.wait()
        except (PushTooLarge, ClientDisconnect, ValueError, zlib.error):
            pass
        finally:
            if gone is not None and not gone.done():
                gone.cancel()
            if deadline is not None:
                deadline.cancel()
            if not feeder.done():
                feeder.cancel()
                with contextlib.suppress(BaseException):
                    await feeder
            await _stop(proc, graceful=push)
            if fetch is not None:
                fetch.body.close()
            if hooks is not None and session is not None:
                # git has exited: the push's nonce is dead, and what git did not apply of
                # what pre-receive allowed is audited (in the background).
                hooks.end_push(session)

    return PipeResponse(stream(), f"application/x-{service}-result", _no_cache())


class PipeResponse(Response):
    """A streamed response that leaves the request body to the handler.

    Starlette's StreamingResponse listens for a disconnect by reading from `receive` while it
    streams, which would steal the request body that git is still being fed.
    """

    def __init__(
        self, chunks: AsyncIterator[bytes], media_type: str, headers: dict[str, str]
    ) -> None:
        super().__init__(None, 200, headers, media_type)
        # The length is unknown: drop the `content-length: 0` of the empty base body.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The status line waits for git's first bytes, so that a body refused before git
        # answered anything (RefusedBody) still gets a plain 4xx.
        chunks = aiter(self.chunks)
        try:
            first = await anext(chunks, b"")
        except RefusedBody as refused:
            await error_response(Surface.GIT, 400, str(refused))(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:
            # The client went away: end the generator now (its cleanup stops git), not
            # whenever it is collected.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class RefusedBody(Exception):
    """The request body cannot be given to git; raised before any response byte."""


async def _stop(proc: asyncio.subprocess.Process, *, graceful: bool) -> None:
    """End a git process that may still be running.

    upload-pack only reads the repository: it is killed. receive-pack is never killed first:
    a killed receive-pack leaves its quarantine directory (objects/tmp_objdir-incoming-*)
    behind. With its stdin closed it sees the pack end early, refuses the push and cleans up
    after itself; only if it does not exit in time is it terminated (SIGTERM, which it also
    cleans up on), then killed.
    """
    if proc.returncode is None and not graceful:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    if proc.returncode is None and graceful:
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()

        async def finish() -> None:
            if proc.stdout is not None:
                while await proc.stdout.read(CHUNK):
                    pass  # whatever it still reports goes nowhere; it must not block on it
            await proc.wait()

        for signal_it in (None, proc.terminate, proc.kill):
            if signal_it is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal_it()
            try:
                await asyncio.wait_for(finish(), STOP_GRACE)
                break
            except TimeoutError:
                continue
    with contextlib.suppress(Exception):
        await proc.wait()


class _GitService(Convertor[str]):
    """Only git's two services: any other POST path is left to the REST routes (for 405s)."""

    regex = "git-upload-pack|git-receive-pack"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("git_service", _GitService())

routes = [
    Route("/{workspace}/{repo}/info/refs", info_refs, methods=["GET"]),
    Route("/{workspace}/{repo}/{service:git_service}", rpc, methods=["POST"]),
    # Bitbucket Server's clone path (Flux, for one, insists on it): the key in any case.
    Route("/scm/{project_key}/{repo}/info/refs", info_refs, methods=["GET"]),
    Route("/scm/{project_key}/{repo}/{service:git_service}", rpc, methods=["POST"]),
]
