"""Queries of the accounts aggregate: users, two-step verification, recovery codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, bindparam, delete, func, or_, select, update

from gitward.storage.common import EVERYTHING, Page, Window, contains, scalars_page, storable
from gitward.storage.database import take_setup_lock
from gitward.storage.models import RecoveryCode, User
from gitward.storage.unit import Unit

_USER_STANDING = select(
    User.username, User.is_active, User.is_site_admin, User.must_change_password
).where(
    User.id == bindparam("user_id", type_=Integer)
)

_UUID_REF = re.compile(r"^\{([0-9a-fA-F-]{36})\}$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class UserStanding:
    id: int
    username: str
    is_active: bool
    is_site_admin: bool
    #: Signed in with a temporary password set by a site administrator (services/passwords).
    must_change_password: bool = False


class Accounts:
    """Users and what belongs to one user's sign-in (TOTP steps, recovery codes)."""

    __slots__ = ("_unit", "_users")

    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        # The session's identity map holds rows weakly: without a reference of our own the
        # user row read while authenticating is gone again by the time the access check asks
        # for it, and is read a second time.
        self._users: dict[int, User] = {}

    def lock_for_setup(self) -> None:
        """Until this unit of work ends, no other host runs its start-up's one-time work."""
        take_setup_lock(self._unit.session.connection())

    def user_count(self) -> int:
        return self._unit.session.scalar(select(func.count()).select_from(User)) or 0

    def user_by_id(self, user_id: int) -> User | None:
        """The user row; read once per unit of work (`session.get` answers repeats from the
        identity map, and still knows of a deletion flushed meanwhile)."""
        user = self._unit.session.get(User, user_id)
        if user is not None:
            self._users[user_id] = user
        return user

    def user_standing(self, user_id: int) -> tuple[UserStanding | None, int]:
        """What authentication needs of an account, as of now, and the generation: from the
        read cache while the generation is unchanged (any change to a user row bumps it),
        else in one prebuilt Core statement (run on every token request)."""
        generation = self._unit.generation()

        def read() -> UserStanding | None:
            row = self._unit.session.connection().execute(
                _USER_STANDING, {"user_id": user_id}
            ).one_or_none()
            return None if row is None else UserStanding(
                user_id, row[0], bool(row[1]), bool(row[2]), bool(row[3])
            )

        return self._unit.cached(("standing", user_id), read), generation

    def user_by_username(self, username: str) -> User | None:
        if not storable(username):
            return None
        return self._unit.session.scalar(select(User).where(User.username == username.lower()))

    def users(
        self,
        window: Window = EVERYTHING,
        *,
        text: str | None = None,
        user_id: int | None = None,
    ) -> Page[User]:
        """Users by username, narrowed in SQL to those whose username, display name or email
        contains `text` (any case) and to one user, when those are given."""
        query = select(User)
        if user_id is not None:
            query = query.where(User.id == user_id)
        if text:
            query = query.where(
                or_(*(contains(column, text) for column in (User.username, User.display_name,
                                                            User.email)))
            )
        return scalars_page(self._unit.session, query.order_by(User.username), window)

    def user_by_ref(self, ref: str) -> User | None:
        """A user named by username, `{uuid}` or account_id, as the Cloud API allows."""
        if not storable(ref):
            return None
        match = _UUID_REF.match(ref)
        if match:
            by_uuid = select(User).where(User.uuid == match.group(1).lower())
            return self._unit.session.scalar(by_uuid)
        if _ACCOUNT_ID.match(ref):
            as_uuid = "-".join((ref[:8], ref[8:12], ref[12:16], ref[16:20], ref[20:]))
            user = self._unit.session.scalar(select(User).where(User.uuid == as_uuid))
            if user is not None:
                return user
        return self.user_by_username(ref)

    # -- two-step verification ------------------------------------------------------------

    def advance_totp_step(self, user_id: int, step: int) -> bool:
        """Record a TOTP time step as used; False if it (or a later one) was used already.
        One conditional UPDATE, so of two requests racing with one code only one wins."""
        result = self._unit.session.execute(
            update(User)
            .where(
                User.id == user_id,
                (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def spend_recovery_code(self, user_id: int, code_hash: str, now: datetime) -> bool:
        """Mark an unused recovery code used; False if there is none (or it was spent)."""
        spent = self._unit.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_on.is_(None),
            )
            .values(used_on=now)
        )
        return bool(spent.rowcount == 1)  # type: ignore[attr-defined]

    def delete_recovery_codes(self, user_id: int) -> None:
        self._unit.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
