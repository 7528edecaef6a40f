"""The webhook delivery worker: takes due deliveries from the outbox and posts them.

One per serving process (started with the application, web/app.py). It claims a few due
deliveries at a time in a short write unit (storage/webhooks.py `claim`: each the earliest
open delivery of its hook, so a hook's events go out in order; claimed until the attempt's
time limit plus a grace), posts them outside any unit of work, and records each attempt in
another short unit. A failed attempt is retried after `backoff * 2**(attempt-1)` seconds (at
most `backoff_max`) until `max_attempts`, then the delivery is `failed`. A worker that dies
mid-delivery leaves its claim to expire: the delivery is then claimed again (at least once;
never lost). It sleeps until woken by a commit that wrote deliveries in this process
(`Runtime.on_emitted`), until the next delivery is due, or `poll` seconds at most — another
process's or host's deliveries are found by polling.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from gitward.credentials.sealing import SealError
from gitward.outbound import OutboundRefused, OutboundRules
from gitward.runtime import Runtime
from gitward.services import events
from gitward.services.webhooks import sealer
from gitward.storage import webhooks as outbox
from gitward.storage.models import WebhookAttempt, utcnow

log = logging.getLogger(__name__)

#: Bytes of a response body kept with an attempt.
EXCERPT = 1024
#: Deliveries posted at once by one worker (each to a different hook).
CONCURRENCY = 4
#: How often a worker deletes the deliveries older than the history it keeps.
PRUNE_INTERVAL = 3600.0
#: How much longer than an attempt's time limit a claim lasts.
CLAIM_GRACE = 30.0
CLOUD_AGENT = "Bitbucket-Webhooks/2.0"
SERVER_AGENT = "Bitbucket-Server-Webhooks/1.0 (Gitward)"


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status code (and the start of the body), or an error."""

    started: datetime
    duration_ms: int
    status: int | None = None
    response: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature`: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers_for(
    surface: str, event_key: str, hook_uuid: str, request_uuid: str, attempt: int,
    body: bytes, secret: str | None,
) -> dict[str, str]:
    """The headers of a delivery, in the format of the API that made the hook."""
    if surface == events.CLOUD:
        headers = {
            "X-Event-Key": event_key,
            "X-Hook-UUID": hook_uuid,
            "X-Request-UUID": request_uuid,
            "X-Attempt-Number": str(attempt),
            "Content-Type": "application/json",
            "User-Agent": CLOUD_AGENT,
        }
    else:
        headers = {
            "X-Event-Key": event_key,
            "X-Request-Id": request_uuid,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": SERVER_AGENT,
        }
    if secret:
        headers["X-Hub-Signature"] = signature(secret, body)
    return headers


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every delivery (building one costs ~0.1 s). Each
    delivery still gets a client of its own, so that no connection made for one host name
    (its SNI, its certificate) is ever reused for another that shares an address."""
    return httpx.create_ssl_context()


def post(
    rules: OutboundRules, url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> Outcome:
    """POST `body` to `url` once: the URL checked by the outbound rule now, the request made
    to the address checked (`Destination.pinned`), no redirects followed, at most `timeout`
    seconds; never raises."""
    started = utcnow()
    clock = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - clock) * 1000)

    try:
        destination = rules.check(url)
    except OutboundRefused as refused:
        return Outcome(started, took(), error=f"refused: {refused.message}")
    pinned_url, host, extensions = destination.pinned()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                         verify=_tls()) as client,
            client.stream(
                "POST", pinned_url, content=body, headers={**headers, **host},
                extensions=extensions,
            ) as response,
        ):
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT:
                    break
            return Outcome(
                started, took(), status=response.status_code,
                response=_storable(excerpt[:EXCERPT].decode("utf-8", "replace")),
            )
    except httpx.TimeoutException:
        return Outcome(started, took(), error=f"timed out after {timeout:g} s")
    except httpx.HTTPError as error:
        return Outcome(started, took(),
                       error=_storable(f"{type(error).__name__}: {error}"[:500]))


def _storable(text: str) -> str:
    """Text every database stores: no NUL (PostgreSQL cannot), no lone surrogates."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def worker_name() -> str:
    """How a worker names itself in its claims: host, process, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class DeliveryWorker:
    """See the module. `run_once` is one round (claim, post, record), for tests too."""

    def __init__(self, runtime: Runtime, name: str | None = None,
                 rules: OutboundRules | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.name = name or worker_name()
        self.rules = rules or OutboundRules(self.settings.outbound_allowed_networks)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="gitward-webhook")

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        self.runtime.on_emitted.append(self.wake)
        self._thread = threading.Thread(target=self._run, name="gitward-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop after the round in progress (its attempts are recorded; a claim left behind
        expires and is taken again)."""
        self._stopping.set()
        self._wake.set()
        if self.wake in self.runtime.on_emitted:
            self.runtime.on_emitted.remove(self.wake)
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        pruned_at = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if time.monotonic() - pruned_at > PRUNE_INTERVAL:
                    pruned_at = time.monotonic()
                    self.prune()
                done = self.run_once()
                wait = 0.0 if done else self._idle_wait()
            except Exception:
                log.exception("the webhook worker's round failed; trying again later")
                wait = self.settings.webhook_poll_seconds
            if wait > 0:
                self._wake.wait(wait)

    def _idle_wait(self) -> float:
        """Until the next delivery is due, at most the poll interval."""
        poll = self.settings.webhook_poll_seconds
        with self.runtime.unit_of_work(write=False) as store:
            due = store.webhooks.next_due(utcnow())
        if due is None:
            return poll
        return max(0.0, min(poll, (due - utcnow()).total_seconds()))

    def prune(self) -> int:
        """Delete the deliveries finished more than `webhook_history_days` ago (a batch at a
        time, each in a short unit). How many."""
        before = utcnow() - timedelta(days=self.settings.webhook_history_days)
        total = 0
        while not self._stopping.is_set():
            with self.runtime.unit_of_work() as store:
                count = store.webhooks.prune(before)
            total += count
            if count == 0:
                break
        return total

    # -- one round ----------------------------------------------------------------------

    def claim(self, limit: int = CONCURRENCY) -> list[outbox.Claimed]:
        now = utcnow()
        until = now + timedelta(seconds=self.settings.webhook_timeout_seconds + CLAIM_GRACE)
        with self.runtime.unit_of_work(write=False) as store:
            due = store.webhooks.next_due(now)
        if due is None or due > now:
            return []  # nothing due: no write lock taken
        with self.runtime.unit_of_work() as store:
            return store.webhooks.claim(self.name, now, until, limit)

    def run_once(self) -> int:
        """Claim due deliveries, post them (at once, each to its own hook), record every
        attempt. How many were attempted."""
        claimed = self.claim()
        if not claimed:
            return 0
        outcomes = list(self._pool.map(self._attempt, claimed))
        for item, outcome in zip(claimed, outcomes, strict=True):
            self.record(item, outcome)
        return len(claimed)

    def _attempt(self, item: outbox.Claimed) -> Outcome:
        body = item.body.encode("utf-8")
        secret = None
        if item.secret_sealed is not None:
            try:
                secret = sealer(self.runtime.secret_key).unseal(item.secret_sealed)
            except SealError:
                return Outcome(utcnow(), 0, error="the hook's secret cannot be opened "
                               "with this server's secret key; set it again")
        headers = headers_for(item.surface, item.event_key, item.hook_uuid, item.request_uuid,
                              item.attempt, body, secret)
        return post(self.rules, item.url, body, headers, self.settings.webhook_timeout_seconds)

    def record(self, item: outbox.Claimed, outcome: Outcome) -> None:
        settings = self.settings
        now = utcnow()
        next_at: datetime | None = None
        if outcome.ok:
            state = outbox.DELIVERED
        elif item.attempt >= settings.webhook_max_attempts:
            state = outbox.FAILED
        else:
            state = outbox.PENDING
            delay = min(settings.webhook_backoff_seconds * 2 ** (item.attempt - 1),
                        settings.webhook_backoff_max_seconds)
            next_at = now + timedelta(seconds=delay)
        attempt = WebhookAttempt(
            delivery_id=item.delivery_id, number=item.attempt, started_on=outcome.started,
            duration_ms=outcome.duration_ms, status_code=outcome.status,
            error=outcome.error, response=outcome.response,
        )
        try:
            with self.runtime.unit_of_work() as store:
                store.webhooks.finish(item, self.name, attempt, state, next_at, now)
        except Exception:
            # The claim expires and the delivery is attempted again: at least once.
            log.exception("could not record attempt %d of webhook delivery %s",
                          item.attempt, item.request_uuid)
