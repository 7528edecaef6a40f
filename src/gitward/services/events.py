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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitward.storage.models import Repository
from gitward.storage.store import Store


@dataclass(frozen=True)
class Event:
    cloud_key: str | None  # "repo:push", "pullrequest:created", …
    server_key: str | None  # "repo:refs_changed", "pr:opened", …
    cloud_body: Mapping[str, Any]
    server_body: Mapping[str, Any]


def emit(store: Store, repository: Repository, event: Event) -> None:
    """Store `event` for every hook of `repository` (and of its workspace or project) that
    subscribes to it, in the caller's unit of work."""
    # The outbox and its hooks land with webhooks; until then no hook can subscribe.
    del store, repository, event
