"""Queries of the credentials aggregate: personal access tokens, app passwords, resource
access tokens, their last use, and the credential generation that invalidates caches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, delete, func, or_, select, update

from gitward.domain.bbql import NO_CRITERIA, Criteria
from gitward.storage.common import Page, Window, scalars_page
from gitward.storage.models import (
    ApiToken,
    AppPassword,
    NarrowedRevocation,
    PersonalAccessToken,
    ResourceAccessToken,
    User,
    WebSession,
)
from gitward.storage.query import RESOURCE_TOKENS
from gitward.storage.unit import Unit

#: A personal access token by its hash, with its owner's standing, in one prebuilt statement
#: (the cache-miss path of a PAT request).
_PAT_BY_HASH = (
    select(
        PersonalAccessToken.id,
        PersonalAccessToken.user_id,
        PersonalAccessToken.repo_permission,
        PersonalAccessToken.project_permission,
        PersonalAccessToken.expires_on,
        User.username,
        User.is_active,
        User.is_site_admin,
        PersonalAccessToken.allowed_ips,
        PersonalAccessToken.ref_patterns,
        PersonalAccessToken.fast_forward_only,
    )
    .join(User, User.id == PersonalAccessToken.user_id)
    .where(PersonalAccessToken.token_hash == bindparam("token_hash"))
)
#: The same columns, by the token's public narrowing key (a narrowed token's parent): the
#: rows of both have one shape, whatever columns the first one reads.
_PAT_BY_NARROWING_KEY = (
    select(*_PAT_BY_HASH.selected_columns)
    .select_from(PersonalAccessToken)
    .join(User, User.id == PersonalAccessToken.user_id)
    .where(PersonalAccessToken.narrowing_key == bindparam("narrowing_key"))
)
_RESOURCE_TOKEN_BY_NARROWING_KEY = select(ResourceAccessToken).where(
    ResourceAccessToken.narrowing_key == bindparam("narrowing_key")
)
_APP_PASSWORD_BY_HASH = select(
    AppPassword.id, AppPassword.user_id, AppPassword.scopes, AppPassword.allowed_ips
).where(AppPassword.token_hash == bindparam("token_hash"))
#: An API token by its hash, with its owner's standing, in one prebuilt statement.
_API_TOKEN_BY_HASH = (
    select(
        ApiToken.id,
        ApiToken.scopes,
        ApiToken.expires_on,
        ApiToken.allowed_ips,
        User.id,
        User.username,
        User.email,
        User.is_active,
        User.is_site_admin,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)
_SESSION_BY_HASH = select(
    WebSession.id,
    WebSession.user_id,
    WebSession.signed_in_on,
    WebSession.last_seen_on,
    WebSession.expires_on,
).where(WebSession.token_hash == bindparam("token_hash"))
_RESOURCE_TOKEN_BY_HASH = select(ResourceAccessToken).where(
    ResourceAccessToken.token_hash == bindparam("token_hash")
)

#: The models whose rows record a last use (`note_use`).
UsedCredential = (
    type[PersonalAccessToken] | type[AppPassword] | type[ResourceAccessToken] | type[ApiToken]
    | Any
)


class Credentials:
    """The stored credentials of users and resources. Secrets are never here, only hashes."""

    __slots__ = ("_unit", "generation")

    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        #: The generation now (once per unit of work: a change made in it resets it): the
        #: unit's own method, so that every token look-up reads it without another call.
        self.generation: Callable[[], int] = unit.generation

    # -- the credential generation ----------------------------------------------------------

    def changed(self) -> None:
        """A credential (or what bounds one) ended or changed: bump the credential generation
        in this transaction, so every cached look-up on every process is re-read once it
        commits (see credentials/cache.py)."""
        self._unit.bump()

    # -- last use ------------------------------------------------------------------------------

    def note_use(
        self,
        model: UsedCredential,
        credential_id: int,
        ip: str | None,
        *,
        now: datetime,
        not_since: datetime,
        column: str = "last_used_on",
    ) -> None:
        """Record a use (time and address) unless one since `not_since` is recorded already:
        the conditional UPDATE keeps a credential's row written at most once per interval,
        whatever the number of processes serving it."""
        recorded = getattr(model, column)
        self._unit.session.execute(
            update(model)
            .where(model.id == credential_id, or_(recorded.is_(None), recorded <= not_since))
            .values({column: now, "last_ip": ip})
            .execution_options(synchronize_session=False)
        )

    # -- personal access tokens ------------------------------------------------------------

    def pat_by_hash(
        self, token_hash: str
    ) -> Row[
        int, int, str, str | None, datetime | None, str, bool, bool, str | None, str | None, bool
    ] | None:
        """The token's columns and its owner's standing (prebuilt Core)."""
        return self._unit.session.connection().execute(
            _PAT_BY_HASH, {"token_hash": token_hash}
        ).first()

    def pat_count(self, user_id: int) -> int:
        return (
            self._unit.session.scalar(
                select(func.count())
                .select_from(PersonalAccessToken)
                .where(PersonalAccessToken.user_id == user_id)
            )
            or 0
        )

    def pats_of(self, user_id: int, window: Window) -> Page[PersonalAccessToken]:
        """A user's tokens, newest first."""
        return scalars_page(
            self._unit.session,
            select(PersonalAccessToken)
            .where(PersonalAccessToken.user_id == user_id)
            .order_by(PersonalAccessToken.created_on.desc(), PersonalAccessToken.id.desc()),
            window,
        )

    def pat_by_id(self, token_id: int) -> PersonalAccessToken | None:
        return self._unit.session.get(PersonalAccessToken, token_id)

    # -- app passwords ---------------------------------------------------------------------

    def app_password_by_hash(self, token_hash: str) -> tuple[int, int, str, str | None] | None:
        """(id, user_id, scopes, allowed_ips) of the app password with this hash."""
        hit = self._unit.session.execute(_APP_PASSWORD_BY_HASH, {"token_hash": token_hash}).first()
        return None if hit is None else (hit[0], hit[1], hit[2], hit[3])

    def app_passwords_of(self, user_id: int, window: Window) -> Page[AppPassword]:
        """A user's app passwords, newest first."""
        return scalars_page(
            self._unit.session,
            select(AppPassword).where(AppPassword.user_id == user_id)
            .order_by(AppPassword.id.desc()),
            window,
        )

    def app_password_of(self, user_id: int, app_id: int) -> AppPassword | None:
        row = self._unit.session.get(AppPassword, app_id)
        return row if row is not None and row.user_id == user_id else None

    # -- API tokens --------------------------------------------------------------------------

    def api_token_by_hash(
        self, token_hash: str
    ) -> Row[int, str, datetime, str | None, int, str, str, bool, bool] | None:
        """(id, scopes, expires_on, allowed_ips) of the API token with this hash and its
        owner's (id, username, email, is_active, is_site_admin), in one statement."""
        return self._unit.session.connection().execute(
            _API_TOKEN_BY_HASH, {"token_hash": token_hash}
        ).first()

    def api_tokens_of(self, user_id: int, window: Window) -> Page[ApiToken]:
        """A user's API tokens, newest first."""
        return scalars_page(
            self._unit.session,
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc()),
            window,
        )

    def api_token_of(self, user_id: int, token_id: int) -> ApiToken | None:
        row = self._unit.session.get(ApiToken, token_id)
        return row if row is not None and row.user_id == user_id else None

    def api_token_count(self, user_id: int) -> int:
        return (
            self._unit.session.scalar(
                select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user_id)
            )
            or 0
        )

    # -- resource access tokens --------------------------------------------------------------

    def resource_token_by_hash(self, token_hash: str) -> ResourceAccessToken | None:
        """The token with this hash."""
        found: ResourceAccessToken | None = self._unit.session.scalar(
            _RESOURCE_TOKEN_BY_HASH, {"token_hash": token_hash}
        )
        return found

    def resource_token_by_id(self, token_id: int) -> ResourceAccessToken | None:
        return self._unit.session.get(ResourceAccessToken, token_id)

    # -- narrowed tokens (their parents, and those revoked on their own) -------------------

    def pat_by_narrowing_key(
        self, narrowing_key: str
    ) -> Row[int, int, str, str | None, datetime | None, str, bool, bool, str | None] | None:
        """As `pat_by_hash`, by the token's public narrowing key."""
        return self._unit.session.connection().execute(
            _PAT_BY_NARROWING_KEY, {"narrowing_key": narrowing_key}
        ).first()

    def resource_token_by_narrowing_key(self, narrowing_key: str) -> ResourceAccessToken | None:
        found: ResourceAccessToken | None = self._unit.session.scalar(
            _RESOURCE_TOKEN_BY_NARROWING_KEY, {"narrowing_key": narrowing_key}
        )
        return found

    def narrowed_revoked(self, block_keys: list[str]) -> bool:
        """Was a narrowed token holding any of these block keys revoked on its own?"""
        hit = self._unit.session.scalar(
            select(NarrowedRevocation.block_key)
            .where(NarrowedRevocation.block_key.in_(block_keys))
            .limit(1)
        )
        return hit is not None

    def revoke_narrowed(
        self, block_key: str, *, personal_token_id: int | None = None,
        resource_token_id: int | None = None,
    ) -> None:
        if self._unit.session.get(NarrowedRevocation, block_key) is None:
            self._unit.session.add(NarrowedRevocation(
                block_key=block_key, personal_token_id=personal_token_id,
                resource_token_id=resource_token_id,
            ))
            self._unit.session.flush()

    def _on(
        self, kind: str, workspace_id: int, project_id: int | None, repository_id: int | None
    ) -> Select[ResourceAccessToken]:
        query = select(ResourceAccessToken).where(
            ResourceAccessToken.kind == kind, ResourceAccessToken.workspace_id == workspace_id
        )
        if project_id is not None:
            query = query.where(ResourceAccessToken.project_id == project_id)
        if repository_id is not None:
            query = query.where(ResourceAccessToken.repository_id == repository_id)
        return query

    def resource_tokens(
        self,
        kind: str,
        workspace_id: int,
        project_id: int | None,
        repository_id: int | None,
        window: Window,
        criteria: Criteria = NO_CRITERIA,
    ) -> Page[ResourceAccessToken]:
        """The access tokens of one resource, newest first (or by `criteria`'s sort),
        filtered by `criteria`'s query."""
        query = self._on(kind, workspace_id, project_id, repository_id)
        clause = RESOURCE_TOKENS.where(criteria)
        if clause is not None:
            query = query.where(clause)
        order = RESOURCE_TOKENS.order_by(criteria, [ResourceAccessToken.id.desc()])
        return scalars_page(self._unit.session, query.order_by(*order), window)

    def resource_token(
        self,
        kind: str,
        workspace_id: int,
        project_id: int | None,
        repository_id: int | None,
        token_id: int,
    ) -> ResourceAccessToken | None:
        return self._unit.session.scalar(
            self._on(kind, workspace_id, project_id, repository_id)
            .where(ResourceAccessToken.id == token_id)
        )

    # -- web sessions ------------------------------------------------------------------------

    def session_by_hash(
        self, token_hash: str
    ) -> Row[int, int, datetime, datetime, datetime] | None:
        """(id, user_id, signed_in_on, last_seen_on, expires_on) of the session."""
        return self._unit.session.connection().execute(
            _SESSION_BY_HASH, {"token_hash": token_hash}
        ).first()

    def sessions_of(self, user_id: int, window: Window) -> Page[WebSession]:
        """A user's sessions, most recently seen first."""
        return scalars_page(
            self._unit.session,
            select(WebSession).where(WebSession.user_id == user_id)
            .order_by(WebSession.last_seen_on.desc(), WebSession.id.desc()),
            window,
        )

    def session_by_id(self, session_id: int) -> WebSession | None:
        return self._unit.session.get(WebSession, session_id)

    def session_of(self, user_id: int, session_id: int) -> WebSession | None:
        row = self._unit.session.get(WebSession, session_id)
        return row if row is not None and row.user_id == user_id else None

    def end_sessions_of(self, user_id: int, *, keep: int | None = None) -> int:
        """End every session of the user (but `keep`); the number ended. The caller bumps
        the generation (`changed`)."""
        query = delete(WebSession).where(WebSession.user_id == user_id)
        if keep is not None:
            query = query.where(WebSession.id != keep)
        result = self._unit.session.execute(
            query.execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def end_expired_sessions(self, user_id: int, now: datetime, idle_before: datetime) -> None:
        """Drop the user's sessions that can no longer be used (housekeeping at sign-in)."""
        self._unit.session.execute(
            delete(WebSession)
            .where(
                WebSession.user_id == user_id,
                or_(WebSession.expires_on <= now, WebSession.last_seen_on <= idle_before),
            )
            .execution_options(synchronize_session=False)
        )
