"""Shared pieces of the OAuth tests: consumers, a real OAuth client (authlib) on the test
transport, and the authorize page driven like a browser would."""

from __future__ import annotations

import re
import secrets
import time
import uuid
import warnings
from urllib.parse import parse_qs, urlsplit

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import OctKey

BASE = "http://testserver"
AUTHORIZE = f"{BASE}/site/oauth2/authorize"
TOKEN = f"{BASE}/site/oauth2/access_token"
REVOKE = f"{BASE}/site/oauth2/revoke"
INTROSPECT = f"{BASE}/site/oauth2/introspect"
CALLBACK = "https://app.example.com/callback"


def create_consumer(client, owner, workspace="acme", **fields):
    body = {"name": "CI app", "callback_url": CALLBACK, "is_private": True,
            "scopes": ["repository"], **fields}
    r = client.post(f"/2.0/workspaces/{workspace}/oauth-consumers", json=body,
                    headers=owner.auth)
    assert r.status_code == 201, r.text
    return r.json()


def oauth_client(client, consumer, *, public=False, **kwargs) -> OAuth2Client:
    """authlib's OAuth 2.0 client, sending its requests through the Starlette test transport."""
    options = {"redirect_uri": CALLBACK, **kwargs}
    if public:
        return OAuth2Client(consumer["key"], token_endpoint_auth_method="none",
                            transport=client._transport, **options)
    return OAuth2Client(consumer["key"], consumer["secret"], transport=client._transport,
                        **options)


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def form_csrf(client, url) -> str:
    """The csrf_token of the authorize page's form (the client keeps the CSRF cookie)."""
    r = client.get(url)
    assert r.status_code == 200, r.text
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', r.text)
    assert found, r.text
    return found.group(1)


def authorize(client, url, account, decision="allow", otp=None):
    """Answer the authorize page as a browser would (its form posts to the same URL)."""
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "<form" in r.text
    form = {"username": account.username, "password": account.password, "decision": decision,
            "csrf_token": form_csrf(client, url)}
    if otp is not None:
        form["otp"] = otp
    return client.post(url, data=form, follow_redirects=False)


def location_params(response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["location"])
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def user_token(client, consumer, account, *, public=False, scope=None, codes=None):
    """The authorization code grant with PKCE, end to end, with authlib."""
    oc = oauth_client(client, consumer, public=public, scope=scope,
                      code_challenge_method="S256")
    verifier = new_verifier()
    url, _ = oc.create_authorization_url(AUTHORIZE, code_verifier=verifier)
    r = authorize(client, url, account)
    assert r.headers["location"].startswith(CALLBACK + "?")
    if codes is not None:
        codes.append(location_params(r)["code"])
    token = oc.fetch_token(TOKEN, authorization_response=r.headers["location"],
                           code_verifier=verifier)
    return oc, token


def assertion(consumer, secret=None, **claims):
    now = int(time.time())
    body = {"iss": consumer["key"], "iat": now, "exp": now + 180, "jti": uuid.uuid4().hex,
            **claims}
    body = {k: v for k, v in body.items() if v is not None}
    key = OctKey.import_key(secret or consumer["secret"])
    return jwt.encode({"alg": "HS256"}, body, key)
