"""The OAuth request Gitward hands to authlib's server carries what authlib's own requests
do; the authorize page's security headers."""

from __future__ import annotations

import logging

import pytest
from authlib.oauth2.rfc6749 import OAuth2Request
from starlette.datastructures import Headers

from gitward.services.oauth_server import OAuthRequest, safe_description, same_loopback_callback
from gitward.web.oauth.page import content_security_policy


def test_request_has_every_attribute_of_authlibs():
    theirs = OAuth2Request("POST", "https://gitward.example/site/oauth2/access_token", None,
                           {"Authorization": "Basic eDp5"})
    ours = OAuthRequest("POST", "http://gitward.example/site/oauth2/access_token",
                        Headers({"Authorization": "Basic eDp5"}), {"grant_type": "x"})
    missing = set(vars(theirs)) - set(vars(ours))
    assert not missing, f"authlib's OAuth2Request gained attributes: {missing}"
    assert ours.payload.grant_type == "x" and ours.form == {"grant_type": "x"}
    assert ours.payload.datalist["grant_type"] == ["x"]
    # Header names are looked up case-insensitively, as authlib's client authentication does.
    assert ours.headers.get("Authorization") == ours.headers.get("authorization")


def test_authorization_requests_keep_query_and_form_apart():
    ours = OAuthRequest("POST", "http://h/site/oauth2/authorize", Headers({}),
                        {"client_id": "k"}, {"username": "alice"})
    assert ours.args == {"client_id": "k"} and ours.form == {"username": "alice"}
    assert ours.payload.client_id == "k" and ours.payload.data.get("username") is None


def test_safe_description():
    assert safe_description('a "b" \\ é\x00 ok') == "a ?b? ? ?? ok"


def test_issued_tokens_never_logged_by_authlib(caplog):
    import gitward.services.oauth_server  # noqa: F401  (installs the filter)

    caplog.set_level(logging.DEBUG)
    for name in ("authorization_code", "refresh_token", "client_credentials"):
        log = logging.getLogger(f"authlib.oauth2.rfc6749.grants.{name}")
        log.debug("Issue token %r to %r", {"access_token": "gwoat_secret"}, "client")
        log.debug("Validate token request of %r", "client")
    text = caplog.text
    assert "gwoat_secret" not in text
    assert "Validate token request" in text


@pytest.mark.parametrize(
    ("callback", "allowed"),
    [
        ("https://app.example.com/callback", "https://app.example.com"),
        ("http://127.0.0.1:8080/cb?x=1", "http://127.0.0.1:8080"),
        ("https://user:pw@h.example:444/x", "https://h.example:444"),
        ("https://[::1]:8080/cb", "https://[::1]:8080"),
        ("https://[::1]/cb", "https://[::1]"),
        # Anything that is not a plain host and port: only the scheme.
        ("https://ex;ample.com/cb", "https:"),
        ("https://h.example:x/cb", "https:"),
        ("https://h.example:/cb", "https:"),
        ("https://a b/cb", "https:"),
    ],
)
def test_the_authorize_page_may_send_its_form_on_to_the_callback(callback, allowed):
    """Browsers apply the page's form-action to the redirect that answers its form."""
    policy = content_security_policy(callback)
    assert f"form-action 'self' {allowed};" in policy
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy


@pytest.mark.parametrize(
    ("registered", "given", "same"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:53123/callback", True),
        ("http://127.0.0.1:8000/callback", "http://127.0.0.1:53123/callback", True),
        ("http://[::1]/cb", "http://[::1]:999/cb", True),
        ("http://localhost/cb", "http://localhost:999/cb", True),
        # Only the port may differ, only on http loopback.
        ("http://127.0.0.1/callback", "https://127.0.0.1:5/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:5/other", False),
        ("http://127.0.0.1/callback", "http://localhost:5/callback", False),
        ("http://127.0.0.1/callback?a=1", "http://127.0.0.1:5/callback?a=2", False),
        ("http://127.0.0.1/callback", "http://u@127.0.0.1:5/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:99999999/callback", False),
        ("http://127.0.0.1/callback", "http://127.0.0.1:x/callback", False),
        ("https://app.example.com/cb", "https://app.example.com:444/cb", False),
        ("http://app.example.com/cb", "http://app.example.com:8080/cb", False),
    ],
)
def test_loopback_callbacks_may_change_port(registered, given, same):
    assert same_loopback_callback(registered, given) is same
