"""From the Authorization header to an AuthContext, for every way in (REST and Git)."""

from __future__ import annotations

import base64
import binascii
import logging

from gitward.credentials.registry import AuthenticationFailed, Presented
from gitward.domain.identity import ANONYMOUS_CONTEXT, AuthContext
from gitward.runtime import Runtime
from gitward.storage.store import Store

log = logging.getLogger(__name__)

MAX_AUTHORIZATION_LENGTH = 8192


def parse_authorization(
    header: str | None, client_ip: str | None, otp: str | None = None
) -> Presented | None:
    """None for no credential; AuthenticationFailed for a header we cannot read."""
    if not header:
        return None
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise AuthenticationFailed("Authorization header too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "bearer":
        if not value:
            raise AuthenticationFailed("Empty bearer token")
        return Presented("bearer", value, None, client_ip)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise AuthenticationFailed("Malformed Basic credentials") from None
        username, sep, secret = decoded.partition(":")
        if not sep or not username or not secret:
            raise AuthenticationFailed("Malformed Basic credentials")
        if any(ord(c) < 32 for c in username) or len(username) > 255:
            raise AuthenticationFailed("Malformed Basic credentials: bad username")
        return Presented("basic", secret, username, client_ip, otp[:64] if otp else None)
    raise AuthenticationFailed(f"Unsupported authorization scheme: {scheme[:20]}")


def authenticate(
    runtime: Runtime,
    store: Store,
    header: str | None,
    client_ip: str | None,
    otp: str | None = None,
    session: str | None = None,
) -> AuthContext:
    """The caller's AuthContext, or AuthenticationFailed.

    `session` is the web session cookie, which only the pages pass (web/ui/): every other
    surface leaves it None, so that there a cookie alone is anonymous.

    NOTE: the caller must pass a failure to `record_failure` after its own unit of work has
    ended: SQLite allows one writer, and the failed request may hold the write lock (a spent
    two-step code is an UPDATE), so the audit event is written after. (Password attempts are
    counted by the guessing protection before they are verified: credentials/throttle.py.)
    """
    presented = parse_authorization(header, client_ip, otp)
    if presented is None and session:
        if len(session) > MAX_AUTHORIZATION_LENGTH:
            raise AuthenticationFailed("Session cookie too long")
        presented = Presented("cookie", session, None, client_ip)
    if presented is None:
        return ANONYMOUS_CONTEXT
    return runtime.credentials.authenticate(store, presented)


def record_failure(runtime: Runtime, failure: AuthenticationFailed, client_ip: str | None) -> None:
    """Audit a failed authentication, in its own transaction. (A wrong password was counted
    against guessing before it was verified: credentials/throttle.py.)"""
    try:
        with runtime.unit_of_work() as audit_store:
            audit_store.audit.record(
                "auth.failed",
                actor="anonymous",
                target=failure.audit_subject[:255],
                client_ip=client_ip,
                reason=failure.message,
            )
    except Exception:
        log.exception("could not record a failed authentication")
