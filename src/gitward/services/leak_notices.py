"""What a user is told about their credentials revoked by push protection (found live in a
push to a public repository): the `credential.leak.revoke` events whose target is them,
shown on their dashboard until notifications by mail exist (docs/push-protection.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gitward.domain.permissions import Action, ResourceKind
from gitward.domain.policy import Target
from gitward.services.caller import Caller
from gitward.storage.common import Window
from gitward.storage.models import utcnow

ACTION = "credential.leak.revoke"
#: How far back, and how many, the dashboard shows.
KEPT = timedelta(days=90)
SHOWN = 10


@dataclass(frozen=True)
class LeakNotice:
    when: datetime
    kind: str
    name: str
    repository: str
    path: str
    pusher: str


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def leak_notices(caller: Caller) -> list[LeakNotice]:
    """The caller's own credentials revoked for being pushed, newest first (none for
    callers without an account)."""
    user = caller.user
    if user is None:
        return []
    caller.require(
        Action.ACCOUNT_READ, Target(ResourceKind.ACCOUNT, user_id=user.id),
        f"User {user.username} does not exist.",
    )
    events = caller.store.audit.page(
        Window(0, SHOWN), action=ACTION, target=f"user:{user.username}",
        since=utcnow() - KEPT, newest_first=True,
    ).items
    return [
        LeakNotice(
            e.created_on, _text(e.details.get("kind")), _text(e.details.get("name")),
            _text(e.details.get("repository")).removeprefix("repository:"),
            _text(e.details.get("path")), e.actor.removeprefix("user:"),
        )
        for e in events
    ]
