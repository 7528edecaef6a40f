"""Web sessions (`gwses_`): the `gitward_session` cookie of a person signed in to the pages.

A session is a credential kind of its own: an opaque random secret (in the format of every
Gitward secret, so that a scanner recognises a leaked cookie) whose keyed hash is all the
database keeps. It is interactive (a person who typed their password), bounded by nothing but
its user's live standing, and presented only as the cookie: `presentation_check` refuses it
as Basic or Bearer, and the REST and Git surfaces never read the cookie at all, so there a
cookie alone is anonymous.

It ends when it has not been used for `session_idle_seconds` (8 h), at `expires_on`
(`session_lifetime_seconds` after sign-in, 7 days), when the user signs out or ends it from
the sessions page, and when the user is deactivated or deleted. Ending one deletes its row and
bumps the credential generation, so that no process trusts a cached look-up of it again.

"Fresh" means the password was typed for this session within `session_fresh_seconds` (10
minutes): the pages ask for it again before they create a credential with an older one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gitward.credentials.cache import CredentialCache
from gitward.credentials.registry import (
    AuthenticationFailed,
    Leak,
    Presented,
    presentation_check,
)
from gitward.credentials.stored import StoredSecretKind
from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.storage.models import WebSession, utcnow
from gitward.storage.store import Store

PREFIX = "gwses_"
#: The cookie's name (fixed: scripts and proxies may look for it).
COOKIE = "gitward_session"
MAX_USER_AGENT = 255
MAX_SEEN = 100_000

_CHECK_PRESENTATION = presentation_check(CredentialKind.SESSION)
ENDED = "Your session has ended; sign in again."


@dataclass(frozen=True)
class CachedSession:
    id: int
    user_id: int
    last_seen_on: datetime
    expires_on: datetime


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta
    fresh: timedelta


class Sessions(StoredSecretKind[CachedSession]):
    """Starting, authenticating, refreshing and ending web sessions."""

    prefix = PREFIX

    def __init__(
        self,
        secret_key: bytes,
        cache: CredentialCache[CachedSession],
        lifetimes: Lifetimes,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(secret_key, cache, clock)
        self.lifetimes = lifetimes
        # When this process last saw each session used: the row's `last_seen_on` is written
        # at most once a minute, so the idle check also trusts what this process saw itself.
        self._seen: dict[int, datetime] = {}
        self._seen_lock = threading.Lock()

    def start(
        self, store: Store, user_id: int, client_ip: str | None, user_agent: str
    ) -> tuple[str, WebSession]:
        """A new session for a user who has just typed their password: the cookie's secret
        (to hand to the browser once) and the row."""
        now = self.clock()
        store.credentials.end_expired_sessions(user_id, now, now - self.lifetimes.idle)
        secret, token_hash = self.issue(PREFIX)
        row = WebSession(
            user_id=user_id,
            token_hash=token_hash,
            created_on=now,
            signed_in_on=now,
            last_seen_on=now,
            expires_on=now + self.lifetimes.absolute,
            created_ip=client_ip,
            last_ip=client_ip,
            user_agent=_printable(user_agent)[:MAX_USER_AGENT],
        )
        store.add(row)
        store.flush()
        return secret, row

    def authenticate(self, store: Store, presented: Presented) -> AuthContext:
        _CHECK_PRESENTATION(presented)
        generation = store.credentials.generation()
        token_hash, found = self.look_up(presented.secret, generation)
        now = self.clock()
        if found is not None and self._idle(found, now):
            # Another process may have seen it used since this one cached it: read again.
            self.cache.forget(token_hash)
            found = None
        if found is None:
            hit = store.credentials.session_by_hash(token_hash)
            if hit is None:
                raise AuthenticationFailed(ENDED, audit_subject="session:unknown")
            found = CachedSession(int(hit.id), int(hit.user_id), hit.last_seen_on,
                                  hit.expires_on)
            self.remember(token_hash, generation, found)
        subject = f"session:{found.id}"
        if now >= found.expires_on or self._idle(found, now):
            raise AuthenticationFailed(ENDED, audit_subject=subject)
        user, _ = store.accounts.user_standing(found.user_id)
        if user is None or not user.is_active:
            raise AuthenticationFailed("This account cannot sign in.", audit_subject=subject)
        # A temporary password (set by an administrator) signs in only to be changed: the
        # session carries that, and the policy allows it nothing else until then.
        must_change = user.must_change_password
        with self._seen_lock:
            if len(self._seen) >= MAX_SEEN:
                self._seen.clear()  # only ever a shortcut: the rows hold the last use too
            self._seen[found.id] = now
        self.note_use(store, WebSession, found.id, presented.client_ip, column="last_seen_on")
        return AuthContext(
            UserPrincipal(user.id, user.username, user.is_site_admin),
            CredentialKind.SESSION,
            credential_id=found.id,
            must_change_password=must_change,
        )

    def _idle(self, session: CachedSession, now: datetime) -> bool:
        last = max(session.last_seen_on, self._seen.get(session.id, session.last_seen_on))
        return now - last >= self.lifetimes.idle

    def is_fresh(self, store: Store, ctx: AuthContext) -> bool:
        """Did the user type their password for this session within the fresh window?"""
        row = self._row(store, ctx)
        return row is not None and self.clock() - row.signed_in_on < self.lifetimes.fresh

    def refresh(self, store: Store, ctx: AuthContext) -> None:
        """The user has just typed their password again for this session."""
        row = self._row(store, ctx)
        if row is not None:
            row.signed_in_on = self.clock()
            store.flush()

    def end(self, store: Store, ctx: AuthContext, session_id: int | None = None) -> bool:
        """End one of the user's sessions (by default the one of `ctx`)."""
        user = ctx.user
        target = session_id if session_id is not None else ctx.credential_id
        if user is None or target is None:
            return False
        row = store.credentials.session_of(user.user_id, target)
        if row is None:
            return False
        store.delete(row)
        store.flush()
        store.credentials.changed()
        return True

    def _row(self, store: Store, ctx: AuthContext) -> WebSession | None:
        user = ctx.user
        if ctx.credential is not CredentialKind.SESSION or user is None:
            return None
        if ctx.credential_id is None:
            return None
        return store.credentials.session_of(user.user_id, ctx.credential_id)

    # -- leaks (push protection) -----------------------------------------------------------

    def leaked(self, store: Store, secret: str) -> Leak | None:
        hit = store.credentials.session_by_hash(self.hash(secret))
        if hit is None:
            return None
        now = self.clock()
        if now >= hit.expires_on or now - hit.last_seen_on >= self.lifetimes.idle:
            return None
        user = store.accounts.user_by_id(int(hit.user_id))
        return Leak(
            PREFIX, "web session", int(hit.id), "",
            owner=f"user:{user.username if user else hit.user_id}",
            owner_user_id=int(hit.user_id),
        )

    def revoke_leaked(self, store: Store, leak: Leak) -> None:
        row = store.credentials.session_by_id(leak.credential_id)
        if row is not None:
            store.delete(row)
            store.flush()


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())
