"""Queries of notices to users, of where credentials were used from, and of the credentials
about to expire (services/notices.py decides what to say)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gitward.storage.common import Page, Window, scalars_page
from gitward.storage.models import (
    ApiToken,
    AppPassword,
    CredentialSighting,
    Notification,
    PersonalAccessToken,
    ResourceAccessToken,
    User,
    utcnow,
)
from gitward.storage.unit import Unit

_NOTIFICATIONS: Table = Notification.__table__  # type: ignore[assignment]
_SIGHTINGS: Table = CredentialSighting.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Expiring:
    """A credential that expires soon, and whom to tell."""

    credential: str  # the credential kind's value
    credential_id: int
    user_id: int
    name: str
    expires_on: datetime
    where: str  # what it reaches, for the notice ("" for a user's own token)


class Notices:
    __slots__ = ("_unit",)

    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def _insert(self, table: Table) -> Any:
        dialect = self._unit.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    # -- notices -------------------------------------------------------------------------

    def add(self, user_id: int, kind: str, subject: str, body: str,
            once_key: str | None = None) -> bool:
        """A new notice; with a `once_key`, only if none has that key yet (True if added)."""
        statement = self._insert(_NOTIFICATIONS).values(
            user_id=user_id, kind=kind, subject=subject[:255], body=body, once_key=once_key,
            mail_attempts=0, created_on=utcnow(),
        )
        if once_key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=["once_key"])
        # RETURNING says whether a row went in (psycopg's rowcount is -1 after ON CONFLICT).
        result = self._unit.session.execute(statement.returning(_NOTIFICATIONS.c.id))
        return result.first() is not None

    def of_user(self, user_id: int, window: Window) -> Page[Notification]:
        statement = (
            select(Notification).where(Notification.user_id == user_id)
            .order_by(Notification.id.desc())
        )
        return scalars_page(self._unit.session, statement, window)

    def unread(self, user_id: int) -> int:
        return int(self._unit.session.scalar(
            select(func.count()).select_from(Notification).where(
                Notification.user_id == user_id, Notification.read_on.is_(None)
            )
        ) or 0)

    def mark_read(self, user_id: int, now: datetime) -> None:
        self._unit.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.read_on.is_(None))
            .values(read_on=now)
        )

    # -- the mailer's queue --------------------------------------------------------------

    def claim_unmailed(
        self, now: datetime, until: datetime, max_attempts: int, limit: int,
        since: datetime,
    ) -> list[tuple[Notification, str]]:
        """Notices to mail, with their users' addresses, held until `until` by the caller:
        on PostgreSQL rows another mailer holds are skipped (FOR UPDATE SKIP LOCKED); on
        SQLite the write unit holds the database's one write lock, so no other mailer reads
        them meanwhile. A claim that outlives its mailer (a crash) lapses at `until`."""
        session = self._unit.session
        rows = session.execute(
            select(Notification, User.email)
            .join(User, User.id == Notification.user_id)
            .where(
                Notification.mailed_on.is_(None),
                Notification.mail_attempts < max_attempts,
                Notification.created_on >= since,
                or_(Notification.mail_claimed_until.is_(None),
                    Notification.mail_claimed_until < now),
            )
            .order_by(Notification.id)
            .limit(limit)
            .with_for_update(of=Notification, skip_locked=True)
        ).all()
        claimed = [(n, email) for n, email in rows]
        for notice, _ in claimed:
            notice.mail_claimed_until = until
            notice.mail_attempts += 1
        session.flush()
        return claimed

    def settle_mail(self, ids: Sequence[int], now: datetime | None, error: str | None) -> None:
        """Mailed at `now`, or (now None) not mailed this time, for `error`."""
        if not ids:
            return
        values: dict[str, Any] = {"mail_claimed_until": None, "mail_error": error}
        if now is not None:
            values["mailed_on"] = now
        self._unit.session.execute(
            update(Notification).where(Notification.id.in_(ids)).values(**values)
        )

    # -- where credentials were used from -------------------------------------------------

    def sight(self, credential: str, credential_id: int, what: str, value: str,
              now: datetime) -> tuple[bool, bool]:
        """Record that the credential was used from `value`: (new, it had been seen from
        another `what` before)."""
        session = self._unit.session
        before = bool(session.scalar(select(exists().where(
            CredentialSighting.credential == credential,
            CredentialSighting.credential_id == credential_id,
            CredentialSighting.what == what,
        ))))
        result = session.execute(
            self._insert(_SIGHTINGS)
            .values(credential=credential, credential_id=credential_id, what=what,
                    value=value, first_seen=now)
            .on_conflict_do_nothing()
            .returning(_SIGHTINGS.c.value)
        )
        return result.first() is not None, before

    def credential_name(self, credential: str, credential_id: int) -> str | None:
        """The name its owner gave the credential (an app password's label)."""
        column: Any
        if credential == "personal_access_token":
            column = PersonalAccessToken.name
        elif credential == "api_token":
            column = ApiToken.name
        elif credential == "app_password":
            column = AppPassword.label
        elif credential.endswith("_access_token"):
            column = ResourceAccessToken.name
        else:
            return None
        name: str | None = self._unit.session.scalar(
            select(column).where(column.class_.id == credential_id)
        )
        return name

    def resource_token_creator(self, token_id: int) -> int | None:
        """Who created a resource access token, while their account exists."""
        creator: int | None = self._unit.session.scalar(
            select(User.id).join(ResourceAccessToken, ResourceAccessToken.created_by_id == User.id)
            .where(ResourceAccessToken.id == token_id)
        )
        return creator

    # -- credentials about to expire ----------------------------------------------------------

    def expiring(self, now: datetime, until: datetime) -> list[Expiring]:
        """Personal access tokens, API tokens and resource access tokens (told to whoever
        created them) that are live now and expire by `until`."""
        session = self._unit.session
        found: list[Expiring] = []
        for kind, model in (("personal_access_token", PersonalAccessToken),
                            ("api_token", ApiToken)):
            for row in session.execute(
                select(model.id, model.user_id, model.name, model.expires_on).where(
                    model.expires_on.is_not(None), model.expires_on > now,
                    model.expires_on <= until,
                )
            ):
                assert row.expires_on is not None
                found.append(Expiring(kind, row.id, row.user_id, row.name, row.expires_on, ""))
        r = ResourceAccessToken
        for res in session.execute(
            # The creator is kept by id only (the token outlives the account): told only
            # while the account exists.
            select(r.id, r.kind, r.created_by_id, r.name, r.expires_on)
            .join(User, User.id == r.created_by_id)
            .where(r.expires_on.is_not(None), r.expires_on > now, r.expires_on <= until)
        ):
            assert res.created_by_id is not None and res.expires_on is not None
            found.append(Expiring(f"{res.kind}_access_token", res.id, res.created_by_id,
                                  res.name, res.expires_on, res.kind))
        return found
