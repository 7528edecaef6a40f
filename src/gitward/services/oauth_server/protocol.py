"""What Gitward's OAuth server decides around authlib: the grants it offers, scope
narrowing, loopback callbacks, safe error descriptions, and keeping issued tokens out of
authlib's logs."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidScopeError,
)

from gitward.domain.permissions import Scope, parse_scopes


class _NoIssuedTokens(logging.Filter):
    """authlib's grants log every token they issue, in clear, at DEBUG ("Issue token %r to
    %r"). Secrets never reach a log, whatever the level: those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Issue token")


for _module in ("authorization_code", "client_credentials", "implicit", "refresh_token",
                "resource_owner_password_credentials"):
    logging.getLogger(f"authlib.oauth2.rfc6749.grants.{_module}").addFilter(_NoIssuedTokens())

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_CLIENT = "client_credentials"
GRANT_JWT = "urn:bitbucket:oauth2:jwt"
SUPPORTED_GRANTS = (GRANT_CODE, GRANT_REFRESH, GRANT_CLIENT, GRANT_JWT)
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

PUBLIC_CLIENT_CREDENTIALS = (
    'Cannot use client_credentials with a consumer marked as "public". '
    "Calls for auto generated consumers should use urn:bitbucket:oauth2:jwt instead."
)


def error_text_allows(char: str) -> bool:
    """A character RFC 6749 allows in error_description (%x20-21 / %x23-5B / %x5D-7E), which
    authlib refuses to put anything else in."""
    return 0x20 <= ord(char) <= 0x7E and char not in '"\\'


def safe_description(text: str) -> str:
    """`text` with every character error_description may not hold (such as in an echoed
    parameter) turned into "?"."""
    return "".join(c if error_text_allows(c) else "?" for c in text)


def scope_text(scopes: frozenset[Scope] | set[Scope]) -> str:
    return " ".join(sorted(s.value for s in scopes))


def narrow_scopes(requested: str | None, allowed: frozenset[Scope]) -> frozenset[Scope]:
    """The scopes asked for (space or comma separated), which must lie within `allowed`;
    everything allowed when none is asked for."""
    if requested is None or not requested.strip():
        return allowed
    try:
        scopes = parse_scopes(requested)
    except ValueError as error:
        raise InvalidScopeError(safe_description(str(error)[:200])) from None
    beyond = scopes - allowed
    if beyond:
        raise InvalidScopeError(
            f"The scope(s) {scope_text(beyond)} exceed what may be granted here: "
            f"{scope_text(allowed) or 'none'}"
        )
    return scopes


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def same_loopback_callback(registered: str, given: str) -> bool:
    """True when both are the same http loopback callback, whatever the port of `given`."""
    try:
        want, got = urlsplit(registered), urlsplit(given)
        _ = got.port  # a malformed port raises here
    except ValueError:
        return False
    return (
        want.scheme == got.scheme == "http"
        and want.hostname in LOOPBACK_HOSTS
        and want.hostname == got.hostname
        and "@" not in want.netloc + got.netloc
        and (want.path, want.query, want.fragment) == (got.path, got.query, got.fragment)
    )


class PublicClientCredentials(InvalidGrantError):
    """Bitbucket's exact answer to client credentials from a public consumer. Its text quotes
    "public", which authlib refuses in a description given at construction (RFC 6749 limits
    error_description to characters without the quote); Gitward answers as Bitbucket does, so
    it is the class's description."""

    description = PUBLIC_CLIENT_CREDENTIALS
