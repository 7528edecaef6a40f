"""CSRF protection for every state-changing form: on by default, checked before the session.

NOTE: the session cookie is ambient authority — a browser sends it with a form that another
site makes it post. So a POST to a page proves it came from one of our own pages before
anything looks at the session: it must carry `csrf_token`, an HMAC (keyed with the server
secret) of a random per-browser cookie (`gitward_csrf`) and of the session cookie itself. A
page on another site can make the browser send both cookies but can read neither, and so
cannot compute the token; a token is also worthless with another browser's or another
session's cookies. A request whose `Origin` names another origin is refused too, whatever
its token. Safety is the default: every POST route of the pages is checked (web/ui/pages.py),
and no route can opt out. The OAuth authorize page uses the same check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from gitward.credentials.session import COOKIE as SESSION_COOKIE
from gitward.web.hosts import base_url

COOKIE = "gitward_csrf"
FIELD = "csrf_token"
_LABEL = b"gitward csrf v1\x00"


def browser_secret(request: HTTPConnection) -> tuple[str, bool]:
    """The browser's CSRF cookie, and whether it is new (to be set on the response)."""
    value = request.cookies.get(COOKIE, "")
    if 20 <= len(value) <= 100 and value.isascii() and value.replace("-", "").replace(
        "_", ""
    ).isalnum():
        return value, False
    return secrets.token_urlsafe(32), True


def token_for(key: bytes, browser: str, session: str | None) -> str:
    """The token the forms of this browser and session carry."""
    message = _LABEL + browser.encode() + b"\x00" + (session or "").encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def same_origin(request: HTTPConnection, origin: str | None) -> bool:
    """True without an Origin header (older browsers, same-origin GETs) or when it names
    this server: its GITWARD_BASE_URL when set (a TLS proxy in front), else the scheme and
    Host the request reached it with."""
    if origin is None:
        return True
    parts = urlsplit(base_url(request))
    expected = f"{parts.scheme}://{parts.netloc}"
    return hmac.compare_digest(origin.strip().lower().encode(), expected.lower().encode())


def check(key: bytes, request: HTTPConnection, submitted: str | None) -> str | None:
    """None when the form came from one of our pages, else why it is refused."""
    if not same_origin(request, request.headers.get("origin")):
        return "The form was sent from another site."
    browser = request.cookies.get(COOKIE)
    if not browser or not submitted:
        return "The form has no valid csrf_token: reload the page and send it again."
    session = request.cookies.get(SESSION_COOKIE)
    expected = token_for(key, browser, session)
    if not hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "replace")):
        return "The form's csrf_token is not valid: reload the page and send it again."
    return None
