"""Notices to users about their credentials (docs/notices.md):

- a credential used from an address, or by a client, it was never used from before;
- a credential about to expire, 7 days and again 1 day ahead.

Each is an audit event, a notice on the user's page (`/account/notifications`) and, when
the site has a relay (`GITWARD_SMTP_URL`), a mail. The notice is stored first, in the
transaction that decided it; the mail follows from that store (`mail_pending`), so a relay
that is down delays mail and loses none.
"""

from __future__ import annotations

import logging
import re
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gitward import mail
from gitward.domain.identity import AuthContext, CredentialKind, TokenPrincipal
from gitward.storage.common import Page, Window
from gitward.storage.models import Notification, utcnow
from gitward.storage.store import Store

log = logging.getLogger(__name__)

NEW_ADDRESS = "credential.new-address"
NEW_CLIENT = "credential.new-client"
EXPIRING = "credential.expiring"

#: Expiry notices: this long ahead, each once per credential.
AHEAD = (timedelta(days=7), timedelta(days=1))
#: Mail: attempts per notice, and how long a mailer holds the notices it sends.
MAIL_ATTEMPTS = 5
MAIL_CLAIM = timedelta(minutes=5)
MAIL_BATCH = 50
#: Notices older than this are not mailed any more (a relay set up today does not send a
#: year of them); they stay on the user's page.
MAIL_WITHIN = timedelta(days=2)

#: The credentials whose addresses and clients are watched: those a person creates and
#: hands to something else. Passwords and sessions are the person; OAuth access tokens
#: live two hours and are watched through their consumer's authorization.
WATCHED = frozenset({
    CredentialKind.PERSONAL_ACCESS_TOKEN.value,
    CredentialKind.APP_PASSWORD.value,
    CredentialKind.API_TOKEN.value,
    CredentialKind.REPOSITORY_ACCESS_TOKEN.value,
    CredentialKind.PROJECT_ACCESS_TOKEN.value,
    CredentialKind.WORKSPACE_ACCESS_TOKEN.value,
})

_NAMES = {
    "personal_access_token": "personal access token",
    "app_password": "app password",
    "api_token": "API token",
    "repository_access_token": "repository access token",
    "project_access_token": "project access token",
    "workspace_access_token": "workspace access token",
}
_PAGES = {
    "personal_access_token": "/account/personal-access-tokens",
    "app_password": "/account/app-passwords",
    "api_token": "/account/api-tokens",
}

_PRODUCT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def client_of(user_agent: str | None) -> str | None:
    """The client a User-Agent names: its first product, without the version
    (`git/2.39.2` → `git`, `python-requests/2.32` → `python-requests`), so that an upgrade
    is not a new client; None when there is none."""
    if not user_agent:
        return None
    found = _PRODUCT.match(user_agent.strip())
    return found.group(0).lower() if found else None


class Sightings:
    """What this process already knows each credential was used from, so that only the
    first request from somewhere new writes. Bounded: past `limit` entries it starts
    again (a forgotten sighting costs one write that finds it known)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._seen: set[tuple[str, int, str, str]] = set()
        #: (kind, id, address, User-Agent) of requests already looked at: the one set
        #: look-up a request from somewhere known costs.
        self.requests: set[tuple[str, int, str | None, str | None]] = set()
        self._lock = threading.Lock()

    def new(self, key: tuple[str, int, str, str]) -> bool:
        if key in self._seen:
            return False
        with self._lock:
            if len(self._seen) >= self.limit:
                self._seen.clear()
            self._seen.add(key)
        return True

    def looked_at(self, key: tuple[str, int, str | None, str | None]) -> None:
        with self._lock:
            if len(self.requests) >= self.limit:
                self.requests.clear()
            self.requests.add(key)


def note_sighting(
    sightings: Sightings, store: Store, ctx: AuthContext, address: str | None,
    user_agent: str | None, base_url: str | None,
) -> None:
    """Called for every request authenticated by a watched credential: a first sighting
    (in this process) is checked against the database after the request, in a transaction
    of its own that never fails the request (`Store.defer`)."""
    kind = ctx.credential._value_  # the enum's `.value` is a Python property
    credential_id = ctx.credential_id
    assert credential_id is not None
    request = (kind, credential_id, address, user_agent)
    if request in sightings.requests:
        return
    sightings.looked_at(request)
    client = client_of(user_agent)
    for what, value in (("address", address), ("client", client)):
        if value and sightings.new((kind, credential_id, what, value[:128])):
            store.defer(_sighting(ctx, kind, credential_id, what, value[:128], address,
                                  client, base_url))


def _sighting(
    ctx: AuthContext, kind: str, credential_id: int, what: str, value: str,
    address: str | None, client: str | None, base_url: str | None,
) -> Callable[[Store], None]:
    def write(later: Store) -> None:
        now = utcnow()
        new, seen_before = later.notices.sight(kind, credential_id, what, value, now)
        # The first use of all sets where it is used from: its owner just made it.
        if not (new and seen_before):
            return
        user_id = _owner(later, ctx)
        action = NEW_ADDRESS if what == "address" else NEW_CLIENT
        later.audit.record(
            action, actor=_actor(ctx), actor_user_id=ctx.user.user_id if ctx.user else None,
            target=f"{kind}:{credential_id}", client_ip=address, credential=kind,
            **{what: value},
        )
        if user_id is None:
            return
        name = later.notices.credential_name(kind, credential_id) or f"#{credential_id}"
        noun = _NAMES.get(kind, kind)
        if what == "address":
            subject = f"Your {noun} \u201c{name}\u201d was used from a new address"
            first = f"Your {noun} \u201c{name}\u201d was just used from {value}, an address "
            first += "it had never been used from."
        else:
            subject = f"Your {noun} \u201c{name}\u201d was used by a new client"
            first = f"Your {noun} \u201c{name}\u201d was just used by {value}, a client it had "
            first += "never been used by."
        body = "\n".join([
            first,
            "",
            f"When: {now:%Y-%m-%d %H:%M} UTC",
            f"Address: {address or 'unknown'}",
            f"Client: {client or 'unknown'}",
            "",
            "If this was not you or something you run, revoke it now"
            + (f": {base_url or ''}{_PAGES[kind]}" if kind in _PAGES else
               " from its resource's access token settings."),
        ])
        later.notices.add(user_id, action, subject, body)

    return write


def _owner(store: Store, ctx: AuthContext) -> int | None:
    if ctx.user is not None:
        return ctx.user.user_id
    if isinstance(ctx.principal, TokenPrincipal):
        return store.notices.resource_token_creator(ctx.principal.token_id)
    return None


def _actor(ctx: AuthContext) -> str:
    principal = ctx.principal
    if ctx.user is not None:
        return f"user:{ctx.user.username}"
    if isinstance(principal, TokenPrincipal):
        return f"token:{principal.kind.value}:{principal.token_id}"
    return "anonymous"


# -- expiry --------------------------------------------------------------------------------


def expiry_sweep(store: Store, base_url: str | None = None,
                 now: datetime | None = None) -> int:
    """Notices for credentials expiring within 7 days (and again within 1): each
    (credential, threshold) once, whichever worker or host finds it first. Returns how many
    notices it added."""
    now = now or utcnow()
    added = 0
    for due in store.notices.expiring(now, now + AHEAD[0]):
        left = due.expires_on - now
        ahead = min((a for a in AHEAD if left <= a), default=AHEAD[0])
        days = ahead.days
        once = f"expiring:{days}d:{due.credential}:{due.credential_id}"
        noun = _NAMES.get(due.credential, due.credential)
        subject = (f"Your {noun} \u201c{due.name}\u201d expires in "
                   f"{'1 day' if days == 1 else f'{days} days'}")
        page = _PAGES.get(due.credential)
        body = "\n".join([
            f"Your {noun} \u201c{due.name}\u201d expires on {due.expires_on:%Y-%m-%d %H:%M} UTC.",
            "",
            "Whatever uses it stops working then. Create a new one before, and replace it"
            + (f": {base_url or ''}{page}" if page else " where it is used."),
        ])
        if store.notices.add(due.user_id, EXPIRING, subject, body, once_key=once):
            added += 1
            store.audit.record(
                "credential.expiry-notice", actor="gitward", target=
                f"{due.credential}:{due.credential_id}", days=days,
                expires_on=due.expires_on.isoformat(),
            )
    return added


# -- mail ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    ids: list[int]
    mails: list[mail.Mail]


def claim_mail(store: Store, now: datetime | None = None) -> Outgoing:
    now = now or utcnow()
    claimed = store.notices.claim_unmailed(
        now, now + MAIL_CLAIM, MAIL_ATTEMPTS, MAIL_BATCH, now - MAIL_WITHIN
    )
    return Outgoing(
        [n.id for n, _ in claimed],
        [mail.Mail(email, n.subject, n.body) for n, email in claimed],
    )


def send_claimed(relay: mail.Relay, sender: str, outgoing: Outgoing) -> str | None:
    """Send what was claimed (outside any unit of work: the relay may be slow); the error,
    if it failed."""
    try:
        mail.send(relay, sender, outgoing.mails)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("could not mail %d notices: %s", len(outgoing.mails), exc)
        return f"{type(exc).__name__}: {exc}"[:255]
    return None


# -- the user's page -------------------------------------------------------------------------


def of_user(store: Store, user_id: int, window: Window) -> Page[Notification]:
    """A user's notices, newest first (the caller is that user: web/ui/account.py)."""
    return store.notices.of_user(user_id, window)


def mark_read(store: Store, user_id: int) -> None:
    store.notices.mark_read(user_id, utcnow())
