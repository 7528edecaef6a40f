"""Queries of workload identity federation: trusts by resource and by issuer, the ID tokens
already exchanged, and the access tokens each trust minted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, select

from gitward.storage.common import Page, Window, scalars_page, storable
from gitward.storage.models import (
    OidcMintedToken,
    OidcTrust,
    OidcUsedJti,
    ResourceAccessToken,
)
from gitward.storage.unit import Unit


class Oidc:
    """No access decisions here: the service resolved the resource first."""

    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def _on(
        self, kind: str, workspace_id: int, project_id: int | None, repository_id: int | None
    ) -> Select[OidcTrust]:
        query = select(OidcTrust).where(
            OidcTrust.kind == kind, OidcTrust.workspace_id == workspace_id
        )
        if project_id is not None:
            query = query.where(OidcTrust.project_id == project_id)
        if repository_id is not None:
            query = query.where(OidcTrust.repository_id == repository_id)
        return query

    def trusts_on(
        self,
        kind: str,
        workspace_id: int,
        project_id: int | None,
        repository_id: int | None,
        window: Window,
    ) -> Page[OidcTrust]:
        """One resource's trusts, newest first."""
        query = self._on(kind, workspace_id, project_id, repository_id)
        return scalars_page(self._unit.session, query.order_by(OidcTrust.id.desc()), window)

    def trust_on(
        self,
        kind: str,
        workspace_id: int,
        project_id: int | None,
        repository_id: int | None,
        trust_id: int,
    ) -> OidcTrust | None:
        query = self._on(kind, workspace_id, project_id, repository_id)
        return self._unit.session.scalar(query.where(OidcTrust.id == trust_id))

    def trusts_of_issuer(self, issuer: str) -> Sequence[OidcTrust]:
        """Every trust in `issuer`, oldest first."""
        if not storable(issuer):
            return []
        return self._unit.session.scalars(
            select(OidcTrust).where(OidcTrust.issuer == issuer).order_by(OidcTrust.id)
        ).all()

    def issuer_trusted(self, issuer: str) -> bool:
        if not storable(issuer):
            return False
        found = self._unit.session.scalar(
            select(OidcTrust.id).where(OidcTrust.issuer == issuer).limit(1)
        )
        return found is not None

    def jti_used(self, issuer: str, jti: str) -> bool:
        found = self._unit.session.scalar(
            select(OidcUsedJti.id).where(OidcUsedJti.issuer == issuer, OidcUsedJti.jti == jti)
        )
        return found is not None

    def spend_jti(self, issuer: str, jti: str, expires_on: datetime) -> None:
        """Record the jti now (flushed): of two exchanges racing, the unique constraint lets
        one commit."""
        self._unit.session.add(OidcUsedJti(issuer=issuer, jti=jti, expires_on=expires_on))
        self._unit.session.flush()

    def forget_expired(self, now: datetime) -> None:
        """Drop what can no longer matter: jtis of expired ID tokens (they are refused for
        their expiry anyway) and minted access tokens past their expiry."""
        session = self._unit.session
        session.execute(delete(OidcUsedJti).where(OidcUsedJti.expires_on < now))
        expired = (
            select(ResourceAccessToken.id)
            .join(OidcMintedToken, OidcMintedToken.token_id == ResourceAccessToken.id)
            .where(ResourceAccessToken.expires_on < now)
        )
        session.execute(
            delete(ResourceAccessToken).where(ResourceAccessToken.id.in_(expired)),
            execution_options={"synchronize_session": False},
        )

    def mint(self, trust: OidcTrust, token: ResourceAccessToken) -> None:
        session = self._unit.session
        session.add(token)
        session.flush()
        session.add(OidcMintedToken(token_id=token.id, trust_id=trust.id))
        session.flush()

    def delete_trust(self, trust: OidcTrust) -> int:
        """Delete the trust and every access token it minted; how many tokens ended."""
        session = self._unit.session
        minted = select(OidcMintedToken.token_id).where(OidcMintedToken.trust_id == trust.id)
        ended = session.execute(
            delete(ResourceAccessToken).where(ResourceAccessToken.id.in_(minted)),
            execution_options={"synchronize_session": False},
        )
        session.delete(trust)
        session.flush()
        return int(getattr(ended, "rowcount", 0) or 0)
