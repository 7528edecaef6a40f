"""The OAuth consumers a user has let act for them ("app authorizations"), and taking that
back: the user's side of the authorization code grant.

An authorization is live while the user has a refresh token that is neither used nor revoked,
or an access token that has not expired, from that consumer. Revoking it ends every code,
access token and refresh token the user granted the consumer, on every process at once.
Managing one's authorizations is Action.CREDENTIAL_MANAGE on one's own account, which the
policy allows only to an interactive credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from gitward.domain.permissions import Action
from gitward.services.caller import Caller
from gitward.services.errors import NotFound
from gitward.storage.models import (
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OAuthConsumer,
    OAuthRefreshToken,
    User,
    Workspace,
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


def list_authorizations(caller: Caller) -> Sequence[Authorization]:
    """The consumers with a live grant from the caller, most recently granted first."""
    return _live(caller.store, caller.require_own_account(Action.CREDENTIAL_MANAGE))


def _live(store: Store, user: User) -> list[Authorization]:
    session, now = store.session, utcnow()
    found: dict[int, tuple[set[str], datetime, datetime | None]] = {}

    def note(consumer_id: int, scopes: str, created: datetime, used: datetime | None) -> None:
        granted, first, last = found.get(consumer_id, (set(), created, None))
        granted.update(scopes.split())
        if used is not None and (last is None or used > last):
            last = used
        found[consumer_id] = (granted, min(first, created), last)

    for refresh in session.scalars(
        select(OAuthRefreshToken).where(
            OAuthRefreshToken.user_id == user.id,
            OAuthRefreshToken.revoked.is_(False),
            OAuthRefreshToken.used_on.is_(None),
        )
    ):
        note(refresh.consumer_id, refresh.scopes, refresh.created_on, None)
    for access in session.scalars(
        select(OAuthAccessToken).where(
            OAuthAccessToken.user_id == user.id, OAuthAccessToken.expires_on > now
        )
    ):
        note(access.consumer_id, access.scopes, access.created_on, access.last_used_on)
    if not found:
        return []
    rows = session.execute(
        select(OAuthConsumer, Workspace.slug)
        .join(Workspace, Workspace.id == OAuthConsumer.workspace_id)
        .where(OAuthConsumer.id.in_(found))
    ).all()
    authorizations = [
        Authorization(consumer, slug, frozenset(found[consumer.id][0]), found[consumer.id][1],
                      found[consumer.id][2])
        for consumer, slug in rows
    ]
    return sorted(authorizations, key=lambda a: (a.created_on, a.consumer.id), reverse=True)


def revoke_authorization(caller: Caller, consumer_key: str) -> None:
    """End everything the caller granted the consumer (by its key, or its uuid in braces)."""
    user = caller.require_own_account(Action.CREDENTIAL_MANAGE)
    live = {a.consumer.key: a for a in _live(caller.store, user)}
    wanted = consumer_key.strip()
    match = live.get(wanted) or next(
        (a for a in live.values() if "{" + a.consumer.uuid + "}" == wanted), None
    )
    if match is None:
        raise NotFound(f"You have not authorized an OAuth consumer {consumer_key[:64]}.")
    consumer = match.consumer
    session = caller.store.session
    session.execute(
        delete(OAuthAccessToken).where(
            OAuthAccessToken.consumer_id == consumer.id, OAuthAccessToken.user_id == user.id
        )
    )
    session.execute(
        update(OAuthRefreshToken)
        .where(OAuthRefreshToken.consumer_id == consumer.id, OAuthRefreshToken.user_id == user.id)
        .values(revoked=True)
    )
    session.execute(
        delete(OAuthAuthorizationCode).where(
            OAuthAuthorizationCode.consumer_id == consumer.id,
            OAuthAuthorizationCode.user_id == user.id,
        )
    )
    caller.store.credentials_changed()
    caller.audit(
        "oauth.authorization-revoke",
        target=f"oauth-consumer:{consumer.id}",
        consumer_key=consumer.key,
        scopes=sorted(match.scopes),
    )
