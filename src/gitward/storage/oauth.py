"""Queries of the OAuth aggregate: consumers, authorization codes, access and refresh tokens,
and the JWT assertions already seen."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update

from gitward.storage.common import Page, Window, scalars_page, storable
from gitward.storage.models import (
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OAuthConsumer,
    OAuthJwtAssertion,
    OAuthRefreshToken,
    User,
    Workspace,
)
from gitward.storage.unit import Unit

_ACCESS_TOKEN_BY_HASH = (
    select(OAuthAccessToken, OAuthConsumer)
    .join(OAuthConsumer, OAuthConsumer.id == OAuthAccessToken.consumer_id)
)


class OAuth:
    """What the OAuth server and a workspace's consumer settings read and write."""

    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    # -- consumers -------------------------------------------------------------------------

    def consumer_by_key(self, key: str) -> OAuthConsumer | None:
        if not storable(key):
            return None
        return self._unit.session.scalar(select(OAuthConsumer).where(OAuthConsumer.key == key))

    def consumers_in(self, workspace_id: int, window: Window) -> Page[OAuthConsumer]:
        """A workspace's consumers, newest first."""
        return scalars_page(
            self._unit.session,
            select(OAuthConsumer)
            .where(OAuthConsumer.workspace_id == workspace_id)
            .order_by(OAuthConsumer.id.desc()),
            window,
        )

    def consumer_in(self, workspace_id: int, consumer_id: int) -> OAuthConsumer | None:
        return self._unit.session.scalar(
            select(OAuthConsumer).where(
                OAuthConsumer.workspace_id == workspace_id, OAuthConsumer.id == consumer_id
            )
        )

    def consumers_with_workspace(
        self, consumer_ids: Iterable[int]
    ) -> Sequence[tuple[OAuthConsumer, str]]:
        """The consumers and their workspace's slug."""
        rows = self._unit.session.execute(
            select(OAuthConsumer, Workspace.slug)
            .join(Workspace, Workspace.id == OAuthConsumer.workspace_id)
            .where(OAuthConsumer.id.in_(list(consumer_ids)))
        ).all()
        return [(row[0], row[1]) for row in rows]

    def end_everything_of(self, consumer_id: int) -> None:
        """Delete every code, access token and refresh token the consumer was issued."""
        for model in (OAuthAccessToken, OAuthRefreshToken, OAuthAuthorizationCode):
            self._unit.session.execute(delete(model).where(model.consumer_id == consumer_id))

    def end_tokens_of_grant(self, consumer_id: int, grant_type: str) -> None:
        self._unit.session.execute(
            delete(OAuthAccessToken).where(
                OAuthAccessToken.consumer_id == consumer_id,
                OAuthAccessToken.grant_type == grant_type,
            )
        )

    def end_consumer_own_tokens(self, consumer_id: int) -> None:
        """Delete the access tokens the consumer holds as itself (no user granted them)."""
        self._unit.session.execute(
            delete(OAuthAccessToken).where(
                OAuthAccessToken.consumer_id == consumer_id, OAuthAccessToken.user_id.is_(None)
            )
        )

    def void_unused_codes(self, consumer_id: int) -> None:
        self._unit.session.execute(
            delete(OAuthAuthorizationCode).where(
                OAuthAuthorizationCode.consumer_id == consumer_id,
                OAuthAuthorizationCode.used.is_(False),
            )
        )

    # -- authorization codes -------------------------------------------------------------

    def code_by_hash(self, code_hash: str) -> OAuthAuthorizationCode | None:
        return self._unit.session.scalar(
            select(OAuthAuthorizationCode).where(OAuthAuthorizationCode.code_hash == code_hash)
        )

    def spend_code(self, code_id: int) -> bool:
        """Mark the code used; False if it already was (of two exchanges racing, one wins)."""
        spent = self._unit.session.execute(
            update(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.id == code_id, OAuthAuthorizationCode.used.is_(False))
            .values(used=True)
            .execution_options(synchronize_session=False)
        )
        return bool(spent.rowcount == 1)  # type: ignore[attr-defined]

    # -- access and refresh tokens -------------------------------------------------------

    def access_token_by_hash(self, token_hash: str) -> OAuthAccessToken | None:
        return self._unit.session.scalar(
            select(OAuthAccessToken).where(OAuthAccessToken.token_hash == token_hash)
        )

    def access_token_by_id(self, token_id: int) -> OAuthAccessToken | None:
        return self._unit.session.get(OAuthAccessToken, token_id)

    def access_token_for_auth(
        self, token_hash: str
    ) -> tuple[OAuthAccessToken, OAuthConsumer] | None:
        """The access token with this hash and its consumer."""
        hit = self._unit.session.execute(
            _ACCESS_TOKEN_BY_HASH.where(OAuthAccessToken.token_hash == token_hash)
        ).first()
        return None if hit is None else (hit[0], hit[1])

    def refresh_token_by_hash(self, token_hash: str) -> OAuthRefreshToken | None:
        return self._unit.session.scalar(
            select(OAuthRefreshToken).where(OAuthRefreshToken.token_hash == token_hash)
        )

    def spend_refresh_token(self, token_id: int, now: datetime) -> bool:
        """Mark the refresh token used; False if it was used or revoked meanwhile."""
        spent = self._unit.session.execute(
            update(OAuthRefreshToken)
            .where(
                OAuthRefreshToken.id == token_id,
                OAuthRefreshToken.used_on.is_(None),
                OAuthRefreshToken.revoked.is_(False),
            )
            .values(used_on=now)
            .execution_options(synchronize_session=False)
        )
        return bool(spent.rowcount == 1)  # type: ignore[attr-defined]

    def revoke_family(self, family: str) -> None:
        """End every access and refresh token descended from one authorization."""
        self._unit.session.execute(
            delete(OAuthAccessToken).where(OAuthAccessToken.family == family)
        )
        self._unit.session.execute(
            update(OAuthRefreshToken).where(OAuthRefreshToken.family == family).values(revoked=True)
        )

    def end_leaked_refresh(self, token_hash: str) -> tuple[str, int, str, int | None] | None:
        """End the grant of the live refresh token whose secret has this hash, as RFC 7009
        revocation does (every access and refresh token of it): its kind, id and owner, for
        the audit. The caller bumps the generation."""
        refresh = self._unit.session.scalar(
            select(OAuthRefreshToken).where(
                OAuthRefreshToken.token_hash == token_hash, OAuthRefreshToken.revoked.is_(False)
            )
        )
        if refresh is None:
            return None
        self.revoke_family(refresh.family)
        return ("oauth-refresh-token", refresh.id,
                self._owner(refresh.consumer_id, refresh.user_id), refresh.user_id)

    def _owner(self, consumer_id: int, user_id: int | None) -> str:
        if user_id is None:
            return f"oauth-consumer:{consumer_id}"
        username = self._unit.session.scalar(select(User.username).where(User.id == user_id))
        return f"user:{username}"

    def live_refresh_tokens_of(self, user_id: int) -> Sequence[OAuthRefreshToken]:
        """A user's refresh tokens neither used nor revoked."""
        return self._unit.session.scalars(
            select(OAuthRefreshToken).where(
                OAuthRefreshToken.user_id == user_id,
                OAuthRefreshToken.revoked.is_(False),
                OAuthRefreshToken.used_on.is_(None),
            )
        ).all()

    def live_access_tokens_of(self, user_id: int, now: datetime) -> Sequence[OAuthAccessToken]:
        """A user's access tokens not yet expired."""
        return self._unit.session.scalars(
            select(OAuthAccessToken).where(
                OAuthAccessToken.user_id == user_id, OAuthAccessToken.expires_on > now
            )
        ).all()

    def revoke_user_grant(self, consumer_id: int, user_id: int) -> None:
        """End every code, access token and refresh token a user granted one consumer."""
        self._unit.session.execute(
            delete(OAuthAccessToken).where(
                OAuthAccessToken.consumer_id == consumer_id, OAuthAccessToken.user_id == user_id
            )
        )
        self._unit.session.execute(
            update(OAuthRefreshToken)
            .where(
                OAuthRefreshToken.consumer_id == consumer_id, OAuthRefreshToken.user_id == user_id
            )
            .values(revoked=True)
        )
        self._unit.session.execute(
            delete(OAuthAuthorizationCode).where(
                OAuthAuthorizationCode.consumer_id == consumer_id,
                OAuthAuthorizationCode.user_id == user_id,
            )
        )

    # -- JWT assertions ------------------------------------------------------------------

    def jwt_seen(self, consumer_id: int, jti: str, now: datetime) -> bool:
        """Was this assertion (consumer, jti) used already? Expired ones are forgotten first:
        their `exp` has passed, so they could not be used again anyway."""
        self._unit.session.execute(
            delete(OAuthJwtAssertion).where(OAuthJwtAssertion.expires_on < now)
        )
        seen = self._unit.session.scalar(
            select(OAuthJwtAssertion.id).where(
                OAuthJwtAssertion.consumer_id == consumer_id, OAuthJwtAssertion.jti == jti
            )
        )
        return seen is not None
