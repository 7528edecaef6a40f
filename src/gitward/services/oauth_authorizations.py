"""The OAuth consumers a user has let act for them ("app authorizations"), and taking that
back: the user's side of the authorization code grant.

An authorization is live while the user has a refresh token that is neither used nor revoked,
or an access token that has not expired, from that consumer. Revoking it ends every code,
access token and refresh token the user granted the consumer, on every process at once.
Managing one's authorizations is Action.CREDENTIAL_MANAGE on one's own account, which the
policy allows only to an interactive credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gitward.domain.permissions import Action
from gitward.services.caller import Caller
from gitward.services.errors import NotFound
from gitward.storage.common import EVERYTHING, Page, Window
from gitward.storage.models import (
    OAuthConsumer,
    User,
    utcnow,
)
from gitward.storage.store import Store


@dataclass(frozen=True)
class Authorization:
    consumer: OAuthConsumer
    workspace_slug: str
    scopes: frozenset[str]
    created_on: datetime
    last_used_on: datetime | None


def list_authorizations(caller: Caller, window: Window = EVERYTHING) -> Page[Authorization]:
    """The consumers with a live grant from the caller, most recently granted first.

    Each authorization is assembled from the user's own live tokens (two tables, grouped by
    consumer), so the window is cut after grouping: the rows read are bounded by the user's
    live tokens, not by anything other users hold."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    return Page.of(_live(caller.store, user), window)


def _live(store: Store, user: User) -> list[Authorization]:
    now = utcnow()
    found: dict[int, tuple[set[str], datetime, datetime | None]] = {}

    def note(consumer_id: int, scopes: str, created: datetime, used: datetime | None) -> None:
        granted, first, last = found.get(consumer_id, (set(), created, None))
        granted.update(scopes.split())
        if used is not None and (last is None or used > last):
            last = used
        found[consumer_id] = (granted, min(first, created), last)

    for refresh in store.oauth.live_refresh_tokens_of(user.id):
        note(refresh.consumer_id, refresh.scopes, refresh.created_on, None)
    for access in store.oauth.live_access_tokens_of(user.id, now):
        note(access.consumer_id, access.scopes, access.created_on, access.last_used_on)
    if not found:
        return []
    rows = store.oauth.consumers_with_workspace(found)
    authorizations = [
        Authorization(consumer, slug, frozenset(found[consumer.id][0]), found[consumer.id][1],
                      found[consumer.id][2])
        for consumer, slug in rows
    ]
    return sorted(authorizations, key=lambda a: (a.created_on, a.consumer.id), reverse=True)


def find_authorization(caller: Caller, consumer_key: str) -> Authorization:
    """What the caller granted one consumer (by its key, or its uuid in braces)."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    live = {a.consumer.key: a for a in _live(caller.store, user)}
    wanted = consumer_key.strip()
    match = live.get(wanted) or next(
        (a for a in live.values() if "{" + a.consumer.uuid + "}" == wanted), None
    )
    if match is None:
        raise NotFound(f"You have not authorized an OAuth consumer {consumer_key[:64]}.")
    return match


def revoke_authorization(caller: Caller, consumer_key: str) -> None:
    """End everything the caller granted the consumer (by its key, or its uuid in braces)."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    match = find_authorization(caller, consumer_key)
    consumer = match.consumer
    caller.store.oauth.revoke_user_grant(consumer.id, user.id)
    caller.store.credentials.changed()
    caller.audit(
        "oauth.authorization-revoke",
        target=f"oauth-consumer:{consumer.id}",
        consumer_key=consumer.key,
        scopes=sorted(match.scopes),
    )
