"""Events that webhooks deliver: what a change hands to the outbox.

A change that hooks may be told of (a push, a pull request opened or merged, a comment, a
build status) builds one `Event` in the unit of work that makes the change and calls `emit`
there, so the event is stored in the same transaction as the change: committed with it,
rolled back with it, never one without the other. Delivery happens later, from the outbox,
by the webhook worker (docs/webhooks.md).

An event carries both of Bitbucket's formats, rendered once when it happens (a snapshot, as
Bitbucket sends): a hook created through the Cloud API receives `cloud_key` with
`cloud_body`, one created through the Server API `server_key` with `server_body`. A key of
None means the event has no counterpart on that surface.

The bodies are Bitbucket's JSON, which the web layer renders (web/events.py); services that
produce events the web layer does not call directly (a push's post-receive, a build status)
ask the `Renderer` the web layer installs, and only when some hook listens (`listening`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gitward.storage.models import Repository, WebhookDelivery
from gitward.storage.store import Store
from gitward.storage.views import RepositoryView

if TYPE_CHECKING:
    from gitward.gitstore.reader import Commit
    from gitward.services.caller import Caller
    from gitward.storage.models import BuildStatus

log = logging.getLogger(__name__)

#: Surfaces of a hook (the API that created it).
CLOUD = "cloud"
SERVER = "server"


@dataclass(frozen=True)
class Event:
    cloud_key: str | None  # "repo:push", "pullrequest:created", …
    server_key: str | None  # "repo:refs_changed", "pr:opened", …
    cloud_body: Mapping[str, Any]
    server_body: Mapping[str, Any]


RepositoryLike = Repository | RepositoryView


def _listeners(
    store: Store, repository: RepositoryLike, cloud_key: str | None, server_key: str | None
) -> list[tuple[int, str, str]]:
    """(hook id, surface, event key) of every active hook that subscribes to the event."""
    found = []
    for hook in store.webhooks.subscribers(
        repository.id, repository.workspace_id, repository.project_id
    ):
        key = cloud_key if hook.surface == CLOUD else server_key
        if key is not None and key in hook.events:
            found.append((hook.id, hook.surface, key))
    return found


def listening(
    store: Store, repository: RepositoryLike, cloud_key: str | None, server_key: str | None
) -> bool:
    """Whether any hook would receive the event (so that it is worth rendering)."""
    return bool(_listeners(store, repository, cloud_key, server_key))


def emit(store: Store, repository: RepositoryLike, event: Event) -> int:
    """Store `event` for every hook of `repository` (and of its workspace or project) that
    subscribes to it, in the caller's unit of work. How many deliveries were written."""
    rendered: dict[str, str] = {}
    count = 0
    for hook_id, surface, key in _listeners(
        store, repository, event.cloud_key, event.server_key
    ):
        body = rendered.get(surface)
        if body is None:
            raw = event.cloud_body if surface == CLOUD else event.server_body
            body = rendered[surface] = orjson.dumps(raw).decode("utf-8")
        store.add(WebhookDelivery(hook_id=hook_id, event_key=key, body=body))
        count += 1
    if count:
        store.emitted = True
    return count


# -- what services hand the renderer -------------------------------------------------------


@dataclass(frozen=True)
class RefChange:
    """One ref a push moved, with what git said about it (read before the unit of work)."""

    ref: str
    old: str  # 40 (or 64) zeros when created
    new: str  # zeros when deleted
    old_commit: Commit | None = None
    new_commit: Commit | None = None
    forced: bool = False
    # The commits the push brought to this ref, newest first (a few: `truncated` says more).
    commits: tuple[Commit, ...] = ()
    truncated: bool = False

    @property
    def created(self) -> bool:
        return set(self.old) == {"0"}

    @property
    def closed(self) -> bool:
        return set(self.new) == {"0"}


class Renderer(Protocol):
    """Bitbucket's bodies of the events services produce (implemented in web/events.py)."""

    def push(self, caller: Caller, repository: Repository, changes: Sequence[RefChange]) -> Event:
        ...

    def commit_status(
        self, caller: Caller, repository: RepositoryLike, status: BuildStatus, created: bool
    ) -> Event:
        ...


_renderer: Renderer | None = None


def install(renderer: Renderer) -> None:
    """The web layer's renderer (installed when web/events.py is imported)."""
    global _renderer
    _renderer = renderer


def renderer() -> Renderer | None:
    if _renderer is None:
        log.error("no webhook event renderer is installed; events are not stored")
    return _renderer


def push(caller: Caller, repository: Repository, changes: Sequence[RefChange]) -> None:
    """The events of a push (Cloud `repo:push`, Server `repo:refs_changed`)."""
    if not changes or not listening(caller.store, repository, "repo:push", "repo:refs_changed"):
        return
    r = renderer()
    if r is not None:
        emit(caller.store, repository, r.push(caller, repository, changes))


def commit_status(
    caller: Caller, repository: RepositoryLike, status: BuildStatus, created: bool
) -> None:
    """A build status reported (`repo:commit_status_created`) or changed (`…_updated`)."""
    key = "repo:commit_status_created" if created else "repo:commit_status_updated"
    if not listening(caller.store, repository, key, None):
        return
    r = renderer()
    if r is not None:
        emit(caller.store, repository, r.commit_status(caller, repository, status, created))
