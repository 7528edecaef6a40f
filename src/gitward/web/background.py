"""Work each worker process does beside the requests while it serves: the git hooks'
listener (web/hooks/), the webhook delivery worker (worker/webhooks.py), and now and then
the expiry notices and the mailing of notices (services/notices.py). Started and stopped
with the application (`lifespan`), run in the unit-of-work threads; every step is safe to
run in several processes and hosts at once (each notice is added once, each claimed by one
mailer)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from gitward import mail
from gitward.runtime import Runtime
from gitward.services import notices
from gitward.storage.models import utcnow
from gitward.web.hooks.server import lifespan as hook_callbacks
from gitward.web.pipeline import Pipeline
from gitward.worker.webhooks import DeliveryWorker

log = logging.getLogger(__name__)


def notices_once(runtime: Runtime) -> int:
    """One round: expiry notices, then mail. Returns how many notices were mailed."""
    with runtime.unit_of_work() as store:
        notices.expiry_sweep(store, runtime.settings.base_url)
    return mail_pending(runtime)


def mail_pending(runtime: Runtime) -> int:
    """Mail the notices not mailed yet, in batches, until none is left or the relay fails:
    claimed in one transaction, sent outside any, settled in a third (a mailer that dies in
    between leaves its claim to lapse, and the notices are mailed again: at least once)."""
    settings = runtime.settings
    if settings.smtp_url is None:
        return 0
    relay = mail.Relay.of(settings.smtp_url)
    sent = 0
    while True:
        with runtime.unit_of_work() as store:
            outgoing = notices.claim_mail(store)
        if not outgoing.ids:
            return sent
        error = notices.send_claimed(relay, settings.mail_from, outgoing)
        with runtime.unit_of_work() as store:
            store.notices.settle_mail(outgoing.ids, None if error else utcnow(), error)
        if error:
            return sent
        sent += len(outgoing.ids)


async def _now_and_then(runtime: Runtime, pipeline: Pipeline) -> None:
    while True:
        await asyncio.sleep(runtime.settings.notice_interval_seconds)
        try:
            await pipeline.offload(functools.partial(notices_once, runtime))
        except Exception:
            log.exception("the notices round failed; trying again later")


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """The hook listener, this process's webhook delivery worker (unless
    GITWARD_WEBHOOK_WORKER=off) and the notice rounds, for as long as the app runs."""
    try:
        async with _serving(app):
            yield
    finally:
        # The unit-of-work threads end with the application (they start with its first
        # request): an application made and stopped many times (tests) leaks none.
        await asyncio.to_thread(app.state.pipeline.close)


@contextlib.asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[None]:
    async with hook_callbacks(app):
        runtime: Runtime = app.state.runtime
        deliveries = DeliveryWorker(runtime) if runtime.settings.webhook_worker else None
        if deliveries is not None:
            deliveries.start()
        task = asyncio.ensure_future(_now_and_then(runtime, app.state.pipeline))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if deliveries is not None:
                await asyncio.to_thread(deliveries.stop)
