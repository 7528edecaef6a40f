"""The authorize page: plain HTML, a sign-in and consent form, nothing else."""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from gitward.storage.models import OAuthConsumer

#: Never framed (clickjacking), never cached, no scripts.
HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    # Nothing of the page (its query names the consumer and the state) goes to another
    # origin; same-origin requests keep their Origin header, which the CSRF check reads
    # (with "no-referrer" the browser sends `Origin: null` even to the page itself).
    "Referrer-Policy": "same-origin",
}
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$")


def content_security_policy(redirect_uri: str) -> str:
    """The page's CSP. Its form posts to the page itself, which answers with a redirect to the
    consumer's callback; browsers apply `form-action` to that redirect too, so the callback's
    origin is allowed beside 'self' (only its scheme, should its host not be a plain name)."""
    parts = urlsplit(redirect_uri)
    authority = parts.netloc.rpartition("@")[2]  # no user info in a CSP source
    host, port = authority, None
    if ":" in authority.rpartition("]")[2]:  # a port (IPv6 hosts are in brackets)
        host, _, port = authority.rpartition(":")
    target = f"{parts.scheme}:"
    if _HOST.match(host) and (port is None or port.isdigit()):
        target = f"{parts.scheme}://{authority}"
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"form-action 'self' {target}; frame-ancestors 'none'"
    )


_SCOPE_TEXT = {
    "repository": "Read your repositories",
    "repository:write": "Read and write to your repositories",
    "repository:admin": "Administer your repositories",
    "repository:delete": "Delete your repositories",
    "pullrequest": "Read your pull requests",
    "pullrequest:write": "Read and modify your pull requests",
    "webhook": "Read and modify your repositories' webhooks",
    "project": "Read your projects",
    "project:admin": "Administer your projects",
    "account": "Read your account information",
    "account:write": "Modify your account information",
    "email": "Read your email addresses",
}


def authorize_page(
    consumer: OAuthConsumer,
    scopes: str,
    redirect_uri: str,
    query: str,
    *,
    message: str | None = None,
    username: str = "",
    status: int = 200,
    csrf: str = "",
    signed_in_as: str | None = None,
) -> HTMLResponse:
    """The page. With `signed_in_as` (a web session), the person only decides; otherwise
    they sign in with their password on the same form. Either way the form carries the
    `csrf_token` of web/ui/csrf.py."""
    items = "".join(
        f"<li><code>{escape(s)}</code> {escape(_SCOPE_TEXT.get(s, ''))}</li>"
        for s in sorted(scopes.split())
    )
    notice = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    action = "/site/oauth2/authorize" + ("?" + query if query else "")
    description = (
        f"<p>{escape(consumer.description)}</p>" if consumer.description else ""
    )
    if signed_in_as is not None:
        credentials = (
            f'<p class="who">Signed in as <strong>{escape(signed_in_as)}</strong>. '
            'Not you? <a href="/login">Sign in as someone else</a>.</p>'
        )
    else:
        credentials = f"""<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{escape(username)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<label for="otp">Two-step verification code (if it is on for your account)</label>
<input id="otp" name="otp" autocomplete="one-time-code" inputmode="numeric">"""
    body = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Authorize {escape(consumer.name)} – Gitward</title>
<style>
body {{ font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em; }}
.error {{ color: #b00; }}
label {{ display: block; margin: .6em 0 .2em; }}
input {{ width: 100%; padding: .3em; box-sizing: border-box; }}
button {{ margin: 1em .5em 0 0; padding: .4em 1.2em; }}
</style>
</head>
<body>
<h1>Authorize {escape(consumer.name)}</h1>
{description}
<p><strong>{escape(consumer.name)}</strong> would like to act on your behalf with these
permissions:</p>
<ul>{items}</ul>
<p>It will be sent to <code>{escape(redirect_uri)}</code>.</p>
{notice}
<form method="post" action="{escape(action)}">
<input type="hidden" name="csrf_token" value="{escape(csrf)}">
{credentials}
<button type="submit" name="decision" value="allow">Grant access</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>
</body>
</html>
"""
    headers = {**HEADERS, "Content-Security-Policy": content_security_policy(redirect_uri)}
    return HTMLResponse(body, status, headers)
