"""The one way in: a unit of work, the caller's credential, and the work, in one thread.

Every surface (Cloud and Server REST, Git, OAuth, and the pages) turns a request
into an `Ingress` — what it presents — and hands it with the work to `Pipeline.run`, which
opens the unit of work, authenticates through the credential registry, runs the work with
the resulting `Caller` and commits, all in the one worker thread that `Pipeline.call` (or
FastAPI, for the sync endpoints of a `UnitRoute`) gave it.

NOTE: this is what keeps the server standing under load. A database connection is only
ever checked out inside the thread that uses it and returned before the thread is, so no
connection waits for a thread; the thread limiter and the connection pool have the same
size (`Settings.db_threads`), so no thread waits for a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

import anyio.to_thread
import orjson
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection
from starlette.responses import Response

from gitward.credentials.registry import (
    AuthenticationFailed,
    AuthenticationThrottled,
    Presented,
)
from gitward.domain.identity import CredentialKind
from gitward.runtime import Runtime
from gitward.services import notices
from gitward.services.caller import Caller
from gitward.services.errors import ServiceError
from gitward.web import metrics
from gitward.web.auth import authenticate, record_failure
from gitward.web.hosts import base_url

T = TypeVar("T")
ANONYMOUS = CredentialKind.ANONYMOUS

#: Methods that only read (RFC 9110 §9.2.1): their unit of work does not take SQLite's write
#: lock up front.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Ingress:
    """What a request presents: its credential, its address, and whether it will write."""

    # Secrets: kept out of the repr, so that no log line or traceback shows them.
    authorization: str | None = field(default=None, repr=False)
    client_ip: str | None = None
    otp: str | None = field(default=None, repr=False)
    write: bool = True
    # The web session cookie: set only by the pages (web/ui/), never read from a request by
    # `of`, so that no other surface honours it.
    cookie: str | None = field(default=None, repr=False)
    # Where the request's links start (web/hosts.base_url): what an event rendered in its
    # unit of work links to.
    base_url: str | None = None
    # The User-Agent: the client a watched credential's use is told by (services/notices).
    user_agent: str | None = None

    @classmethod
    def of(cls, request: HTTPConnection, *, write: bool | None = None) -> Ingress:
        method = request.scope.get("method", "GET")
        return cls(
            authorization=request.headers.get("authorization"),
            client_ip=request.client.host if request.client else None,
            otp=request.headers.get("x-gitward-otp"),
            write=method not in SAFE_METHODS if write is None else write,
            base_url=base_url(request),
            user_agent=request.headers.get("user-agent"),
        )


class Rollback(Exception, Generic[T]):
    """Raised by work whose answer stands but whose changes must not: the unit of work is
    rolled back and `Pipeline.run` returns `value`."""

    def __init__(self, value: T) -> None:
        super().__init__("rolled back")
        self.value = value


class Pipeline:
    """Opens the unit of work and authenticates, for every surface."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # As many threads as the pool has connections: see the module.
        self._threads = UnitThreads(runtime.settings.db_threads)

    def run(self, ingress: Ingress, work: Callable[[Caller], T]) -> T:
        """`work` with the caller of `ingress`, in one unit of work committed when it returns
        (or when it raises a ServiceError marked `recorded`: what it recorded of the refusal
        stays; any other exception rolls the unit back).

        A failed authentication — of the request's own credential, or of one the work
        checks itself with `sign_in` — is audited and counted after the rollback, in a
        transaction of its own (SQLite has one writer, and the failed unit may hold it).
        Runs in a worker thread: call it through `call`.
        """
        try:
            with self.runtime.unit_of_work(write=ingress.write) as store:
                ctx = authenticate(
                    self.runtime, store, ingress.authorization, ingress.client_ip, ingress.otp,
                    ingress.cookie,
                )
                kind = ctx.credential
                if kind is not ANONYMOUS:
                    # By the value: the enum's hash is Python code.
                    next(metrics.SUCCESSES[kind._value_])
                    credential_id = ctx.credential_id
                    if (
                        credential_id is not None and kind._value_ in notices.WATCHED
                        and (kind._value_, credential_id, ingress.client_ip,
                             ingress.user_agent) not in self.runtime.sightings.requests
                    ):
                        notices.note_sighting(
                            self.runtime.sightings, store, ctx, ingress.client_ip,
                            ingress.user_agent, ingress.base_url,
                        )
                try:
                    return work(Caller(store, ctx, ingress.client_ip, ingress.base_url))
                except ServiceError as error:
                    if not error.commits:
                        raise
                    recorded = error  # answered below, once the unit has committed
            raise recorded
        except AuthenticationFailed as failure:
            if not failure.counted:
                metrics.refused(ingress.authorization, ingress.cookie)
            record_failure(self.runtime, failure, ingress.client_ip)
            raise
        except AuthenticationThrottled:
            metrics.refused(ingress.authorization, ingress.cookie, throttled=True)
            raise
        except Rollback as rollback:
            value: T = rollback.value
            return value

    def sign_in(self, caller: Caller, presented: Presented) -> Caller:
        """The caller of a credential the work was handed (a form's username and password),
        in the same unit of work; AuthenticationFailed is audited as `run` audits its own."""
        try:
            ctx = self.runtime.credentials.authenticate(caller.store, presented)
        except AuthenticationFailed as failure:
            metrics.refused_form(presented)
            failure.counted = True
            raise
        except AuthenticationThrottled:
            metrics.refused_form(presented, throttled=True)
            raise
        next(metrics.SUCCESSES[ctx.credential._value_])
        return Caller(caller.store, ctx, presented.client_ip, caller.base_url)

    async def call(self, ingress: Ingress, work: Callable[[Caller], T]) -> T:
        """`run` in a worker thread: the only hop a request makes.

        Our own small pool rather than anyio's (its limiter and cancel scopes doubled the
        hop) or concurrent.futures' (its futures, chained to asyncio's, were a few per cent
        of a cached request): bench/README.md.
        A request whose client goes away still finishes its unit of work in the thread
        (committed or rolled back), as with anyio's default."""
        return await self._threads.run(functools.partial(self.run, ingress, work))

    async def offload(self, work: Callable[[], T]) -> T:
        """Blocking work that needs no unit of work (or opens its own), in the same threads."""
        return await self._threads.run(work)

    def close(self) -> None:
        self._threads.close()


class UnitThreads:
    """A fixed set of worker threads fed from one queue; each job's answer goes straight to
    the asyncio future of the request that waits for it."""

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._count = count
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` in one of the threads. A request whose client went away still lets its
        job finish (its unit of work commits or rolls back); the answer is dropped."""
        if len(self._threads) < self._count:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, work))
        return await future

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._count:
                thread = threading.Thread(
                    target=self._serve, name=f"gitward-unit-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, work = job
            try:
                result = work()
            except BaseException as error:  # handed to the waiting request, raised there
                _answer(loop, _fail, future, error)
            else:
                _answer(loop, _succeed, future, result)

    def close(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(10)


def _answer(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    """Settle `future` on its loop — unless that loop has closed meanwhile (the application
    shut down while the job ran, e.g. a background job given up at close): then nobody waits
    for the answer, and the thread goes on to its next job."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, future, value)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def pipeline_of(request: HTTPConnection) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


#: The headers an answer carries because of who asked, its error answers included: a
#: surface application sets one in `app.state.caller_headers` (Bitbucket Server's
#: `X-AUSERNAME`, web/server_api/surface.py), and every `UnitRoute` of that surface adds them.
CallerHeaders = Callable[[Caller], dict[str, str]]


@dataclass(frozen=True)
class PendingCaller:
    """The caller of a `UnitRoute` endpoint before its unit of work is open."""

    pipeline: Pipeline
    ingress: Ingress
    caller_headers: CallerHeaders | None = None


async def _pending_caller(request: Request) -> PendingCaller:
    return PendingCaller(
        pipeline_of(request),
        Ingress.of(request),
        getattr(request.app.state, "caller_headers", None),
    )


#: The caller of an endpoint of a `UnitRoute` router: its unit of work opens, and its
#: credential is authenticated, in the thread that runs the endpoint.
CallerDep = Annotated[Caller, Depends(_pending_caller)]


class UnitRoute(APIRoute):
    """A route whose sync endpoint runs inside `Pipeline.run`, in one of the pipeline's
    worker threads.

    The endpoint keeps its plain signature (`caller: CallerDep`); its async wrapper (so that
    FastAPI spends no thread of its own on it) swaps the pending caller for the real one
    once the unit of work is open, and the unit commits before the thread is handed back.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _in_unit(endpoint, kwargs.get("status_code")), **kwargs)


def _in_unit(endpoint: Callable[..., Any], status_code: int | None) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):
        return endpoint  # async endpoints call the pipeline themselves

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        pending = None
        sub_response = None
        for name, value in kwargs.items():
            if isinstance(value, PendingCaller):
                pending = name, value
            elif isinstance(value, Response):
                sub_response = value
        if pending is None:
            result = await anyio.to_thread.run_sync(lambda: endpoint(*args, **kwargs))
        else:
            name, unit = pending
            caller_headers = unit.caller_headers
            if caller_headers is None:

                def work(caller: Caller) -> Any:
                    return endpoint(*args, **{**kwargs, name: caller})

                result = await unit.pipeline.call(unit.ingress, work)
            else:
                stamp = caller_headers

                def work(caller: Caller) -> Any:
                    headers = stamp(caller)
                    try:
                        return endpoint(*args, **{**kwargs, name: caller}), headers
                    except ServiceError as error:  # answered in the surface's shape, with them
                        error.headers.update(headers)
                        raise

                result, headers = await unit.pipeline.call(unit.ingress, work)
                response = _respond(result, status_code, sub_response)
                for key, value in headers.items():
                    response.headers[key] = value
                return response
        return _respond(result, status_code, sub_response)

    return run


def _respond(
    result: Any, status_code: int | None, sub_response: Response | None
) -> Response:
    """The endpoint's JSON, encoded here (orjson) rather than validated again by FastAPI
    against a `dict[str, Any]` it was never going to refuse; a Response passes as it is."""
    if isinstance(result, Response):
        return result
    status = status_code or 200
    if sub_response is not None and sub_response.status_code:
        status = sub_response.status_code
    if status in (204, 304):
        response: Response = Response(status_code=status)
    else:
        response = Response(
            orjson.dumps(result), status_code=status, media_type="application/json"
        )
    if sub_response is not None:
        for key, value in sub_response.headers.raw:
            if key not in (b"content-length", b"content-type"):
                response.raw_headers.append((key, value))
    return response
