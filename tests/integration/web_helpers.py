"""Driving the pages in process, as a browser would: cookies kept by the AppClient, the
`csrf_token` read from the page's form."""

from __future__ import annotations

import re

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
SECRET = re.compile(r'id="new-secret">([^<]+)<')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no csrf_token in the page"
    return found.group(1)


def page_csrf(client, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return csrf_of(r.text)


def sign_in(client, account, otp: str | None = None, next_path: str = "/"):
    token = page_csrf(client, "/login")
    form = {"username": account.username, "password": account.password, "csrf_token": token,
            "next": next_path}
    if otp is not None:
        form["otp"] = otp
    return client.post("/login", data=form, follow_redirects=False)


def post(client, path: str, data: dict | None = None, *, page: str | None = None):
    """A form of `page` (default: `path`) posted with its csrf_token."""
    token = page_csrf(client, page or path)
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=False)


def new_secret(html: str) -> str:
    found = SECRET.search(html)
    assert found, "no #new-secret in the page"
    return found.group(1).strip()
